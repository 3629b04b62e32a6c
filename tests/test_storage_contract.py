"""The Storage durability contract (logserver/storage.py), checked the same way on SQLite and on PostgreSQL."""

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from pg_cluster import PgDatabase

from loadtest.localproc import free_port
from logserver.postgres import PostgresStorage
from logserver.sqlite import SQLiteStorage
from logserver.storage import EntryRecord, Head, HeadMovedError, Storage, StorageError, StoredEntry
from tlogcore.merkle import leaf_hash

Opener = Callable[[], Awaitable[Any]]


@pytest.fixture(params=["sqlite", "postgresql"])
def open_storage(request: pytest.FixtureRequest, tmp_path: Path) -> Opener:
    """Opens a storage on one database per test; call it twice for two processes' views of the same log."""
    if request.param == "sqlite":
        return lambda: SQLiteStorage.open(tmp_path / "log.db")
    database: PgDatabase = request.getfixturevalue("pg_database")
    return lambda: PostgresStorage.open(database.dsn, pool_size=2)


@asynccontextmanager
async def opened(open_storage: Opener) -> AsyncIterator[Any]:
    storage = await open_storage()
    try:
        yield storage
    finally:
        await storage.close()


def entry(i: int, registry: bool = False) -> EntryRecord:
    document = hashlib.sha256(b"doc %d" % (i % 3)).digest()
    # Bytes a text round trip would damage: NUL, a high byte, CR, and no trailing newline on some.
    data = b"log.example\nissue\ndocument " + document.hex().encode() + b"\n\x00\xff\r" + b"x" * i
    return EntryRecord(data, leaf_hash(data), None if registry else document, registry)


def head(size: int, tag: bytes = b"") -> Head:
    root = hashlib.sha256(b"root %d" % size + tag).digest()
    return Head(size, root, b"checkpoint %d " % size + root.hex().encode() + b"\n")


def run(coroutine: Awaitable[None]) -> None:
    asyncio.run(coroutine)  # type: ignore[arg-type]


def test_commit_then_read_back_byte_for_byte(open_storage: Opener) -> None:
    async def scenario() -> None:
        async with opened(open_storage) as storage:
            s: Storage = storage
            assert await s.head() is None and await s.latest_published() is None
            assert await s.document_read(bytes(32)) == ([], None)  # no checkpoint published yet
            await s.commit_batch(None, head(0), [], 0, [], publish=True)
            entries = [entry(i, registry=i == 1) for i in range(5)]
            hashes = [hashlib.sha256(b"node %d" % i).digest() for i in range(8)]
            await s.commit_batch(head(0), head(5), entries, 0, hashes, publish=False)
            assert await s.head() == head(5)
            assert await s.get_entries(0, 5) == [e.data for e in entries]
            assert await s.get_hashes([7, 0, 3, 3]) == [hashes[7], hashes[0], hashes[3], hashes[3]]
            with pytest.raises(KeyError):
                await s.get_hashes([8])
            with pytest.raises(KeyError):
                await s.get_entries(3, 6)
            absent = hashlib.sha256(b"absent").digest()
            assert await s.find_leaves([entries[4].leaf_hash, absent, entries[0].leaf_hash]) == {
                entries[4].leaf_hash: 4,
                entries[0].leaf_hash: 0,
            }
            document = entries[0].document
            assert document is not None
            read = await s.document_read(document)
            assert [e.index for e in read.entries] == [0, 3]  # entry 1 is a registry one
            assert read.published == head(0).checkpoint  # the newest published checkpoint, read beside them
            assert await s.document_read(absent) == ([], head(0).checkpoint)
            many = await s.documents_entries([document, absent, entries[2].document or b"", entries[4].document or b""])
            assert {d: [e.index for e in found] for d, found in many.items()} == {
                document: [0, 3],
                absent: [],
                entries[2].document: [2],
                entries[4].document: [4],
            }  # the bulk lookup: one read, each document its own entries in log order
            assert [(e.index, e.data) for e in await s.registry_entries()] == [(1, entries[1].data)]
            assert [e.index for e in await s.registry_entries(1)] == [1]  # from index 1 on (the key index's reads)
            assert await s.registry_entries(2) == []
            # Published: size 0 at once; size 5 only once cosigned.
            assert await s.latest_published() == head(0).checkpoint
            assert await s.checkpoint_at(5) == head(5).checkpoint
            cosigned = head(5).checkpoint + b"\n\xe2\x80\x94 witness sig\n"
            await s.set_cosigned(5, cosigned)
            assert await s.latest_published() == cosigned and await s.checkpoint_at(5) == cosigned
            assert await s.document_read(document) == (
                [StoredEntry(0, entries[0].data), StoredEntry(3, entries[3].data)],
                cosigned,
            )
            assert await s.checkpoint_at(4) is None
        async with opened(open_storage) as reopened:  # durable: another connection sees it all
            assert await reopened.head() == head(5)
            assert await reopened.get_entries(0, 5) == [e.data for e in entries]

    run(scenario())


def test_thousands_of_hashes_in_one_read_unsorted_and_repeated(open_storage: Opener) -> None:
    """SQLite reads the ids as one JSON array (once in chunks of 400 bound parameters); every id its own hash, in
    the order asked, repeats included, and one id not stored fails the whole read."""

    async def scenario() -> None:
        async with opened(open_storage) as s:
            await s.commit_batch(None, head(0), [], 0, [], publish=True)
            hashes = [hashlib.sha256(b"node %d" % i).digest() for i in range(3000)]
            await s.commit_batch(head(0), head(1), [entry(0)], 0, hashes, publish=False)
            asked = [i * 1103 % 3000 for i in range(3000)] + [5, 5, 2999, 0]
            assert await s.get_hashes(asked) == [hashes[i] for i in asked]
            with pytest.raises(KeyError):
                await s.get_hashes([*asked, 3000])

    run(scenario())


def test_compare_and_swap_refuses_a_stale_head_and_writes_nothing(open_storage: Opener) -> None:
    async def scenario() -> None:
        async with opened(open_storage) as one, opened(open_storage) as two:
            await one.commit_batch(None, head(0), [], 0, [], publish=True)
            with pytest.raises(HeadMovedError):  # a second "first" checkpoint
                await two.commit_batch(None, head(0, b"other"), [], 0, [], publish=True)
            await one.commit_batch(head(0), head(1), [entry(0)], 0, [b"\x01" * 32], publish=True)
            with pytest.raises(HeadMovedError):  # two extends the head it last saw: size 0
                await two.commit_batch(head(0), head(1, b"fork"), [entry(9)], 0, [b"\x02" * 32], publish=True)
            with pytest.raises(HeadMovedError):  # the right size but another root
                await two.commit_batch(head(1, b"fork"), head(2), [entry(9)], 1, [b"\x02" * 32], publish=True)
            assert await two.head() == head(1)
            assert await two.get_entries(0, 1) == [entry(0).data]
            assert await two.get_hashes([0]) == [b"\x01" * 32]
            assert await two.find_leaves([entry(9).leaf_hash]) == {}
            assert await two.checkpoint_at(2) is None

    run(scenario())


def test_a_failing_commit_stores_none_of_it(open_storage: Opener) -> None:
    async def scenario() -> None:
        async with opened(open_storage) as s:
            await s.commit_batch(None, head(0), [], 0, [], publish=True)
            await s.commit_batch(head(0), head(1), [entry(0)], 0, [b"\x01" * 32], publish=True)
            # Stored hash 0 exists already: the insert fails after the head update and the leaf insert.
            with pytest.raises(StorageError) as raised:
                await s.commit_batch(head(1), head(2), [entry(1)], 0, [b"\x02" * 32], publish=True)
            assert not isinstance(raised.value, HeadMovedError)
            assert await s.head() == head(1)
            assert await s.find_leaves([entry(1).leaf_hash]) == {}
            assert await s.checkpoint_at(2) is None
            await s.commit_batch(head(1), head(2), [entry(1)], 1, [b"\x02" * 32], publish=True)  # and it goes on
            assert await s.get_entries(0, 2) == [entry(0).data, entry(1).data]

    run(scenario())


def test_one_lease_holder_at_a_time_released_when_it_closes(open_storage: Opener) -> None:
    async def scenario() -> None:
        second = await open_storage()
        try:
            first = await open_storage()
            assert await first.acquire_lease("first-process", 100.0, 5.0) is None
            assert await first.acquire_lease("first-process", 101.0, 5.0) is None  # renewal
            assert await second.acquire_lease("second-process", 101.0, 5.0) == "first-process"
            await first.close()  # as a process dying does: the session or the file lock goes
            assert await second.acquire_lease("second-process", 102.0, 5.0) is None
        finally:
            await second.close()

    run(scenario())


def test_postgres_shared_queue_is_idempotent_and_carries_refusals(pg_database: PgDatabase) -> None:
    async def scenario() -> None:
        storage = await PostgresStorage.open(pg_database.dsn, pool_size=2)
        try:
            a, b, c = (entry(i) for i in range(3))
            await storage.enqueue([(a.leaf_hash, a.data), (b.leaf_hash, b.data)])
            await storage.enqueue([(a.leaf_hash, a.data), (c.leaf_hash, c.data)])  # a again: left as it was
            assert await storage.queued(10) == [a.data, b.data, c.data]
            assert await storage.queued(1) == [a.data]
            await storage.refuse_queued({b.leaf_hash: "retired issuer"})
            assert await storage.queued(10) == [a.data, c.data]
            assert await storage.queue_refusals([a.leaf_hash, b.leaf_hash]) == {b.leaf_hash: "retired issuer"}
            assert await storage.queue_refusals([b.leaf_hash]) == {}  # collected once
            await storage.dequeue([a.leaf_hash])
            assert await storage.queued(10) == [c.data]
        finally:
            await storage.close()

    run(scenario())


def test_postgres_unreachable_is_one_clear_storage_error(pg_cluster: Any) -> None:
    closed_port = free_port()  # nothing listens there
    with pytest.raises(StorageError, match="cannot connect to PostgreSQL"):
        asyncio.run(PostgresStorage.open(f"postgresql://postgres@127.0.0.1:{closed_port}/x", timeout=2))
    with pytest.raises(StorageError, match="cannot connect to PostgreSQL"):
        asyncio.run(PostgresStorage.open(pg_cluster.dsn("no_such_database"), timeout=2))
