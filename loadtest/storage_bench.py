"""SQLite and PostgreSQL side by side: integration rate, and failover time between real server processes.

    .venv/bin/python -m loadtest.storage_bench                       # 10^5 entries, batches of 10,000 and 1,000
    .venv/bin/python -m loadtest.storage_bench --entries 20000 --failovers 3

1. Integration rate: entries/s durably appended by the real `Sequencer` (its run
   loop, one commit per batch, as the server makes them) in-process, on
   `SQLiteStorage` and on `PostgresStorage`, the same pre-signed statements in
   one run. Both must reach the same root. PostgreSQL is a throwaway cluster
   (loadtest/pgcluster.py) on this machine, fsync and synchronous_commit on.
2. Failover: two `tlog-server serve` processes on one PostgreSQL database;
   kill -9 the sequencing one and time until the other says it sequences
   (GET /api/v1/log), then start a fresh standby and repeat.

Prints figures; asserts nothing. Talks only to 127.0.0.1.
"""

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

from loadtest.log_bench import (
    ServerProcess,
    append_timed,
    issuer_add,
    make_pool,
    prepare_data,
    running_sequencer,
    running_server,
)
from loadtest.pgcluster import PgCluster, start_cluster
from logserver.postgres import PostgresStorage
from logserver.sequencer import Submission
from logserver.sqlite import SQLiteStorage
from logserver.storage import Storage


async def integrate(storage: Storage, entries: Sequence[Submission], batch: int) -> tuple[float, bytes]:
    """Seconds to sequence `entries` in batches of `batch` (after the registry entry), and the final root."""
    try:
        async with running_sequencer(storage, batch) as sequencer:
            await sequencer.submit([issuer_add(entries[0].statement.time)])
            seconds = sum(await append_timed(sequencer, entries, batch))
        if sequencer.head is None:
            raise RuntimeError("no head after sequencing")
        return seconds, sequencer.head.root
    finally:
        await storage.close()


def integration(tmp: Path, cluster: PgCluster, entries: Sequence[Submission], batches: Sequence[int]) -> None:
    print(f"integration rate, {len(entries):,} entries (entries/s through the real Sequencer, fsync'd commits)")
    print(f"  {'batch':>8}  {'SQLite':>12}  {'PostgreSQL':>12}  PostgreSQL/SQLite")
    for batch in batches:
        sqlite_seconds, sqlite_root = asyncio.run(_sqlite(tmp / f"bench-{batch}.db", entries, batch))
        dsn = cluster.create_database(f"bench_{batch}")
        pg_seconds, pg_root = asyncio.run(_postgres(dsn, entries, batch))
        ours, theirs = len(entries) / sqlite_seconds, len(entries) / pg_seconds
        same = "same root" if sqlite_root == pg_root else "ROOTS DIFFER"
        print(f"  {batch:>8,}  {ours:>10,.0f}/s  {theirs:>10,.0f}/s  {theirs / ours:.2f}x (goal >= 0.5x), {same}")


async def _sqlite(path: Path, entries: Sequence[Submission], batch: int) -> tuple[float, bytes]:
    return await integrate(await SQLiteStorage.open(path), entries, batch)


async def _postgres(dsn: str, entries: Sequence[Submission], batch: int) -> tuple[float, bytes]:
    return await integrate(await PostgresStorage.open(dsn), entries, batch)


def sequencing(server: ServerProcess) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        return bool(httpx.get(server.url + "/api/v1/log", timeout=2).json()["sequencing"])
    return False


def failover(tmp: Path, cluster: PgCluster, rounds: int) -> None:
    dsn = cluster.create_database("failover")
    config = tmp / "pg.toml"
    config.write_text(f'[storage]\nengine = "postgresql"\npostgresql_dsn = "{dsn}"\n')
    data = tmp / "failover"
    prepare_data(data)
    args = ["--config", str(config)]
    seconds: list[float] = []
    with contextlib.ExitStack() as stack:
        active = stack.enter_context(running_server(data, args))
        for _ in range(rounds):
            standby = stack.enter_context(running_server(data, args))
            if not sequencing(active) or sequencing(standby):
                raise RuntimeError("expected the older process to sequence and the new one to stand by")
            active.process.kill()
            started = time.monotonic()
            while not sequencing(standby):
                if time.monotonic() - started > 30:
                    raise RuntimeError("no takeover within 30 s")
                time.sleep(0.01)
            seconds.append(time.monotonic() - started)
            active = standby
    print(f"failover (kill -9 the sequencer, two processes on one PostgreSQL database), {rounds} rounds:")
    print(
        f"  takeover median {statistics.median(seconds) * 1000:,.0f} ms, max {max(seconds) * 1000:,.0f} ms "
        f"(goal < 5 s; the standby retries the lease every flush interval, 100 ms)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--batches", type=int, nargs="+", default=[10_000, 1_000])
    parser.add_argument("--failovers", type=int, default=5)
    options = parser.parse_args()
    entries = make_pool(options.entries, int(time.time()))
    cluster = start_cluster()
    try:
        print(f"PostgreSQL {cluster.psql('SHOW server_version')} (fsync {cluster.psql('SHOW fsync')}), SQLite WAL FULL")
        with tempfile.TemporaryDirectory(prefix="storage-bench-") as tmp:
            integration(Path(tmp), cluster, entries, options.batches)
            if options.failovers:
                failover(Path(tmp), cluster, options.failovers)
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
