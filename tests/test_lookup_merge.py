"""Lookups off the commit path (storage contract 6): exact at every moment, across the merge boundary, after a
kill -9 in the middle of a merge, and on a database from before the lookup tables (SQLite and PostgreSQL)."""

import asyncio
import contextlib
import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from pg_cluster import PgDatabase

from loadtest import log_bench
from logserver.postgres import PostgresStorage
from logserver.recentleaves import RecentLeaves
from logserver.sequencer import Sequencer, SequencerConfig, Submission
from logserver.sqlite import FIND_DOCUMENT, SQLiteStorage
from logserver.sqlite_schema import lookup_path
from logserver.storage import EntryRecord, Head
from tlogcore.merkle import leaf_hash

REPO = Path(__file__).resolve().parent.parent
Opener = Callable[[], Awaitable[Any]]


async def open_engine(engine: tuple[str, str]) -> Any:
    kind, where = engine
    return await (SQLiteStorage.open(Path(where)) if kind == "sqlite" else PostgresStorage.open(where, pool_size=2))


def record(i: int) -> EntryRecord:
    document = hashlib.sha256(b"doc %d" % (i % 7)).digest()  # seven documents, each issued many times
    data = b"log.example\nissue\ndocument " + document.hex().encode() + b"\nentry %d\n" % i
    return EntryRecord(data, leaf_hash(data), document, False)


def head(size: int) -> Head:
    root = hashlib.sha256(b"root %d" % size).digest()
    return Head(size, root, b"checkpoint %d\n" % size)


async def append(storage: Any, records: Sequence[EntryRecord], old: Head | None) -> Head:
    size = old.size if old else 0
    new = head(size + len(records))
    await storage.commit_batch(old, new, records, 2 * size, [b"\x00" * 32] * len(records), publish=True)
    return new


async def check_lookups(storage: Any, records: Sequence[EntryRecord]) -> None:
    """Every leaf found at its index, every document's entries exactly, an absent hash absent."""
    absent = hashlib.sha256(b"never logged").digest()
    found = await storage.find_leaves([r.leaf_hash for r in records] + [absent])
    assert found == {r.leaf_hash: i for i, r in enumerate(records)}
    for d in range(7):
        document = hashlib.sha256(b"doc %d" % d).digest()
        want = [i for i, r in enumerate(records) if r.document == document]
        assert [e.index for e in (await storage.document_read(document)).entries] == want


def test_lookups_are_exact_before_during_and_after_merging(engine: tuple[str, str]) -> None:
    async def scenario() -> None:
        storage = await open_engine(engine)
        try:
            records = [record(i) for i in range(60)]
            now = await append(storage, [], None)
            now = await append(storage, records[:25], now)
            await check_lookups(storage, records[:25])  # nothing merged: all in the tail
            assert await storage.merge_lookups(10) == 10
            await check_lookups(storage, records[:25])  # across the watermark
            now = await append(storage, records[25:], now)
            for step in (7, 1, 30, 100):
                await storage.merge_lookups(step)
                await check_lookups(storage, records)
            assert await storage.merge_lookups(100) == 0  # all merged
        finally:
            await storage.close()

    asyncio.run(scenario())


def sequencer_on(storage: Any) -> Sequencer:
    """The real Sequencer, its own merger off (merge_rows 0): the test merges by hand at chosen moments."""
    config = SequencerConfig(
        log_bench.ORIGIN, frozenset([log_bench.registry_key().verifier().vkey]), flush_interval=0.01, merge_rows=0
    )
    return Sequencer(storage, log_bench.log_key(), config)


def test_an_identical_statement_returns_its_first_entry_across_the_merge_boundary(engine: tuple[str, str]) -> None:
    async def scenario() -> None:
        when = int(time.time()) - 60
        statements: list[Submission] = log_bench.issue_chunk((0, 40, when))
        storage = await open_engine(engine)
        try:
            sequencer = sequencer_on(storage)
            await sequencer.load()
            assert await sequencer.take_lease()
            task = asyncio.create_task(sequencer.run())
            await sequencer.submit([log_bench.issuer_add(when)])
            first = await sequencer.submit(statements[:30])
            assert [s.duplicate for s in first] == [False] * 30
            await storage.merge_lookups(13)  # entries 0..12 merged (0 is the issuer), 13..30 in the tail
            again = await sequencer.submit(statements)
            assert [(s.index, s.duplicate) for s in again[:30]] == [(s.index, True) for s in first]
            assert [s.duplicate for s in again[30:]] == [False] * 10
            await storage.merge_lookups(1000)
            final = await sequencer.submit(list(reversed(statements)))
            assert [(s.index, s.duplicate) for s in final] == [(s.index, True) for s in reversed(again)]
            assert sequencer.size == 41
            task.cancel()
        finally:
            await storage.close()

    asyncio.run(scenario())


CHILD = """
import asyncio, sys
from pathlib import Path
sys.path.insert(0, {tests!r})
from test_lookup_merge import append, open_engine, record

async def main():
    storage = await open_engine(({kind!r}, {where!r}))
    now = None
    for start in range(0, {count}, 2000):
        now = await append(storage, [record(i) for i in range(start, start + 2000)], now)
    print("built", flush=True)
    while await storage.merge_lookups(300):
        print("merged", flush=True)
    print("done", flush=True)

asyncio.run(main())
"""


def test_kill_9_in_the_middle_of_merging_loses_nothing(engine: tuple[str, str]) -> None:
    """A real SIGKILL while merges run back to back; the restarted storage finds every entry, then merges on."""
    count = 20_000
    kind, where = engine
    code = CHILD.format(tests=str(REPO / "tests"), kind=kind, where=where, count=count)
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=REPO)
    assert child.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 120
    while len([line for line in lines if line == "merged\n"]) < 5 and time.monotonic() < deadline:
        line = child.stdout.readline()
        assert line, f"the child stopped early: {lines[-3:]}"
        lines.append(line)
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    child.stdout.close()
    assert child.returncode == -signal.SIGKILL and "done\n" not in lines

    if kind == "sqlite":  # it was killed with merging still to do; the next open merges the rest at once
        lookups = sqlite3.connect(lookup_path(Path(where)))
        assert lookups.execute("SELECT merged FROM lookup_state").fetchone()[0] < count
        lookups.close()

    async def after() -> None:
        storage = await open_engine(engine)
        try:
            records = [record(i) for i in range(count)]
            await check_lookups(storage, records)
            if kind == "sqlite":
                assert await storage.lookup_watermark() == count
            else:
                assert await storage.merge_lookups(5000) > 0  # it was killed with merging still to do
            while await storage.merge_lookups(5000):
                pass
            await check_lookups(storage, records)
        finally:
            await storage.close()

    asyncio.run(after())


OLD_SQLITE = """
CREATE TABLE leaves (idx INTEGER PRIMARY KEY, data BLOB NOT NULL, leaf_key INTEGER NOT NULL, document_key INTEGER,
    registry INTEGER NOT NULL);
CREATE INDEX leaves_by_leaf_key ON leaves(leaf_key);
CREATE INDEX leaves_by_document_key ON leaves(document_key) WHERE document_key IS NOT NULL;
"""
OLD_POSTGRES = """
CREATE TABLE leaves (idx bigint PRIMARY KEY, data bytea NOT NULL, leaf_key bigint NOT NULL, document_key bigint,
    registry boolean NOT NULL);
CREATE INDEX leaves_by_leaf_key ON leaves(leaf_key);
CREATE INDEX leaves_by_document_key ON leaves(document_key) WHERE document_key IS NOT NULL;
"""


def old_rows(records: Sequence[EntryRecord]) -> list[tuple[int, bytes, int, int | None, bool]]:
    def key(digest: bytes) -> int:
        return int.from_bytes(digest[:8], "big", signed=True)

    return [
        (i, r.data, key(r.leaf_hash), key(r.document) if r.document else None, False) for i, r in enumerate(records)
    ]


def test_a_database_with_the_old_indexes_is_migrated_and_keeps_working(engine: tuple[str, str]) -> None:
    kind, where = engine
    records = [record(i) for i in range(50)]

    async def make_old() -> None:
        if kind == "sqlite":
            db = sqlite3.connect(where)
            db.executescript(OLD_SQLITE)
            db.executemany("INSERT INTO leaves VALUES (?, ?, ?, ?, ?)", old_rows(records))
            db.commit()
            db.close()
            return
        conn = await asyncpg.connect(where)
        try:
            await conn.execute(OLD_POSTGRES)
            await conn.copy_records_to_table("leaves", records=old_rows(records))
        finally:
            await conn.close()

    async def scenario() -> None:
        await make_old()
        storage = await open_engine(engine)
        try:
            await check_lookups(storage, records)
            assert await storage.merge_lookups(100) == 0  # the migration indexed them all
            more = [record(i) for i in range(50, 60)]
            await storage.commit_batch(None, head(50), [], 0, [], publish=True)
            await append(storage, more, head(50))  # appends go on after it
            await check_lookups(storage, records + more)
        finally:
            await storage.close()
        assert not await old_indexes(kind, where)

    asyncio.run(scenario())


async def old_indexes(kind: str, where: str) -> list[str]:
    names = ("leaves_by_leaf_key", "leaves_by_document_key")
    if kind == "sqlite":
        db = sqlite3.connect(where)
        try:
            return [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'") if r[0] in names]
        finally:
            db.close()
    conn = await asyncpg.connect(where)
    try:
        return [r[0] for r in await conn.fetch("SELECT indexname FROM pg_indexes") if r[0] in names]
    finally:
        await conn.close()


def test_the_sqlite_read_connection_has_a_large_page_cache_and_a_memory_map(tmp_path: Path) -> None:
    """Defaults sized for 10^7 entries, for log.db and the lookup file alike, and both configurable (0: no map)."""

    async def scenario() -> None:
        storage = await SQLiteStorage.open(tmp_path / "log.db")
        small = await SQLiteStorage.open(tmp_path / "log.db", read_cache_bytes=1024 * 1024, read_mmap_bytes=0)
        try:
            reader, small_reader = storage._reader, small._reader
            for schema in ("main", "lk"):  # each file has its own cache: the lookup file's too (it was 2 MiB)
                assert reader.execute(f"PRAGMA {schema}.cache_size").fetchone()[0] == -256 * 1024  # KiB
                assert reader.execute(f"PRAGMA {schema}.mmap_size").fetchone()[0] == 0x7FFF0000
                assert small_reader.execute(f"PRAGMA {schema}.cache_size").fetchone()[0] == -1024
                assert small_reader.execute(f"PRAGMA {schema}.mmap_size").fetchone()[0] == 0
            for opened, mapped in ((storage, 0x7FFF0000), (small, 0)):  # the merger maps the lookup file as the reader
                await opened.merge_lookups(10)
                assert opened._merger is not None
                async with opened._merger.execute("PRAGMA lk.mmap_size") as cursor:
                    assert (await cursor.fetchone()) == (mapped,)
        finally:
            await small.close()
            await storage.close()

    asyncio.run(scenario())


def test_sqlite_lookups_send_one_statement_whatever_the_number_of_keys(tmp_path: Path) -> None:
    """The keys travel as one JSON array, so SQLite prepares the lookup once: a list of 10,000 `?` took it about
    0.7 s to prepare for each new count of keys, which made batches of 10,000 slower than batches of 1,000."""

    async def scenario() -> None:
        storage = await SQLiteStorage.open(tmp_path / "log.db")
        try:
            records = [record(i) for i in range(3000)]
            now = await append(storage, [], None)
            await append(storage, records, now)
            await storage.merge_lookups(1700)  # keys on both sides of the watermark
            sent: list[tuple[str, int]] = []
            read = storage._read

            async def recording(sql: str, params: Sequence[object]) -> list[Any]:
                sent.append((sql, len(params)))
                return await read(sql, params)

            storage._read = recording  # type: ignore[method-assign]
            for count in (3, 3000):
                absent = [hashlib.sha256(b"absent %d" % i).digest() for i in range(count)]
                found = await storage.find_leaves([r.leaf_hash for r in records[:count]] + absent)
                assert found == {r.leaf_hash: i for i, r in enumerate(records[:count])}
            documents = [hashlib.sha256(b"doc %d" % d).digest() for d in range(7)]
            answers = []
            for count in (1, 2, 7):
                answers.append(entries := await storage.documents_entries(documents[:count]))
                assert [len(entries[d]) for d in documents[:count]] == [429 - (d >= 4) for d in range(count)]
            one = await storage.document_read(documents[0])
            assert len(sent) == 6 and {n for _, n in sent} == {3}  # one statement: the keys in one, the tail hint's two
            assert sent[0][0] == sent[1][0] and sent[2][0] == sent[3][0] == sent[4][0]  # 3 and 3,000 keys; 1, 2 and 7
            # One document (GET /api/v1/documents/<sha256>) binds its one key as it is: the same entries.
            assert sent[5][0] == FIND_DOCUMENT != sent[4][0]
            assert one.entries == answers[0][documents[0]] == answers[1][documents[0]] == answers[2][documents[0]]
        finally:
            await storage.close()

    asyncio.run(scenario())


def test_a_merge_waits_for_a_share_of_the_merged_leaves_up_to_a_cap() -> None:
    config = SequencerConfig("o", frozenset(), merge_min=10_000, merge_share=10, merge_cap=500_000)
    assert [config.merge_batch(n) for n in (0, 100_000, 1_000_000, 3_000_000, 10**7)] == [
        10_000,  # small tables: the floor, as before
        10_000,
        100_000,  # a tenth of the table: the same pages written per key as 10,000 into 10^5
        300_000,
        500_000,  # the cap: the tail held in memory stays bounded
    ]


def test_the_sequencers_merger_waits_for_a_share_of_the_table(engine: tuple[str, str]) -> None:
    async def watermark_after(storage: Any, want: int) -> int:
        for _ in range(100):  # bounded: 5 s
            if (mark := await storage.lookup_watermark()) == want:
                return int(mark)
            await asyncio.sleep(0.05)
        return int(await storage.lookup_watermark())

    async def scenario() -> None:
        when = int(time.time()) - 60
        statements: list[Submission] = log_bench.issue_chunk((0, 80, when))
        storage = await open_engine(engine)
        config = SequencerConfig(
            log_bench.ORIGIN,
            frozenset([log_bench.registry_key().verifier().vkey]),
            flush_interval=0.01,
            merge_min=10,
            merge_share=2,
            merge_cap=20,
            merge_idle=3600,  # never idle here: only the size rule merges
        )
        sequencer = Sequencer(storage, log_bench.log_key(), config)
        try:
            await sequencer.load()
            assert await sequencer.take_lease()
            task = asyncio.create_task(sequencer.run())
            await sequencer.submit([log_bench.issuer_add(when), *statements[:29]])
            assert await watermark_after(storage, 30) == 30  # 30 waiting >= merge_min 10: merged
            await sequencer.submit(statements[29:41])
            await asyncio.sleep(0.5)  # 12 waiting, below 30 // 2 = 15: the merger ran many rounds, moved nothing
            assert await storage.lookup_watermark() == 30
            await sequencer.submit(statements[41:44])
            assert await watermark_after(storage, 45) == 45  # 15 waiting: merged
            await sequencer.submit(statements[44:63])
            await asyncio.sleep(0.5)  # 19 waiting, below the cap 20 (and below 45 // 2 = 22)
            assert await storage.lookup_watermark() == 45
            await sequencer.submit(statements[63:64])
            assert await watermark_after(storage, 65) == 65  # 20 waiting: the cap, not the share 22
            assert [s.duplicate for s in await sequencer.submit(statements[:64])] == [True] * 64
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        finally:
            await storage.close()

    asyncio.run(scenario())


def test_a_long_commit_is_not_an_idle_log_for_the_merger(tmp_path: Path) -> None:
    async def scenario() -> None:
        storage = await SQLiteStorage.open(tmp_path / "log.db")
        try:
            config = SequencerConfig("o", frozenset(), merge_min=100, merge_idle=0.05)
            sequencer = Sequencer(storage, log_bench.log_key(), config)
            sequencer.head = head(30)  # 30 leaves committed, none merged: below merge_min
            sequencer._recent = RecentLeaves(0)
            sequencer._committed_at = time.monotonic() - 1.0  # the last commit ended a second ago
            sequencer._pending[b"\x01" * 32] = asyncio.get_running_loop().create_future()  # a batch still commits
            assert not sequencer._merge_due()
            sequencer._pending.clear()  # nothing waits any more: the log is idle, the short tail is merged
            assert sequencer._merge_due()
        finally:
            await storage.close()

    asyncio.run(scenario())


def test_a_postgresql_lookup_merge_gets_time_by_its_rows(pg_database: PgDatabase) -> None:
    """A merge is bounded work off the commit path, and one that outruns its timeout is undone and done again from
    the start: at 3·10^7 a merge of 500,000 leaves outran the pool's 10 s (BENCHMARKS.md "Thirty-sixth round").
    Its statements get the pool's timeout and ROW_SECONDS per leaf (logserver/postgres.py `bulk_timeout`). Here
    leaf_lookup is locked for 0.6 s by another session while the merging pool's timeout is 0.3 s: a merge of 10,000
    leaves (0.3 + 1 s) waits and succeeds. Before, it failed after 0.3 s."""

    async def scenario() -> None:
        writer = await PostgresStorage.open(pg_database.dsn, pool_size=2)
        merger = await PostgresStorage.open(pg_database.dsn, pool_size=2, timeout=0.3)
        locker = await asyncpg.connect(pg_database.dsn)
        try:
            records = [record(i) for i in range(10_000)]
            await append(writer, records, await append(writer, [], None))
            async with locker.transaction():
                await locker.execute("LOCK TABLE leaf_lookup IN ACCESS EXCLUSIVE MODE")
                merge = asyncio.create_task(merger.merge_lookups(10_000))
                await asyncio.sleep(0.6)
            assert await merge == 10_000
            assert await merger.lookup_watermark() == 10_000
            await check_lookups(merger, records)
        finally:
            await locker.close()
            await merger.close()
            await writer.close()

    asyncio.run(scenario())


def test_a_postgresql_migration_to_the_lookup_tables_gets_time_by_its_rows(pg_database: PgDatabase) -> None:
    """A database from before the lookup tables is migrated at start, in one merge of all its leaves: with the
    pool's timeout alone, a large log failed every start the same way. Here the lookup table (made beforehand, so
    another session can lock it) is locked for 0.6 s while the pool's timeout is 0.3 s: the migration of 10,000
    leaves (0.3 + 1 s) waits and the storage opens. Before, the open failed after 0.3 s."""
    records = [record(i) for i in range(10_000)]

    async def scenario() -> None:
        locker = await asyncpg.connect(pg_database.dsn)
        try:
            await locker.execute(OLD_POSTGRES)
            await locker.copy_records_to_table("leaves", records=old_rows(records))
            await locker.execute(
                "CREATE TABLE leaf_lookup (key bigint NOT NULL, idx bigint NOT NULL, PRIMARY KEY (key, idx))"
            )
            async with locker.transaction():
                await locker.execute("LOCK TABLE leaf_lookup IN ACCESS EXCLUSIVE MODE")
                opening = asyncio.create_task(PostgresStorage.open(pg_database.dsn, pool_size=2, timeout=0.3))
                await asyncio.sleep(0.6)
            storage = await opening
            try:
                await check_lookups(storage, records)
            finally:
                await storage.close()
        finally:
            await locker.close()
        assert not await old_indexes("postgresql", pg_database.dsn)

    asyncio.run(scenario())
