"""loadtest/pgcluster.py: what the benchmarks read from the throwaway cluster (its CPU, its settings)."""

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import asyncpg  # type: ignore[import-untyped]  # no stubs shipped

from loadtest.pgcluster import PgCluster
from tests.pg_cluster import PgDatabase

T = TypeVar("T")
BURN = "SELECT count(*) FROM generate_series(1, 8000000) a, LATERAL (SELECT md5(a::text)) b"


async def while_connected(dsn: str, during: Callable[[Any], Awaitable[T]]) -> T:
    """`during(connection)` with a new connection open; the connection closed after."""
    db = await asyncpg.connect(dsn)
    try:
        return await during(db)
    finally:
        await db.close()


async def burn_in_a_backend(dsn: str) -> int:
    """Burn CPU in a new connection's backend, close it; the backend's pid."""

    async def burn(db: Any) -> int:
        pid = int(await db.fetchval("SELECT pg_backend_pid()"))
        await db.fetchval(BURN)
        return pid

    return await while_connected(dsn, burn)


def wait_gone(pid: int, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while Path(f"/proc/{pid}").exists():  # the backend exits, the postmaster reaps it
        assert time.monotonic() < deadline, f"backend {pid} still running after {seconds} s"
        time.sleep(0.02)


def test_cluster_cpu_counts_backends_that_have_exited(pg_cluster: PgCluster, pg_database: PgDatabase) -> None:
    # An autovacuum worker or a closed connection's backend ends inside a benchmark's window; its CPU is the
    # server's all the same (the postmaster reaps it: cutime/cstime, proc(5)).
    before = pg_cluster.cpu_seconds()
    wait_gone(asyncio.run(burn_in_a_backend(pg_database.dsn)))
    spent = pg_cluster.cpu_seconds() - before
    assert spent >= 0.4, f"the exited backend's CPU was not counted: {spent:.2f} s"


async def burn_and_read_kinds(cluster: PgCluster, dsn: str) -> tuple[dict[str, float], dict[str, float]]:
    """cpu_by_kind before and after a burn in a connection that is still open when read."""

    async def burn(db: Any) -> tuple[dict[str, float], dict[str, float]]:
        before = cluster.cpu_by_kind()
        await db.fetchval(BURN)
        return before, cluster.cpu_by_kind()

    return await while_connected(dsn, burn)


def test_cluster_cpu_by_kind_names_the_backends_and_the_background_processes(
    pg_cluster: PgCluster, pg_database: PgDatabase
) -> None:
    before, after = asyncio.run(burn_and_read_kinds(pg_cluster, pg_database.dsn))
    assert {"postmaster", "exited", "checkpointer", "walwriter", "client backends"} <= set(after), after
    assert after["client backends"] - before.get("client backends", 0.0) >= 0.4, (before, after)


def test_write_counters_count_the_wal_and_the_status_pages_a_load_writes(
    pg_cluster: PgCluster, pg_database: PgDatabase
) -> None:
    # The keep-up benchmark prints these per entry (status_keepup.Paced.writes_share): what it divides must move
    # with what was written, and name the index's own table.
    before = pg_cluster.write_counters(pg_database.name)
    assert before["status_page"] == 0  # no such table yet
    rows = 4000  # ~4 MB of incompressible page rows
    pg_cluster.psql(
        "CREATE TABLE status_page (page bytea PRIMARY KEY, data bytea NOT NULL); "
        f"INSERT INTO status_page SELECT int4send(i), decode(repeat(md5(i::text), 32), 'hex') "
        f"FROM generate_series(1, {rows}) i",
        pg_database.name,
    )
    after = pg_cluster.write_counters(pg_database.name)
    written = rows * 512
    assert after["status_page"] >= written, after
    assert after["wal"] - before["wal"] >= written, (before, after)
    assert after["wal records"] - before["wal records"] >= rows, (before, after)
    assert after["database"] - before["database"] >= written, (before, after)
    assert all(after[what] >= before[what] for what in ("by backends", "by the checkpointer", "by the bgwriter"))


def test_maintenance_counts_the_checkpoints_vacuums_analyzes_and_wal_a_window_holds(
    pg_cluster: PgCluster, pg_database: PgDatabase
) -> None:
    # The growth driver prints these over each rate window (loadtest/serverwindow.py): each must move with its cause.
    before = pg_cluster.maintenance(pg_database.name)
    pg_cluster.psql(
        "CREATE TABLE upkeep (k bigint PRIMARY KEY); INSERT INTO upkeep SELECT generate_series(1, 20000)",
        pg_database.name,
    )
    pg_cluster.psql("CHECKPOINT", pg_database.name)
    pg_cluster.psql("UPDATE upkeep SET k = -k WHERE k <= 1000", pg_database.name)  # after it: full-page images
    pg_cluster.psql("VACUUM upkeep", pg_database.name)
    pg_cluster.psql("ANALYZE upkeep", pg_database.name)
    after = pg_cluster.maintenance(pg_database.name)
    done = {name: after[name] - before[name] for name in after}
    assert done["checkpoints"] >= 1 and done["checkpoint bytes"] >= 8192, done
    assert done["vacuums"] >= 1 and done["analyzes"] >= 1, done
    assert done["wal"] >= 20000 * 8 and done["full-page images"] >= 1, done


async def backend_pid_seen(cluster: PgCluster, dsn: str) -> tuple[int, list[int]]:
    """An open connection's backend pid, and the cluster's process ids read while it is open."""

    async def read(db: Any) -> tuple[int, list[int]]:
        return int(await db.fetchval("SELECT pg_backend_pid()")), cluster.process_ids()

    return await while_connected(dsn, read)


def test_cluster_process_ids_are_the_postmaster_and_its_live_children(
    pg_cluster: PgCluster, pg_database: PgDatabase
) -> None:
    # The keep-up benchmark sums these processes' waits for a core (loadtest/schedwait.py).
    backend, pids = asyncio.run(backend_pid_seen(pg_cluster, pg_database.dsn))
    assert pids[0] == pg_cluster.process.pid and backend in pids, (backend, pids)
    assert len(pids) >= 4  # checkpointer, background writer, WAL writer at least
    wait_gone(backend)
    assert backend not in pg_cluster.process_ids()
