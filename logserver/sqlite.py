"""SQLite storage (aiosqlite, WAL): the embedded default, needing no setup.

Durability: WAL journal with synchronous=FULL, so a commit is fsync'd before
`commit_batch` returns (storage contract 1). The head update is
`UPDATE head ... WHERE size = ? AND root = ?` inside the same transaction,
checked by row count (contract 2, STYLE.md §8). Writes go through one
aiosqlite connection (the fsync happens off the event loop); reads use a plain
read-only connection on the event loop itself: they are point reads of cached
pages taking microseconds, and a thread hop per query cost several times more
(BENCHMARKS.md, log server).

Lookups by leaf hash and by document hash use indexes on the first 8 bytes of
the hash (an INTEGER), and confirm the full hash on the rows found: random
32-byte keys made every commit rewrite pages all over two large B-trees, and
the leaf hash is already stored once, as the level-0 Merkle hash.

The sequencer lease is an exclusive `flock` on `<database>.sequencer.lock`:
the kernel drops it the moment its process dies (even by kill -9), so a
restarted server sequences at once and a second server on the same database
is told who holds it. The compare-and-swap stays the last line of defence.
"""

import fcntl
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import aiosqlite

from logserver.storage import (
    EntryRecord,
    Head,
    HeadMovedError,
    IdentityError,
    LogIdentity,
    StorageError,
    StoredEntry,
)
from tlogcore.merkle import leaf_hash

SCHEMA = """
CREATE TABLE IF NOT EXISTS leaves (
    idx INTEGER PRIMARY KEY,
    data BLOB NOT NULL,
    leaf_key INTEGER NOT NULL,
    document_key INTEGER,
    registry INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS leaves_by_leaf_key ON leaves(leaf_key);
CREATE INDEX IF NOT EXISTS leaves_by_document_key ON leaves(document_key) WHERE document_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS leaves_registry ON leaves(idx) WHERE registry = 1;
CREATE TABLE IF NOT EXISTS hashes (id INTEGER PRIMARY KEY, hash BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS checkpoints (
    size INTEGER PRIMARY KEY,
    root BLOB NOT NULL,
    note BLOB NOT NULL,
    published BLOB
);
CREATE TABLE IF NOT EXISTS head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    size INTEGER NOT NULL,
    root BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS identity (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    origin TEXT NOT NULL,
    log_vkey TEXT NOT NULL,
    registry_vkey TEXT NOT NULL
);
"""
CHUNK = 500  # SQLite's bound-parameter limit is 999 on old builds


def hash_key(digest: bytes) -> int:
    """The indexed prefix of a hash: its first 8 bytes as a signed 64-bit integer."""
    return int.from_bytes(digest[:8], "big", signed=True)


class SQLiteStorage:
    def __init__(self, writer: aiosqlite.Connection, reader: sqlite3.Connection, lock_path: Path) -> None:
        self._writer = writer
        self._reader = reader
        self._lock_path = lock_path
        self._lock_fd: int | None = None

    @classmethod
    async def open(cls, path: Path, busy_timeout_ms: int = 5000) -> "SQLiteStorage":
        try:
            sqlite3.connect(path).close()  # fail cleanly here: a failed aiosqlite.connect leaks its thread
            writer = await aiosqlite.connect(path, isolation_level=None)
            await writer.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            await writer.execute("PRAGMA journal_mode = WAL")
            await writer.execute("PRAGMA synchronous = FULL")
            await writer.executescript(SCHEMA)
            reader = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            reader.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            reader.execute("PRAGMA query_only = 1")
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open the SQLite database {path}: {exc}") from exc
        return cls(writer, reader, path.with_name(path.name + ".sequencer.lock"))

    async def close(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None
        self._reader.close()
        await self._writer.close()

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
        old_size = old.size if old else 0
        db = self._writer
        try:
            await db.execute("BEGIN IMMEDIATE")
            try:
                if old is None:
                    cursor = await db.execute(
                        "INSERT INTO head (id, size, root) VALUES (1, ?, ?) ON CONFLICT DO NOTHING",
                        (new.size, new.root),
                    )
                else:
                    cursor = await db.execute(
                        "UPDATE head SET size = ?, root = ? WHERE id = 1 AND size = ? AND root = ?",
                        (new.size, new.root, old.size, old.root),
                    )
                if cursor.rowcount != 1:
                    raise HeadMovedError(f"the head moved from size {old_size}: another sequencer wrote to this log")
                await db.executemany(
                    "INSERT INTO leaves (idx, data, leaf_key, document_key, registry) VALUES (?, ?, ?, ?, ?)",
                    [
                        (
                            old_size + i,
                            e.data,
                            hash_key(e.leaf_hash),
                            hash_key(e.document) if e.document else None,
                            int(e.registry),
                        )
                        for i, e in enumerate(entries)
                    ],
                )
                await db.executemany(
                    "INSERT INTO hashes (id, hash) VALUES (?, ?)", [(first_hash + i, h) for i, h in enumerate(hashes)]
                )
                await db.execute(
                    "INSERT INTO checkpoints (size, root, note, published) VALUES (?, ?, ?, ?)",
                    (new.size, new.root, new.checkpoint, new.checkpoint if publish else None),
                )
                await db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:  # SQLite has already rolled back after SQLITE_FULL or an I/O error
                    await db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise StorageError(f"commit failed, nothing was stored: {exc}") from exc

    async def _read(self, sql: str, params: Sequence[object]) -> list[sqlite3.Row]:
        try:
            return self._reader.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StorageError(f"read failed: {exc}") from exc

    async def get_hashes(self, indexes: Sequence[int]) -> list[bytes]:
        found: dict[int, bytes] = {}
        unique = sorted(set(indexes))
        for start in range(0, len(unique), CHUNK):
            chunk = unique[start : start + CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = await self._read(f"SELECT id, hash FROM hashes WHERE id IN ({marks})", chunk)
            found.update((row[0], row[1]) for row in rows)
        return [found[i] for i in indexes]

    async def get_entries(self, start: int, end: int) -> list[bytes]:
        rows = await self._read("SELECT data FROM leaves WHERE idx >= ? AND idx < ? ORDER BY idx", (start, end))
        if len(rows) != end - start:
            raise KeyError(f"entries [{start}, {end}) are not all stored")
        return [row[0] for row in rows]

    async def find_leaves(self, leaf_hashes: Sequence[bytes]) -> dict[bytes, int]:
        wanted = set(leaf_hashes)
        found: dict[bytes, int] = {}
        keys = sorted({hash_key(h) for h in wanted})
        for start in range(0, len(keys), CHUNK):
            chunk = keys[start : start + CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = await self._read(f"SELECT idx, data FROM leaves WHERE leaf_key IN ({marks})", chunk)
            for index, data in rows:
                digest = leaf_hash(data)
                if digest in wanted:
                    found.setdefault(digest, index)
        return found

    async def document_entries(self, document: bytes) -> list[StoredEntry]:
        rows = await self._read(
            "SELECT idx, data FROM leaves WHERE document_key = ? ORDER BY idx", (hash_key(document),)
        )
        line = b"\ndocument " + document.hex().encode() + b"\n"  # statements are canonical: one spelling
        return [StoredEntry(row[0], row[1]) for row in rows if line in row[1]]

    async def registry_entries(self) -> list[StoredEntry]:
        rows = await self._read("SELECT idx, data FROM leaves WHERE registry = 1 ORDER BY idx", ())
        return [StoredEntry(row[0], row[1]) for row in rows]

    async def checkpoint_at(self, size: int) -> bytes | None:
        rows = await self._read("SELECT coalesce(published, note) FROM checkpoints WHERE size = ?", (size,))
        return rows[0][0] if rows else None

    async def set_cosigned(self, size: int, note: bytes) -> None:
        try:
            await self._writer.execute("UPDATE checkpoints SET published = ? WHERE size = ?", (note, size))
        except sqlite3.Error as exc:
            raise StorageError(f"cannot record cosignatures: {exc}") from exc

    async def latest_published(self) -> bytes | None:
        rows = await self._read(
            "SELECT published FROM checkpoints WHERE published IS NOT NULL ORDER BY size DESC LIMIT 1", ()
        )
        return rows[0][0] if rows else None

    async def identity(self) -> LogIdentity | None:
        rows = await self._read("SELECT origin, log_vkey, registry_vkey FROM identity WHERE id = 1", ())
        return LogIdentity(rows[0][0], rows[0][1], rows[0][2]) if rows else None

    async def record_identity(self, identity: LogIdentity) -> None:
        try:
            await self._writer.execute(
                "INSERT INTO identity (id, origin, log_vkey, registry_vkey) VALUES (1, ?, ?, ?) ON CONFLICT DO NOTHING",
                (identity.origin, identity.log_vkey, identity.registry_vkey),
            )
        except sqlite3.Error as exc:
            raise StorageError(f"cannot record the log's identity: {exc}") from exc
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
