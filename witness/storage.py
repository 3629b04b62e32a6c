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

import asyncio
import contextlib
import fcntl
import functools
import os
import sqlite3
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol, TypeVar

from witness.witness import Conflict, TreeHead

T = TypeVar("T")
WRITE_LOCK_SUFFIX = "-writelock"  # beside the database: the file every writing process takes a flock on

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


def unavailable(exc: sqlite3.Error | OSError) -> StorageUnavailable:
    return StorageUnavailable(f"the witness database failed, nothing was stored: {exc}")


@contextlib.contextmanager
def unavailable_on_error() -> Iterator[None]:
    try:
        yield
    except (sqlite3.Error, OSError) as exc:
        raise unavailable(exc) from exc


class WitnessStorage(Protocol):
    async def latest(self, origin: str) -> LogState | None:
        """The latest cosigned state of `origin`, or None if it was never cosigned."""

    async def head(self, origin: str) -> TreeHead | None:
        """`latest`'s size and root alone: what every add-checkpoint reads before its checks."""

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


@dataclass
class _Swap:
    """One compare-and-swap waiting for the next group commit."""

    origin: str
    expected: TreeHead | None
    new: LogState
    done: "asyncio.Future[int | None]"  # None: it won; else the size stored instead (it lost)


def _swap_sql(swap: _Swap) -> tuple[str, tuple[object, ...]]:
    new = swap.new
    if swap.expected is None:
        sql = (
            "INSERT INTO latest (origin, size, root, note) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (origin) DO NOTHING RETURNING size"
        )
        return sql, (swap.origin, new.size, new.root, new.note)
    sql = "UPDATE latest SET size = ?, root = ?, note = ? WHERE origin = ? AND size = ? AND root = ? RETURNING size"
    return sql, (new.size, new.root, new.note, swap.origin, swap.expected.size, swap.expected.root)


class SQLiteStorage:
    """`WitnessStorage` on SQLite (WAL, synchronous=FULL: each commit is fsynced before it returns).

    Group commit: compare-and-swaps that arrive while a commit is being fsynced wait, then go together in the
    next transaction, one fsync for all of them. Each is still `UPDATE … WHERE origin = ? AND size = ? AND
    root = ? RETURNING size` (or an INSERT guarded by the primary key), run in arrival order, so two for one
    origin in one batch see each other exactly as if committed one by one; whether a row came back says whether
    it won. No caller hears "won" before the COMMIT carrying its row returned (persist, then 200), and a failed
    COMMIT fails every swap of its batch. The profile of a cosigning run (loadtest/witness_bench.py) found
    requests queued behind one fsync each: this took the witness from ~0.13 to above half of its sign + verify
    ceiling. Reads use their own connection on the event loop itself: point reads of cached pages, which never
    wait behind a commit (WAL), taking microseconds where a thread hop cost several times more (as the log
    server's logserver/sqlite.py found).
    """

    def __init__(self, writer: sqlite3.Connection, reader: sqlite3.Connection, write_lock: int) -> None:
        self._writer, self._reader, self._write_lock = writer, reader, write_lock
        self._write_thread = ThreadPoolExecutor(1, thread_name_prefix="witness-db-write")  # the writer's only thread
        self._pending: list[_Swap] = []
        self._committer: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, path: str) -> "SQLiteStorage":
        return await asyncio.to_thread(cls._open, path)

    @classmethod
    def _open(cls, path: str) -> "SQLiteStorage":
        writer = connect(path)
        try:
            _set_up(writer, path)
            reader = connect(path)
        except BaseException:
            writer.close()
            raise
        try:
            write_lock = os.open(path + WRITE_LOCK_SUFFIX, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError:
            writer.close()
            reader.close()
            raise
        return cls(writer, reader, write_lock)

    async def _write(self, work: Callable[[], T]) -> T:
        with unavailable_on_error():
            held = functools.partial(_holding, self._write_lock, work)
            return await asyncio.get_running_loop().run_in_executor(self._write_thread, held)

    async def latest(self, origin: str) -> LogState | None:
        with unavailable_on_error():
            return read_latest(self._reader, origin)

    async def head(self, origin: str) -> TreeHead | None:
        try:  # not `unavailable_on_error`: its generator costs more than the read itself (issue 20)
            return read_head(self._reader, origin)
        except (sqlite3.Error, OSError) as exc:
            raise unavailable(exc) from exc

    async def compare_and_swap(self, origin: str, expected: TreeHead | None, new: LogState) -> None:
        check_forward(expected, new)
        swap = _Swap(origin, expected, new, asyncio.get_running_loop().create_future())
        self._pending.append(swap)
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_pending())
        # A cancelled request cancels only its own future: the committer skips a future already done and commits
        # the swap all the same (no shield: one future and two callbacks less per cosignature).
        lost_to = await swap.done
        if lost_to is not None:  # someone else moved the state between our read and this write
            raise Conflict(lost_to)

    async def _commit_pending(self) -> None:
        """Commit what is waiting, one transaction at a time, until nothing is."""
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                outcomes = await self._write(functools.partial(_commit, self._writer, batch))
            except BaseException as exc:  # StorageUnavailable, or cancelled at close: nobody hears "won"
                for swap in batch:
                    if not swap.done.done():
                        swap.done.set_exception(exc if isinstance(exc, Exception) else StorageUnavailable(str(exc)))
                if not isinstance(exc, Exception):
                    raise
                continue
            for swap, outcome in zip(batch, outcomes, strict=True):
                if not swap.done.done():
                    swap.done.set_result(outcome)

    async def record_evidence(self, evidence: Evidence) -> None:
        sql = (
            "INSERT INTO evidence (origin, size, root, reason, request, seen_at) VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT DO NOTHING"
        )
        values = (evidence.origin, evidence.size, evidence.root, evidence.reason, evidence.request, evidence.seen_at)
        await self._write(functools.partial(self._writer.execute, sql, values))

    async def evidence(self, origin: str) -> list[Evidence]:
        sql = "SELECT size, root, reason, request, seen_at FROM evidence WHERE origin = ? ORDER BY size, root"

        with unavailable_on_error():
            rows = self._reader.execute(sql, (origin,)).fetchall()
        return [Evidence(origin, int(s), bytes(r), str(why), bytes(req), int(t)) for s, r, why, req, t in rows]

    async def close(self) -> None:
        if self._committer is not None:
            await asyncio.gather(self._committer, return_exceptions=True)
        await asyncio.get_running_loop().run_in_executor(self._write_thread, self._writer.close)
        self._write_thread.shutdown()
        self._reader.close()
        os.close(self._write_lock)


def _holding(write_lock: int, work: Callable[[], T]) -> T:
    """`work` (a transaction) with the write lock held. SQLite lets one writer in at a time whichever process it
    is, but a writer that finds the database locked sleeps in its busy handler, 1 then 2, 5, 10 … ms, and with
    several server processes (witness/processes.py) committing back to back it can miss many of the other's
    commits: waits to begin of 0.7-1.8 s against 21-30 ms with a flock first (`witness_bench --write-lock`), as
    the kernel wakes a process waiting on a flock the moment the holder lets go. The compare-and-swap itself stays
    SQLite's: this orders the writers, it guards nothing."""
    fcntl.flock(write_lock, fcntl.LOCK_EX)
    try:
        return work()
    finally:
        fcntl.flock(write_lock, fcntl.LOCK_UN)


def _set_up(writer: sqlite3.Connection, path: str) -> None:
    mode = writer.execute("PRAGMA journal_mode = WAL").fetchone()
    if mode is None or str(mode[0]).lower() != "wal":
        raise RuntimeError(f"{path}: SQLite refused WAL mode (got {mode!r})")
    writer.execute("PRAGMA synchronous = FULL")
    writer.executescript(SCHEMA)


def create_database(path: str) -> None:
    """Make the database (WAL, the schema) once, before several server processes open it (witness/processes.py);
    no thread or event loop is left behind, so the caller may fork next."""
    writer = connect(path)
    try:
        _set_up(writer, path)
    finally:
        writer.close()


def connect(path: str) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    connection.execute("PRAGMA busy_timeout = 5000")
    return connection


def read_latest(connection: sqlite3.Connection, origin: str) -> LogState | None:
    row = connection.execute("SELECT size, root, note FROM latest WHERE origin = ?", (origin,)).fetchone()
    return LogState(int(row[0]), bytes(row[1]), bytes(row[2])) if row is not None else None


def read_head(connection: sqlite3.Connection, origin: str) -> TreeHead | None:
    """The stored (size, root) of `origin`, without its note (never read on the add-checkpoint path)."""
    row = connection.execute("SELECT size, root FROM latest WHERE origin = ?", (origin,)).fetchone()
    return TreeHead(int(row[0]), bytes(row[1])) if row is not None else None


def _commit(connection: sqlite3.Connection, batch: list[_Swap]) -> list[int | None]:
    """One transaction for the batch, in order: None for each swap that won, else the size it lost to."""
    outcomes: list[int | None] = []
    connection.execute("BEGIN IMMEDIATE")
    try:
        for swap in batch:
            won = connection.execute(*_swap_sql(swap)).fetchall()
            if won:
                outcomes.append(None)
            else:
                current = read_latest(connection, swap.origin)
                outcomes.append(current.size if current is not None else 0)
        connection.execute("COMMIT")  # synchronous = FULL: fsynced when this returns
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise
    return outcomes
