"""Where the monitor's recomputed status index runs (statusaudit.py): in a process of its own when the monitor has
worker processes (`workers > 1`), else in the main process.

Why a process: recomputing the index (reading the rows on each document's path, hashing the new nodes, writing them)
is about half of the main process's work per audited entry, and the main process is what bounds an audit with
signatures (docs/performance.md, "The monitor"). In its own process the index of chunk k is computed while the
workers verify the signatures of the chunks before it and after it: the main process queues it as soon as chunk k
is parsed (checkstages.py), up to CHECKS_AHEAD_ENTRIES entries ahead of the signature checks (entryaudit.py).

One process, not a pool: it keeps each log's index connection, and the top of the tree in memory, from chunk to
chunk; a second process would hold a second copy of that memory, which would go stale as soon as the first wrote.
What crosses the process boundary is small: the chunk's `StatusItem`s (index, kind, 32-byte document) and the
findings (rare). The rows of chunk k are committed before chunk k is (entryaudit.py awaits the findings first), so
the crash rule of statusaudit.py holds unchanged.

Its collector runs only at rest, never over what a chunk leaves (the top of the tree it keeps: tlogcore/gcpause.py
CollectorAtRest, as in the log's indexer process): a full collection when a round ends (`close_index`).
"""

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, TypeVar

from monitor.processes import exit_with
from monitor.state import StateError
from monitor.statusaudit import Finding, StatusAudit, StatusItem
from monitor.statusfile import index_path
from tlogcore.errors import TlogError
from tlogcore.gcpause import CollectorAtRest

T = TypeVar("T")
_OPEN: dict[tuple[str, str], StatusAudit] = {}  # this process's open indexes, by (state file, origin)
_COLLECTOR: list[CollectorAtRest] = []  # in the status process only (`start_status_process`), not the main one
COLLECT_EVERY = 64  # chunks between full collections, made at a round's end (CollectorAtRest)


def start_status_process(monitor: int) -> None:
    """The status process's initializer (commands.py): it exits with the monitor, and its collector runs only at
    rest."""
    exit_with(monitor)
    _COLLECTOR.append(CollectorAtRest(COLLECT_EVERY))


def _opened(state: str, origin: str) -> StatusAudit:
    audit = _OPEN.get((state, origin))
    if audit is None:
        audit = _OPEN[(state, origin)] = StatusAudit(Path(state), origin)
    return audit


def audit_chunk(
    state: str, origin: str, items: Sequence[StatusItem], span: tuple[int, int], registry_keys: frozenset[str]
) -> list[Finding]:
    """`StatusAudit.chunk_items` for entries [start, end) of one log, on the index this process keeps open."""
    with _index_errors(state, origin):
        findings = _opened(state, origin).chunk_items(items, span[0], span[1], registry_keys)
        for collector in _COLLECTOR:
            collector.after_update(True)
        return findings


def start_over_if_behind(state: str, origin: str, audited: int) -> bool:
    """`StatusAudit.start_over_if_behind` on the index this process keeps open."""
    with _index_errors(state, origin):
        return _opened(state, origin).start_over_if_behind(audited)


@contextlib.contextmanager
def _index_errors(state: str, origin: str) -> Iterator[None]:
    """A storage error closes the index (not folded: statusaudit.py) and is the state's error, named."""
    try:
        yield
    except sqlite3.Error as exc:
        close_index(state, origin, fold=False)
        raise StateError(f"the monitor's status index: {exc}") from None
    except TlogError as exc:  # a stored page that no longer decodes: the file, not the log, is at fault
        close_index(state, origin, fold=False)
        name = index_path(Path(state)).name
        raise StateError(
            f"the monitor's status index {name} is damaged ({exc}); delete it: the next round rebuilds it from the log"
        ) from None


def close_index(state: str, origin: str, fold: bool = True) -> None:
    """Close the index (its journal folded into its pages first, unless after an error: statusaudit.py)."""
    audit = _OPEN.pop((state, origin), None)
    try:
        if audit is not None:
            audit.close(fold)
    finally:
        for collector in _COLLECTOR:
            collector.at_rest()


class StatusRunner:
    """One log's index for one round: chunks submitted in log order, each answered with its findings."""

    def __init__(self, state: Path, origin: str, executor: Executor | None) -> None:
        self.state, self.origin, self.executor = str(state), origin, executor

    def submit(
        self, items: Sequence[StatusItem], span: tuple[int, int], registry_keys: frozenset[str]
    ) -> "asyncio.Future[list[Finding]]":
        """The chunk's findings: computed now in this process, or in the status process while the caller goes on."""
        if self.executor is not None:
            return in_status_process(self.executor, audit_chunk, self.state, self.origin, items, span, registry_keys)
        future: asyncio.Future[list[Finding]] = asyncio.get_running_loop().create_future()
        try:
            future.set_result(audit_chunk(self.state, self.origin, items, span, registry_keys))
        except StateError as exc:
            future.set_exception(exc)
        return future

    async def start_over_if_behind(self, audited: int) -> bool:
        """True when the index covered fewer than `audited` entries and was emptied, to be rebuilt from entry 0."""
        if self.executor is None:
            return start_over_if_behind(self.state, self.origin, audited)
        return await answer_of(in_status_process(self.executor, start_over_if_behind, self.state, self.origin, audited))

    async def close(self) -> None:
        """Close the index for this round (its connection, and the memory copy of the top of the tree)."""
        if self.executor is None:
            close_index(self.state, self.origin)
            return
        with contextlib.suppress(BrokenProcessPool):  # the process is gone, and its connection with it
            await in_status_process(self.executor, close_index, self.state, self.origin)


def in_status_process(executor: Executor, work: Callable[..., T], *args: Any) -> "asyncio.Future[T]":
    """`work(*args)` in the status process. A pool that already knows its process died refuses the call itself
    (BrokenProcessPool from `submit`, not from the future): that is the same failure, answered the same way, as a
    future failed with it (`answer_of`), not a traceback out of the round."""
    try:
        return asyncio.wrap_future(executor.submit(work, *args))
    except BrokenProcessPool as exc:
        refused: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        refused.set_exception(exc)
        return refused


async def findings_of(future: "asyncio.Future[list[Finding]]") -> list[Finding]:
    """The findings, or StateError when the status process died (its rows are then not committed: the chunk is not
    committed either, and the next round audits it again)."""
    return await answer_of(future)


async def answer_of(future: "asyncio.Future[T]") -> T:
    """What the status process answered, or StateError when it died."""
    try:
        return await future
    except BrokenProcessPool:
        raise StateError("the monitor's status index process stopped") from None
