"""The unmerged tail's keys in every serving process (logserver/readtail.py, storage contract 6, issue 20): reads by
leaf hash and by document find every entry exactly with the hint, across a merge that ends at the worst moment,
for leaves committed since the process last followed, and without scanning the tail (SQLite and PostgreSQL)."""

import asyncio
import hashlib
import re
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from test_leafproof import Log
from test_lookup_merge import open_engine, record
from test_recent_leaves import sequencer_on, sequencing, stop

from loadtest import log_bench
from logserver import leafproof
from logserver.readtail import KeyMap, ReadTail
from logserver.sqlite import SQLiteStorage
from logserver.storage import EntryRecord, hash_keys

DOCUMENTS = [hashlib.sha256(b"doc %d" % d).digest() for d in range(7)]  # the seven documents of `record`


async def exact(storage: Any, tail: ReadTail, records: list[EntryRecord]) -> None:
    """Every leaf's proof read finds its index, and every document its entries, with the tail's hints."""
    for i, r in enumerate(records):
        found = await storage.leaf_inclusion(r.leaf_hash, None, tail.leaf_hint(r.leaf_hash))
        assert found.index == i, (i, found)
    absent = hashlib.sha256(b"absent").digest()
    assert (await storage.leaf_inclusion(absent, None, tail.leaf_hint(absent))).index is None
    want = {d: [i for i, r in enumerate(records) if r.document == d] for d in DOCUMENTS}
    found_all = await storage.documents_entries(DOCUMENTS, tail.documents_hint(DOCUMENTS))
    assert {d: [e.index for e in found_all[d]] for d in DOCUMENTS} == want
    one = (await storage.document_read(DOCUMENTS[3], tail.documents_hint([DOCUMENTS[3]]))).entries
    assert [e.index for e in one] == want[DOCUMENTS[3]]


def test_a_key_map_keeps_repeated_keys_in_index_order() -> None:
    keys = KeyMap()
    keys.add([5, 9, 7], [0, 1, 2])  # no key repeats: one update
    keys.add([5, 3, 5], [3, 4, 5])  # 5 again (a collision, or a document named twice): kept beside the first
    found: list[int] = []
    keys.find(5, found)
    keys.find(1, found)
    assert found == [0, 3, 5] and len(keys) == 6
    keys.find(3, found)
    assert found == [0, 3, 5, 4]


def test_the_tail_follows_storage_and_forgets_what_is_merged(engine: tuple[str, str]) -> None:
    async def scenario() -> None:
        storage = await open_engine(engine)
        try:
            records = [record(i) for i in range(80)]
            log = Log(storage)
            await log.append(records[:50])
            await storage.merge_lookups(20)
            tail = ReadTail(segment=1)  # a segment per follow, so what is dropped is seen here
            await tail.follow(storage, 50)
            assert (tail.floor, tail.end) == (20, 50)  # from the watermark on, no more
            await exact(storage, tail, records[:50])
            await log.append(records[50:])
            await exact(storage, tail, records)  # 50..79 not followed yet: found by the scan from `end`
            await tail.follow(storage, 80)
            await storage.merge_lookups(45)  # watermark 65: the run 20..49 is wholly below it, 50..79 is not
            await tail.follow(storage, 80)
            assert (tail.floor, tail.end) == (50, 80) and tail.leaf_indexes(hash_keys([records[20].leaf_hash])[0]) == []
            await exact(storage, tail, records)
            await storage.merge_lookups(100)
            await tail.follow(storage, 80)
            assert (tail.floor, tail.end, tail.documents_hint(DOCUMENTS).indexes) == (80, 80, ())
            await exact(storage, tail, records)
        finally:
            await storage.close()

    asyncio.run(scenario())


def test_a_merge_ending_between_the_hint_and_the_read_hides_and_doubles_nothing(engine: tuple[str, str]) -> None:
    """The worst moments: the hint is taken, then a merge ends and the tail forgets those leaves before the statement
    runs (the table now holds what the hint names: nothing may be doubled); and a merge that ended before the hint
    while the tail does not know it yet (the hint and the table both name the leaves)."""

    async def scenario() -> None:
        storage = await open_engine(engine)
        try:
            records = [record(i) for i in range(40)]
            await Log(storage).append(records)
            tail = ReadTail()
            await tail.follow(storage, 40)
            want = [i for i, r in enumerate(records) if r.document == DOCUMENTS[2]]
            leaf_hints = [tail.leaf_hint(r.leaf_hash) for r in records]
            document_hint = tail.documents_hint([DOCUMENTS[2]])
            assert len(document_hint.indexes) == len(want) and all(len(h.indexes) == 1 for h in leaf_hints)
            await storage.merge_lookups(25)  # ended after the hints were taken, before the reads
            tail.merged_up_to(await storage.lookup_watermark())
            for i, r in enumerate(records):
                assert (await storage.leaf_inclusion(r.leaf_hash, None, leaf_hints[i])).index == i
            assert [e.index for e in (await storage.document_read(DOCUMENTS[2], document_hint)).entries] == want
            await storage.merge_lookups(100)  # ended, and the tail is not told: its hints name merged leaves
            assert tail.floor == 0
            assert [
                e.index
                for e in (await storage.document_read(DOCUMENTS[2], tail.documents_hint([DOCUMENTS[2]]))).entries
            ] == want
            await exact(storage, tail, records)
        finally:
            await storage.close()

    asyncio.run(scenario())


def sqlite_steps(storage: SQLiteStorage, read: Any) -> int:
    """The SQLite virtual machine's instructions one read runs (counted by a progress handler, per 100)."""
    steps = [0]

    def count() -> int:
        steps[0] += 100
        return 0

    storage._reader.set_progress_handler(count, 100)
    try:
        asyncio.get_event_loop().run_until_complete(read())
    finally:
        storage._reader.set_progress_handler(None, 0)
    return steps[0]


def test_sqlite_reads_with_the_tail_hint_never_scan_the_unmerged_tail(tmp_path: Path) -> None:
    """20,000 unmerged leaves: a proof or a document lookup without the hint steps through every one of them; with
    it, the work is the same as for a merged leaf (it failed before the hint: the statement had no other way)."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    storage = loop.run_until_complete(SQLiteStorage.open(tmp_path / "log.db"))
    try:
        records = [record(i) for i in range(20_000)]
        log = Log(storage)
        for first in range(0, 20_000, 5000):
            loop.run_until_complete(log.append(records[first : first + 5000]))
        tail = ReadTail()
        loop.run_until_complete(tail.follow(storage, 20_000))
        leaf = records[12_345].leaf_hash
        scanned = sqlite_steps(storage, lambda: storage.leaf_inclusion(leaf, None))
        hinted = sqlite_steps(storage, lambda: storage.leaf_inclusion(leaf, None, tail.leaf_hint(leaf)))
        assert scanned > 20_000 and hinted < 2_000, (scanned, hinted)
        absent = [hashlib.sha256(b"nothing").digest()]
        scanned = sqlite_steps(storage, lambda: storage.documents_entries(absent))
        hinted = sqlite_steps(storage, lambda: storage.documents_entries(absent, tail.documents_hint(absent)))
        assert scanned > 20_000 and hinted < 500, (scanned, hinted)
    finally:
        loop.run_until_complete(storage.close())
        loop.close()


def test_postgresql_reads_with_the_tail_hint_never_scan_the_unmerged_tail(request: pytest.FixtureRequest) -> None:
    """The same on PostgreSQL, from the plan as run: the rows the tail branch filtered out."""

    async def scenario() -> None:
        storage = await open_engine(("postgresql", request.getfixturevalue("pg_database").dsn))
        try:
            records = [record(i) for i in range(3000)]
            await Log(storage).append(records)
            tail = ReadTail()
            await tail.follow(storage, 3000)
            leaf = records[2345].leaf_hash
            async with storage._pool.acquire() as conn:
                removed = []
                for hint in (([], 0), (list(tail.leaf_hint(leaf).indexes), tail.end)):
                    rows = await conn.fetch(
                        "EXPLAIN (ANALYZE) " + leafproof.POSTGRES, hash_keys([leaf])[0], None, *hint
                    )
                    plan = "\n".join(r[0] for r in rows)
                    removed.append(sum(int(n) for n in re.findall(r"Rows Removed by Filter: (\d+)", plan)))
            assert removed[0] >= 2900 and removed[1] < 10, removed
        finally:
            await storage.close()

    asyncio.run(scenario())


def test_every_serving_process_follows_the_tail(engine: tuple[str, str]) -> None:
    """The sequencing process adds what it commits; one that does not sequence reads the keys as it follows the head
    (and until it has, the leaves committed since are still found: by the scan from the end of what it holds)."""

    async def scenario() -> None:
        when = int(time.time()) - 60
        storage = await open_engine(engine)
        try:
            sequencer, task = await sequencing(storage)  # merge_rows 0: nothing is merged
            logged = await sequencer.submit([log_bench.issuer_add(when), *log_bench.issue_chunk((0, 30, when))])
            assert (sequencer.tail.floor, sequencer.tail.end) == (0, 31)
            assert [sequencer.tail.leaf_hint(s.leaf_hash).indexes for s in logged] == [(i,) for i in range(31)]
            reader = sequencer_on(storage)  # not sequencing: a reader worker
            await reader.load()
            leaf = logged[-1].leaf_hash
            assert reader.tail.end == 0
            assert (await storage.leaf_inclusion(leaf, None, reader.tail.leaf_hint(leaf))).index == 30
            await reader._follow()
            assert (reader.tail.floor, reader.tail.end) == (0, 31)
            assert reader.tail.leaf_hint(leaf).indexes == (30,)
            await stop(task)
        finally:
            await storage.close()

    asyncio.run(scenario())


def test_memory_per_tail_entry_is_bounded() -> None:
    """About 250 bytes per leaf held, every leaf naming a document (readtail.py states it: ~125 MB for the merge
    policy's 5*10^5), the keys made as storage returns them (new integers)."""
    digests = [(hashlib.sha256(b"l%d" % i).digest(), hashlib.sha256(b"d%d" % i).digest()) for i in range(20_000)]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tail = ReadTail()
        for first in range(0, 20_000, 1000):
            part = digests[first : first + 1000]
            leaves, documents = hash_keys([d for d, _ in part]), hash_keys([d for _, d in part])
            tail.added(first, leaves, list(documents))
            del leaves, documents
        per_entry = (tracemalloc.get_traced_memory()[0] - before) / 20_000
    finally:
        tracemalloc.stop()
    assert len(tail) == 20_000 and 100 < per_entry < 320, per_entry


def test_a_gap_is_never_held_as_if_followed() -> None:
    tail = ReadTail()
    tail.added(0, [1, 2, 3], [None, 4, None])
    tail.added(5, [9], [None])  # leaves 3 and 4 were not seen: not taken, the scan from `end` covers them
    assert tail.end == 3 and tail.leaf_indexes(9) == []
    tail.added(2, [3, 7], [None, None])  # overlaps what is held: only the new part
    assert tail.end == 4 and tail.leaf_indexes(3) == [2] and tail.leaf_indexes(7) == [3]
    tail.merged_up_to(3)  # the segment reaches 4: kept whole
    assert (tail.floor, tail.leaf_indexes(1)) == (0, [0])
    tail.merged_up_to(10)  # everything merged, even beyond what is held: hold from the watermark on
    assert (tail.floor, tail.end, tail.leaf_indexes(7), tail.documents_hint([]).indexes) == (10, 10, [], ())
