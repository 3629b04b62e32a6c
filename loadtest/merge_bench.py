"""What one lookup merge costs per key, by the size of the lookup tables and the size of the merge (issue 20).

    .venv/bin/python -m loadtest.merge_bench                         (10^5 and 10^6 rows, both engines: minutes)
    .venv/bin/python -m loadtest.merge_bench --sizes 1e5,1e6,1e7     (10^7: ~15 minutes, ~3 GB under /tmp)
    .venv/bin/python -m loadtest.merge_bench --engines postgresql --pg-settings wal_compression=lz4

A merge (storage contract 6) moves the leaves above the lookup watermark into two B-trees keyed by random 64-bit
keys (`leaf_lookup`, `document_lookup`). Once a table has more pages than a merge has keys, each key dirties a
page of its own, so a merge of a fixed 10,000 keys costs more per key as the log grows: the integration's fall to
10^7. This fills the real tables (each engine's own schema and MERGE statements, `leaves` rows with 1-byte data:
a merge reads only their keys) straight to each size, without growing a log, then times the real MERGE of a
batch of new leaves, for each batch size asked (`--batches`; `policy` is the sequencer's rule,
`sequencing.merge_batch`), and prints per key: wall time, CPU (SQLite: this thread, which runs SQLite; PostgreSQL:
the server backend's, from /proc), and what it wrote (SQLite: lookup-file WAL pages, then the RESTART checkpoint
the merger runs after each merge; PostgreSQL: WAL bytes, right after a CHECKPOINT, so the worst case of
full-page images; `--no-checkpoint`: none). Then, for SQLite, how long an open takes with the largest tail the
policy waits for (`--restart-tail`, merge_cap): it merges the whole tail before serving. Prints figures; asserts
nothing.
"""

import argparse
import asyncio
import os
import sqlite3
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]  # no stubs shipped

from loadtest.pgcluster import start_cluster
from logserver import postgres, sqlite_schema
from logserver.sequencing import SequencerConfig
from logserver.sqlite import WAL_FRAME_HEADER

SQLITE_LEAVES = (  # leaves [?1, ?2) with random keys; data is one byte: the merge reads only idx and the keys
    "INSERT INTO leaves (idx, data, leaf_key, document_key, registry)"
    " WITH RECURSIVE g(i) AS (SELECT ?1 UNION ALL SELECT i + 1 FROM g WHERE i + 1 < ?2)"
    " SELECT i, x'00', random(), random(), 0 FROM g"
)
PG_LEAVES = (
    "INSERT INTO leaves (idx, data, leaf_key, document_key, registry) SELECT g, '\\x00'::bytea,"
    " (random() * 1.8e19 - 9e18)::bigint, (random() * 1.8e19 - 9e18)::bigint, false"
    " FROM generate_series($1::bigint, $2::bigint - 1) g"
)


@dataclass
class Merge:
    engine: str
    rows: int  # rows in each lookup table before the merge
    keys: int  # leaves merged
    seconds: float  # the merge transaction, wall
    cpu: float  # CPU seconds of whoever ran it (SQLite: this thread; PostgreSQL: the backend)
    written: float  # bytes: SQLite the lookup WAL (pages + frame headers), PostgreSQL the WAL
    after: float  # seconds after the commit the merger also spends: SQLite's RESTART checkpoint

    def line(self) -> str:
        per_key = 1e6 / self.keys
        return (
            f"  [{self.engine}] {self.rows:>10,} rows, merge of {self.keys:>9,} keys: "
            f"{self.seconds * per_key:6.1f} us/key wall, {self.cpu * per_key:6.1f} us/key CPU, "
            f"{self.written / self.keys:7,.0f} B written/key (two tables), "
            f"checkpoint {self.after * per_key:5.1f} us/key; "
            f"{self.keys / (self.seconds + self.after):>9,.0f} keys/s; load {os.getloadavg()[0]:.1f}"
        )


def batch_sizes(text: str, rows: int) -> list[int]:
    """`--batches` for a table of `rows`: numbers, or `policy` for the sequencer's own rule."""
    config = SequencerConfig("bench", frozenset())
    return [config.merge_batch(rows) if part == "policy" else int(float(part)) for part in text.split(",")]


# --- SQLite -----------------------------------------------------------------------------------------------------


def sqlite_merge(path: Path, rows: int, keys: int) -> Merge:
    """Append `keys` leaves to a log whose lookups hold `rows`, then merge them as SQLiteStorage.merge_lookups."""
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("BEGIN")
        db.execute(SQLITE_LEAVES, (rows, rows + keys))
        db.execute("COMMIT")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    with closing(sqlite3.connect(path, isolation_level=None)) as merger:  # as the real merger's
        sqlite_schema.attach_lookups(merger, path)
        merger.execute("PRAGMA lk.synchronous = NORMAL")
        merger.execute("PRAGMA wal_autocheckpoint = 0")
        started, cpu = time.perf_counter(), time.thread_time()
        merger.execute("BEGIN")
        for statement in sqlite_schema.MERGE:
            merger.execute(statement, (rows, rows + keys))
        merger.execute("COMMIT")
        seconds, cpu = time.perf_counter() - started, time.thread_time() - cpu
        started = time.perf_counter()
        _, frames, _ = merger.execute("PRAGMA lk.wal_checkpoint(RESTART)").fetchone()  # the pages the merge wrote
        after = time.perf_counter() - started
        written = frames * (WAL_FRAME_HEADER + int(merger.execute("PRAGMA lk.page_size").fetchone()[0]))
    return Merge("sqlite", rows, keys, seconds, cpu, float(written), after)


def sqlite_fill(path: Path, start: int, end: int) -> None:
    """Leaves [start, end) and their lookup rows straight in (no merge timed), the watermark at `end`."""
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        sqlite_schema.attach_lookups(db, path)
        db.execute("BEGIN")
        db.execute(SQLITE_LEAVES, (start, end))
        for statement in sqlite_schema.MERGE:
            db.execute(statement, (start, end))
        db.execute("COMMIT")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.execute("PRAGMA lk.wal_checkpoint(TRUNCATE)")


def run_sqlite(sizes: Sequence[int], batches: str, scratch: Path, restart_tail: int) -> None:
    path = scratch / "log.db"
    sqlite_schema.create_schema(path)
    rows = 0
    for target in sizes:
        sqlite_fill(path, rows, target)
        rows = target
        for keys in batch_sizes(batches, target):
            print(sqlite_merge(path, rows, keys).line(), flush=True)
            rows += keys
    if restart_tail:
        sqlite_restart(path, rows, restart_tail)


def sqlite_restart(path: Path, rows: int, tail: int) -> None:
    """A restart with `tail` leaves unmerged: opening the log reconciles, merging the whole tail at once
    (sqlite_schema.reconcile), before the server serves."""
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("BEGIN")
        db.execute(SQLITE_LEAVES, (rows, rows + tail))
        db.execute("COMMIT")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    started = time.perf_counter()
    sqlite_schema.create_schema(path)
    print(
        f"  [sqlite] restart with {tail:,} leaves unmerged at {rows:,}: the open's reconcile took "
        f"{time.perf_counter() - started:.1f} s; load {os.getloadavg()[0]:.1f}",
        flush=True,
    )


# --- PostgreSQL -------------------------------------------------------------------------------------------------


def backend_cpu(pid: int) -> float:
    """CPU seconds (user + system) of the PostgreSQL backend `pid` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def pg_merge(db: asyncpg.Connection, pid: int, rows: int, keys: int, checkpoint: bool) -> Merge:
    """One merge as PostgresStorage.merge_lookups; after a CHECKPOINT, every page it first touches is written whole
    to the WAL (the worst case); without, no full-page images (checkpoints far apart: a large max_wal_size)."""
    await db.execute(PG_LEAVES, rows, rows + keys)
    if checkpoint:
        await db.execute("CHECKPOINT")
    before = await db.fetchval("SELECT pg_current_wal_lsn()")
    started, cpu = time.perf_counter(), backend_cpu(pid)
    async with db.transaction():  # as PostgresStorage.merge_lookups
        await db.execute("SET LOCAL synchronous_commit = off")
        for statement in postgres.MERGE:
            await db.execute(statement, rows, rows + keys)
    seconds, cpu = time.perf_counter() - started, backend_cpu(pid) - cpu
    written = float(await db.fetchval("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1)", before))
    return Merge("postgresql", rows, keys, seconds, cpu, written, 0.0)


async def pg_measure(dsn: str, sizes: Sequence[int], batches: str, checkpoint: bool) -> None:
    db = await asyncpg.connect(dsn)
    try:
        await db.execute(postgres.SCHEMA)
        pid = int(await db.fetchval("SELECT pg_backend_pid()"))
        rows = 0
        for target in sizes:
            await db.execute(PG_LEAVES, rows, target)
            for statement in postgres.MERGE:
                await db.execute(statement, rows, target)
            await db.execute("VACUUM ANALYZE")
            rows = target
            for keys in batch_sizes(batches, target):
                print((await pg_merge(db, pid, rows, keys, checkpoint)).line(), flush=True)
                rows += keys
    finally:
        await db.close()


def run_postgresql(sizes: Sequence[int], batches: str, settings: dict[str, str], checkpoint: bool) -> None:
    cluster = start_cluster(settings=settings)
    try:
        dsn = cluster.create_database("merge")
        print(
            f"  [postgresql] server settings beyond the cluster's: {settings}; "
            f"{'a CHECKPOINT before each merge' if checkpoint else 'no checkpoint before the merges'}",
            flush=True,
        )
        asyncio.run(pg_measure(dsn, sizes, batches, checkpoint))
    finally:
        cluster.stop()


def parse_settings(text: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in text.split(",") if part)


RUNNERS: dict[str, Callable[[argparse.Namespace, Sequence[int], Path], None]] = {
    "sqlite": lambda args, sizes, scratch: run_sqlite(sizes, args.batches, scratch, args.restart_tail),
    "postgresql": lambda args, sizes, scratch: run_postgresql(
        sizes, args.batches, parse_settings(args.pg_settings), not args.no_checkpoint
    ),
}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--sizes", default="1e5,1e6", help="lookup table sizes, ascending (default 1e5,1e6)")
    parser.add_argument("--batches", default="1e4,policy", help="keys per merge at each size (default 1e4,policy)")
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument(
        "--pg-settings",
        default="",
        help="extra server settings, e.g. wal_compression=lz4 or shared_buffers=4GB",
    )
    parser.add_argument("--no-checkpoint", action="store_true", help="PostgreSQL: no CHECKPOINT before each merge")
    parser.add_argument(
        "--restart-tail",
        type=int,
        default=SequencerConfig("bench", frozenset()).merge_cap,
        help="SQLite: then time an open with this many leaves unmerged (default merge_cap; 0: no)",
    )
    parser.add_argument("--scratch", default=None, help="folder for the SQLite files (default: a temp dir)")
    args = parser.parse_args(argv)
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    print("One lookup merge, per key, by table size and merge size (real schema and MERGE statements)")
    for engine in args.engines.split(","):
        with tempfile.TemporaryDirectory(prefix="merge-bench-", dir=args.scratch) as scratch:
            RUNNERS[engine](args, sizes, Path(scratch))


if __name__ == "__main__":
    main()
