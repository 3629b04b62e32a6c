"""A server's background tasks (logserver/tasks.py `logged_task`): a task that fails says so at once and ends alone,
and the server's shutdown still closes everything. Before, a failed task ended without a word (the witnesses'
refresh stopped for good on one unreadable answer, docs/trust.md "Freshness") and its exception came out of the
shutdown's `cancel_and_wait`, before the storage was closed."""

import asyncio
import logging

import pytest

from logserver.tasks import cancel_and_wait, logged_task


async def fails() -> None:
    await asyncio.sleep(0)
    raise ValueError("an answer nobody foresaw")


async def runs_until_stopped(stopped: list[str]) -> None:
    try:
        await asyncio.sleep(3600)
    finally:
        stopped.append("cleaned up")


def test_a_failed_task_is_logged_at_once_and_the_others_still_stop_cleanly(caplog: pytest.LogCaptureFixture) -> None:
    stopped: list[str] = []

    async def scenario() -> None:
        failing = logged_task(fails(), "witness refresh")
        other = logged_task(runs_until_stopped(stopped), "sequencer")
        await asyncio.sleep(0.05)
        assert failing.done() and failing.result() is None  # ended, and only itself
        assert not other.done()
        logged = [r for r in caplog.records if r.name == "logserver.tasks"]
        assert len(logged) == 1 and "'witness refresh' failed" in logged[0].getMessage()
        assert logged[0].exc_info is not None and "an answer nobody foresaw" in str(logged[0].exc_info[1])
        await cancel_and_wait([failing, other])  # the shutdown: no exception out of it

    with caplog.at_level(logging.ERROR, logger="logserver.tasks"):
        asyncio.run(scenario())
    assert stopped == ["cleaned up"]


def test_a_stop_still_stops_a_watched_task() -> None:
    async def scenario() -> bool:
        task = logged_task(asyncio.sleep(3600), "status indexer")
        await asyncio.sleep(0)
        await cancel_and_wait([task])
        return task.cancelled()

    assert asyncio.run(scenario())
