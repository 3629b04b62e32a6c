"""PostgreSQL reads on connections kept out of the pool (logserver/postgres.py `_read`): a read skips the pool's
acquire and release, and the kept connections never starve commits, never outlive a dropped session, never carry a
cancelled query into the next read, and never keep the pool from closing."""

import asyncio
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]  # no stubs shipped
import pytest
from pg_cluster import PgDatabase
from test_leafproof import Log, check_every_leaf, entry

from logserver.config import ServerConfig
from logserver.opening import open_status_store, open_storage
from logserver.postgres import PostgresStorage
from logserver.statusstore import (
    INDEXER_TIMEOUT,
    LOOKUP_TIMEOUT,
    PG_IDS,
    IndexVersion,
    PostgresStatusStore,
)
from logserver.storage import StorageError
from tlogcore.statusindex_pages import page_id_bytes
from tlogcore.statuspageset import PageSet


def kept(storage: PostgresStorage) -> list[object]:
    """The idle readers (its queue's items)."""
    return list(storage._readers.idle)


def test_reads_run_on_a_kept_connection_one_query_each(pg_database: PgDatabase) -> None:
    async def scenario() -> None:
        storage = await PostgresStorage.open(pg_database.dsn, pool_size=4)
        try:
            log = Log(storage)
            await log.append([entry(i) for i in range(300)])
            assert (await storage.leaf_inclusion(log.leaves[10], None)).index == 10
            assert len(kept(storage)) == 1  # kept, not released to the pool
            reader = kept(storage)[0]
            before = reader._con._protocol.queries_count
            for i in (11, 12, 200):  # in leaf 10's block: its upper hashes are kept, so one statement each
                assert (await storage.leaf_inclusion(log.leaves[i], None)).index == i
                assert kept(storage) == [reader]
            assert reader._con._protocol.queries_count - before == 3  # the statement alone, each time
            await check_every_leaf(log)
        finally:
            await storage.close()

    asyncio.run(scenario())


def test_kept_readers_are_half_the_pool_and_commits_still_run(pg_database: PgDatabase) -> None:
    async def scenario() -> None:
        storage = await PostgresStorage.open(pg_database.dsn, pool_size=2)
        try:
            log = Log(storage)
            await log.append([entry(i) for i in range(200)])
            proofs = await asyncio.gather(*(storage.leaf_inclusion(log.leaves[i], None) for i in range(0, 200, 7)))
            assert [p.index for p in proofs] == list(range(0, 200, 7))
            assert len(kept(storage)) == 1  # pool of two: one kept at most
            async with asyncio.timeout(20):  # a commit gets the other connection while the reader is kept
                await log.append([entry(i) for i in range(200, 260)])
            assert (await storage.leaf_inclusion(log.leaves[259], None)).index == 259
            await check_every_leaf(log)
        finally:
            await storage.close()

    asyncio.run(scenario())


def test_a_pool_of_one_keeps_no_reader(pg_database: PgDatabase) -> None:
    async def scenario() -> None:
        storage = await PostgresStorage.open(pg_database.dsn, pool_size=1)
        try:
            log = Log(storage)
            await log.append([entry(i) for i in range(50)])
            assert (await storage.leaf_inclusion(log.leaves[7], None)).index == 7
            assert kept(storage) == []
            await log.append([entry(i) for i in range(50, 60)])  # the only connection is back in the pool
            await check_every_leaf(log)
        finally:
            await storage.close()

    asyncio.run(scenario())


def test_a_dropped_reader_is_replaced_and_the_read_retried(pg_database: PgDatabase) -> None:
    async def scenario() -> None:
        storage = await PostgresStorage.open(pg_database.dsn, pool_size=4)
        try:
            log = Log(storage)
            await log.append([entry(i) for i in range(100)])
            await asyncio.gather(*(storage.leaf_inclusion(log.leaves[i], None) for i in range(20)))
            held = kept(storage)
            assert held
            assert pg_database.cluster.terminate_backends(pg_database.name, "application_name <> 'psql'") >= len(held)
            assert (await storage.leaf_inclusion(log.leaves[42], None)).index == 42  # retried on a new session
            assert all(reader not in held for reader in kept(storage))
            await check_every_leaf(log)
        finally:
            await storage.close()

    asyncio.run(scenario())


def test_a_cancelled_or_failed_read_does_not_keep_its_connection(pg_database: PgDatabase) -> None:
    async def scenario() -> None:
        storage = await PostgresStorage.open(pg_database.dsn, pool_size=4)
        try:
            log = Log(storage)
            await log.append([entry(i) for i in range(30)])
            slow = asyncio.create_task(storage._fetch("SELECT pg_sleep(5)"))
            await asyncio.sleep(0.3)
            slow.cancel()
            with pytest.raises(asyncio.CancelledError):
                await slow
            assert kept(storage) == []  # back to the pool, which cancelled the query
            with pytest.raises(StorageError):
                await storage._fetch("SELECT 1 / 0")
            assert kept(storage) == []
            async with asyncio.timeout(4):  # not waiting behind the cancelled sleep
                assert (await storage.leaf_inclusion(log.leaves[3], None)).index == 3
            await check_every_leaf(log)
        finally:
            await storage.close()

    asyncio.run(scenario())


def test_close_returns_with_readers_kept_and_a_read_in_flight(pg_database: PgDatabase) -> None:
    async def scenario() -> None:
        storage = await PostgresStorage.open(pg_database.dsn, pool_size=6)
        log = Log(storage)
        await log.append([entry(i) for i in range(40)])
        await asyncio.gather(*(storage.leaf_inclusion(log.leaves[i], None) for i in range(12)))
        assert len(kept(storage)) >= 1
        in_flight = asyncio.create_task(storage._fetch("SELECT pg_sleep(0.5), 1"))
        await asyncio.sleep(0.1)
        async with asyncio.timeout(20):
            await storage.close()
            rows = await in_flight
        assert rows[0][1] == 1
        assert kept(storage) == []
        with pytest.raises((StorageError, asyncpg.InterfaceError)):
            await storage.head()  # the pool is closed: no connection was kept past close

    asyncio.run(scenario())


def test_a_statement_timeout_says_so_on_both_postgresql_stores(pg_database: PgDatabase) -> None:
    """asyncpg's timeout has no text of its own: a shard's failed read once logged "status index: PostgreSQL: "
    and nothing after it (logserver/storage.failure_text), in the log's store and the status index's alike."""

    async def scenario() -> None:
        storage = await PostgresStorage.open(pg_database.dsn, pool_size=1, timeout=0.3)
        status = await PostgresStatusStore.open(pg_database.dsn, pool_size=1, timeout=0.3)
        try:
            for read in (storage._fetch, status._fetch):
                with pytest.raises(StorageError) as failed:
                    await read("SELECT pg_sleep(2)")
                assert str(failed.value).endswith(
                    ": no answer within the timeout (the database is overloaded or unreachable)"
                )
        finally:
            await status.close()
            await storage.close()

    asyncio.run(scenario())


def test_the_status_index_bulk_statements_get_time_by_their_rows(pg_database: PgDatabase) -> None:
    """A commit's COPY and a read of many pages may take longer than the pool's timeout on a loaded machine: their
    timeout grows by ROW_SECONDS per row. Here the table is locked for 0.6 s by another session while the pool's
    timeout is 0.3 s: a commit of 20,000 rows (0.3 + 2 s) and a read of 20,000 pages (4 statements of PG_IDS, 0.3
    + 0.5 s each) wait and succeed; a read of one page still gives up after about 0.3 s. Before, the commit failed
    after 0.3 s, as a step at 10^6 did."""

    async def scenario() -> None:
        status = await PostgresStatusStore.open(pg_database.dsn, pool_size=1, timeout=0.3)
        locker = await asyncpg.connect(pg_database.dsn)
        try:
            first, second = IndexVersion(1, b"q" * 32, 1), IndexVersion(5, b"r" * 32, 1)
            await status.commit(None, first, {}, made_rows([(b"\x00\x00", 1, b"root")]))  # COPY's intro prepared
            rows = [(b"\x00\x15" + i.to_bytes(8, "big"), 5, b"page") for i in range(20_000)]
            async with locker.transaction():
                await locker.execute("LOCK TABLE status_page IN ACCESS EXCLUSIVE MODE")
                commit = asyncio.create_task(status.commit(first, second, {}, made_rows(rows)))
                await asyncio.sleep(0.6)
            await commit
            assert (await status.head()) == second
            async with locker.transaction():
                await locker.execute("LOCK TABLE status_page IN ACCESS EXCLUSIVE MODE")
                with pytest.raises(StorageError, match="no answer within the timeout"):
                    await status._select_pages([rows[0][0]], 5)
                read = asyncio.create_task(status._select_pages([row[0] for row in rows], 5))
                await asyncio.sleep(0.6)
            assert len(await read) == 20_000
        finally:
            await locker.close()
            await status.close()

    asyncio.run(scenario())


def made_rows(rows: list[tuple[bytes, int, bytes]]) -> PageSet:
    pages = PageSet(0)
    pages.made_rows(rows)
    return pages


def test_the_indexer_opens_postgresql_with_its_longer_timeout(pg_database: PgDatabase, tmp_path: Path) -> None:
    """The indexer's process and its shards (indexer=True) wait INDEXER_TIMEOUT for a statement, lookups
    LOOKUP_TIMEOUT: an indexer's read or commit outrunning 10 s on a loaded machine replaced its process."""

    async def scenario() -> None:
        config = ServerConfig(engine="postgresql", postgresql_dsn=pg_database.dsn)
        for indexer, timeout in ((True, INDEXER_TIMEOUT), (False, LOOKUP_TIMEOUT)):
            store = await open_status_store(tmp_path, config, indexer=indexer)
            storage = await open_storage(tmp_path, config, 2, timeout)
            try:
                assert isinstance(store, PostgresStatusStore) and isinstance(storage, PostgresStorage)
                assert store._timeout == storage._timeout == timeout
                async with store._pool.acquire() as conn:
                    assert conn._config.command_timeout == timeout
            finally:
                await store.close()
                await storage.close()
        assert INDEXER_TIMEOUT >= 60 > LOOKUP_TIMEOUT

    asyncio.run(scenario())


def test_the_status_index_sends_page_ids_in_chunks(pg_database: PgDatabase) -> None:
    """A long `page = ANY($1)` array over a big table is planned by PostgreSQL as a sequential scan of the whole
    table (EXPLAIN over 3·10^6 rows of 600 B: from about 10^5 ids on; docs/status-proofs.md §11, seventeenth round):
    the indexer's reads and prunes of a step at 10^6 (about 227,000 pages) did that, and a prune outran 80 s under
    load. Every read and prune now sends at most PG_IDS ids per statement, and still reads and deletes them all."""

    async def scenario() -> None:
        status = await PostgresStatusStore.open(pg_database.dsn, pool_size=1)
        sent: list[int] = []
        try:
            pages = [(20, i) for i in range(30_000)]
            rows = [(page_id_bytes(page), v, b"p" * 20) for v in (1, 2) for page in pages]
            async with status._pool.acquire() as conn:
                await conn.copy_records_to_table("status_page", records=rows, columns=["page", "version", "data"])
                conn.add_query_logger(lambda query: sent.append(max(map(len_of_list, query.args), default=0)))
            ids = [page_id_bytes(page) for page in pages]
            found = await status._select_pages(ids[:12_345], 2)
            assert sorted((bytes(row["page"]), bytes(row["data"])) for row in found) == [
                (page, b"p" * 20) for page in sorted(ids[:12_345])
            ]
            await status.commit(None, IndexVersion(3, b"r" * 32, 1), {}, made_rows([]), [(2, ids[:20_000])])
            await status.prune(2, ids[20_000:])
            assert [count for count in sent if count > 1] == [PG_IDS, PG_IDS, 2_345] + [PG_IDS] * 4 + [PG_IDS] * 2
            async with status._pool.acquire() as conn:
                assert await conn.fetchval("SELECT count(*) FROM status_page WHERE version = 1") == 0
                assert await conn.fetchval("SELECT count(*) FROM status_page WHERE version = 2") == 30_000
        finally:
            await status.close()

    asyncio.run(scenario())


def len_of_list(value: object) -> int:
    return len(value) if isinstance(value, list) else 0
