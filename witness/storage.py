"""The witness's state: per origin, the latest cosigned (size, root) and the cosigned note.

Durability contract (every implementation): when `compare_and_swap` or
`record_evidence` returns, the write is durable: a crash or power loss right
after it leaves the new state on disk. A crash while one is running leaves
either the old state or the new one, never a mix. `compare_and_swap` changes
the state only if it still is `expected`, atomically; otherwise it changes
nothing and raises `Conflict` with the size now stored (tlog-witness: "losing
the race → 409"). This is the one write that must never go backwards: with the
checks of `witness.witness` it guarantees the witness never cosigns two
different roots for one size of one log.
"""

import contextlib
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import aiosqlite

from witness.witness import Conflict, TreeHead

SCHEMA = """
CREATE TABLE IF NOT EXISTS latest (
    origin TEXT PRIMARY KEY,
    size INTEGER NOT NULL CHECK (size >= 0),
    root BLOB NOT NULL CHECK (length(root) = 32),
    note BLOB NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS evidence (
    origin TEXT NOT NULL,
    size INTEGER NOT NULL,
    root BLOB NOT NULL,
    reason TEXT NOT NULL,
    request BLOB NOT NULL,
    seen_at INTEGER NOT NULL,
    PRIMARY KEY (origin, size, root)
) STRICT;
"""


@dataclass(frozen=True)
class LogState:
    """The latest cosigned checkpoint of one log, as kept."""

    size: int
    root: bytes
    note: bytes  # checkpoint text, the log's signature(s) and this witness's cosignature(s)

    @property
    def head(self) -> TreeHead:
        return TreeHead(self.size, self.root)


@dataclass(frozen=True)
class Evidence:
    """A checkpoint the log validly signed but the witness refused (422): kept so anyone can re-check it."""

    origin: str
    size: int
    root: bytes
    reason: str
    request: bytes  # the whole add-checkpoint body: old size, proof and signed checkpoint
    seen_at: int


class StorageUnavailable(Exception):
    """The database failed (disk full, I/O error, locked too long): nothing was stored; try again later."""


@contextlib.contextmanager
def unavailable_on_error() -> Iterator[None]:
    try:
        yield
    except sqlite3.Error as exc:
        raise StorageUnavailable(f"the witness database failed, nothing was stored: {exc}") from exc


class WitnessStorage(Protocol):
    async def latest(self, origin: str) -> LogState | None:
        """The latest cosigned state of `origin`, or None if it was never cosigned."""

    async def compare_and_swap(self, origin: str, expected: TreeHead | None, new: LogState) -> None:
        """Store `new` if the state is still `expected` (None: no state yet), durably; else raise Conflict."""

    async def record_evidence(self, evidence: Evidence) -> None:
        """Keep a refused, validly signed checkpoint (first one per origin, size and root), durably."""

    async def evidence(self, origin: str) -> list[Evidence]:
        """The evidence kept for `origin`, by size."""

    async def close(self) -> None: ...


def check_forward(expected: TreeHead | None, new: LogState) -> None:
    """A last guard against a bug upstream: the state only grows, and one size has one root."""
    if expected is not None and (new.size < expected.size or (new.size == expected.size and new.root != expected.root)):
        raise ValueError(f"refusing to move size {expected.size} back to size {new.size}, or to another root")


class SQLiteStorage:
    """`WitnessStorage` on SQLite (WAL, synchronous=FULL: each commit is fsynced before it returns).

    Every write is a single statement in autocommit mode, so it is its own
    atomic transaction, committed before the call returns; the compare-and-swap
    is `UPDATE … WHERE origin = ? AND size = ? AND root = ? RETURNING size` (or
    an INSERT guarded by the primary key), and whether a row came back says
    whether it won.
    """

    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._db = connection

    @classmethod
    async def open(cls, path: str) -> "SQLiteStorage":
        # Probe synchronously first: a failed aiosqlite.connect leaves its worker thread calling back into a
        # closed event loop, which prints a traceback after a clean error message.
        sqlite3.connect(path).close()
        connection = await aiosqlite.connect(path, isolation_level=None)
        try:
            async with connection.execute("PRAGMA journal_mode = WAL") as cursor:
                mode = await cursor.fetchone()
            if mode is None or str(mode[0]).lower() != "wal":
                raise RuntimeError(f"{path}: SQLite refused WAL mode (got {mode!r})")
            await connection.execute("PRAGMA synchronous = FULL")
            await connection.execute("PRAGMA busy_timeout = 5000")
            await connection.executescript(SCHEMA)
        except BaseException:
            await connection.close()
            raise
        return cls(connection)

    async def latest(self, origin: str) -> LogState | None:
        with unavailable_on_error():
            rows = list(
                await self._db.execute_fetchall("SELECT size, root, note FROM latest WHERE origin = ?", (origin,))
            )
        if not rows:
            return None
        size, root, note = rows[0]
        return LogState(int(size), bytes(root), bytes(note))

    async def compare_and_swap(self, origin: str, expected: TreeHead | None, new: LogState) -> None:
        check_forward(expected, new)
        # One statement, committed (and fsynced) when it completes; RETURNING says whether it matched.
        if expected is None:
            sql = (
                "INSERT INTO latest (origin, size, root, note) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (origin) DO NOTHING RETURNING size"
            )
            parameters: tuple[object, ...] = (origin, new.size, new.root, new.note)
        else:
            sql = (
                "UPDATE latest SET size = ?, root = ?, note = ? WHERE origin = ? AND size = ? AND root = ?"
                " RETURNING size"
            )
            parameters = (new.size, new.root, new.note, origin, expected.size, expected.root)
        with unavailable_on_error():
            won = list(await self._db.execute_fetchall(sql, parameters))
        if not won:  # someone else moved the state between our read and this write
            current = await self.latest(origin)
            raise Conflict(current.size if current is not None else 0)

    async def record_evidence(self, evidence: Evidence) -> None:
        with unavailable_on_error():
            await self._db.execute_fetchall(
                "INSERT INTO evidence (origin, size, root, reason, request, seen_at) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                (evidence.origin, evidence.size, evidence.root, evidence.reason, evidence.request, evidence.seen_at),
            )

    async def evidence(self, origin: str) -> list[Evidence]:
        rows = await self._db.execute_fetchall(
            "SELECT size, root, reason, request, seen_at FROM evidence WHERE origin = ? ORDER BY size, root", (origin,)
        )
        return [Evidence(origin, int(s), bytes(r), str(why), bytes(req), int(t)) for s, r, why, req, t in rows]

    async def close(self) -> None:
        await self._db.close()
