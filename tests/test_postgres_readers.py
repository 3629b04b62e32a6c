"""PostgreSQL reads on connections kept out of the pool (logserver/postgres.py `_read`): a read skips the pool's
acquire and release, and the kept connections never starve commits, never outlive a dropped session, never carry a
cancelled query into the next read, and never keep the pool from closing."""

import asyncio

import asyncpg  # type: ignore[import-untyped]  # no stubs shipped
import pytest
from pg_cluster import PgDatabase
from test_leafproof import Log, check_every_leaf, entry

from logserver.postgres import PostgresStorage
from logserver.storage import StorageError


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
