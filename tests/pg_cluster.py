"""Pytest fixtures for a throwaway PostgreSQL cluster (loadtest/pgcluster.py): one per session, a database per test.

Registered in conftest.py (pytest_plugins), so any test can ask for `pg_cluster` or `pg_database`. If PostgreSQL
cannot start, the tests that need it fail with the reason: they never skip.
"""

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from loadtest.pgcluster import PgCluster, start_cluster

_names = itertools.count(1)


@dataclass(frozen=True)
class PgDatabase:
    cluster: PgCluster
    name: str

    @property
    def dsn(self) -> str:
        return self.cluster.dsn(self.name)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    cluster = start_cluster()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def pg_database(pg_cluster: PgCluster) -> PgDatabase:
    """A fresh, empty database for one test (left in the cluster, which is thrown away at the end)."""
    name = f"t{next(_names)}"
    if pg_cluster.process.poll() is not None:  # a fault test stopped it and failed before restarting
        pg_cluster.restart()
    pg_cluster.create_database(name)
    return PgDatabase(pg_cluster, name)


@pytest.fixture(params=["sqlite", "postgresql"])
def log_dsn(request: pytest.FixtureRequest) -> str | None:
    """Run a server test on both engines: None for SQLite, else a fresh PostgreSQL database's DSN."""
    if request.param == "sqlite":
        return None
    database: PgDatabase = request.getfixturevalue("pg_database")
    return database.dsn


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """(engine, where): a SQLite file or a PostgreSQL DSN, one fresh database per test."""
    if request.param == "sqlite":
        return "sqlite", str(tmp_path / "log.db")
    database: PgDatabase = request.getfixturevalue("pg_database")
    return "postgresql", database.dsn


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def module_log_dsn(request: pytest.FixtureRequest) -> str | None:
    """As log_dsn, for module-scoped servers."""
    if request.param == "sqlite":
        return None
    cluster: PgCluster = request.getfixturevalue("pg_cluster")
    return cluster.create_database(f"m{next(_names)}")
