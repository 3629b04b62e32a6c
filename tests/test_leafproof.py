"""Inclusion proofs by leaf hash in one statement (logserver/leafproof.py), on SQLite and PostgreSQL: the ids it reads
are the ones tlogcore's plan names, and every proof it returns is the one the three-read path gave, at every size,
across the lookup-merge watermark, under an 8-byte key collision, and for absent leaves."""

import asyncio
import hashlib
import random
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]  # no stubs shipped
import pytest

from logserver import leafproof, proofs
from logserver.postgres import PostgresStorage
from logserver.sqlite import SQLiteStorage
from logserver.storage import EntryRecord, Head, StorageError
from tlogcore import merkle


def test_inclusion_ids_are_the_plan_of_tlogcore_for_every_leaf_of_small_trees() -> None:
    for size in range(1, 260):
        for index in range(size):
            plan = merkle.inclusion_plan(index, size)
            groups = leafproof.inclusion_ids(index, size)
            assert [i for g in groups for i in g] == list(plan.stored_indexes), (index, size)
            assert [len(g) for g in groups] == [len(merkle.range_nodes(s, e)) for s, e in plan.ranges], (index, size)


def test_inclusion_ids_are_the_plan_of_tlogcore_in_big_trees() -> None:
    rng = random.Random(20)
    for size in [10**6, 10**7, 2**40 + 12345, 2**61 - 1, 2**32, 2**32 + 1]:
        for index in [0, size - 1, size // 2, *(rng.randrange(size) for _ in range(50))]:
            plan = merkle.inclusion_plan(index, size)
            assert [i for g in leafproof.inclusion_ids(index, size) for i in g] == list(plan.stored_indexes)


class Log:
    """A real tree in a storage, appended in batches through commit_batch (the hashes of merkle.append_leaves)."""

    def __init__(self, storage: Any) -> None:
        self.storage = storage
        self.leaves: list[bytes] = []
        self.edge: list[bytes] = []
        self.head: Head | None = None

    async def append(self, entries: Sequence[EntryRecord]) -> None:
        size = len(self.leaves)
        appended = merkle.append_leaves(size, self.edge, [e.leaf_hash for e in entries])
        new = Head(size + len(entries), appended.root, b"checkpoint %d\n" % (size + len(entries)))
        if self.head is None:
            await self.storage.commit_batch(None, Head(0, merkle.EMPTY_ROOT, b"checkpoint 0\n"), [], 0, [], True)
            self.head = Head(0, merkle.EMPTY_ROOT, b"checkpoint 0\n")
        first = merkle.stored_hash_count(size)
        await self.storage.commit_batch(self.head, new, entries, first, appended.new_hashes, True)
        self.head, self.edge = new, appended.edge
        self.leaves += [e.leaf_hash for e in entries]


def entry(i: int, leaf: bytes | None = None) -> EntryRecord:
    data = b"leafproof.example\nissue\n%d\n" % i
    return EntryRecord(data, leaf or merkle.leaf_hash(data), None, False)


async def check_every_leaf(log: Log, size: int | None = None) -> None:
    head = len(log.leaves)
    tree = head if size is None else size
    root = (
        merkle.fold_range(
            [
                h
                for h in await log.storage.get_hashes(
                    [merkle.stored_hash_index(lv, i) for lv, i in merkle.range_nodes(0, tree)]
                )
            ]
        )
        if tree
        else merkle.EMPTY_ROOT
    )
    for index, leaf in enumerate(log.leaves):
        found = await log.storage.leaf_inclusion(leaf, size)
        assert (found.head, found.size, found.index) == (head, tree, index)
        if index < tree:
            expected = (await proofs.inclusion_proofs(log.storage, [index], tree))[0]
            assert list(found.proof) == expected, (index, tree)
            merkle.verify_inclusion(leaf, index, tree, found.proof, root)
        else:
            assert found.proof == ()


async def open_engine(engine: str, tmp_path: Path, request: pytest.FixtureRequest) -> Any:
    if engine == "sqlite":
        return await SQLiteStorage.open(tmp_path / "log.db")
    return await PostgresStorage.open(request.getfixturevalue("pg_database").dsn, pool_size=2)


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_every_leaf_at_every_size_across_the_merge_watermark(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    async def scenario() -> None:
        storage = await open_engine(engine, tmp_path, request)
        try:
            log = Log(storage)
            empty = await storage.leaf_inclusion(hashlib.sha256(b"absent").digest(), None)
            assert empty == leafproof.LeafProof(0, 0, None, ())
            count = 0
            for batch in [1, 1, 2, 3, 9, 16, 1, 31, 6, 64, 37]:
                await log.append([entry(count + i) for i in range(batch)])
                count += batch
                if count % 2:
                    await storage.merge_lookups(count // 2)  # some leaves in the lookup table, some in the tail
                await check_every_leaf(log)
            await storage.merge_lookups(10**6)
            await check_every_leaf(log)
            for size in [1, 2, 3, 7, 64, 100, count - 1]:
                await check_every_leaf(log, size)  # leaves at or beyond `size` are found but not proven
            absent = await storage.leaf_inclusion(hashlib.sha256(b"absent").digest(), None)
            assert absent == leafproof.LeafProof(count, count, None, ())
            beyond = await storage.leaf_inclusion(log.leaves[3], count + 5)
            assert (beyond.head, beyond.size) == (count, count)  # never computed past the head: the handler refuses
        finally:
            await storage.close()

    asyncio.run(scenario())


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_leaves_whose_8_byte_keys_collide_each_get_their_own_proof(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    prefix = hashlib.sha256(b"shared prefix").digest()[:8]

    def colliding(tag: bytes) -> bytes:
        return prefix + hashlib.sha256(tag).digest()[8:]

    async def scenario() -> None:
        storage = await open_engine(engine, tmp_path, request)
        try:
            log = Log(storage)
            await log.append([entry(i) for i in range(5)] + [entry(5, colliding(b"a"))] + [entry(6)])
            await storage.merge_lookups(6)  # the first colliding leaf in the lookup table
            await log.append([entry(7), entry(8, colliding(b"b")), entry(9)])  # the second in the tail
            await check_every_leaf(log)
            assert (await storage.leaf_inclusion(colliding(b"b"), None)).index == 8
            assert (await storage.leaf_inclusion(colliding(b"c"), None)).index is None  # the key alone is not enough
        finally:
            await storage.close()

    asyncio.run(scenario())


@pytest.mark.parametrize(("level", "limit"), [(1, leafproof.KEPT_LIMIT), (3, leafproof.KEPT_LIMIT), (2, 6)])
def test_proofs_with_kept_upper_hashes_are_the_same_at_every_size(level: int, limit: int, tmp_path: Path) -> None:
    """The hashes above each leaf's block come from memory once read (leafproof.KnownHashes): every proof is still
    the plan's, as the tree grows past hashes kept from smaller trees, for sizes below the head, and when the kept
    set outgrows its bound and is dropped (limit 6: dropped again and again)."""

    async def scenario() -> None:
        storage = await SQLiteStorage.open(tmp_path / "log.db")
        storage.known = leafproof.KnownHashes(level, limit)
        try:
            log, count = Log(storage), 0
            for batch in [1, 2, 3, 9, 16, 1, 31, 6, 64, 37]:
                await log.append([entry(count + i) for i in range(batch)])
                count += batch
                await storage.merge_lookups(count // 2)
                await check_every_leaf(log)
                assert storage.known.hashes or count <= 2**level
                assert len(storage.known.hashes) <= limit + 2 * count.bit_length()  # one proof's worth past it
            for size in [1, 2, 3, 7, 64, 100, count - 1]:
                await check_every_leaf(log, size)
        finally:
            await storage.close()

    asyncio.run(scenario())


def test_once_the_upper_hashes_are_kept_a_proof_reads_only_its_leafs_block(tmp_path: Path) -> None:
    """At 5,000 leaves a proof needs 13 stored hashes, and its block of 2^8 leaves holds 8 of them: once the
    upper ones are kept, the statement reads the leaf and those 8 (before: every one of them, each time)."""

    async def scenario() -> None:
        storage = await SQLiteStorage.open(tmp_path / "log.db")
        try:
            log = Log(storage)
            for first in range(0, 5000, 1000):
                await log.append([entry(first + i) for i in range(1000)])
            await storage.merge_lookups(5000)
            for leaf in log.leaves:
                await storage.leaf_inclusion(leaf, None)
            whole_blocks = 5000 >> leafproof.KEPT_LEVEL << leafproof.KEPT_LEVEL
            for index in range(0, whole_blocks, 7):
                key = int.from_bytes(log.leaves[index][:8], "big", signed=True)
                rows = storage._reader.execute(leafproof.SQLITE, (key, None, "[]", 0)).fetchall()
                assert len(rows) == 1 + 1 + leafproof.KEPT_LEVEL, index  # the head, the leaf, its block's siblings
            assert len(storage.known.hashes) < 2 * (5000 >> leafproof.KEPT_LEVEL) + 64  # the upper nodes and edge
            await check_every_leaf(log)
        finally:
            await storage.close()

    asyncio.run(scenario())


def test_a_stored_hash_missing_is_a_storage_error_not_a_wrong_proof(tmp_path: Path) -> None:
    async def scenario() -> None:
        storage = await SQLiteStorage.open(tmp_path / "log.db")
        try:
            log = Log(storage)
            await log.append([entry(i) for i in range(6)])
            db = sqlite3.connect(tmp_path / "log.db")
            with db:
                db.execute("DELETE FROM hashes WHERE id = ?", (merkle.stored_hash_index(1, 2),))  # damage on disk
            db.close()
            with pytest.raises(StorageError, match="missing"):
                await storage.leaf_inclusion(log.leaves[0], None)
        finally:
            await storage.close()

    asyncio.run(scenario())


def test_postgresql_reads_each_hash_by_its_key_even_in_a_generic_plan(request: pytest.FixtureRequest) -> None:
    """asyncpg prepares the statement, and after five runs PostgreSQL may use a generic plan: a join there hashed the
    whole hashes table (21 ms at 2·10^4 entries, growing with the log). Each hash must stay a primary-key probe."""

    async def scenario() -> None:
        storage = await PostgresStorage.open(request.getfixturevalue("pg_database").dsn, pool_size=1)
        try:
            log = Log(storage)
            for first in range(0, 3000, 1000):
                await log.append([entry(first + i) for i in range(1000)])
            async with storage._pool.acquire() as conn:
                await conn.execute("SET plan_cache_mode = force_generic_plan")
                sql = leafproof.POSTGRES.replace("$1::bigint", "$1").replace("$2::bigint", "$2")
                await conn.execute(f"PREPARE leaf_inclusion (bigint, bigint, bigint[], bigint) AS {sql}")
                key = int.from_bytes(log.leaves[1234][:8], "big", signed=True)
                explain = f"EXPLAIN EXECUTE leaf_inclusion({key}, NULL, '{{}}', 0)"
                plan = "\n".join(r[0] for r in await conn.fetch(explain))
            assert "hashes_pkey" in plan and "Seq Scan on hashes" not in plan and "Hash" not in plan, plan
            assert (await storage.leaf_inclusion(log.leaves[1234], None)).index == 1234
        finally:
            await storage.close()

    asyncio.run(scenario())


def test_postgresql_point_reads_never_start_parallel_workers(request: pytest.FixtureRequest) -> None:
    """At 10^6 entries the tail branch (`idx >= merged`, a parameter the planner cannot see) was planned as a
    parallel index scan: every proof started two worker processes (35-48 ms, 95-113 proofs/s in a growth run).
    The storage's connections turn parallel plans off: its reads are point reads. The planner is made eager for
    parallel plans here, so a small table shows what a big one does."""

    async def scenario() -> None:
        storage = await PostgresStorage.open(request.getfixturevalue("pg_database").dsn, pool_size=1)
        try:
            log = Log(storage)
            for first in range(0, 2000, 1000):
                await log.append([entry(first + i) for i in range(1000)])
            async with storage._pool.acquire() as conn:
                for setting in ("parallel_setup_cost", "parallel_tuple_cost", "min_parallel_index_scan_size",
                                "min_parallel_table_scan_size"):  # fmt: skip
                    await conn.execute(f"SET {setting} = 0")
                await conn.execute("SET plan_cache_mode = force_generic_plan")
                sql = leafproof.POSTGRES.replace("$1::bigint", "$1").replace("$2::bigint", "$2")
                await conn.execute(f"PREPARE parallel_probe (bigint, bigint, bigint[], bigint) AS {sql}")
                key = int.from_bytes(log.leaves[1234][:8], "big", signed=True)
                explain = f"EXPLAIN EXECUTE parallel_probe({key}, NULL, '{{}}', 0)"
                plan = "\n".join(r[0] for r in await conn.fetch(explain))
                await conn.execute("DEALLOCATE parallel_probe")
                for setting in ("parallel_setup_cost", "parallel_tuple_cost", "min_parallel_index_scan_size",
                                "min_parallel_table_scan_size", "plan_cache_mode"):  # fmt: skip
                    await conn.execute(f"RESET {setting}")
            assert "Gather" not in plan and "Parallel" not in plan, plan
            assert (await storage.leaf_inclusion(log.leaves[1234], None)).index == 1234
        finally:
            await storage.close()

    asyncio.run(scenario())


def test_postgresql_point_reads_are_never_jit_compiled(request: pytest.FixtureRequest) -> None:
    """At 10^7 entries the generic plan of the proof statement costs ~288,000 (the tail branch's `idx >= merged`
    is estimated at a third of the table), above PostgreSQL's jit_above_cost: every proof compiled its plan to
    machine code first (33 ms; 61 proofs/s in the growth run). The storage's connections turn JIT off; the planner
    is made eager to compile here, so a small table shows what a big one does."""

    async def scenario() -> None:
        dsn = request.getfixturevalue("pg_database").dsn
        storage = await PostgresStorage.open(dsn, pool_size=1)
        try:
            log = Log(storage)
            await log.append([entry(i) for i in range(300)])
            key = int.from_bytes(log.leaves[123][:8], "big", signed=True)
            sql = leafproof.POSTGRES.replace("$1::bigint", f"{key}::bigint").replace("$2::bigint", "NULL::bigint")
            sql = sql.replace("$3::bigint[]", "'{}'::bigint[]").replace("$4", "0")
            plain = await asyncpg.connect(dsn)  # a session without the storage's settings: the control
            try:
                await plain.execute("SET jit_above_cost = 0")
                control = "\n".join(r[0] for r in await plain.fetch(f"EXPLAIN (ANALYZE) {sql}"))
                jit_here = await plain.fetchval("SELECT pg_jit_available()")
            finally:
                await plain.close()
            async with storage._pool.acquire() as conn:
                await conn.execute("SET jit_above_cost = 0")
                plan = "\n".join(r[0] for r in await conn.fetch(f"EXPLAIN (ANALYZE) {sql}"))
                await conn.execute("RESET jit_above_cost")
            assert ("JIT:" in control) == jit_here, control  # where PostgreSQL can compile, it did without the setting
            assert "JIT:" not in plan, plan
        finally:
            await storage.close()

    asyncio.run(scenario())


@pytest.mark.parametrize("limit", [leafproof.KEPT_LIMIT, 6])
def test_postgresql_reads_only_below_the_block_level_and_keeps_the_upper_hashes(
    limit: int, request: pytest.FixtureRequest
) -> None:
    """PostgreSQL's statement reads the leaf, its block's siblings and the right edge's nodes below KEPT_LEVEL; the
    rest comes from KnownHashes, read by key while not kept (a second round trip): every proof is the plan's, with
    the kept set dropped again and again (limit 6) too. At 1.2*10^7 leaves 27 random hashes by key cost ~1.4 ms
    against ~0.4 ms for 10 (docs/performance.md, "Proofs by leaf hash", fifth round)."""

    async def scenario() -> None:
        storage = await PostgresStorage.open(request.getfixturevalue("pg_database").dsn, pool_size=2)
        storage.known = leafproof.KnownHashes(limit=limit)
        try:
            log = Log(storage)
            for first in range(0, 5000, 1000):
                await log.append([entry(first + i) for i in range(1000)])
            await storage.merge_lookups(2500)  # half in the lookup table, half in the tail
            await check_every_leaf(log)
            await check_every_leaf(log, 4097)
            lower_edge = [lv for lv, _ in merkle.range_nodes(0, 5000) if lv < leafproof.KEPT_LEVEL]
            async with storage._conn() as conn:
                for index in range(0, 4096, 301):
                    key = int.from_bytes(log.leaves[index][:8], "big", signed=True)
                    rows = await conn.fetch(leafproof.POSTGRES, key, None, [], 0)
                    assert len(rows) == 1 + 1 + leafproof.KEPT_LEVEL + len(lower_edge), index
            if limit == 6:
                assert len(storage.known.hashes) <= 6 + 2 * (5000).bit_length()
        finally:
            await storage.close()

    asyncio.run(scenario())


def test_postgresql_a_read_is_one_query_on_its_connection(request: pytest.FixtureRequest) -> None:
    """A pooled connection goes back to the pool without asyncpg's reset query (a second round trip after every
    read: logserver/postgres.py `_released`); a transaction left open is still rolled back."""

    async def scenario() -> None:
        storage = await PostgresStorage.open(request.getfixturevalue("pg_database").dsn, pool_size=1)
        try:
            log = Log(storage)
            await log.append([entry(i) for i in range(300)])
            assert (await storage.leaf_inclusion(log.leaves[123], None)).index == 123  # prepared, upper hashes kept
            async with storage._conn() as conn:
                protocol = conn._con._protocol
            before = protocol.queries_count
            assert (await storage.leaf_inclusion(log.leaves[124], None)).index == 124
            async with storage._conn() as conn:
                assert conn._con._protocol is protocol  # the same connection (a pool of one)
            assert protocol.queries_count - before == 1  # the statement alone: no reset query after it
            async with storage._conn() as conn:
                await conn.execute("BEGIN")  # left open, as after an error
            async with storage._conn() as conn:
                assert not conn.is_in_transaction()
            await check_every_leaf(log)
        finally:
            await storage.close()

    asyncio.run(scenario())


@pytest.mark.parametrize(("engine", "limit"), [("sqlite", leafproof.KEPT_LIMIT), ("sqlite", 6), ("postgresql", 100)])
def test_proofs_by_index_keep_the_upper_hashes_and_read_only_the_leafs_block_again(
    engine: str, limit: int, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """storage.inclusion_proof (the bundles, `?index=`) shares the hashes proofs by leaf hash keep
    (leafproof.KnownHashes): every proof is the plan's, at the head and below it, and once the proofs were made,
    making them again reads from storage only the leaf's 8 block siblings; with a small bound (6) the kept set is
    dropped again and again and the proofs stay the same. A proof of an index outside the tree is refused."""

    async def scenario() -> None:
        if engine == "sqlite":
            storage: Any = await SQLiteStorage.open(tmp_path / "log.db")
        else:
            storage = await PostgresStorage.open(request.getfixturevalue("pg_database").dsn, pool_size=2)
        storage.known = leafproof.KnownHashes(limit=limit)
        try:
            log = Log(storage)
            for start in range(0, 5000, 1000):
                await log.append([entry(i) for i in range(start, start + 1000)])
            asked: list[int] = []
            real_read = storage.get_hashes

            async def counted(indexes: Sequence[int]) -> list[bytes]:
                asked.extend(indexes)
                return await real_read(indexes)

            storage.get_hashes = counted
            rng = random.Random(3)
            cases = [(size, index) for size in (5000, 4321) for index in [0, size - 1, *rng.sample(range(size), 30)]]
            for again in (False, True):
                for size, index in cases:
                    plain = (await proofs.inclusion_proofs(storage, [index], size))[0]
                    asked.clear()
                    assert list(await storage.inclusion_proof(index, size)) == plain, (index, size)
                    block = index >> leafproof.KEPT_LEVEL
                    if again and limit > 6 and (block + 1) << leafproof.KEPT_LEVEL <= size:
                        first = leafproof.leaf_id(block << leafproof.KEPT_LEVEL)
                        root = merkle.stored_hash_index(leafproof.KEPT_LEVEL, block)
                        # its block's siblings alone (fewer where a smaller tree's right edge kept one of them)
                        assert 0 < len(asked) <= leafproof.KEPT_LEVEL, (index, size)
                        assert all(first <= i < root for i in asked), (index, size)
            assert len(storage.known.hashes) <= limit + 2 * (5000).bit_length()  # one proof's worth past the bound
            for index, size in [(5000, 5000), (-1, 5000)]:
                with pytest.raises(ValueError):
                    await storage.inclusion_proof(index, size)
        finally:
            await storage.close()

    asyncio.run(scenario())
