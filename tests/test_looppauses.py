"""The keep-up bench's view of its event loop (loadtest/looppauses.py): a loop held by blocking work is seen."""

import asyncio
import time

from loadtest.looppauses import LONG, LoopPauses, StepTimes


def test_a_loop_held_by_blocking_work_shows_one_long_pause_of_about_that_length() -> None:
    async def held() -> LoopPauses:
        pauses = LoopPauses()
        ticker = asyncio.create_task(pauses.run())
        await asyncio.sleep(0.05)  # the ticker runs freely: no long gap
        time.sleep(0.3)  # blocking work on the loop's thread
        await asyncio.sleep(0.05)
        ticker.cancel()
        return pauses

    pauses = asyncio.run(held())
    assert len(pauses.long_ones) == 1 and 0.29 <= pauses.long_ones[0] < 0.3 + LONG
    assert pauses.longest == pauses.long_ones[0]
    assert f"longest {pauses.longest * 1000:,.0f} ms; 1 over 100 ms" in pauses.line()


class Guard:
    async def record(self, size: int) -> int:
        await asyncio.sleep(0.01)
        return size


def test_a_watched_step_is_timed_on_its_instance_only_until_unwatched() -> None:
    async def scenario() -> tuple[StepTimes, list[int]]:
        watched, other, steps = Guard(), Guard(), StepTimes()
        steps.watch(watched, "record", "the guard's record")
        answers = [await watched.record(1), await other.record(2), await watched.record(3)]
        steps.unwatch()
        answers.append(await watched.record(4))  # no longer timed
        steps.unwatch()  # twice: harmless
        return steps, answers

    steps, answers = asyncio.run(scenario())
    assert answers == [1, 2, 3, 4]  # the wrapped method answers as the real one
    (calls,) = steps.seconds.values()
    assert len(calls) == 2 and all(call >= 0.009 for call in calls)  # the other instance is not timed
    assert "record" not in vars(Guard()) and Guard.record.__name__ == "record"  # the class untouched
    assert "the guard's record p50 " in steps.line() and "(2)" in steps.line()
