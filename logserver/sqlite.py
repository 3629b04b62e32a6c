"""SQLite storage (WAL; commits on a writer thread of its own, merges on aiosqlite): the default, needing no setup.

Durability: WAL journal with synchronous=FULL, so a commit is fsync'd before
`commit_batch` returns (storage contract 1). The head update is
`UPDATE head ... WHERE size = ? AND root = ?` inside the same transaction,
checked by row count (contract 2, STYLE.md §8). Writes go through one
connection on its own thread (the fsync happens off the event loop), a whole
commit in one hand-off to that thread: while it runs, the event loop prepares
the next batch (logserver/sequencer.py, issue 20); reads use a plain
read-only connection on the event loop itself: they are point reads of cached
pages taking microseconds, and a thread hop per query cost several times more
(BENCHMARKS.md, log server).

Lookups by leaf hash and by document hash use the first 8 bytes of the hash
(an INTEGER), and confirm the full hash on the rows found. They are kept off
the fsync'd commit (storage contract 6, docs/performance.md): a commit only
appends leaves in index order; `merge_lookups` later copies their keys, in key
order, into the `leaf_lookup` and `document_lookup` tables and moves the
`lookup_state` watermark, in one transaction on its own connection
(synchronous = NORMAL: WAL mode cannot be corrupted by it, and a merge lost to
a power cut is simply redone). The lookup tables live in their own file beside
the log (logserver/sqlite_schema.py), so a merge never holds the write lock a
commit needs. A read looks up the tables below the watermark, reads the tail's
rows the serving process names from memory (logserver/readtail.py), and scans
only the rows past what it holds, in one statement.
The read connection has a large page cache and a memory map for big logs.

The sequencer lease is an exclusive `flock` on `<database>.sequencer.lock`:
the kernel drops it the moment its process dies (even by kill -9), so a
restarted server sequences at once and a second server on the same database
is told who holds it. The compare-and-swap stays the last line of defence.
"""

import asyncio
import contextlib
import fcntl
import itertools
import os
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import aiosqlite
import orjson

from logserver import leafproof, warmup
from logserver.sqlite_schema import MERGE, attach_lookups, create_schema, lookup_path
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
    hash_key,
    hash_keys,
)
from tlogcore.encoding import HASH_SIZE
from tlogcore.merkle import leaf_hash

MERGE_FAILED = "merging the lookup tables failed (they stay correct)"
COMMIT_FAILED = "commit failed, nothing was stored"
T = TypeVar("T")


def in_immediate_transaction(db: sqlite3.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
    """BEGIN IMMEDIATE, `work`, COMMIT, all in the calling thread (a writer's own thread: the write lock is never
    held while waiting for the event loop). A rollback on any failure, unless SQLite has already rolled back (as it
    does after SQLITE_FULL or an I/O error)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        result = work(db)
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    return result


@contextlib.asynccontextmanager
async def immediate_transaction(
    db: aiosqlite.Connection, failed: str, begin: str = "BEGIN IMMEDIATE"
) -> AsyncIterator[aiosqlite.Connection]:
    """BEGIN IMMEDIATE ... COMMIT: on any failure a rollback (unless SQLite has already rolled back, as it does
    after SQLITE_FULL or an I/O error), and an SQLite error becomes one StorageError starting with `failed`.
    A plain BEGIN locks each file only as it writes to it (the merger writes the lookup file alone)."""
    try:
        await db.execute(begin)
        try:
            yield db
            await db.execute("COMMIT")
        except BaseException:
            await _rolled_back(db)
            raise
    except sqlite3.Error as exc:
        raise StorageError(f"{failed}: {exc}") from exc


async def _rolled_back(db: aiosqlite.Connection) -> None:
    """ROLLBACK, unless the transaction has ended. A statement whose await was cancelled still runs on aiosqlite's
    thread: a COMMIT queued there ends the transaction before the ROLLBACK queued behind it, which then finds none.
    That ROLLBACK's error must not replace the cancellation (it did: the merger, cancelled as the sequencer stopped,
    logged a failed merge and ran on, and the sequencer waited for it forever)."""
    if not db.in_transaction:
        return
    try:
        await db.execute("ROLLBACK")
    except sqlite3.OperationalError:
        if db.in_transaction:  # the rollback itself failed: the transaction is still open
            raise


# A batch's node hashes as one blob, cut into rows by SQLite itself: one statement instead of two Python-bound rows
# per leaf (about 3 us per leaf saved, issue 20). Every stored hash is a SHA-256, 32 bytes.
INSERT_HASHES = (
    "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?3)"
    " INSERT INTO hashes (id, hash) SELECT ?1 + i, substr(?2, 32 * i + 1, 32) FROM n"
)
# A batch's leaves in one statement too: their bytes end to end in one blob, and per leaf [offset, length, leaf key,
# document key, registry] in one JSON array, cut into rows by SQLite. executemany bound each row under the GIL, and
# the event loop, preparing the next batch meanwhile (sequencer.py), held the GIL up to 5 ms at each turn (issue 20).
INSERT_LEAVES = (
    "INSERT INTO leaves (idx, data, leaf_key, document_key, registry) SELECT ?1 + key,"
    " substr(?2, json_extract(value, '$[0]') + 1, json_extract(value, '$[1]')), json_extract(value, '$[2]'),"
    " json_extract(value, '$[3]'), json_extract(value, '$[4]') FROM json_each(?3)"
)
READ_CACHE_BYTES = 256 * 1024 * 1024  # the read connection's page cache (SQLite's default is 2 MiB)
READ_MMAP_BYTES = 0x7FFF0000  # memory-mapped reads (the OS page cache, no copy), at the usual build cap of ~2 GiB
# The log file's WAL, started over by the merger once it holds more than this (SQLiteStorage._bound_log_wal), and how
# long that waits for the log's readers, holding the sequencer's next commit back meanwhile (a failed try waits for
# the next merge).
LOG_WAL_BOUND = 64 * 1024 * 1024
WAL_FRAME_HEADER = 24  # bytes before each page in a WAL (sqlite.org/fileformat.html "WAL File Format")
LOG_WAL_WAIT_MS = 100
MERGER_WAIT_MS = 5000
# Every committed leaf is found: through the lookup table below the watermark, by scanning the short tail above it.
# One statement is one snapshot, so a merge committing meanwhile can neither hide nor double an entry. The keys come
# as one JSON array (json_each): the statement text never changes with their number, so it is prepared once and
# cached. A list of 10,000 `?` took SQLite ~0.7 s to prepare, for each new count of keys (issue 20).
# With a tail hint (storage.TailHint, readtail.py): the rows of the indexes held (?2) from the watermark on, and the
# scan only from the end of what the process holds (?3); no hint ('[]', 0) scans the whole tail.
# No temporary table for one key (a lookup's statement, per request): SQLite builds one for `ORDER BY` over the
# compound (no caller needs the order: by_document sorts its rows, _find keeps each key's lowest index) and one for
# `IN (SELECT ... json_each)`, even empty (the held indexes are joined instead). With the CPU's caches emptied
# between statements, as a busy server's other work does, the two were 8-21 of one document's 41-54 µs at 10^7
# (docs/performance.md, "Proofs by leaf hash in one statement"). The first column is k.idx, in the lookup table's
# own order.
FIND = """
SELECT k.idx, l.data FROM lk.{table} k JOIN leaves l ON l.idx = k.idx WHERE k.key {keys}
UNION ALL
SELECT l.idx, l.data FROM json_each(?2) AS held CROSS JOIN leaves l ON l.idx = held.value
    WHERE held.value >= (SELECT merged FROM lk.lookup_state WHERE id = 1)
UNION ALL
SELECT idx, data FROM leaves WHERE idx >= max((SELECT merged FROM lk.lookup_state WHERE id = 1), ?3)
    AND {column} {keys}
"""
KEYS_IN_JSON = "IN (SELECT value FROM json_each(?1))"
FIND_LEAVES = FIND.format(table="leaf_lookup", column="leaf_key", keys=KEYS_IN_JSON)
FIND_MERGED = (  # the lookup table alone, for the sequencer, which knows the tail itself (storage contract 6)
    "SELECT l.idx, l.data FROM lk.leaf_lookup k JOIN leaves l ON l.idx = k.idx"
    " WHERE k.key IN (SELECT value FROM json_each(?1))"
)
FIND_DOCUMENTS = FIND.format(table="document_lookup", column="document_key", keys=KEYS_IN_JSON)
# One document (GET /api/v1/documents/<sha256>): its key bound as it is, without json_each (~13 of ~33 us at 10^7),
# and the newest published checkpoint beside its entries (storage.DocumentRead): the lookup's two reads in one.
FIND_DOCUMENT = FIND.format(table="document_lookup", column="document_key", keys="= ?1") + "UNION ALL\n" + PUBLISHED_ROW


def hash_blob(hashes: Sequence[bytes]) -> bytes:
    """The hashes end to end, for INSERT_HASHES; a hash of another length would shift every row after it."""
    blob = b"".join(hashes)
    if len(blob) != HASH_SIZE * len(hashes):
        raise StorageError("commit refused: a stored hash is not 32 bytes")
    return blob


def leaf_columns(entries: Sequence[EntryRecord]) -> tuple[bytes, str]:
    """The blob and the JSON array INSERT_LEAVES cuts into the `leaves` rows of `entries` (as `lookup_rows`): the
    records taken apart column by column and the rows written by orjson, not one f-string per leaf (1.2 -> 0.7 us
    per leaf, issue 20). A registry flag is written `true`/`false`, which json_extract reads as 1/0."""
    if not entries:
        return b"", "[]"
    datas, hashes, documents, registry = zip(*entries, strict=True)
    prefixes = hash_keys([document or NO_DOCUMENT for document in documents])
    document_keys = [key if document else None for key, document in zip(prefixes, documents, strict=True)]
    offsets = itertools.accumulate(map(len, datas), initial=0)  # one more than the leaves: zip stops at the last
    rows = zip(offsets, map(len, datas), hash_keys(hashes), document_keys, registry, strict=False)
    return b"".join(datas), orjson.dumps(list(rows)).decode()


NO_DOCUMENT = bytes(HASH_SIZE)  # a stand-in key for leaves that name no document (their key is written null)


def json_ints(values: Iterable[int]) -> str:
    """Integers as one JSON array, for json_each (a tail hint's indexes: almost always none or one)."""
    return "[" + ",".join(map(str, values)) + "]"


def json_keys(digests: Iterable[bytes]) -> str:
    """The distinct lookup keys of `digests` as one JSON array of integers, for FIND's json_each."""
    return "[" + ",".join(map(str, set(hash_keys(digests)))) + "]"


def commit_rows(
    db: sqlite3.Connection,
    old: Head | None,
    new: Head,
    leaves: tuple[bytes, str],
    first_hash: int,
    blob: bytes,
    publish: bool,
) -> None:
    """One commit on the writer's thread: the compare-and-swap on the head, leaves, node hashes, the checkpoint.
    One hand-off from the event loop for all of it (six awaited statements cost six thread switches)."""

    def write(db: sqlite3.Connection) -> None:
        if old is None:
            cursor = db.execute(
                "INSERT INTO head (id, size, root) VALUES (1, ?, ?) ON CONFLICT DO NOTHING", (new.size, new.root)
            )
        else:
            cursor = db.execute(
                "UPDATE head SET size = ?, root = ? WHERE id = 1 AND size = ? AND root = ?",
                (new.size, new.root, old.size, old.root),
            )
        if cursor.rowcount != 1:
            raise HeadMovedError(
                f"the head moved from size {old.size if old else 0}: another sequencer wrote to this log"
            )
        if leaves[0]:
            db.execute(INSERT_LEAVES, (old.size if old else 0, *leaves))
        if blob:
            db.execute(INSERT_HASHES, (first_hash, blob, len(blob) // HASH_SIZE))
        db.execute(
            "INSERT INTO checkpoints (size, root, note, published) VALUES (?, ?, ?, ?)",
            (new.size, new.root, new.checkpoint, new.checkpoint if publish else None),
        )

    in_immediate_transaction(db, write)


# The ids as one JSON array, joined: a rowid seek each. `WHERE id IN (?, ?, ...)` built the list into an ephemeral
# index first, and was one statement text per count (docs/performance.md, "Proofs by leaf hash in one statement").
SELECT_HASHES = "SELECT h.id, h.hash FROM json_each(?) AS ids CROSS JOIN hashes h ON h.id = ids.value"


class SQLiteStorage:
    def __init__(self, writer: sqlite3.Connection, reader: sqlite3.Connection, lock_path: Path) -> None:
        self._writer = writer  # used on _write_thread only
        self._write_thread = ThreadPoolExecutor(1, thread_name_prefix="log-db-write")
        self._reader = reader
        self._lock_path = lock_path
        self._lock_fd: int | None = None
        self._merger: aiosqlite.Connection | None = None  # opened by the first merge_lookups
        self._log_frame_bytes = 0  # a frame of the log file's WAL (its page and header), read with the merger's open
        self.known = leafproof.KnownHashes()  # stored hashes of the tree's upper nodes, for leaf_inclusion
        self._known_function: leafproof.KnownHashes | None = None

    @classmethod
    async def open(
        cls,
        path: Path,
        busy_timeout_ms: int = 5000,
        read_cache_bytes: int = READ_CACHE_BYTES,
        read_mmap_bytes: int = READ_MMAP_BYTES,
    ) -> "SQLiteStorage":
        """Open (creating or migrating the schema). The read connection's page cache and memory map matter at
        10^7 entries, where the lookup tables and hashes outgrow SQLite's 2 MiB default (issue 20)."""
        try:
            create_schema(path)  # also fails cleanly here: a failed aiosqlite.connect leaks its thread
            writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            writer.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            writer.execute("PRAGMA synchronous = FULL")
            reader = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            attach_lookups(reader, path)
            reader.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            reader.execute("PRAGMA query_only = 1")
            for schema in ("main", "lk"):  # a cache per file: unnamed, cache_size set log.db's alone (lk kept 2 MiB)
                reader.execute(f"PRAGMA {schema}.cache_size = {-max(0, int(read_cache_bytes)) // 1024}")  # KiB
                reader.execute(f"PRAGMA {schema}.mmap_size = {max(0, int(read_mmap_bytes))}")
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open the SQLite database {path}: {exc}") from exc
        return cls(writer, reader, path.with_name(path.name + ".sequencer.lock"))

    @property
    def _db_name(self) -> str:
        return self._lock_path.name.removesuffix(".sequencer.lock")

    async def close(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None
        self._reader.close()
        if self._merger is not None:
            await self._merger.close()
        await asyncio.get_running_loop().run_in_executor(self._write_thread, self._writer.close)
        self._write_thread.shutdown()

    async def _write(self, work: Callable[[], T], failed: str) -> T:
        """`work` on the writer's thread; an SQLite error becomes one StorageError starting with `failed`."""
        try:
            return await asyncio.get_running_loop().run_in_executor(self._write_thread, work)
        except sqlite3.Error as exc:
            raise StorageError(f"{failed}: {exc}") from exc

    async def head(self) -> Head | None:
        rows = await self._read(
            "SELECT h.size, h.root, c.note FROM head h JOIN checkpoints c ON c.size = h.size WHERE h.id = 1", ()
        )
        return Head(rows[0][0], rows[0][1], rows[0][2]) if rows else None

    async def commit_batch(
        self,
        old: Head | None,
        new: Head,
        entries: Sequence[EntryRecord],
        first_hash: int,
        hashes: Sequence[bytes],
        publish: bool,
    ) -> None:
        leaves = leaf_columns(entries)
        blob = hash_blob(hashes)
        await self._write(lambda: commit_rows(self._writer, old, new, leaves, first_hash, blob, publish), COMMIT_FAILED)

    async def _read(self, sql: str, params: Sequence[object]) -> list[sqlite3.Row]:
        try:
            return self._reader.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StorageError(f"read failed: {exc}") from exc

    async def get_hashes(self, indexes: Sequence[int]) -> list[bytes]:
        unique = sorted(set(indexes))  # in key order: the seeks go forward through the table
        found = {row[0]: row[1] for row in await self._read(SELECT_HASHES, (json_ints(unique),))}
        return [found[i] for i in indexes]

    async def get_entries(self, start: int, end: int) -> list[bytes]:
        rows = await self._read("SELECT data FROM leaves WHERE idx >= ? AND idx < ? ORDER BY idx", (start, end))
        if len(rows) != end - start:
            raise KeyError(f"entries [{start}, {end}) are not all stored")
        return [row[0] for row in rows]

    async def find_leaves(self, leaf_hashes: Sequence[bytes]) -> dict[bytes, int]:
        return await self._find(FIND_LEAVES, leaf_hashes)

    async def find_merged(self, leaf_hashes: Sequence[bytes]) -> dict[bytes, int]:
        return await self._find(FIND_MERGED, leaf_hashes)

    async def lookup_watermark(self) -> int:
        rows = await self._read("SELECT merged FROM lk.lookup_state WHERE id = 1", ())
        return int(rows[0][0]) if rows else 0

    async def _find(self, sql: str, leaf_hashes: Sequence[bytes]) -> dict[bytes, int]:
        """The rows `sql` finds by key, confirmed against the full hash; the first index of each."""
        wanted = set(leaf_hashes)
        found: dict[bytes, int] = {}
        if not wanted:
            return found
        params = (json_keys(wanted),) if sql is FIND_MERGED else (json_keys(wanted), "[]", 0)
        for index, data in await self._read(sql, params):
            digest = leaf_hash(data)
            if digest in wanted:
                found[digest] = min(index, found.get(digest, index))
        return found

    async def document_read(self, document: bytes, tail: TailHint = NO_TAIL) -> DocumentRead:
        rows = await self._read(FIND_DOCUMENT, (hash_keys([document])[0], json_ints(tail.indexes), tail.scan_from))
        return document_read(document, [(row[0], row[1]) for row in rows])

    async def documents_entries(
        self, documents: Sequence[bytes], tail: TailHint = NO_TAIL
    ) -> dict[bytes, list[StoredEntry]]:
        if not documents:
            return {}
        rows = await self._read(FIND_DOCUMENTS, (json_keys(documents), json_ints(tail.indexes), tail.scan_from))
        return by_document(documents, [(row[0], row[1]) for row in rows])

    async def lookup_keys(self, start: int, end: int) -> list[tuple[int, int | None]]:
        rows = await self._read(
            "SELECT leaf_key, document_key FROM leaves WHERE idx >= ? AND idx < ? ORDER BY idx", (start, end)
        )
        return [(row[0], row[1]) for row in rows]

    async def merge_lookups(self, limit: int) -> int:
        """Move up to `limit` leaves past the watermark into the lookup tables; how many it moved. On its own
        connection with synchronous = NORMAL: never corrupt (WAL), and a merge lost in a power cut is redone."""
        try:
            if self._merger is None:
                path = self._lock_path.with_name(self._db_name)
                self._merger = await aiosqlite.connect(path, isolation_level=None)
                await self._merger.execute(f"PRAGMA busy_timeout = {MERGER_WAIT_MS}")
                await self._merger.execute("ATTACH DATABASE ? AS lk", (str(lookup_path(path)),))
                await self._merger.execute("PRAGMA lk.synchronous = NORMAL")
                # The merge reads every page of the lookup tables it writes: mapped, as the reader's, no copy per read
                # (a merge of 500,000 keys at 1.3*10^7: 4.5-4.7 us CPU per key against 4.8-4.9, wall 4.5-6.3 / 6.6-7.5)
                mapped = int(self._reader.execute("PRAGMA lk.mmap_size").fetchone()[0])
                await self._merger.execute(f"PRAGMA lk.mmap_size = {mapped}")
                await self._merger.execute("PRAGMA wal_autocheckpoint = 0")
                off = "PRAGMA wal_autocheckpoint = 0"  # the merger checkpoints from now on
                await self._write(lambda: self._writer.execute(off), MERGE_FAILED)
                page_size = int(self._reader.execute("PRAGMA main.page_size").fetchone()[0])
                self._log_frame_bytes = WAL_FRAME_HEADER + page_size  # fixed for the file's life (WAL mode)
            db = self._merger
            if not await self.merge_pending():
                return 0  # idle: no write lock taken
            async with immediate_transaction(db, MERGE_FAILED, begin="BEGIN"):  # log.db is only read: no lock
                async with db.execute(
                    "SELECT merged, (SELECT coalesce(max(idx) + 1, 0) FROM leaves) FROM lk.lookup_state WHERE id = 1"
                ) as cursor:
                    merged, stored = await cursor.fetchone() or (0, 0)
                end = min(stored, merged + limit)
                if end > merged:
                    for statement in MERGE:
                        await db.execute(statement, (merged, end))
            # The WALs copied into their databases here, beside the commits rather than inside one of them (SQLite's
            # automatic checkpoint runs in whichever commit crosses 1,000 pages). PASSIVE: no lock, no waiting (the
            # log's WAL started over only past its bound, _bound_log_wal).
            # Both files: automatic checkpoints are off for every database this connection holds, and the lookup
            # file's WAL, never checkpointed, grew by every merge (3.1 GB at 1.9 million entries). RESTART waits for
            # the lookup file's readers to leave it, so the next merge writes from the WAL's start, over the blocks
            # the file already has (tests/test_sqlite_lookup_file.py). Not TRUNCATE: emptied, the WAL gave its blocks
            # back and each merge allocated them again, 0.56 GB at 10^7 entries, where ext4's write_begin for new
            # blocks took 17 % of the appending process (BENCHMARKS.md "Fifty-second round"; as statuswal.py found).
            async with db.execute("PRAGMA main.wal_checkpoint(PASSIVE)") as cursor:
                _, log_frames, _ = await cursor.fetchone() or (0, 0, 0)
            await db.execute("PRAGMA lk.wal_checkpoint(RESTART)")
            await self._bound_log_wal(db, log_frames)
        except sqlite3.Error as exc:
            raise StorageError(f"{MERGE_FAILED}: {exc}") from exc
        return int(end - merged)

    async def _bound_log_wal(self, db: aiosqlite.Connection, frames: int) -> None:
        """Start the log file's WAL over once its `frames` (pages written since it last started) outgrow
        LOG_WAL_BOUND. PASSIVE copies it into the file but never starts it over while a reader is inside it, and
        under a steady load one always is (the indexer, proofs, tiles): it grew by every commit, 646 MB in a 120 s
        run at 10,000 entries/s (docs/operating.md "Disk"). RESTART waits for those readers, holding new writers
        back, so it is tried seldom and waits briefly: left busy, the next merge tries again. Once it succeeds the
        next commit writes from the WAL's start, over the file's blocks (not TRUNCATE, as in merge_lookups)."""
        if frames * self._log_frame_bytes <= LOG_WAL_BOUND:  # what it holds, not its file's size
            return
        await db.execute(f"PRAGMA busy_timeout = {LOG_WAL_WAIT_MS}")
        try:
            await db.execute("PRAGMA main.wal_checkpoint(RESTART)")
        finally:
            await db.execute(f"PRAGMA busy_timeout = {MERGER_WAIT_MS}")

    async def merge_pending(self) -> bool:
        """Whether committed leaves wait for `merge_lookups` (False: the merger has nothing to write)."""
        rows = await self._read(
            "SELECT merged < (SELECT coalesce(max(idx) + 1, 0) FROM leaves) FROM lk.lookup_state WHERE id = 1", ()
        )
        return bool(rows and rows[0][0])

    async def registry_entries(self, start: int = 0) -> list[StoredEntry]:
        rows = await self._read("SELECT idx, data FROM leaves WHERE registry = 1 AND idx >= ? ORDER BY idx", (start,))
        return [StoredEntry(row[0], row[1]) for row in rows]

    async def checkpoint_at(self, size: int) -> bytes | None:
        rows = await self._read("SELECT coalesce(published, note) FROM checkpoints WHERE size = ?", (size,))
        return rows[0][0] if rows else None

    async def set_cosigned(self, size: int, note: bytes) -> None:
        sql = "UPDATE checkpoints SET published = ? WHERE size = ?"
        await self._write(lambda: self._writer.execute(sql, (note, size)), "cannot record cosignatures")

    async def latest_published(self) -> bytes | None:
        rows = await self._read(NEWEST_PUBLISHED, ())
        return rows[0][0] if rows else None

    async def identity(self) -> LogIdentity | None:
        rows = await self._read("SELECT origin, log_vkey, registry_vkey FROM identity WHERE id = 1", ())
        return LogIdentity(rows[0][0], rows[0][1], rows[0][2]) if rows else None

    async def record_identity(self, identity: LogIdentity) -> None:
        sql = "INSERT INTO identity (id, origin, log_vkey, registry_vkey) VALUES (1, ?, ?, ?) ON CONFLICT DO NOTHING"
        values = (identity.origin, identity.log_vkey, identity.registry_vkey)
        await self._write(lambda: self._writer.execute(sql, values), "cannot record the log's identity")
        stored = await self.identity()
        if stored != identity:
            raise IdentityError(f"the database already belongs to log {stored.origin if stored else '?'!r}")

    async def is_empty(self) -> bool:
        rows = await self._read(
            "SELECT EXISTS (SELECT 1 FROM leaves) OR EXISTS (SELECT 1 FROM hashes)"
            " OR EXISTS (SELECT 1 FROM checkpoints) OR EXISTS (SELECT 1 FROM head)",
            (),
        )
        return not rows[0][0]

    async def checkpoint_sizes(self, after: int, limit: int) -> list[int]:
        rows = await self._read("SELECT size FROM checkpoints WHERE size > ? ORDER BY size LIMIT ?", (after, limit))
        return [row[0] for row in rows]

    async def acquire_lease(self, owner: str, now: float, ttl: float) -> str | None:
        if self._lock_fd is not None:
            return None
        try:
            fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StorageError(f"cannot open the sequencer lock {self._lock_path}: {exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            return holder
        os.ftruncate(fd, 0)
        os.pwrite(fd, owner.encode(), 0)
        self._lock_fd = fd
        return None

    # --- reads added for issue 20's proofs by leaf hash (logserver/leafproof.py) ---

    async def inclusion_proof(self, index: int, size: int) -> tuple[bytes, ...]:
        return await leafproof.kept_inclusion_proof(index, size, self.known, self.get_hashes)

    async def leaf_inclusion(self, leaf_hash: bytes, size: int | None, tail: TailHint = NO_TAIL) -> leafproof.LeafProof:
        """The head, the index of `leaf_hash` and its inclusion proof in the tree of `size` (None: the head), in
        one statement, so one snapshot (leafproof.py); the tree's upper nodes come from memory once read."""
        if self._known_function is not self.known:  # registered on the read connection at first use
            self._reader.create_function(leafproof.SQLITE_FUNCTION, 2, self.known.ids_to_read)
            self._known_function = self.known
        rows = await self._read(leafproof.SQLITE, (hash_key(leaf_hash), size, json_ints(tail.indexes), tail.scan_from))
        return leafproof.assemble(rows, leaf_hash, self.known)

    async def warm_reads(self, seconds: float) -> warmup.WarmReport:
        """The lookup table and the hashes read in order on a connection of their own in a thread, then the tree's
        upper hashes kept for `leaf_inclusion` (logserver/warmup.py); at most `seconds`."""
        head = await self.head()
        path = self._lock_path.with_name(self._db_name)
        stop = threading.Event()
        try:
            report, kept = await asyncio.to_thread(warmup.warm_sqlite, path, head.size if head else 0, seconds, stop)
        finally:
            stop.set()  # cancelled (the server stops): the thread's statement is interrupted at once
        self.known.hashes.update(kept)  # stored hashes never change (storage contract 3): right for every later tree
        return report
