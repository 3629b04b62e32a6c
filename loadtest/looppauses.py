"""Where a sequencer's answer waits, for the keep-up benchmark: how long the event loop went without running (a
5 ms ticker on it, and each gap beyond its 5 ms: the sequencer answers on the loop it shares with the rest of its
process, so a long gap is an answer held back), and the wall time of each of its awaited steps."""

import asyncio
import time
from dataclasses import dataclass, field

from loadtest.quantiles import percentile

TICK = 0.005  # seconds
LONG = 0.1  # seconds: a gap counted apart


@dataclass
class LoopPauses:
    longest: float = 0.0
    long_ones: list[float] = field(default_factory=list)  # the gaps over LONG, in seconds

    async def run(self) -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(TICK)
            now = time.perf_counter()
            gap, last = now - last - TICK, now
            self.longest = max(self.longest, gap)
            if gap > LONG:
                self.long_ones.append(gap)

    def line(self) -> str:
        held = sum(self.long_ones)
        return (
            f"    the event loop's pauses (a {TICK * 1000:.0f} ms ticker): longest {self.longest * 1000:,.0f} ms; "
            f"{len(self.long_ones)} over {LONG * 1000:.0f} ms, {held:,.1f} s in all"
        )


@dataclass
class StepTimes:
    """Each call's wall time of some awaited steps, by step name: `watch` wraps an instance's bound method (on the
    instance: its class is untouched) until `unwatch`, so a benchmark sees where the sequencer's answer waits (its key
    guard's fsyncs, its commit)."""

    seconds: dict[str, list[float]] = field(default_factory=dict)
    _watched: list[tuple[object, str]] = field(default_factory=list)

    def watch(self, owner: object, method: str, name: str) -> None:
        real = getattr(owner, method)
        calls = self.seconds.setdefault(name, [])
        self._watched.append((owner, method))

        async def timed(*args: object, **kwargs: object) -> object:
            started = time.perf_counter()
            try:
                return await real(*args, **kwargs)
            finally:
                calls.append(time.perf_counter() - started)

        setattr(owner, method, timed)

    def unwatch(self) -> None:
        """The instances' own methods again (no more calls timed); twice is harmless."""
        for owner, method in self._watched:
            vars(owner).pop(method, None)
        self._watched.clear()

    def line(self) -> str:
        figures = "; ".join(
            f"{name} p50 {percentile(calls, 0.5) * 1000:,.1f} / p99 {percentile(calls, 0.99) * 1000:,.0f} / "
            f"max {percentile(calls, 1.0) * 1000:,.0f} ({len(calls):,})"
            for name, calls in self.seconds.items()
        )
        return f"    the sequencer's steps, ms: {figures}"
