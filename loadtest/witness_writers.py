"""Two processes committing to one SQLite database back to back, as two witness servers do (`processes = 2`,
witness/processes.py): how long a writer waits to begin, with SQLite's busy handler alone and with a flock taken
first (witness/storage.py `_holding`). Run through `python -m loadtest.witness_bench --write-lock [SECONDS]`.

SQLite's busy handler sleeps 1, 2, 5, 10 … ms between tries, so a writer that found the database locked can miss
many of the other's commits; the kernel wakes a process waiting on a flock as soon as the holder lets go. Each
commit is the witness's: BEGIN IMMEDIATE, one UPDATE, COMMIT with synchronous = FULL (an fsync), then a short
pause (the event loop's turn between two group commits). Prints figures; asserts nothing.
"""

import fcntl
import multiprocessing
import os
import sqlite3
import tempfile
import time
from pathlib import Path

from loadtest.quantiles import percentile

TURN = 0.0002  # seconds between two commits of one process


def _writer(
    path: str, use_flock: bool, seconds: float, row: int, results: "multiprocessing.Queue[list[float]]"
) -> None:
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA busy_timeout = 5000")
    connection.execute("PRAGMA synchronous = FULL")
    lock = os.open(path + "-writelock", os.O_RDWR | os.O_CREAT, 0o600)
    waits: list[float] = []
    stop_at = time.monotonic() + seconds
    while time.monotonic() < stop_at:
        began = time.perf_counter()
        if use_flock:
            fcntl.flock(lock, fcntl.LOCK_EX)
        connection.execute("BEGIN IMMEDIATE")
        waits.append(time.perf_counter() - began)
        connection.execute("UPDATE t SET v = v + 1 WHERE k = ?", (row,))
        connection.execute("COMMIT")
        if use_flock:
            fcntl.flock(lock, fcntl.LOCK_UN)
        time.sleep(TURN)
    results.put(waits)


def measure(directory: Path, use_flock: bool, seconds: float) -> tuple[float, float, float, float]:
    """(commits/s of both, and the wait to begin a commit: median, 99th percentile, longest, in ms)."""
    path = str(directory / f"writers-{int(use_flock)}-{time.monotonic_ns()}.sqlite")
    setup = sqlite3.connect(path, isolation_level=None)
    setup.execute("PRAGMA journal_mode = WAL")
    setup.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v INTEGER)")
    setup.execute("INSERT INTO t VALUES (0, 0), (1, 0)")
    setup.close()
    context = multiprocessing.get_context("spawn")
    results: multiprocessing.Queue[list[float]] = context.Queue()
    writers = [context.Process(target=_writer, args=(path, use_flock, seconds, row, results)) for row in (0, 1)]
    for writer in writers:
        writer.start()
    waits = [wait for _ in writers for wait in results.get()]
    for writer in writers:
        writer.join()
    p50, p99, longest = (percentile(waits, q) * 1000 for q in (0.5, 0.99, 1.0))
    return len(waits) / seconds, p50, p99, longest


def compare_writers(seconds: float) -> None:
    print(f"two processes committing back to back to one SQLite database (WAL, synchronous = FULL), {seconds:g} s each")
    print(f"  {'writers wait in':<34} {'commits/s':>10} {'wait p50 ms':>12} {'p99 ms':>8} {'max ms':>8}")
    with tempfile.TemporaryDirectory(prefix="witness-writers-") as directory:
        for use_flock in (False, True, False, True):  # alternating: the machine may be shared
            rate, p50, p99, longest = measure(Path(directory), use_flock, seconds)
            name = "a flock, then BEGIN IMMEDIATE" if use_flock else "SQLite's busy handler"
            print(f"  {name:<34} {rate:>10,.0f} {p50:>12.2f} {p99:>8.2f} {longest:>8.2f}")
