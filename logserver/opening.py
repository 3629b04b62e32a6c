"""Where a server's data lives, opened from its configuration: by `serve` and by the status indexer's process
(indexerprocess.py), which opens its own connections to the same log."""

from pathlib import Path

from logserver.config import ServerConfig
from logserver.postgres import PostgresStorage
from logserver.sqlite import SQLiteStorage
from logserver.statusstore import PostgresStatusStore, SQLiteStatusStore, StatusStore
from logserver.storage import Storage

DATABASE = "log.db"


async def open_storage(data: Path, config: ServerConfig, pool_size: int | None = None) -> Storage:
    """[storage] engine: SQLite in the data directory, or a PostgreSQL database several servers may share."""
    if config.engine == "postgresql":
        return await PostgresStorage.open(config.postgresql_dsn, pool_size or config.postgresql_pool_size)
    return await SQLiteStorage.open(data / DATABASE, config.sqlite_busy_timeout_ms)


async def open_status_store(data: Path, config: ServerConfig) -> StatusStore:
    """The status index beside the log: in the same PostgreSQL database, or the same SQLite file."""
    if config.engine == "postgresql":
        return await PostgresStatusStore.open(config.postgresql_dsn)
    return await SQLiteStatusStore.open(data / DATABASE)


def database_name(data: Path, config: ServerConfig) -> str:
    return "the PostgreSQL database" if config.engine == "postgresql" else str(data / DATABASE)
