"""Where the status index lives (docs/status-proofs.md §6, §9): one class per engine, in tables of their own.

    status_page(page, version, data)       one row per page of the tree (4 levels of nodes: statusindex_pages.py),
                                           kept in every version it was written at: a proof for an older root
                                           (the one inside the cosigned checkpoint) is still served while newer
                                           ones land
    status_version(size, root, time, entry)  every index version: it covers log entries [0, size); `entry` is
                                           where its `index-root` statement was logged (NULL until it is)
    status_head(id = 1, size)              the newest version, swapped by compare-and-swap
    status_layout(id = 1, stride, log_roots_from)  the row layout; index roots are logged again only from this size
                                           (an index rebuilt from the log must not state a size that goes back)

The tables' statements and the SQLite file's set-up: logserver/statusstore_schema.py.

A read at version V takes, per page, the row with the largest version <= V. An update writes its pages whole at
version = its size, inserts the version and moves the head from the old size to the new one in ONE transaction:
a crash before the commit leaves the old version whole, after it the new one; a second indexer loses the swap.
PostgreSQL keys the rows by (page, version) and a prune deletes them; SQLite keeps them in the order written (`seq`,
with a unique index on (page, version)) and compacts them from the oldest end (logserver/statuscompaction.py).

A file or database holding the former layout (status_node: one row per node) is not read: at open its index
tables are emptied in one transaction and the indexer rebuilds the index from the log (§6 "Layout change").

SQLite keeps the index in a file of its own beside the log's (`log.db.status`, logserver/opening.py): SQLite has one
writer per file, and an update's transaction (tens of thousands of rows) in `log.db` held the sequencer's commits
for its whole length (§11 "Twenty-first round"). The index is derived from the log: a file lost is rebuilt, and an
index ahead of its log is started over (`start_over`, called by statusindexer.reconcile_index at the server's start).
"""

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import asyncpg  # type: ignore[import-untyped]  # no stubs shipped

from logserver.postgres import SETTINGS as POSTGRES_SETTINGS
from logserver.postgres import bulk_timeout
from logserver.sqlite import READ_MMAP_BYTES, in_immediate_transaction
from logserver.statuscompaction import NEWEST, Compaction
from logserver.statuspages import PagedNodes
from logserver.statusstore_schema import (
    FEW_PAGES,
    FORMER_LAYOUT,
    LOGGED_BELOW,
    LOGGED_SIZE,
    POSTGRES_PRUNE,
    POSTGRES_SCHEMA,
    SCHEMA_LOCK,
    SET_ROOTS_FROM,
    SQLITE_INSERT_PAGE,
    START_OVER,
    check_layout,
    drop_index_tables,
    sqlite_layout,
    sqlite_newest_each,
    sqlite_newest_rows,
)
from logserver.statuswal import IndexWal
from logserver.storage import HeadMovedError, StorageError, failure_text
from tlogcore.statusindex_nodes import NodeId, StoredNode
from tlogcore.statusindex_pages import STRIDE, Page, top_ranges
from tlogcore.statuspageset import PageSet

log = logging.getLogger("logserver.statusstore")
CHUNK = 400
# How long a write to SQLite's index file waits for the file's other writer. It has two: the indexer's process
# (each update one transaction: over 5 s at steps of 50,000 on a loaded 2-core machine, §11 "Twenty-second round";
# it records where each root's statement landed too, `set_entry`, indexerprocess.py) and the sequencing process
# (that record for a version committed before a crash; the one-process StatusIndexer's, in tests), which must wait
# rather than fail: a failed record left the version without its entry, and its statement was logged a second time.
WRITE_WAIT_MS = 120_000
# Seconds a statement may take before the call fails: a lookup's, and the indexer's (its process and its shards).
# The indexer is off the commit path and nothing waits for it but the lag, while a failure replaces its process and
# reloads its top; its statements are big (a step's COPY, its prunes, its reads: PG_IDS at a time) and a loaded
# machine slows them (§11, "Seventeenth round").
LOOKUP_TIMEOUT = 10.0
INDEXER_TIMEOUT = 60.0
UPPER_PAGES = 2**21  # read_upper_rows' pages at most: 2^20 pages start at depth 20, fewer above (UPPER_DEPTH 23)
PG_IDS = 5_000  # page ids per statement (ids_in_chunks): each chunk a bitmap index scan
PG_FAILURES = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)  # a call's failures, worded
CACHE_BYTES = 256 * 1024 * 1024  # page cache of each reading connection (bounded; the index is ~200 B per document)
# A serving process's reader (status lookups, open_status_store): past the 2 GiB memory map (about 2·10^6 documents)
# each row a lookup reads copies a 64 KiB file page from the OS unless it is cached. With 1 GiB, at 10^7 documents a
# lookup took 370-377 against 413-430 us and a process answered 1,931 / 2,111 against 1,860 / 1,965 lookups/s over
# HTTP (§11 "Thirty-second round"); at most that much more memory per serving process, filled only past the map.
LOOKUP_CACHE_BYTES = 1024 * 1024 * 1024
# SQLite's file pages of a new index file: 64 KiB, its largest (an existing file keeps the size it was made with). An
# update inserts and deletes rows at random keys all over the table, so it rewrites nearly every page of the file;
# the same bytes in pages 16 times larger are fewer pages, WAL frames and system calls (§11, 23rd and 24th rounds).
PAGE_BYTES = 65536
# The page cache of the index file's writer. An update dirties pages all over the file, past the 256 MiB of
# CACHE_BYTES from about 10^6 documents on; SQLite then spilled dirty pages into the WAL in the middle of the
# transaction and wrote a page again each time the update dirtied it anew: one update of 150,000 at 10^6 wrote
# 1,134 MB, at 4·10^6 2,891 MB. Holding them only past CACHE_BYTES (cache_spill) cut the bytes but cost more CPU
# than it saved: every page fetched then found the cache over its size, and clean pages had no room. A cache this
# size holds both, up to the file's size: the writer's process keeps that much memory (§11 "Twenty-sixth round").
WRITER_CACHE_BYTES = 2 * 1024**3


Prune = tuple[int, Sequence[bytes]]  # (version, ids of the pages it rewrote): delete their rows older than that version
T = TypeVar("T")


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

    async def log_roots_from(self) -> int:
        """The size from which versions get an index-root statement: 0, or, for an index rebuilt from the log
        after a layout change, the largest size an index-root statement already stated."""

    async def read_nodes(
        self, ids: Sequence[NodeId], version: int, pages: PageSet | None = None
    ) -> dict[NodeId, StoredNode]:
        """The rows of these node ids as of `version` (absent ids have no row); `pages` (of that version) keeps
        the pages read, for the next rounds of one plan and its commit (statusindexer.read_plan)."""

    async def read_pages(
        self, pages: Iterable[NodeId], version: int, known: PageSet | None = None
    ) -> dict[NodeId, Page]:
        """These pages whole as of `version` ({} for a page with no row); `known` (of that version) keeps them."""

    async def read_upper_rows(self, depth: int, version: int, half: int | None = None) -> list[tuple[bytes, bytes]]:
        """The stored rows (page id, page data) of every page starting at depth <= `depth` as of `version`, or with
        `half`, of the root's page and that half's (statusindex_pages.top_ranges): the top of the tree, for a reader
        that keeps it (`decoded` makes them pages; UpperLevels parses its bottom depth's as the paths reach them)."""

    async def commit(
        self,
        old: IndexVersion | None,
        new: IndexVersion,
        writes: Mapping[NodeId, StoredNode],
        pages: PageSet | None = None,
        prunes: Sequence[Prune] = (),
    ) -> None:
        """Write the nodes (their pages whole, the rest of each from `pages` if it is of version old.size, else
        read) at version new.size and make `new` the head, iff the head is still `old`; in the same transaction,
        `prune` each of `prunes` (its deletes then share the commit's dirty pages and its one sync)."""

    async def set_entry(self, size: int, entry: int) -> None:
        """Record where the version's index-root statement was logged."""

    async def newest_logged(self, below: int) -> IndexVersion | None:
        """The newest version whose index-root statement is logged at an index below `below`."""

    async def logged_below(self, size: int) -> bool:
        """Whether a version of fewer than `size` entries has its index-root statement logged (a lookup may read
        it: statuslookup.py)."""

    async def prune(self, version: int, pages: Sequence[bytes]) -> None:
        """Delete the rows older than `version` of these pages (stored ids: pages it rewrote): once no read asks
        for an older version, they are dead weight."""

    async def start_over(self, logged_from: int) -> None:
        """Empty the index (it is rebuilt from the log) and state its roots only from `logged_from` on, in one
        transaction."""

    async def state_roots_from(self, logged_from: int) -> None:
        """Keep the index, and state its roots only from `logged_from` on (an index behind its log's last root)."""

    def count_ahead(self) -> None:
        """Start now, off the first update's path, what the first write would do first (the indexer's start;
        SQLite: the compaction's counts of its rows; PostgreSQL: nothing)."""

    async def close(self) -> None: ...


def _sqlite_commit(
    db: sqlite3.Connection, old: IndexVersion | None, new: IndexVersion, rows: Sequence[tuple[bytes, int, bytes]],
    prunes: Sequence[Prune], compaction: Compaction,
) -> None:  # fmt: skip
    """One update on the writer's thread: the compare-and-swap of the head, the rows, the compaction of what the
    prunes superseded, the version."""
    if old is None:
        swapped = db.execute("INSERT INTO status_head (id, size) VALUES (1, ?) ON CONFLICT DO NOTHING", (new.size,))
    else:
        swapped = db.execute("UPDATE status_head SET size = ? WHERE id = 1 AND size = ?", (new.size, old.size))
    if swapped.rowcount != 1:
        raise IndexMovedError("the status index head moved: another indexer wrote")
    compaction.counted(db)
    (first,) = db.execute(NEWEST).fetchone()
    db.executemany(SQLITE_INSERT_PAGE, rows)
    compaction.wrote(db, (first or 0) + 1, len(rows), max((version for version, _ in prunes), default=None))
    version = (new.size, new.root, new.time)
    db.execute("INSERT INTO status_version (size, root, time, entry) VALUES (?, ?, ?, NULL)", version)


def _version(row: Sequence[Any]) -> IndexVersion:
    return IndexVersion(int(row[0]), bytes(row[1]), int(row[2]), None if row[3] is None else int(row[3]))


def ids_in_chunks(ids: list[bytes]) -> list[list[bytes]]:
    """Page ids for `= ANY($1)` in chunks of PG_IDS: PostgreSQL 15 plans a longer array over a table of 3·10^6 rows
    as a sequential scan of the whole table (EXPLAIN: from about 10^5 ids on), and the table grows with the index
    and its superseded rows: a prune of 227,464 pages outran 80 s under load (§11, "Seventeenth round")."""
    return [ids[start : start + PG_IDS] for start in range(0, len(ids), PG_IDS)]


class SQLiteStatusStore:
    """The index in an SQLite file of its own beside the log's (`log.db.status`: its write lock is never the
    sequencer's); its own connections, each write one call on its own thread."""

    def __init__(self, writer: sqlite3.Connection, reader: sqlite3.Connection) -> None:
        self._writer, self._reader = writer, reader  # the writer is used on _write_thread only
        self._compaction = Compaction()  # on _write_thread too
        self._wal = IndexWal(writer)  # on _write_thread too
        self._write_thread = ThreadPoolExecutor(1, thread_name_prefix="status-db-write")
        self._pages = PagedNodes(self._select_pages)

    @classmethod
    async def open(
        cls, path: Path, busy_timeout_ms: int = 5000, log_path: Path | None = None, read_cache_bytes: int | None = None
    ) -> "SQLiteStatusStore":
        """The index in the SQLite file `path`; `log_path`: the log's own file, if another, from which the index's
        tables of an earlier release are dropped (the index is rebuilt in `path`); `read_cache_bytes`: the reading
        connection's page cache (None: CACHE_BYTES; LOOKUP_CACHE_BYTES for a serving process's lookups)."""
        try:
            if log_path is not None and log_path != path:
                await asyncio.to_thread(drop_index_tables, log_path, busy_timeout_ms)
            writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            writer.execute(f"PRAGMA busy_timeout = {max(int(busy_timeout_ms), WRITE_WAIT_MS)}")
            writer.execute(f"PRAGMA page_size = {PAGE_BYTES}")  # before the file's first table, or a no-op
            writer.execute("PRAGMA journal_mode = WAL")  # lookups read while the indexer writes
            writer.execute("PRAGMA synchronous = FULL")
            # An update rewrites rows all over the table (random keys): without a cache holding its B-tree the
            # writer re-reads pages at every row (SQLite's default cache is 2 MiB).
            writer.execute(f"PRAGMA cache_size = {-WRITER_CACHE_BYTES // 1024}")
            writer.execute("PRAGMA wal_autocheckpoint = 0")  # the indexer's writes checkpoint (statuswal.py)
            await asyncio.to_thread(sqlite_layout, writer)  # may wait for the write lock: off the event loop
            reader = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            reader.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            reader.execute("PRAGMA query_only = 1")
            cache = CACHE_BYTES if read_cache_bytes is None else read_cache_bytes  # read now: tests shrink it
            reader.execute(f"PRAGMA cache_size = {-max(0, int(cache)) // 1024}")  # KiB
            reader.execute(f"PRAGMA mmap_size = {READ_MMAP_BYTES}")
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open the status index in {path}: {failure_text(exc)}") from exc
        return cls(writer, reader)

    def count_ahead(self) -> None:
        self._write_thread.submit(self._count_ahead)  # the writer's thread runs it before any write asked later

    def _count_ahead(self) -> None:
        try:
            self._compaction.count_ahead(self._writer)
        except sqlite3.Error as exc:
            log.warning("status index: rows not counted ahead, the first write counts them: %s", failure_text(exc))

    async def close(self) -> None:
        self._reader.close()
        await asyncio.get_running_loop().run_in_executor(self._write_thread, self._writer.close)
        self._write_thread.shutdown()

    async def _write(self, work: Callable[[sqlite3.Connection], T], failed: str, checkpoint: bool = True) -> T:
        """`work` in one transaction on the writer's thread, in one hand-off (in_immediate_transaction); an SQLite
        error becomes one StorageError starting with `failed`. A write with `checkpoint` (the indexer's) leaves the
        WAL to be copied into the file and started over on that thread, after the answer (statuswal.py)."""
        try:
            result = await asyncio.get_running_loop().run_in_executor(
                self._write_thread, self._transaction, work, checkpoint
            )
        except sqlite3.Error as exc:
            self._compaction.forget()  # rolled back: the counts are counted again
            raise StorageError(f"{failed}: {failure_text(exc)}") from exc
        except BaseException:
            self._compaction.forget()  # rolled back, or not known (cancelled while the thread wrote)
            raise
        self._write_thread.submit(self._wal.written, checkpoint)
        return result

    def _transaction(self, work: Callable[[sqlite3.Connection], T], checkpoint: bool) -> T:
        self._wal.before(checkpoint)
        return in_immediate_transaction(self._writer, work)

    def _read(self, sql: str, params: Sequence[object]) -> list[Any]:
        try:
            return self._reader.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StorageError(f"status index read failed: {failure_text(exc)}") from exc

    async def _select_pages(self, pages: list[bytes], version: int) -> list[Any]:
        if len(pages) <= FEW_PAGES:
            return self._read(sqlite_newest_each(len(pages)), [x for page in pages for x in (page, version)])
        found = []
        for start in range(0, len(pages), CHUNK):
            chunk = pages[start : start + CHUNK]
            marks = ",".join("?" * len(chunk))
            found += self._read(sqlite_newest_rows(f"page IN ({marks})"), [*chunk, version])
            if start + CHUNK < len(pages):
                await asyncio.sleep(0)  # these reads block: let the event loop run between chunks
        return found

    async def head(self) -> IndexVersion | None:
        rows = self._read(
            "SELECT v.size, v.root, v.time, v.entry FROM status_head h JOIN status_version v ON v.size = h.size", ()
        )
        return _version(rows[0]) if rows else None

    async def log_roots_from(self) -> int:
        rows = self._read("SELECT stride, log_roots_from FROM status_layout WHERE id = 1", ())
        return check_layout(rows[0] if rows else None)

    async def read_nodes(
        self, ids: Sequence[NodeId], version: int, pages: PageSet | None = None
    ) -> dict[NodeId, StoredNode]:
        return await self._pages.nodes(ids, version, pages)

    async def read_pages(
        self, pages: Iterable[NodeId], version: int, known: PageSet | None = None
    ) -> dict[NodeId, Page]:
        return await self._pages.whole(pages, version, known)

    async def read_upper_rows(self, depth: int, version: int, half: int | None = None) -> list[tuple[bytes, bytes]]:
        ranges = top_ranges(depth, half)
        sql = sqlite_newest_rows("page >= ? AND page < ?", len(ranges))
        # 1.1 million pages at 10^7 (2.1-2.3 s a half): off the event loop (the reader is serialized, threadsafety 3)
        return await asyncio.to_thread(self._read, sql, [x for low, high in ranges for x in (low, high, version)])

    async def commit(
        self,
        old: IndexVersion | None,
        new: IndexVersion,
        writes: Mapping[NodeId, StoredNode],
        pages: PageSet | None = None,
        prunes: Sequence[Prune] = (),
    ) -> None:
        # Merged and encoded before BEGIN; then the whole transaction is one call on the writer's thread: the write
        # lock, which the sequencer's commits wait on, is never held while this waits for the event loop. (Rows
        # bound by executemany, measured faster than one statement cutting them from blobs with json_each: 0.27-0.36
        # against 0.57-0.62 s for 45,000 rows, §11 "Seventh round".)
        rows = await self._pages.to_write(None if old is None else old.size, new.size, writes, pages)
        update = "status index update failed, nothing was stored"
        await self._write(lambda db: _sqlite_commit(db, old, new, rows, prunes, self._compaction), update)

    async def set_entry(self, size: int, entry: int) -> None:
        sql = "UPDATE status_version SET entry = ? WHERE size = ?"
        # No checkpoint from the sequencing process: one row, copied in by the indexer's next write.
        await self._write(lambda db: db.execute(sql, (entry, size)), "cannot record the index-root entry", False)

    async def newest_logged(self, below: int) -> IndexVersion | None:
        rows = self._read(
            "SELECT size, root, time, entry FROM status_version WHERE entry IS NOT NULL AND entry < ? "
            "ORDER BY size DESC LIMIT 1",
            (below,),
        )
        return _version(rows[0]) if rows else None

    async def logged_below(self, size: int) -> bool:
        return bool(self._read(LOGGED_BELOW.format("?"), (size,)))

    async def prune(self, version: int, pages: Sequence[bytes]) -> None:
        # One transaction: in autocommit every statement would be its own commit, and its own fsync.
        await self._write(lambda db: self._compaction.run(db, version), "cannot prune the status index")

    async def start_over(self, logged_from: int) -> None:
        def empty(db: sqlite3.Connection) -> None:
            for sql in START_OVER:
                db.execute(sql)
            self._compaction.forget()
            db.execute(SET_ROOTS_FROM.format("?"), (logged_from,))

        await self._write(empty, "cannot empty the status index")

    async def state_roots_from(self, logged_from: int) -> None:
        def set_from(db: sqlite3.Connection) -> None:
            db.execute(SET_ROOTS_FROM.format("?"), (logged_from,))

        await self._write(set_from, "cannot set where the status index's roots start")


class PostgresStatusStore:
    """The index in the log's PostgreSQL database (its own tables, its own small pool)."""

    def __init__(self, pool: asyncpg.Pool, timeout: float = LOOKUP_TIMEOUT) -> None:
        self._pool, self._timeout = pool, timeout
        self._pages = PagedNodes(self._select_pages)

    def _bulk(self, rows: int) -> float:
        """`bulk_timeout` (logserver/postgres.py, with its reasons) over this store's own timeout."""
        return bulk_timeout(self._timeout, rows)

    @classmethod
    async def open(cls, dsn: str, pool_size: int = 4, timeout: float = LOOKUP_TIMEOUT) -> "PostgresStatusStore":
        try:
            pool = await asyncpg.create_pool(
                dsn, min_size=1, max_size=pool_size, timeout=timeout, command_timeout=timeout,
                server_settings=POSTGRES_SETTINGS,
            )  # fmt: skip
            async with pool.acquire() as conn, conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", SCHEMA_LOCK)
                former = await conn.fetchval("SELECT to_regclass('status_node') IS NOT NULL")
                logged = int(await conn.fetchval(LOGGED_SIZE)) if former else 0
                await conn.execute(POSTGRES_SCHEMA + (FORMER_LAYOUT if former else ""))
                await conn.execute(
                    "INSERT INTO status_layout VALUES (1, $1, $2) ON CONFLICT DO NOTHING", STRIDE, logged
                )
        except (asyncpg.PostgresError, OSError, TimeoutError, ValueError) as exc:
            raise StorageError(f"cannot open the status index in PostgreSQL: {failure_text(exc)}") from exc
        if former:
            log.warning("status index: former row layout found; rebuilding it from the log (roots from %d)", logged)
        return cls(pool, timeout)

    def count_ahead(self) -> None:
        return None  # PostgreSQL prunes by page (`_prune`): nothing counted

    async def close(self) -> None:
        await self._pool.close()

    async def _fetch(self, sql: str, *args: Any, timeout: float | None = None) -> list[Any]:
        try:
            async with self._pool.acquire() as conn:
                rows: list[Any] = await conn.fetch(sql, *args, timeout=timeout)
                return rows
        except PG_FAILURES as exc:
            raise StorageError(f"status index: PostgreSQL: {failure_text(exc)}") from exc

    async def _select_pages(self, pages: list[bytes], version: int) -> list[Any]:
        found: list[Any] = []
        for chunk in ids_in_chunks(pages):
            found += await self._fetch(
                "SELECT DISTINCT ON (page) page, data FROM status_page WHERE page = ANY($1::bytea[]) "
                "AND version <= $2 ORDER BY page, version DESC",
                chunk,
                version,
                timeout=self._bulk(len(chunk)),
            )
        return found

    async def _prune(self, conn: asyncpg.Connection, ids: list[bytes], version: int) -> None:
        for chunk in ids_in_chunks(ids):
            await conn.execute(POSTGRES_PRUNE, chunk, version, timeout=self._bulk(len(chunk)))

    async def head(self) -> IndexVersion | None:
        rows = await self._fetch(
            "SELECT v.size, v.root, v.time, v.entry FROM status_head h JOIN status_version v ON v.size = h.size"
        )
        return _version(rows[0]) if rows else None

    async def log_roots_from(self) -> int:
        rows = await self._fetch("SELECT stride, log_roots_from FROM status_layout WHERE id = 1")
        return check_layout(rows[0] if rows else None)

    async def read_nodes(
        self, ids: Sequence[NodeId], version: int, pages: PageSet | None = None
    ) -> dict[NodeId, StoredNode]:
        return await self._pages.nodes(ids, version, pages)

    async def read_pages(
        self, pages: Iterable[NodeId], version: int, known: PageSet | None = None
    ) -> dict[NodeId, Page]:
        return await self._pages.whole(pages, version, known)

    async def read_upper_rows(self, depth: int, version: int, half: int | None = None) -> list[tuple[bytes, bytes]]:
        ranges = top_ranges(depth, half)
        arms = " UNION ALL ".join(  # each range one index scan in page order, as the whole top's one range was
            f"(SELECT DISTINCT ON (page) page, data FROM status_page WHERE page >= ${2 * i + 2} "
            f"AND page < ${2 * i + 3} AND version <= $1 ORDER BY page, version DESC)"
            for i in range(len(ranges))
        )
        rows = await self._fetch(
            arms,
            version,
            *(x for low, high in ranges for x in (low, high)),
            timeout=self._bulk(UPPER_PAGES),
        )
        return [(bytes(page), bytes(data)) for page, data in rows]

    async def commit(
        self,
        old: IndexVersion | None,
        new: IndexVersion,
        writes: Mapping[NodeId, StoredNode],
        pages: PageSet | None = None,
        prunes: Sequence[Prune] = (),
    ) -> None:
        rows = await self._pages.to_write(None if old is None else old.size, new.size, writes, pages)
        stage = "the head's compare-and-swap"  # named in the error: which part of a big commit failed
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
                stage = f"the COPY of {len(rows)} page rows"
                await conn.copy_records_to_table(
                    "status_page", records=rows, columns=["page", "version", "data"], timeout=self._bulk(len(rows))
                )
                stage = "the version's row"
                await conn.execute(
                    "INSERT INTO status_version (size, root, time, entry) VALUES ($1, $2, $3, NULL)",
                    new.size, new.root, new.time,
                )  # fmt: skip
                for version, pages_rewritten in prunes:
                    stage = f"the prune of {len(pages_rewritten)} pages' rows"
                    await self._prune(conn, list(pages_rewritten), version)
                stage = "COMMIT"  # the context's exit commits
        except PG_FAILURES as exc:
            raise StorageError(
                f"status index update failed at {stage}, nothing was stored: {failure_text(exc)}"
            ) from exc

    async def set_entry(self, size: int, entry: int) -> None:
        try:
            async with self._pool.acquire() as conn:
                await conn.execute("UPDATE status_version SET entry = $1 WHERE size = $2", entry, size)
        except PG_FAILURES as exc:
            raise StorageError(f"cannot record the index-root entry: {failure_text(exc)}") from exc

    async def newest_logged(self, below: int) -> IndexVersion | None:
        rows = await self._fetch(
            "SELECT size, root, time, entry FROM status_version WHERE entry IS NOT NULL AND entry < $1 "
            "ORDER BY size DESC LIMIT 1",
            below,
        )
        return _version(rows[0]) if rows else None

    async def logged_below(self, size: int) -> bool:
        return bool(await self._fetch(LOGGED_BELOW.format("$1"), size))

    async def prune(self, version: int, pages: Sequence[bytes]) -> None:
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                await self._prune(conn, list(pages), version)
        except PG_FAILURES as exc:
            raise StorageError(f"cannot prune the status index: {failure_text(exc)}") from exc

    async def start_over(self, logged_from: int) -> None:
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                for sql in START_OVER:
                    await conn.execute(sql)
                await conn.execute(SET_ROOTS_FROM.format("$1"), logged_from)
        except PG_FAILURES as exc:
            raise StorageError(f"cannot empty the status index: {failure_text(exc)}") from exc

    async def state_roots_from(self, logged_from: int) -> None:
        try:
            async with self._pool.acquire() as conn:
                await conn.execute(SET_ROOTS_FROM.format("$1"), logged_from)
        except PG_FAILURES as exc:
            raise StorageError(f"cannot set where the status index's roots start: {failure_text(exc)}") from exc
