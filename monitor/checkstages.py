"""A chunk's statement checks (audit.py steps 1-2) in two stages: each statement parsed and checked
(`parse_checked`), then, in mode `signatures`, its Ed25519 signature verified (`verify_packed`).

Why two stages: the status index (statusworker.py) needs what the parse finds (each entry's document, whatever its
signature), not the signatures' verdicts. Queued as soon as its chunk is parsed (entryaudit.py), the status process
works a batch ahead of the signature checks, and its bursts (a root-less log's batch of APPLY_EVERY documents, a
fold: 1-3 s of one core) overlap them, instead of coming after the last one with the other core idle
(docs/performance.md, "The monitor").

Where: with worker processes and mode `signatures`, the parse is made here, in the main process, as the chunk
arrives (about 7 µs per entry: 30-60 ms a chunk), and the workers only verify. A parse in the workers would wait
behind the verifications queued there (a pool runs its tasks in the order they come), and keep the status process
a chunk ahead at most; and each entry would cross to the workers twice (measured: BENCHMARKS.md "Fifty-third
round"). The main process has the CPU to spare (about a third of a core at 2·10^4 entries/s). Each statement is
still parsed once, and the verifications are the parse's own (`Unverified`). In mode `parse` the workers parse
(there is no second stage to wait behind); with no workers both stages run in one thread, as one.
"""

import asyncio
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import TypeVar

from monitor.audit import (
    Checked,
    Packed,
    Unverified,
    check_packed,
    checked_here,
    parse_checked,
    unpack,
    verify_packed,
    with_failed,
)
from monitor.modes import SIGNATURES, TREE

T = TypeVar("T")


@dataclass
class ChunkChecks:
    """The two stages of one chunk's checks, each a future of the chunk's `Checked` entries in log order."""

    parsed: "asyncio.Future[list[Checked]]"  # each entry parsed: the statements, their signatures maybe not checked
    checked: "asyncio.Future[list[Checked]]"  # with the verdicts of the signatures: steps 1-2 done

    async def cancel(self) -> None:
        for stage in (self.parsed, self.checked):
            stage.cancel()
        await asyncio.gather(self.parsed, self.checked, return_exceptions=True)


class Checker:
    """One log's checks for one round: `start` each chunk's, in log order. The workers (`executor`; None: a thread
    of this process) run at a lower priority than this process (processes.py CHECK_WORKER_NICENESS)."""

    def __init__(self, executor: Executor | None, workers: int, origin: str, mode: str) -> None:
        self.executor, self.workers, self.origin, self.mode = executor, workers, origin, mode

    def start(self, entries: Sequence[bytes], leaves: Sequence[bytes], first: int) -> ChunkChecks:
        """The chunk's checks started: its parse made now (mode `signatures`, with workers) or in the workers."""
        if self.mode == TREE:  # the entries are in the tree (checked against their tile): nothing more to do
            return ChunkChecks(done([]), done([]))
        loop, origin, mode = asyncio.get_running_loop(), self.origin, self.mode
        if self.executor is None:  # one stage, in a thread (the status index is in this process too)
            both = loop.run_in_executor(None, checked_here, entries, first, leaves, origin, mode)
            return ChunkChecks(both, both)
        if mode != SIGNATURES:  # mode parse: the parse in the workers, the only stage
            parts = [
                loop.run_in_executor(self.executor, check_packed, part, first + i, origin, mode)
                for i, part in self._parts(entries)
            ]
            both = asyncio.ensure_future(_unpacked(parts, first, leaves))
            return ChunkChecks(both, both)
        parsed, unverified = parse_checked(entries, first, leaves, origin, mode)
        return ChunkChecks(done(parsed), asyncio.ensure_future(self._verified(parsed, unverified)))

    async def _verified(self, parsed: list[Checked], unverified: Unverified) -> list[Checked]:
        """The parsed chunk, its statements whose signature fails made entries with a problem."""
        loop = asyncio.get_running_loop()
        failed = await asyncio.gather(
            *(loop.run_in_executor(self.executor, verify_packed, part) for _, part in self._parts(unverified))
        )
        return with_failed(parsed, [item for part in failed for item in part])  # the status index kept the parse

    def _parts(self, items: Sequence[T]) -> list[tuple[int, Sequence[T]]]:
        """`items` in `workers` parts, each with its offset: one per worker."""
        step = max(1, -(-len(items) // self.workers))
        return [(i, items[i : i + step]) for i in range(0, len(items), step)]


async def _unpacked(parts: "list[asyncio.Future[Packed]]", first: int, leaves: Sequence[bytes]) -> list[Checked]:
    out: list[Checked] = []
    for packed in await asyncio.gather(*parts):
        out += unpack(packed, first + len(out), leaves[len(out) : len(out) + len(packed)])
    return out


def done(result: T) -> "asyncio.Future[T]":
    """A future already done (a stage with nothing left to wait for)."""
    future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
    future.set_result(result)
    return future
