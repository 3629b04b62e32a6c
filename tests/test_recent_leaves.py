"""The sequencer's unmerged tail in memory (logserver/recentleaves.py, storage contract 6): while sequencing it
never scans the tail in storage, finds every entry exactly (in the tail, across the watermark, after a restart
with a tail left unmerged), and merges only once enough leaves wait or the log is idle (SQLite and PostgreSQL)."""

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from test_lookup_merge import append, open_engine, record

from loadtest import log_bench
from logserver.recentleaves import RecentLeaves
from logserver.sequencer import Sequencer, SequencerConfig, Submission


def sequencer_on(storage: Any, **config: Any) -> Sequencer:
    settings = {"flush_interval": 0.01, "merge_rows": 0, **config}  # merge_rows 0: the merger moves nothing
    return Sequencer(
        storage,
        log_bench.log_key(),
        SequencerConfig(log_bench.ORIGIN, frozenset([log_bench.registry_key().verifier().vkey]), **settings),
    )


class CountingReads:
    """Counts the storage's full lookups (the ones that scan the unmerged tail)."""

    def __init__(self, storage: Any) -> None:
        self.full = 0
        find_leaves = storage.find_leaves

        async def counted(leaf_hashes: Sequence[bytes]) -> dict[bytes, int]:
            self.full += 1
            result: dict[bytes, int] = await find_leaves(leaf_hashes)
            return result

        storage.find_leaves = counted


async def sequencing(storage: Any, **config: Any) -> tuple[Sequencer, "asyncio.Task[None]"]:
    sequencer = sequencer_on(storage, **config)
    await sequencer.load()
    assert await sequencer.take_lease()
    return sequencer, asyncio.create_task(sequencer.run())


async def stop(task: "asyncio.Task[None]") -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def test_the_sequencer_finds_its_tail_in_memory_and_every_entry_exactly(engine: tuple[str, str]) -> None:
    async def scenario() -> None:
        when = int(time.time()) - 60
        statements: list[Submission] = log_bench.issue_chunk((0, 60, when))
        storage = await open_engine(engine)
        try:
            reads = CountingReads(storage)
            sequencer, task = await sequencing(storage)
            await sequencer.submit([log_bench.issuer_add(when)])
            first = await sequencer.submit(statements[:40])
            await storage.merge_lookups(20)  # 0..19 in the table, 20..40 only in the tail
            again = await sequencer.submit(statements)
            assert [(s.index, s.duplicate) for s in again[:40]] == [(s.index, True) for s in first]
            assert [s.index for s in again[40:]] == list(range(41, 61))
            assert reads.full == 0  # never a scan of the tail while sequencing
            await stop(task)
        finally:
            await storage.close()
        storage = await open_engine(engine)  # a restart: the tail 20..60 is read back from storage once
        try:
            reads = CountingReads(storage)
            sequencer, task = await sequencing(storage)
            final = await sequencer.submit(list(reversed(statements)))
            assert [(s.index, s.duplicate) for s in final] == [(s.index, True) for s in reversed(again)]
            assert sequencer.size == 61 and reads.full == 0
            await stop(task)
            sequencer.not_sequencing = "another process took the lease"  # its memory may miss their entries now
            assert await sequencer.find_leaves([statements[0].leaf_hash]) == {statements[0].leaf_hash: 1}
            assert reads.full == 1  # so storage answers, scanning the tail
        finally:
            await storage.close()

    asyncio.run(scenario())


def test_recent_leaves_load_the_tail_and_forget_what_is_merged(engine: tuple[str, str]) -> None:
    async def scenario() -> None:
        storage = await open_engine(engine)
        try:
            records = [record(i) for i in range(50)]
            now = await append(storage, [], None)
            now = await append(storage, records[:30], now)
            await storage.merge_lookups(12)
            recent = await RecentLeaves.load(storage, 30)
            assert recent.floor == 12 and len(recent) == 18  # the tail, no more
            await append(storage, records[30:], now)
            recent.added(30, [r.leaf_hash for r in records[30:]])
            found = await recent.find(storage, [r.leaf_hash for r in records])
            assert found == {r.leaf_hash: i for i, r in enumerate(records)}
            await storage.merge_lookups(25)  # watermark 37: the loaded run (12..29) is wholly below it
            recent.merged_up_to(await storage.lookup_watermark())
            assert recent.floor == 30 and len(recent) == 20
            assert await recent.find(storage, [r.leaf_hash for r in records]) == found
        finally:
            await storage.close()

    asyncio.run(scenario())


def test_a_merge_ending_during_a_lookup_hides_no_leaf(engine: tuple[str, str]) -> None:
    """The table's answer is read in a snapshot from before a merge; the merge ends and its runs leave memory before
    the answer comes back (as a PostgreSQL read can wait): the lookup must still find them (it missed them before)."""

    async def scenario() -> None:
        storage = await open_engine(engine)
        try:
            records = [record(i) for i in range(40)]
            now = await append(storage, [], None)
            await append(storage, records, now)
            recent = await RecentLeaves.load(storage, 40)
            assert recent.floor == 0 and len(recent) == 40
            find_merged = storage.find_merged

            async def merge_while_reading(leaf_hashes: Sequence[bytes]) -> dict[bytes, int]:
                before: dict[bytes, int] = await find_merged(leaf_hashes)  # the snapshot before the merge
                if recent.floor == 0:
                    await storage.merge_lookups(100)
                    recent.merged_up_to(await storage.lookup_watermark())
                return before

            storage.find_merged = merge_while_reading
            found = await recent.find(storage, [r.leaf_hash for r in records])
            assert recent.floor == 40 and len(recent) == 0
            assert found == {r.leaf_hash: i for i, r in enumerate(records)}
        finally:
            await storage.close()

    asyncio.run(scenario())


def test_merges_wait_for_enough_leaves_or_an_idle_log(engine: tuple[str, str]) -> None:
    async def scenario() -> None:
        when = int(time.time()) - 60
        statements: list[Submission] = log_bench.issue_chunk((0, 60, when))
        storage = await open_engine(engine)
        try:
            sequencer, task = await sequencing(storage, merge_rows=1000, merge_min=50, merge_idle=3600)
            await sequencer.submit([log_bench.issuer_add(when), *statements[:30]])
            await asyncio.sleep(0.5)  # the merger ran many rounds: 31 waiting, below 50, and the log is not idle
            assert await storage.lookup_watermark() == 0
            await sequencer.submit(statements[30:])
            for _ in range(200):  # 61 waiting: the next round merges them
                if await storage.lookup_watermark() == 61:
                    break
                await asyncio.sleep(0.05)
            assert await storage.lookup_watermark() == 61
            await stop(task)
            sequencer, task = await sequencing(storage, merge_rows=1000, merge_min=50, merge_idle=0.05)
            await sequencer.submit(log_bench.issue_chunk((60, 5, when)))
            for _ in range(200):  # 5 waiting, then the log is idle: merged
                if await storage.lookup_watermark() == 66:
                    break
                await asyncio.sleep(0.05)
            assert await storage.lookup_watermark() == 66
            await stop(task)
        finally:
            await storage.close()

    asyncio.run(scenario())
