"""Catch-up progress: a bar redrawn in place when stderr is a terminal, a plain line every few seconds otherwise.

tlog.localhost/ab12 [##########..........]  51% 10,240/20,001 entries  2,310/s  ETA 0:00:04
tlog.localhost/ab12: audited 10,240 of 20,001 entries (2,310 entries/s, ETA 4 s)
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

BAR = 20


@dataclass
class _Run:
    start_done: int
    start_time: float
    last_draw: float = 0.0


@dataclass
class Progress:
    stream: TextIO
    tty: bool
    clock: Callable[[], float]
    line_every: float = 5.0  # seconds between plain lines
    draw_every: float = 0.1  # seconds between redraws of the bar
    _runs: dict[str, _Run] = field(default_factory=dict)

    def update(self, label: str, done: int, total: int) -> None:
        now = self.clock()
        run = self._runs.get(label)
        if run is None:
            run = self._runs[label] = _Run(done, now, now)
            return
        if now - run.last_draw < (self.draw_every if self.tty else self.line_every) and done < total:
            return
        run.last_draw = now
        self.stream.write(self.render(label, run, done, total, now))
        self.stream.flush()

    def render(self, label: str, run: _Run, done: int, total: int, now: float) -> str:
        elapsed = max(now - run.start_time, 1e-9)
        rate = (done - run.start_done) / elapsed
        eta = (total - done) / rate if rate > 0 else None
        if self.tty:
            filled = BAR * done // total if total else BAR
            eta_text = f"{int(eta) // 3600}:{int(eta) % 3600 // 60:02d}:{int(eta) % 60:02d}" if eta is not None else "?"
            percent = 100 * done // total if total else 100
            end = "\n" if done >= total else ""
            return (
                f"\r{label} [{'#' * filled}{'.' * (BAR - filled)}] {percent:3d}% {done:,}/{total:,} entries "
                f"{rate:,.0f}/s ETA {eta_text}\x1b[K{end}"
            )
        eta_text = f"{eta:,.0f} s" if eta is not None else "?"
        return f"{label}: audited {done:,} of {total:,} entries ({rate:,.0f} entries/s, ETA {eta_text})\n"

    def finish(self, label: str) -> None:
        self._runs.pop(label, None)
