"""Where a server's data lives, opened from its configuration: by `serve` and by the status indexer's process
(indexerprocess.py), which opens its own connections to the same log."""

from pathlib import Path

from logserver.config import ServerConfig
from logserver.postgres import PostgresStorage
from logserver.sqlite import SQLiteStorage
from logserver.statusstore import (
    INDEXER_TIMEOUT,
    LOOKUP_CACHE_BYTES,
    LOOKUP_TIMEOUT,
    PostgresStatusStore,
    SQLiteStatusStore,
    StatusStore,
)
from logserver.storage import Storage

DATABASE = "log.db"
# SQLite: the status index's own file (statusstore.py): its updates never hold the log's write lock.
STATUS_DATABASE = "log.db.status"


async def open_storage(
    data: Path, config: ServerConfig, pool_size: int | None = None, timeout: float = LOOKUP_TIMEOUT
) -> Storage:
    """[storage] engine: SQLite in the data directory, or a PostgreSQL database several servers may share.
    `timeout`: each PostgreSQL statement's (the indexer's process reads its steps' entries with INDEXER_TIMEOUT)."""
    if config.engine == "postgresql":
        return await PostgresStorage.open(config.postgresql_dsn, pool_size or config.postgresql_pool_size, timeout)
    return await SQLiteStorage.open(data / DATABASE, config.sqlite_busy_timeout_ms)


async def open_status_store(data: Path, config: ServerConfig, indexer: bool = False) -> StatusStore:
    """The status index beside the log: in the same PostgreSQL database, or an SQLite file of its own beside the
    log's. `indexer`: for the indexer's process or a shard, whose statements may take longer than a lookup's
    (statusstore.INDEXER_TIMEOUT); a serving process's SQLite reader caches more of the file for its lookups
    (statusstore.LOOKUP_CACHE_BYTES)."""
    if config.engine == "postgresql":
        timeout = INDEXER_TIMEOUT if indexer else LOOKUP_TIMEOUT
        return await PostgresStatusStore.open(config.postgresql_dsn, timeout=timeout)
    cache = None if indexer else LOOKUP_CACHE_BYTES  # None: the store's own (CACHE_BYTES)
    return await SQLiteStatusStore.open(data / STATUS_DATABASE, log_path=data / DATABASE, read_cache_bytes=cache)


def database_name(data: Path, config: ServerConfig) -> str:
    return "the PostgreSQL database" if config.engine == "postgresql" else str(data / DATABASE)
