"""Where the status index lives (docs/status-proofs.md §6, §9): one class per engine, in tables of their own.

    status_node(node, version, data)       one row per non-empty subtree (tlogcore/statusindex_nodes.py), kept in
                                           every version it was written at: a proof for an older root (the one
                                           inside the cosigned checkpoint) is still served while newer ones land
    status_version(size, root, time, entry)  every index version: it covers log entries [0, size); `entry` is
                                           where its `index-root` statement was logged (NULL until it is)
    status_head(id = 1, size)              the newest version, swapped by compare-and-swap

A read at version V takes, per node id, the row with the largest version <= V. An update writes its rows at
version = its size, inserts the version and moves the head from the old size to the new one in ONE transaction:
a crash before the commit leaves the old version whole, after it the new one; a second indexer loses the swap.
"""

import asyncio
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import aiosqlite
import asyncpg  # type: ignore[import-untyped]  # no stubs shipped

from logserver.postgres import SETTINGS as POSTGRES_SETTINGS
from logserver.sqlite import READ_MMAP_BYTES, immediate_transaction
from logserver.storage import HeadMovedError, StorageError
from tlogcore.statusindex_nodes import NodeId, StoredNode, node_id_bytes, node_id_from_bytes, parse_node

SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS status_node (
    node BLOB NOT NULL, version INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (node, version)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS status_version (
    size INTEGER PRIMARY KEY, root BLOB NOT NULL, time INTEGER NOT NULL, entry INTEGER
);
CREATE TABLE IF NOT EXISTS status_head (id INTEGER PRIMARY KEY CHECK (id = 1), size INTEGER NOT NULL);
"""
POSTGRES_SCHEMA = """
CREATE TABLE IF NOT EXISTS status_node (
    node bytea NOT NULL, version bigint NOT NULL, data bytea NOT NULL, PRIMARY KEY (node, version)
);
CREATE TABLE IF NOT EXISTS status_version (size bigint PRIMARY KEY, root bytea NOT NULL, time bigint NOT NULL,
    entry bigint);
CREATE TABLE IF NOT EXISTS status_head (id integer PRIMARY KEY CHECK (id = 1), size bigint NOT NULL);
"""
SCHEMA_LOCK = 0x746C6F67_00000013  # "tlog", issue 19: servers starting together create the tables once
CHUNK = 400
CACHE_BYTES = 256 * 1024 * 1024  # page cache of each SQLite connection (bounded; the index is ~200 B per document)


class IndexMovedError(HeadMovedError):
    """The status index head is no longer the one this indexer extended (another indexer wrote)."""


@dataclass(frozen=True)
class IndexVersion:
    size: int  # covers log entries [0, size)
    root: bytes
    time: int  # POSIX seconds, as signed into its index-root statement
    entry: int | None = None  # the log index of its index-root statement, once logged


class StatusStore(Protocol):
    async def head(self) -> IndexVersion | None:
        """The newest version, or None before the first update."""

    async def read_nodes(self, ids: Sequence[NodeId], version: int) -> dict[NodeId, StoredNode]:
        """The rows of these node ids as of `version` (absent ids have no row)."""

    async def read_upper(self, depth: int, version: int) -> dict[NodeId, StoredNode]:
        """Every row at depth <= `depth` as of `version` (the top of the tree, for a reader that keeps it)."""

    async def commit(self, old: IndexVersion | None, new: IndexVersion, writes: Mapping[NodeId, StoredNode]) -> None:
        """Write the rows at version new.size and make `new` the head, iff the head is still `old`."""

    async def set_entry(self, size: int, entry: int) -> None:
        """Record where the version's index-root statement was logged."""

    async def newest_logged(self, below: int) -> IndexVersion | None:
        """The newest version whose index-root statement is logged at an index below `below`."""

    async def prune(self, version: int, nodes: Sequence[NodeId]) -> None:
        """Delete the rows of `nodes` older than `version` (which rewrote them): once no read asks for an older
        version, they are dead weight."""

    async def close(self) -> None: ...


def _version(row: Sequence[Any]) -> IndexVersion:
    return IndexVersion(int(row[0]), bytes(row[1]), int(row[2]), None if row[3] is None else int(row[3]))


def _rows(rows: Sequence[Sequence[Any]], by_bytes: Mapping[bytes, NodeId]) -> dict[NodeId, StoredNode]:
    return {by_bytes[bytes(row[0])]: parse_node(bytes(row[1])) for row in rows}


def _encoded(writes: Mapping[NodeId, StoredNode], version: int) -> list[tuple[bytes, int, bytes]]:
    return [(node_id_bytes(node), version, row.to_bytes()) for node, row in writes.items()]


def _upper_rows(rows: Sequence[Sequence[Any]]) -> dict[NodeId, StoredNode]:
    return {node_id_from_bytes(bytes(row[0])): parse_node(bytes(row[1])) for row in rows}


def _upper_bound(depth: int) -> bytes:
    """Node ids start with their u16 depth, so the ids of depth <= `depth` are exactly those below this."""
    return (depth + 1).to_bytes(2, "big")


class SQLiteStatusStore:
    """The index in the log's SQLite file (its own tables; its own connections, so the sequencer never waits)."""

    def __init__(self, writer: aiosqlite.Connection, reader: sqlite3.Connection) -> None:
        self._writer, self._reader = writer, reader

    @classmethod
    async def open(cls, path: Path, busy_timeout_ms: int = 5000) -> "SQLiteStatusStore":
        try:
            sqlite3.connect(path).close()
            writer = await aiosqlite.connect(path, isolation_level=None)
            await writer.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            await writer.execute("PRAGMA synchronous = FULL")
            # An update rewrites rows all over the table (random keys): without a cache holding its B-tree the
            # writer re-reads pages at every row (SQLite's default cache is 2 MiB).
            await writer.execute(f"PRAGMA cache_size = {-CACHE_BYTES // 1024}")
            await writer.executescript(SQLITE_SCHEMA)
            reader = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            reader.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            reader.execute("PRAGMA query_only = 1")
            reader.execute(f"PRAGMA cache_size = {-CACHE_BYTES // 1024}")
            reader.execute(f"PRAGMA mmap_size = {READ_MMAP_BYTES}")
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open the status index in {path}: {exc}") from exc
        return cls(writer, reader)

    async def close(self) -> None:
        self._reader.close()
        await self._writer.close()

    def _read(self, sql: str, params: Sequence[object]) -> list[Any]:
        try:
            return self._reader.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StorageError(f"status index read failed: {exc}") from exc

    async def head(self) -> IndexVersion | None:
        rows = self._read(
            "SELECT v.size, v.root, v.time, v.entry FROM status_head h JOIN status_version v ON v.size = h.size", ()
        )
        return _version(rows[0]) if rows else None

    async def read_nodes(self, ids: Sequence[NodeId], version: int) -> dict[NodeId, StoredNode]:
        by_bytes = {node_id_bytes(node): node for node in ids}
        keys, found = list(by_bytes), {}
        for start in range(0, len(keys), CHUNK):
            chunk = keys[start : start + CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self._read(  # SQLite takes the bare columns from the row holding the MAX (one seek per id)
                f"SELECT node, data, MAX(version) FROM status_node WHERE node IN ({marks}) AND version <= ? "
                "GROUP BY node",
                [*chunk, version],
            )
            found.update(_rows(rows, by_bytes))
            if start + CHUNK < len(keys):
                await asyncio.sleep(0)  # these reads block: let the event loop run between chunks
        return found

    async def read_upper(self, depth: int, version: int) -> dict[NodeId, StoredNode]:
        rows = self._read(
            "SELECT node, data, MAX(version) FROM status_node WHERE node < ? AND version <= ? GROUP BY node",
            (_upper_bound(depth), version),
        )
        return _upper_rows(rows)

    async def commit(self, old: IndexVersion | None, new: IndexVersion, writes: Mapping[NodeId, StoredNode]) -> None:
        # Encoded before BEGIN: the write lock, which the sequencer's commits wait on, is held for SQL alone.
        rows = await asyncio.to_thread(_encoded, writes, new.size)
        async with immediate_transaction(self._writer, "status index update failed, nothing was stored") as db:
            if old is None:
                sql, params = "INSERT INTO status_head (id, size) VALUES (1, ?) ON CONFLICT DO NOTHING", [new.size]
            else:
                sql, params = "UPDATE status_head SET size = ? WHERE id = 1 AND size = ?", [new.size, old.size]
            if (await db.execute(sql, params)).rowcount != 1:
                raise IndexMovedError("the status index head moved: another indexer wrote")
            await db.executemany("INSERT OR REPLACE INTO status_node (node, version, data) VALUES (?, ?, ?)", rows)
            await db.execute(
                "INSERT INTO status_version (size, root, time, entry) VALUES (?, ?, ?, NULL)",
                (new.size, new.root, new.time),
            )

    async def set_entry(self, size: int, entry: int) -> None:
        try:
            await self._writer.execute("UPDATE status_version SET entry = ? WHERE size = ?", (entry, size))
        except sqlite3.Error as exc:
            raise StorageError(f"cannot record the index-root entry: {exc}") from exc

    async def newest_logged(self, below: int) -> IndexVersion | None:
        rows = self._read(
            "SELECT size, root, time, entry FROM status_version WHERE entry IS NOT NULL AND entry < ? "
            "ORDER BY size DESC LIMIT 1",
            (below,),
        )
        return _version(rows[0]) if rows else None

    async def prune(self, version: int, nodes: Sequence[NodeId]) -> None:
        # One transaction: in autocommit every DELETE would be its own commit, and its own fsync.
        keys = await asyncio.to_thread(lambda: [(node_id_bytes(node), version) for node in nodes])
        async with immediate_transaction(self._writer, "cannot prune the status index") as db:
            await db.executemany("DELETE FROM status_node WHERE node = ? AND version < ?", keys)


class PostgresStatusStore:
    """The index in the log's PostgreSQL database (its own tables, its own small pool)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @classmethod
    async def open(cls, dsn: str, pool_size: int = 4, timeout: float = 10.0) -> "PostgresStatusStore":
        try:
            pool = await asyncpg.create_pool(
                dsn, min_size=1, max_size=pool_size, timeout=timeout, command_timeout=timeout,
                server_settings=POSTGRES_SETTINGS,
            )  # fmt: skip
            async with pool.acquire() as conn, conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", SCHEMA_LOCK)
                await conn.execute(POSTGRES_SCHEMA)
        except (asyncpg.PostgresError, OSError, TimeoutError, ValueError) as exc:
            raise StorageError(f"cannot open the status index in PostgreSQL: {exc}") from exc
        return cls(pool)

    async def close(self) -> None:
        await self._pool.close()

    async def _fetch(self, sql: str, *args: Any) -> list[Any]:
        try:
            async with self._pool.acquire() as conn:
                rows: list[Any] = await conn.fetch(sql, *args)
                return rows
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
            raise StorageError(f"status index: PostgreSQL: {exc}") from exc

    async def head(self) -> IndexVersion | None:
        rows = await self._fetch(
            "SELECT v.size, v.root, v.time, v.entry FROM status_head h JOIN status_version v ON v.size = h.size"
        )
        return _version(rows[0]) if rows else None

    async def read_nodes(self, ids: Sequence[NodeId], version: int) -> dict[NodeId, StoredNode]:
        by_bytes = {node_id_bytes(node): node for node in ids}
        rows = await self._fetch(
            "SELECT DISTINCT ON (node) node, data FROM status_node WHERE node = ANY($1::bytea[]) AND version <= $2 "
            "ORDER BY node, version DESC",
            list(by_bytes),
            version,
        )
        return _rows(rows, by_bytes)

    async def read_upper(self, depth: int, version: int) -> dict[NodeId, StoredNode]:
        rows = await self._fetch(
            "SELECT DISTINCT ON (node) node, data FROM status_node WHERE node < $1 AND version <= $2 "
            "ORDER BY node, version DESC",
            _upper_bound(depth),
            version,
        )
        return _upper_rows(rows)

    async def commit(self, old: IndexVersion | None, new: IndexVersion, writes: Mapping[NodeId, StoredNode]) -> None:
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                if old is None:
                    status = await conn.execute(
                        "INSERT INTO status_head (id, size) VALUES (1, $1) ON CONFLICT DO NOTHING", new.size
                    )
                else:
                    status = await conn.execute(
                        "UPDATE status_head SET size = $1 WHERE id = 1 AND size = $2", new.size, old.size
                    )
                if not status.endswith(" 1"):
                    raise IndexMovedError("the status index head moved: another indexer wrote")
                await conn.copy_records_to_table(
                    "status_node",
                    records=[(node_id_bytes(node), new.size, row.to_bytes()) for node, row in writes.items()],
                    columns=["node", "version", "data"],
                )
                await conn.execute(
                    "INSERT INTO status_version (size, root, time, entry) VALUES ($1, $2, $3, NULL)",
                    new.size, new.root, new.time,
                )  # fmt: skip
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
            raise StorageError(f"status index update failed, nothing was stored: {exc}") from exc

    async def set_entry(self, size: int, entry: int) -> None:
        try:
            async with self._pool.acquire() as conn:
                await conn.execute("UPDATE status_version SET entry = $1 WHERE size = $2", entry, size)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
            raise StorageError(f"cannot record the index-root entry: {exc}") from exc

    async def newest_logged(self, below: int) -> IndexVersion | None:
        rows = await self._fetch(
            "SELECT size, root, time, entry FROM status_version WHERE entry IS NOT NULL AND entry < $1 "
            "ORDER BY size DESC LIMIT 1",
            below,
        )
        return _version(rows[0]) if rows else None

    async def prune(self, version: int, nodes: Sequence[NodeId]) -> None:
        try:
            async with self._pool.acquire() as conn:
                await conn.execute(
                    "DELETE FROM status_node WHERE node = ANY($1::bytea[]) AND version < $2",
                    [node_id_bytes(n) for n in nodes],
                    version,
                )
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
            raise StorageError(f"cannot prune the status index: {exc}") from exc
