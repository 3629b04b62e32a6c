"""The log says at start-up when the PostgreSQL server's own settings make it slow under load (logserver/postgres.py
`wal_size_advice`): a `max_wal_size` below 4 GB (docs/reference.md "PostgreSQL server settings")."""

import asyncio
import logging

import pytest
from pg_cluster import PgDatabase

from loadtest.pgcluster import start_cluster
from logserver.postgres import LEAST_MAX_WAL_SIZE, PostgresStorage, wal_size_advice


def warnings_at_open(dsn: str, caplog: pytest.LogCaptureFixture) -> list[str]:
    caplog.clear()

    async def open_and_close() -> None:
        storage = await PostgresStorage.open(dsn, pool_size=2)
        await storage.close()

    with caplog.at_level(logging.WARNING, logger="logserver.postgres"):
        asyncio.run(open_and_close())
    return [record.getMessage() for record in caplog.records if record.name == "logserver.postgres"]


def test_a_small_max_wal_size_is_named_at_start_up_with_what_to_set(
    pg_database: PgDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    # A cluster of its own: a server's command line (the session cluster's 4GB) outranks ALTER SYSTEM.
    cluster = start_cluster(settings={"max_wal_size": "1GB"})
    try:
        (warning,) = warnings_at_open(cluster.create_database("small"), caplog)
    finally:
        cluster.stop()
    assert "max_wal_size is 1024 MB" in warning
    assert "4GB or more" in warning and "docs/reference.md" in warning
    assert warnings_at_open(pg_database.dsn, caplog) == []  # the session cluster's 4GB: nothing to say


def test_the_advice_starts_below_4_gb() -> None:
    assert wal_size_advice(LEAST_MAX_WAL_SIZE) is None
    assert wal_size_advice(16 << 30) is None
    assert "max_wal_size is 4095 MB" in (wal_size_advice(LEAST_MAX_WAL_SIZE - (1 << 20)) or "")
