"""The keep-up bench's view of its event loop (loadtest/looppauses.py): a loop held by blocking work is seen."""

import asyncio
import time

from loadtest.looppauses import LONG, LoopPauses


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
