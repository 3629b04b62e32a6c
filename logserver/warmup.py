"""A new serving process reads the pages every proof needs before /healthz calls it ready (issue 20: proofs by
leaf hash at p99 <= 10 ms at 10^7, right after a restart too).

What a new process's first proofs wait on, measured at 1.3*10^7 leaves (docs/performance.md, "Proofs by leaf
hash", fifth round): with the log's files out of the OS page cache, disk reads (2.8 GB read in the first 3 s, each
random page fault bringing its read-ahead; p99 868 ms in the first second, 318 ms in the next); with the files
cached, little: ~15,000 minor faults in the first second, and the tree's upper hashes not yet kept
(leafproof.KnownHashes), so the first proofs read ~27 rows instead of 10.

So each serving process, as it starts, reads in page order the B-trees that every proof reads at random
(`Storage.warm_reads`: the leaf lookup table and the stored hashes), so their pages are in the page cache before
the random reads come, then (SQLite) keeps the tree's upper stored hashes. Bounded: it stops at `[server]
warm_seconds` (default 10; 0: off) whatever is left, and then serves as before; memory: the kernel's page cache
(shared, evicted as the kernel needs) and at most `leafproof.KEPT_LIMIT` kept hashes (~18 MB). While it runs,
`/healthz` answers 503 with `"warming": true` (a load balancer, and `serve`'s own start of its other workers, wait
for a 200), and every route is served meanwhile with the same answers, only slower.
"""

import asyncio
import logging
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from logserver import leafproof
from logserver.sqlite_schema import attach_lookups

log = logging.getLogger("logserver")


@dataclass(frozen=True)
class WarmReport:
    """What one warm-up read: the tables read whole (in order), the upper hashes kept, and whether it finished
    before its deadline."""

    tables: tuple[str, ...]
    kept: int
    finished: bool
    seconds: float


class Warmup:
    """Whether this process is still warming (what /healthz reports), and what its warm-up did."""

    def __init__(self) -> None:
        self.warming = False
        self.report: WarmReport | None = None

    def start(self, warm: Callable[[float], Awaitable[WarmReport]], seconds: float) -> "asyncio.Task[None] | None":
        """Begin warming (before the server serves: /healthz says 503 from its first answer); the task to cancel
        when the server stops."""
        if seconds <= 0:
            return None
        self.warming = True
        return asyncio.get_running_loop().create_task(self._run(warm, seconds))

    async def _run(self, warm: Callable[[float], Awaitable[WarmReport]], seconds: float) -> None:
        try:
            self.report = await warm(seconds)
            log.info(
                "warmed the reads in %.1f s: %s read, %d upper hashes kept%s",
                self.report.seconds,
                ", ".join(self.report.tables) or "nothing",
                self.report.kept,
                "" if self.report.finished else f" (stopped at warm_seconds = {seconds:g})",
            )
        except Exception as exc:  # warming is an optimisation: a failure leaves the process serving, cold
            log.warning("warming the reads failed (serving without it): %s", exc)
        finally:
            self.warming = False


SQLITE_TABLES = ("lk.leaf_lookup", "hashes")  # every proof's lookup, then its hashes (leafproof.SQLITE)
KEPT_CHUNK = 8192  # upper ids per query
WATCH_SECONDS = 0.05  # how often the deadline and the stop are looked at while a statement runs


def warm_sqlite(path: Path, size: int, seconds: float, stop: threading.Event) -> tuple[WarmReport, dict[int, bytes]]:
    """On its own read-only connection (call it in a thread: SQLite releases the GIL while it reads): each table
    of SQLITE_TABLES read whole in its B-tree's order (`count(*)` visits every page of the table and decodes no
    row), then the stored hashes of the tree's upper nodes. At the deadline, or once `stop` is set, the running
    statement is interrupted (`sqlite3_interrupt`: a count stops between pages) and what was read is kept."""
    started = time.monotonic()
    deadline, done = started + seconds, threading.Event()
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    watcher = threading.Thread(target=_interrupt_at, args=(db, deadline, stop, done), name="warm-reads-watch")
    read: list[str] = []
    kept: dict[int, bytes] = {}
    try:
        attach_lookups(db, path)
        watcher.start()
        for table in SQLITE_TABLES:
            db.execute(f"SELECT count(*) FROM {table}").fetchall()
            read.append(table)
        ids = leafproof.upper_ids(size)
        for start in range(0, len(ids), KEPT_CHUNK):
            chunk = ",".join(map(str, ids[start : start + KEPT_CHUNK]))
            rows = db.execute(UPPER_HASHES, (f"[{chunk}]",))
            kept.update(rows.fetchall())
        finished = not stop.is_set() and time.monotonic() <= deadline
    except sqlite3.OperationalError as exc:
        if "interrupt" not in str(exc):
            raise
        finished = False
    finally:
        done.set()
        if watcher.is_alive():
            watcher.join()
        db.close()
    return WarmReport(tuple(read), len(kept), finished, time.monotonic() - started), kept


UPPER_HASHES = "SELECT id, hash FROM hashes WHERE id IN (SELECT value FROM json_each(?))"


def _interrupt_at(db: sqlite3.Connection, deadline: float, stop: threading.Event, done: threading.Event) -> None:
    """Interrupt `db`'s statements from the deadline or the stop on, until `done` (SQLite checks the flag as it
    steps: a statement started after it fails at once)."""
    while not done.wait(WATCH_SECONDS):
        if stop.is_set() or time.monotonic() > deadline:
            db.interrupt()
