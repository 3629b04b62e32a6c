"""While one batch commits, the next is made ready (lookups, rules, hashes) beside it; it is signed and committed
only after that commit, and a failed commit sends it back to the pool, to be committed on the tree as it really
is (logserver/sequencer.py `flush`, issue 20). On both engines, through the real Sequencer."""

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from test_lookup_merge import open_engine

from loadtest import log_bench
from logserver.sequencer import Sequencer, Submission
from logserver.storage import EntryRecord, Head, StorageError
from tlogcore import merkle

HOUR = 3600.0  # no flush here waits for the interval: each is woken by a full pool


class GatedCommits:
    """The storage's commits; the one starting with leaf `held` waits until `release` is set (then is done, or fails
    with `fail`), the first time only. `calls` counts the commits that started after it."""

    def __init__(self, storage: Any, held: bytes, fail: bool = False) -> None:
        self.entered, self.release, self.calls = asyncio.Event(), asyncio.Event(), 0
        commit_batch = storage.commit_batch

        async def gated(
            old: Head | None,
            new: Head,
            entries: Sequence[EntryRecord],
            first: int,
            hashes: Sequence[bytes],
            publish: bool,
        ) -> None:
            if self.entered.is_set():
                self.calls += 1
            elif entries and entries[0].leaf_hash == held:  # the first time only
                self.entered.set()
                await self.release.wait()
                if fail:
                    raise StorageError("commit failed, nothing was stored: the disk went away (staged)")
            await commit_batch(old, new, entries, first, hashes, publish)

        storage.commit_batch = gated


def _root(leaves: list[bytes]) -> bytes:
    """RFC 9162 §2.1.1, from the leaves: to check the sequencer's stored head against what is really stored."""
    if len(leaves) == 1:
        return leaves[0]
    split = 1 << ((len(leaves) - 1).bit_length() - 1)
    return merkle.node_hash(_root(leaves[:split]), _root(leaves[split:]))


async def registered(sequencer: Sequencer, when: int) -> None:
    async with asyncio.timeout(60):
        assert [s.index for s in await sequencer.submit([log_bench.issuer_add(when)])] == [0]


def pending(sequencer: Sequencer, submissions: Sequence[Submission]) -> bool:
    """Whether every one of `submissions` is with the sequencer (in its pool or a batch), not yet answered."""
    return all(s.leaf_hash in sequencer._pending for s in submissions)


def requests(when: int) -> tuple[list[Submission], list[Submission]]:
    issued = log_bench.issue_chunk((0, 8, when))
    return issued[:4], issued[4:]


def test_the_next_batch_is_prepared_while_one_commits(engine: tuple[str, str]) -> None:
    async def scenario() -> None:
        when = int(time.time()) - 60
        first, second = requests(when)
        storage = await open_engine(engine)
        try:
            gate = GatedCommits(storage, first[0].leaf_hash)
            async with log_bench.running_sequencer(storage, 4, flush_interval=HOUR, flush_at=1) as sequencer:
                await registered(sequencer, when)
                sequencer.config.flush_at = 8  # both requests wait in the pool, then one flush takes them
                one = asyncio.create_task(sequencer.submit(first))
                two = asyncio.create_task(sequencer.submit(second))
                async with asyncio.timeout(60):
                    await gate.entered.wait()  # the first batch is committing...
                    while sequencer.pool_size or not pending(sequencer, second):  # ...and the second, once it has
                        await asyncio.sleep(0.01)  # arrived (a PostgreSQL lookup waits), leaves the pool, made ready
                assert gate.calls == 0 and not one.done() and not two.done() and sequencer.size == 1
                gate.release.set()
                async with asyncio.timeout(60):
                    assert [s.index for s in await one] == [1, 2, 3, 4]
                    assert [s.index for s in await two] == [5, 6, 7, 8]
                assert gate.calls == 1 and sequencer.head is not None and sequencer.size == 9
                assert sequencer.head.root == _root([merkle.leaf_hash(e) for e in await storage.get_entries(0, 9)])
                assert await storage.head() == sequencer.head
        finally:
            await storage.close()

    asyncio.run(scenario())


def test_a_failed_commit_sends_the_prepared_batch_back_to_the_pool(engine: tuple[str, str]) -> None:
    async def scenario() -> None:
        when = int(time.time()) - 60
        first, second = requests(when)
        storage = await open_engine(engine)
        try:
            gate = GatedCommits(storage, first[0].leaf_hash, fail=True)
            async with log_bench.running_sequencer(storage, 4, flush_interval=0.05, flush_at=1) as sequencer:
                await registered(sequencer, when)
                sequencer.config.flush_at = 8
                one = asyncio.create_task(sequencer.submit(first))
                two = asyncio.create_task(sequencer.submit(second))
                async with asyncio.timeout(60):
                    await gate.entered.wait()
                    while sequencer.pool_size or not pending(sequencer, second):
                        await asyncio.sleep(0.01)
                gate.release.set()  # the first batch's commit fails: nothing of it is stored
                async with asyncio.timeout(60):
                    failed = await asyncio.gather(one, return_exceptions=True)
                    assert isinstance(failed[0], StorageError)
                    # the second batch was prepared on a tree that never was: reloaded, it takes indexes 1..4
                    assert [s.index for s in await two] == [1, 2, 3, 4]
                size = 5
                assert sequencer.head is not None and sequencer.size == size
                stored = await storage.get_entries(0, size)
                assert stored[1:] == [s.data for s in second]
                assert sequencer.head.root == _root([merkle.leaf_hash(e) for e in stored])
                assert await storage.find_leaves([s.leaf_hash for s in first]) == {}
                async with asyncio.timeout(60):  # and the first request, sent again, is logged after it
                    assert [s.index for s in await sequencer.submit(first)] == [5, 6, 7, 8]
        finally:
            await storage.close()

    asyncio.run(scenario())
