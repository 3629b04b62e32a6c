"""A full request's worth of statements wakes the sequencer at once; fewer wait for the flush interval (issue 20).

A bulk submitter (batches of 1000) gains nothing from waiting for others: its batch is a commit big enough on its
own, and waiting up to `flush_interval` for the next tick was a large part of each request's time. Trickles still
gather for the interval, so single statements do not each pay a commit."""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

from loadtest import log_bench
from logserver.sequencer import Sequencer, Submission
from logserver.sqlite import SQLiteStorage

HOUR = 3600.0  # a flush interval no test waits for: what is committed here was woken, not timed


@contextlib.asynccontextmanager
async def sequencing(tmp_path: Path, flush_at: int) -> AsyncIterator[Sequencer]:
    storage = await SQLiteStorage.open(tmp_path / "log.db")
    try:
        async with log_bench.running_sequencer(storage, 1000, flush_interval=HOUR, flush_at=flush_at) as sequencer:
            yield sequencer
    finally:
        await storage.close()


def statements(count: int) -> tuple[Submission, list[Submission]]:
    when = int(time.time()) - 60
    return log_bench.issuer_add(when), log_bench.issue_chunk((0, count, when))


def test_a_request_of_flush_at_statements_is_committed_without_waiting_for_the_interval(tmp_path: Path) -> None:
    async def scenario() -> None:
        registry, issued = statements(8)
        async with sequencing(tmp_path, flush_at=4) as sequencer:
            async with asyncio.timeout(60):  # far below HOUR: a wait for the interval fails here
                await sequencer.submit([registry, *issued[:3]])  # 4 statements: woken
                sequenced = await sequencer.submit(issued[3:])  # 5: woken
            assert [s.index for s in sequenced] == [4, 5, 6, 7, 8] and sequencer.size == 9

    asyncio.run(scenario())


def test_fewer_than_flush_at_statements_wait_in_the_pool_for_the_interval(tmp_path: Path) -> None:
    async def scenario() -> None:
        registry, issued = statements(5)
        async with sequencing(tmp_path, flush_at=4) as sequencer:
            async with asyncio.timeout(60):
                await sequencer.submit([registry, *issued[:3]])
            waiting = asyncio.create_task(sequencer.submit(issued[3:]))  # 2 statements: below flush_at
            await asyncio.sleep(0.5)
            assert not waiting.done() and sequencer.pool_size == 2 and sequencer.size == 4
            async with asyncio.timeout(60):  # a third request brings the pool to flush_at: all are committed
                more = await sequencer.submit(log_bench.issue_chunk((100, 2, int(time.time()) - 60)))
                assert [s.index for s in await waiting] == [4, 5] and [s.index for s in more] == [6, 7]

    asyncio.run(scenario())
