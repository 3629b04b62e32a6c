"""PostgreSQL storage (asyncpg): several tlog-server processes on one database, one of them sequencing.

    storage = await PostgresStorage.open("postgresql://tlog@db.example/tlog", pool_size=10)

Durability: every connection runs with synchronous_commit = on, so a commit
is flushed to PostgreSQL's WAL before `commit_batch` returns (storage contract
1). The head update is `UPDATE head ... WHERE size = $ AND root = $` in the
same transaction, checked by row count (contract 2, STYLE.md §8). Leaves and
node hashes go in with binary COPY (a batch holds up to 10,000 leaves); every
query runs on a pooled connection (reads on ones kept for reads: pgreaders.py),
so a connection PostgreSQL dropped is replaced on the next call. Lookups use the same 8-byte hash prefixes and the same
lookup tables merged off the commit path as logserver/sqlite.py (storage
contract 6), confirmed against the full hash; a merge commits with
synchronous_commit off (a crash may lose it, never half of it: it is redone).

The sequencer lease is a session-level advisory lock held on one dedicated
connection, not a lease row with an expiry: PostgreSQL releases it the moment
that session ends (its process killed with -9, its socket closed), so a
standby takes over on its next try (every flush interval) instead of waiting
out a TTL, and no clocks have to agree. A holder's own view is checked on
each renewal; the compare-and-swap stays the last line of defence if the
session died unnoticed.

A standby accepts submissions through the `pending` table (the SharedQueue
Protocol in logserver/storage.py): it inserts them durably, the sequencer
drains the table on each flush, and the submitter's process polls until its
leaves are in the log (or refused).
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import asyncpg  # type: ignore[import-untyped]  # no stubs shipped

from logserver import leafproof, warmup
from logserver.pgreaders import Readers
from logserver.storage import (
    NEWEST_PUBLISHED,
    NO_TAIL,
    PUBLISHED_ROW,
    DocumentRead,
    EntryRecord,
    Head,
    HeadMovedError,
    IdentityError,
    LogIdentity,
    StorageError,
    StoredEntry,
    TailHint,
    by_document,
    document_read,
    failure_text,
    hash_key,
    hash_keys,
    lookup_rows,
)
from tlogcore.merkle import leaf_hash

log = logging.getLogger("logserver.postgres")
# Below this, checkpoints come so often under load that most changed pages are written whole to the WAL again after
# each: at 10^7 entries and 10,000 entries/s, 4 GB gave 2.08 full-page images and 15.0 KB of WAL per entry, 16 GB
# 0.35 and 5.5 KB (docs/reference.md "PostgreSQL server settings"; docs/status-proofs.md §11, thirty-fifth round).
LEAST_MAX_WAL_SIZE = 4 << 30
MAX_WAL_SIZE = "SELECT pg_size_bytes(current_setting('max_wal_size'))"


def wal_size_advice(max_wal_size: int) -> str | None:
    """What to tell an operator whose server runs with `max_wal_size` bytes, or None if that is enough."""
    if max_wal_size >= LEAST_MAX_WAL_SIZE:
        return None
    return (
        f"PostgreSQL's max_wal_size is {max_wal_size >> 20} MB: checkpoints come often under load and write whole "
        "pages to the WAL again; set 4GB or more in postgresql.conf (16GB for a status index of 10^7 documents; "
        'docs/reference.md "PostgreSQL server settings")'
    )


SCHEMA = """
CREATE TABLE IF NOT EXISTS leaves (
    idx bigint PRIMARY KEY,
    data bytea NOT NULL,
    leaf_key bigint NOT NULL,
    document_key bigint,
    registry boolean NOT NULL
);
CREATE INDEX IF NOT EXISTS leaves_registry ON leaves(idx) WHERE registry;
CREATE TABLE IF NOT EXISTS hashes (id bigint PRIMARY KEY, hash bytea NOT NULL);
CREATE TABLE IF NOT EXISTS checkpoints (
    size bigint PRIMARY KEY,
    root bytea NOT NULL,
    note bytea NOT NULL,
    published bytea
);
CREATE TABLE IF NOT EXISTS head (id integer PRIMARY KEY CHECK (id = 1), size bigint NOT NULL, root bytea NOT NULL);
CREATE TABLE IF NOT EXISTS pending (
    leaf_hash bytea PRIMARY KEY,
    data bytea NOT NULL,
    error text,
    seq bigserial
);
CREATE TABLE IF NOT EXISTS lease (id integer PRIMARY KEY CHECK (id = 1), owner text NOT NULL);
CREATE TABLE IF NOT EXISTS identity (
    id integer PRIMARY KEY CHECK (id = 1),
    origin text NOT NULL,
    log_vkey text NOT NULL,
    registry_vkey text NOT NULL
);
CREATE TABLE IF NOT EXISTS leaf_lookup (key bigint NOT NULL, idx bigint NOT NULL, PRIMARY KEY (key, idx));
CREATE TABLE IF NOT EXISTS document_lookup (key bigint NOT NULL, idx bigint NOT NULL, PRIMARY KEY (key, idx));
CREATE TABLE IF NOT EXISTS lookup_state (id integer PRIMARY KEY CHECK (id = 1), merged bigint NOT NULL);
INSERT INTO lookup_state (id, merged) VALUES (1, 0) ON CONFLICT DO NOTHING;
"""
OLD_INDEXES = ["leaves_by_leaf_key", "leaves_by_document_key"]  # before issue 20: updated inside every commit
MERGE = (  # leaves [$1, $2) into the lookup tables, in key order, and the watermark past them: one transaction
    "INSERT INTO leaf_lookup (key, idx) SELECT leaf_key, idx FROM leaves WHERE idx >= $1 AND idx < $2 ORDER BY 1, 2",
    "INSERT INTO document_lookup (key, idx) SELECT document_key, idx FROM leaves"
    " WHERE idx >= $1 AND idx < $2 AND document_key IS NOT NULL ORDER BY 1, 2",
    "UPDATE lookup_state SET merged = $2 WHERE id = 1 AND merged = $1",
)
# As in sqlite.py: the lookup table below the watermark, the short tail above it, in one statement's snapshot.
# With a tail hint (storage.TailHint, readtail.py): the rows of the indexes held ($2) from the watermark on, and the
# scan only from the end of what the process holds ($3); no hint ({}, 0) scans the whole tail.
FIND_ARMS = """
SELECT l.idx, l.data FROM {table} k JOIN leaves l ON l.idx = k.idx WHERE k.key = ANY($1::bigint[])
UNION ALL
SELECT idx, data FROM leaves
    WHERE idx = ANY($2::bigint[]) AND idx >= (SELECT merged FROM lookup_state WHERE id = 1)
UNION ALL
SELECT idx, data FROM leaves
    WHERE idx >= greatest((SELECT merged FROM lookup_state WHERE id = 1), $3::bigint) AND {column} = ANY($1::bigint[])
"""
FIND = FIND_ARMS + "ORDER BY 1\n"
# One document's entries and the newest published checkpoint (storage.DocumentRead): a lookup's two reads in one.
FIND_DOCUMENT = (
    FIND_ARMS.format(table="document_lookup", column="document_key") + f"UNION ALL\n{PUBLISHED_ROW}\nORDER BY 1\n"
)
FIND_MERGED = (  # the lookup table alone, for the sequencer, which knows the tail itself (storage contract 6)
    "SELECT l.idx, l.data FROM leaf_lookup k JOIN leaves l ON l.idx = k.idx WHERE k.key = ANY($1::bigint[]) ORDER BY 1"
)
SCHEMA_LOCK = 0x746C6F67_00000001  # advisory lock keys ("tlog"): one for schema creation, one for the lease
LEASE_LOCK = 0x746C6F67_00000002
LOST_CONNECTION = (  # a pooled connection that PostgreSQL dropped: worth one retry of a read
    asyncpg.PostgresConnectionError,
    asyncpg.AdminShutdownError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
)
# Every read here is a point read or a short range: a parallel plan only adds the start of worker processes. At
# 10^6 entries the tail branch of the lookups (`idx >= merged`, a value the generic plan cannot see) was planned as
# a parallel index scan, two workers per proof (35-48 ms each); at 10^7 that estimate put the plan's cost above
# jit_above_cost, and every proof was compiled to machine code first (33 ms). Both off (tests/test_leafproof.py).
SETTINGS = {"synchronous_commit": "on", "max_parallel_workers_per_gather": "0", "jit": "off"}
# A bulk statement's timeout grows by this per row (`bulk_timeout`): about ten times what a row of a status index
# commit cost on a loaded 2-core machine, where a commit of a step at 10^6 outran the pool's 10 s.
ROW_SECONDS = 100e-6


def bulk_timeout(timeout: float, rows: int) -> float:
    """The timeout of a statement over `rows` rows: the pool's `timeout`, which catches a database gone or hung, and
    ROW_SECONDS per row on top. A statement off the commit path that outruns a fixed timeout is undone and done
    again from the start: the status index's commit of a step at 10^6 (docs/status-proofs.md §11, "Seventeenth
    round"), a lookup merge of 500,000 leaves at 3·10^7 (BENCHMARKS.md "Thirty-sixth round")."""
    return timeout + rows * ROW_SECONDS


# What every proof reads (leafproof.POSTGRES): the lookup's index, the hashes' index and rows (warm_reads).
# (what, enable_seqscan, statement): with pg_prewarm each relation's blocks in order; without, the same by scans.
PREWARMED = tuple((r, "on", f"SELECT pg_prewarm('{r}', 'read')") for r in ("leaf_lookup_pkey", "hashes_pkey", "hashes"))
SCANNED = (
    ("leaf_lookup_pkey", "off", "SELECT count(*) FROM leaf_lookup"),  # an index-only scan: the index's pages
    ("hashes_pkey", "off", "SELECT count(*) FROM hashes"),
    ("hashes", "on", "SELECT count(*) FROM hashes"),  # a sequential scan: the rows
)
# Everything a lost connection or a dead server raises (InternalClientError: a connection killed mid-operation).
DB_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError, OSError, asyncio.TimeoutError)


async def migrate_lookups(conn: asyncpg.Connection, timeout: float) -> None:
    """A database from before issue 20: fill the lookup tables from the leaves and drop the old indexes, in the
    schema transaction (a crash leaves the old schema, migrated again on the next start). Its merge gets time by
    its rows (`bulk_timeout`): with the pool's alone, a large log would fail every start the same way."""
    old = await conn.fetchval(
        "SELECT count(*) FROM pg_indexes WHERE schemaname = current_schema() AND indexname = ANY($1::text[])",
        OLD_INDEXES,
    )
    if not old:
        return
    end = await conn.fetchval("SELECT coalesce(max(idx) + 1, 0) FROM leaves")
    for statement in MERGE:
        await conn.execute(statement, 0, end, timeout=bulk_timeout(timeout, end))
    for index in OLD_INDEXES:
        await conn.execute(f"DROP INDEX IF EXISTS {index}")


async def _released(conn: asyncpg.Connection) -> None:
    """What a pooled connection needs when it goes back to the pool: nothing beyond what asyncpg always does (an
    open transaction rolled back, listeners dropped). asyncpg's default reset query (advisory locks, cursors,
    LISTEN, RESET ALL) was a second round trip after every read, a proof's included: none of them is left here
    (transactions are closed by their context managers, locks are transaction-scoped or on the lease's own
    connection, `_read_until` puts its settings back, nothing listens). Measured at 1.2*10^7: ~280 us of the
    client's CPU per proof, ~75 us of it the statement's own fetch (docs/performance.md, fifth round)."""


async def _has_pg_prewarm(conn: asyncpg.Connection) -> bool:
    """pg_prewarm reads a relation's blocks in file order: an index filled by random keys is read sequentially,
    which its own scan in key order is not (measured cold at 1.2*10^7 leaves: the index-only scans did not finish
    in 10 s). Made here when the database lacks it and the role may (a superuser, or the database's owner once
    an administrator marks it trusted); else the scans."""
    find = "SELECT count(*) FROM pg_extension WHERE extname = 'pg_prewarm'"
    if await conn.fetchval(find):
        return True
    with contextlib.suppress(asyncpg.PostgresError):  # not allowed, not installed, or made by a sibling meanwhile
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
    return bool(await conn.fetchval(find))


async def _read_until(conn: asyncpg.Connection, sql: str, seqscan: str, seconds: float, timeout: float) -> bool:
    """Run `sql` for at most `seconds` (the server cancels it); False if cancelled. The settings are put back."""
    await conn.execute(f"SET statement_timeout = {max(1, int(seconds * 1000))}; SET enable_seqscan = {seqscan}")
    try:
        await conn.fetchval(sql, timeout=timeout)  # the server's statement_timeout stops it first
        return True
    except asyncpg.QueryCanceledError:
        return False
    finally:
        await conn.execute("RESET statement_timeout; RESET enable_seqscan")


class PostgresStorage:
    def __init__(self, pool: asyncpg.Pool, dsn: str, timeout: float, readers: int = 0) -> None:
        self._pool = pool
        self._readers = Readers(pool, readers, timeout, DB_ERRORS)  # pooled connections kept for reads (pgreaders)
        self._dsn = dsn
        self._timeout = timeout
        self._lease_conn: asyncpg.Connection | None = None
        self._lease_held = False
        self.known = leafproof.KnownHashes()  # the tree's upper stored hashes, for leaf_inclusion (leafproof.py)

    @classmethod
    async def open(cls, dsn: str, pool_size: int = 10, timeout: float = 10.0) -> "PostgresStorage":
        """Connect (a pool of at most `pool_size` connections) and create the schema if missing.

        `timeout` bounds connecting and each statement, so a dead database fails a call instead of hanging it."""
        try:
            pool = await asyncpg.create_pool(
                dsn,
                min_size=1,
                max_size=pool_size,
                timeout=timeout,
                command_timeout=timeout,
                server_settings=SETTINGS,
                reset=_released,
            )
        except (*DB_ERRORS, ValueError) as exc:
            raise StorageError(f"cannot connect to PostgreSQL: {failure_text(exc)}") from exc
        storage = cls(pool, dsn, timeout, readers=pool_size // 2)
        try:
            async with storage._conn() as conn, conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", SCHEMA_LOCK)  # servers starting together
                await conn.execute(SCHEMA)
                await migrate_lookups(conn, timeout)
                advice = wal_size_advice(await conn.fetchval(MAX_WAL_SIZE))
        except BaseException:
            await pool.close()
            raise
        if advice:
            log.warning("%s", advice)
        return storage

    @contextlib.asynccontextmanager
    async def _conn(self) -> AsyncIterator[asyncpg.Connection]:
        try:
            async with self._pool.acquire(timeout=self._timeout) as conn:
                yield conn
        except DB_ERRORS as exc:
            raise StorageError(f"PostgreSQL: {failure_text(exc)}") from exc

    async def close(self) -> None:
        if self._lease_conn is not None:
            with contextlib.suppress(*DB_ERRORS):
                await self._lease_conn.close(timeout=2)
            self._lease_conn = None
        await self._readers.close()
        await self._pool.close()

    async def _fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        """A read; retried once on another connection if its pooled one had been dropped (the pool cannot tell
        before using it, e.g. after a PostgreSQL restart). Reads are idempotent; writes are never retried."""
        for attempt in (1, 2):
            try:
                if self._readers.limit <= 0:  # a pool of one, or closing: nothing kept
                    async with self._conn() as pooled:
                        return await pooled.fetch(sql, *args)  # type: ignore[no-any-return]
                try:
                    return await self._readers.fetch(sql, args)
                except DB_ERRORS as exc:
                    raise StorageError(f"PostgreSQL: {failure_text(exc)}") from exc
            except StorageError as exc:
                if attempt == 2 or not isinstance(exc.__cause__, LOST_CONNECTION):
                    raise
                await self._readers.drop()  # its siblings were most likely dropped too
                await self._pool.expire_connections()
        raise AssertionError("unreachable")

    async def head(self) -> Head | None:
        rows = await self._fetch(
            "SELECT h.size, h.root, c.note FROM head h JOIN checkpoints c ON c.size = h.size WHERE h.id = 1"
        )
        return Head(rows[0][0], bytes(rows[0][1]), bytes(rows[0][2])) if rows else None

    async def commit_batch(
        self,
        old: Head | None,
        new: Head,
        entries: Sequence[EntryRecord],
        first_hash: int,
        hashes: Sequence[bytes],
        publish: bool,
    ) -> None:
        old_size = old.size if old else 0
        try:
            async with self._conn() as conn, conn.transaction():
                if old is None:
                    status = await conn.execute(
                        "INSERT INTO head (id, size, root) VALUES (1, $1, $2) ON CONFLICT DO NOTHING",
                        new.size,
                        new.root,
                    )
                else:
                    status = await conn.execute(
                        "UPDATE head SET size = $1, root = $2 WHERE id = 1 AND size = $3 AND root = $4",
                        new.size,
                        new.root,
                        old.size,
                        old.root,
                    )
                if not status.endswith(" 1"):  # "UPDATE 1" / "INSERT 0 1": exactly one row
                    raise HeadMovedError(f"the head moved from size {old_size}: another sequencer wrote to this log")
                if entries:
                    await conn.copy_records_to_table(
                        "leaves",
                        columns=("idx", "data", "leaf_key", "document_key", "registry"),
                        records=lookup_rows(old_size, entries),
                    )
                if hashes:
                    await conn.copy_records_to_table(
                        "hashes", columns=("id", "hash"), records=[(first_hash + i, h) for i, h in enumerate(hashes)]
                    )
                await conn.execute(
                    "INSERT INTO checkpoints (size, root, note, published) VALUES ($1, $2, $3, $4)",
                    new.size,
                    new.root,
                    new.checkpoint,
                    new.checkpoint if publish else None,
                )
        except StorageError as exc:
            if isinstance(exc, HeadMovedError):
                raise
            raise StorageError(f"commit failed, nothing was acknowledged: {failure_text(exc)}") from exc

    async def get_hashes(self, indexes: Sequence[int]) -> list[bytes]:
        rows = await self._fetch("SELECT id, hash FROM hashes WHERE id = ANY($1::bigint[])", sorted(set(indexes)))
        found = {row[0]: bytes(row[1]) for row in rows}
        return [found[i] for i in indexes]

    async def get_entries(self, start: int, end: int) -> list[bytes]:
        rows = await self._fetch("SELECT data FROM leaves WHERE idx >= $1 AND idx < $2 ORDER BY idx", start, end)
        if len(rows) != end - start:
            raise KeyError(f"entries [{start}, {end}) are not all stored")
        return [bytes(row[0]) for row in rows]

    async def find_leaves(self, leaf_hashes: Sequence[bytes]) -> dict[bytes, int]:
        return await self._find(FIND.format(table="leaf_lookup", column="leaf_key"), leaf_hashes, [], 0)

    async def find_merged(self, leaf_hashes: Sequence[bytes]) -> dict[bytes, int]:
        return await self._find(FIND_MERGED, leaf_hashes)

    async def lookup_watermark(self) -> int:
        rows = await self._fetch("SELECT merged FROM lookup_state WHERE id = 1")
        return int(rows[0][0]) if rows else 0

    async def _find(self, sql: str, leaf_hashes: Sequence[bytes], *more: Any) -> dict[bytes, int]:
        """The rows `sql` finds by key (in index order), confirmed against the full hash; the first index of each."""
        wanted = set(leaf_hashes)
        if not wanted:
            return {}
        rows = await self._fetch(sql, sorted(set(hash_keys(wanted))), *more)
        found: dict[bytes, int] = {}
        for index, data in rows:
            digest = leaf_hash(bytes(data))
            if digest in wanted:
                found.setdefault(digest, index)
        return found

    async def document_read(self, document: bytes, tail: TailHint = NO_TAIL) -> DocumentRead:
        rows = await self._fetch(FIND_DOCUMENT, hash_keys([document]), list(tail.indexes), tail.scan_from)
        return document_read(document, [(row[0], bytes(row[1])) for row in rows])

    async def documents_entries(
        self, documents: Sequence[bytes], tail: TailHint = NO_TAIL
    ) -> dict[bytes, list[StoredEntry]]:
        keys = sorted(set(hash_keys(documents)))
        sql = FIND.format(table="document_lookup", column="document_key")
        rows = await self._fetch(sql, keys, list(tail.indexes), tail.scan_from)
        return by_document(documents, [(row[0], bytes(row[1])) for row in rows])

    async def lookup_keys(self, start: int, end: int) -> list[tuple[int, int | None]]:
        rows = await self._fetch(
            "SELECT leaf_key, document_key FROM leaves WHERE idx >= $1 AND idx < $2 ORDER BY idx", start, end
        )
        return [(row[0], row[1]) for row in rows]

    async def merge_lookups(self, limit: int) -> int:
        """Move up to `limit` leaves past the watermark into the lookup tables; how many it moved. Without
        waiting for the WAL flush (synchronous_commit off): a merge lost in a crash is redone, never half kept."""
        async with self._conn() as conn, conn.transaction():
            await conn.execute("SET LOCAL synchronous_commit = off")
            row = await conn.fetchrow(
                "SELECT merged, (SELECT coalesce(max(idx) + 1, 0) FROM leaves) FROM lookup_state WHERE id = 1"
                " FOR UPDATE"
            )
            merged, stored = (int(row[0]), int(row[1])) if row else (0, 0)
            end = min(stored, merged + limit)
            if end > merged:
                for statement in MERGE:
                    await conn.execute(statement, merged, end, timeout=bulk_timeout(self._timeout, end - merged))
        return end - merged

    async def registry_entries(self, start: int = 0) -> list[StoredEntry]:
        rows = await self._fetch("SELECT idx, data FROM leaves WHERE registry AND idx >= $1 ORDER BY idx", start)
        return [StoredEntry(row[0], bytes(row[1])) for row in rows]

    async def checkpoint_at(self, size: int) -> bytes | None:
        rows = await self._fetch("SELECT coalesce(published, note) FROM checkpoints WHERE size = $1", size)
        return bytes(rows[0][0]) if rows else None

    async def set_cosigned(self, size: int, note: bytes) -> None:
        async with self._conn() as conn:
            await conn.execute("UPDATE checkpoints SET published = $1 WHERE size = $2", note, size)

    async def latest_published(self) -> bytes | None:
        rows = await self._fetch(NEWEST_PUBLISHED)
        return bytes(rows[0][0]) if rows else None

    async def identity(self) -> LogIdentity | None:
        rows = await self._fetch("SELECT origin, log_vkey, registry_vkey FROM identity WHERE id = 1")
        return LogIdentity(rows[0][0], rows[0][1], rows[0][2]) if rows else None

    async def record_identity(self, identity: LogIdentity) -> None:
        async with self._conn() as conn:
            await conn.execute(
                "INSERT INTO identity (id, origin, log_vkey, registry_vkey) VALUES (1, $1, $2, $3)"
                " ON CONFLICT DO NOTHING",
                identity.origin,
                identity.log_vkey,
                identity.registry_vkey,
            )
        stored = await self.identity()
        if stored != identity:
            raise IdentityError(f"the database already belongs to log {stored.origin if stored else '?'!r}")

    async def is_empty(self) -> bool:
        rows = await self._fetch(
            "SELECT EXISTS (SELECT 1 FROM leaves) OR EXISTS (SELECT 1 FROM hashes)"
            " OR EXISTS (SELECT 1 FROM checkpoints) OR EXISTS (SELECT 1 FROM head)"
        )
        return not rows[0][0]

    async def checkpoint_sizes(self, after: int, limit: int) -> list[int]:
        rows = await self._fetch("SELECT size FROM checkpoints WHERE size > $1 ORDER BY size LIMIT $2", after, limit)
        return [int(row[0]) for row in rows]

    async def acquire_lease(self, owner: str, now: float, ttl: float) -> str | None:
        """Hold the advisory lock on the dedicated connection; `now` and `ttl` are not needed (see module doc)."""
        try:
            if self._lease_held and self._lease_conn is not None:
                try:
                    await self._lease_conn.fetchval("SELECT 1", timeout=self._timeout)
                    return None  # the session is alive, so the lock is still ours
                except DB_ERRORS:
                    await self._drop_lease_conn()  # the lock went with the session: try again below
            if self._lease_conn is None or self._lease_conn.is_closed():
                self._lease_conn = await asyncpg.connect(
                    self._dsn, timeout=self._timeout, command_timeout=self._timeout, server_settings=SETTINGS
                )
            conn = self._lease_conn
            if await conn.fetchval("SELECT pg_try_advisory_lock($1)", LEASE_LOCK):
                await conn.execute(
                    "INSERT INTO lease (id, owner) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET owner = $1", owner
                )
                self._lease_held = True
                return None
            holder: str | None = await conn.fetchval("SELECT owner FROM lease WHERE id = 1")
            return holder or "another process"
        except DB_ERRORS as exc:
            await self._drop_lease_conn()
            raise StorageError(f"sequencer lease: {failure_text(exc)}") from exc

    async def _drop_lease_conn(self) -> None:
        self._lease_held = False
        if self._lease_conn is not None:
            self._lease_conn.terminate()
            self._lease_conn = None

    # SharedQueue (logserver/storage.py): submissions a standby accepted, waiting for the sequencer.

    async def enqueue(self, entries: Sequence[tuple[bytes, bytes]]) -> None:
        async with self._conn() as conn:
            await conn.execute(
                "INSERT INTO pending (leaf_hash, data) SELECT * FROM unnest($1::bytea[], $2::bytea[])"
                " ON CONFLICT (leaf_hash) DO NOTHING",
                [h for h, _ in entries],
                [d for _, d in entries],
            )

    async def queued(self, limit: int) -> list[bytes]:
        rows = await self._fetch("SELECT data FROM pending WHERE error IS NULL ORDER BY seq LIMIT $1", limit)
        return [bytes(row[0]) for row in rows]

    async def dequeue(self, leaf_hashes: Sequence[bytes]) -> None:
        async with self._conn() as conn:
            await conn.execute("DELETE FROM pending WHERE leaf_hash = ANY($1::bytea[])", list(leaf_hashes))

    async def refuse_queued(self, refusals: dict[bytes, str]) -> None:
        async with self._conn() as conn:
            await conn.execute(
                "UPDATE pending p SET error = r.error FROM unnest($1::bytea[], $2::text[]) AS r(leaf_hash, error)"
                " WHERE p.leaf_hash = r.leaf_hash",
                list(refusals),
                list(refusals.values()),
            )

    async def queue_refusals(self, leaf_hashes: Sequence[bytes]) -> dict[bytes, str]:
        async with self._conn() as conn:
            rows = await conn.fetch(
                "DELETE FROM pending WHERE leaf_hash = ANY($1::bytea[]) AND error IS NOT NULL"
                " RETURNING leaf_hash, error",
                list(leaf_hashes),
            )
        return {bytes(row[0]): str(row[1]) for row in rows}

    # --- reads added for issue 20's proofs by leaf hash (logserver/leafproof.py) ---

    async def inclusion_proof(self, index: int, size: int) -> tuple[bytes, ...]:
        return await leafproof.kept_inclusion_proof(index, size, self.known, self.get_hashes)

    async def leaf_inclusion(self, leaf_hash: bytes, size: int | None, tail: TailHint = NO_TAIL) -> leafproof.LeafProof:
        """The head, the index of `leaf_hash` and its inclusion proof in the tree of `size` (None: the head), in
        one statement: one round trip, one snapshot (leafproof.py)."""
        known = self.known
        known.bound()
        rows = await self._fetch(leafproof.POSTGRES, hash_key(leaf_hash), size, list(tail.indexes), tail.scan_from)
        needed = leafproof.unread(rows, leaf_hash, known)
        if needed is not None:  # upper hashes not kept yet: by key (stored hashes never change: contract 3)
            index, ids = needed
            more = await self._fetch("SELECT id, hash FROM hashes WHERE id = ANY($1::bigint[])", ids)
            rows = [*rows, *((None, None, index, row[0], bytes(row[1])) for row in more)]
        return leafproof.assemble(rows, leaf_hash, known)

    async def warm_reads(self, seconds: float) -> warmup.WarmReport:
        """The relations every proof reads, read whole into the page cache (logserver/warmup.py): by the pg_prewarm
        extension (made if the role may: it ships with PostgreSQL), else by scans (the indexes by index-only scans,
        the rows in order); each statement stopped at the deadline by the server (statement_timeout)."""
        started, read = time.monotonic(), []
        async with self._conn() as conn:
            prewarm = await _has_pg_prewarm(conn)
            for name, seqscan, sql in PREWARMED if prewarm else SCANNED:
                left = started + seconds - time.monotonic()
                if left <= 0 or not await _read_until(conn, sql, seqscan, left, left + self._timeout):
                    break
                read.append(name)
        finished = len(read) == len(PREWARMED if prewarm else SCANNED)
        kept = await self._keep_upper(started + seconds) if finished else 0
        finished = finished and time.monotonic() <= started + seconds
        return warmup.WarmReport(tuple(read), kept, finished, time.monotonic() - started)

    async def _keep_upper(self, deadline: float) -> int:
        """The tree's upper stored hashes into `known`, by key, until the deadline; how many."""
        head = await self.head()
        ids = leafproof.upper_ids(head.size if head else 0)
        kept = 0
        for start in range(0, len(ids), warmup.KEPT_CHUNK):
            if time.monotonic() > deadline:
                break
            chunk = ids[start : start + warmup.KEPT_CHUNK]
            rows = await self._fetch("SELECT id, hash FROM hashes WHERE id = ANY($1::bigint[])", chunk)
            self.known.hashes.update((row[0], bytes(row[1])) for row in rows)
            kept += len(rows)
        return kept
