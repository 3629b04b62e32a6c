"""The status index updated in a process of its own (docs/status-proofs.md §9, §11 "Ninth round").

Why: an update is one chain (read the paths' pages, apply, commit) of about 100 µs of Python per document. In the
server's process it shared the GIL and the event loop with the sequencer, so each waited for the other, and an
update paused the event loop for up to half a second. Here the chain runs in a child interpreter with its own
connections to the log and the index (witness/workerprocess.py: a socket pair, one request and one answer at a
time; the child exits at end of file and, through `exit_with_parent`, within half a second of the server's death,
even mid-update). The server keeps what needs the sequencer or the registry key, which never leaves it: it states
each version's root in the log (`IndexRootLogger`) and publishes the lag.

The server drives. `advance`: the child commits the next version and answers it (None once the index covers the
log) as soon as it is committed, version k + 1 being made meanwhile from the rows before it (`overlap`). The child
goes on computing version k + 1 while the sequencer logs version k's statement (§11 "Twelfth round": the answer
once waited for version k + 1 to be made, so each root was stated an update late); the server then sends the next
`advance` with the entry where that statement landed, and the child records it on its writer's thread before
version k + 1's commit. A version is served once its entry is recorded: recorded by the server, it waited on
SQLite's write lock for the child's next commit, a whole update (§11 "Forty-fourth round"). Roots are logged in the
order the versions were committed. A child that fails or dies is stopped and a new one started at the next cycle (a
failure on the server's side, e.g. the sequencer refusing a root, keeps the child). A crash of either process
leaves the index as `StatusIndexer` leaves it (a version whole or not at all; a version committed but not yet
stated is stated at the next cycle's start). The child makes a big update as two, one per half of the tree, in two
shard processes of its own (statusshards.py, `[status_index] index_shards`), and commits it alone.
"""

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from logserver.config import ServerConfig
from logserver.metrics import Metrics
from logserver.opening import open_status_store, open_storage
from logserver.statusindexer import (
    UPDATE_FAILURES,
    UPPER_DEPTH,
    Advanced,
    IndexRootLogger,
    IndexUpdater,
    publish_lag,
    unlogged_version,
)
from logserver.statusshards import ShardPool, shard_settings
from logserver.statusstore import INDEXER_TIMEOUT, StatusStore
from logserver.storage import Storage, StorageError
from tlogcore.errors import TlogError
from tlogcore.gcpause import CollectorAtRest
from witness.processes import exit_with_parent
from witness.workerprocess import WorkerProcess

log = logging.getLogger("logserver.indexerprocess")
START_TIMEOUT = 60.0  # seconds for the child to import and open its connections
CHILD_POOL = 2  # PostgreSQL connections of the child's log storage (it reads entries and the head)
# Documents per update, both engines. Bigger steps cost less per document (the pages near the top are rewritten once
# per step); in one process they were held to 20,000 by the event-loop pause an update made (1.1 s at 50,000, §11
# eighth round), which no longer reaches the sequencer; 50,000 then 150,000 on PostgreSQL (a catch-up of 10^6 25-45 %
# faster, for a peak of 1.1 GB in the child instead of 0.8: §11 twelfth round). SQLite kept 20,000 while its index
# shared the log's write lock; in a file of its own, 150,000 against 20,000 at 10^6 (§11 twenty-second round): a
# catch-up 25,828-26,549 against 13,502-14,891 documents/s, and at 10,000/s the lag's growth +385 against +3,027.
STEP = 150_000
# Updates between the child's full collections (tlogcore/gcpause.py CollectorAtRest), made once it is caught up. A
# full collection walks the kept top: 0.8-2.1 s at 10^6, collecting nothing (gc.callbacks, status-proofs.md §11
# "Tenth round"); at 4 cycles a second with an update each, 2,048 updates are about 8.5 minutes (under 0.5 %).
COLLECT_EVERY = 2048


class ChildFailed(Exception):
    """The child could not take its step (its storage failed, or it is gone): a new one is started."""


@dataclass(frozen=True)
class Failed:
    """The child's answer when its step failed (a storage error): the message, for the server's log."""

    message: str


@dataclass(frozen=True)
class IndexerSettings:
    """What the child opens (pickled to it: paths and configuration, never a key)."""

    data: Path
    config: ServerConfig
    parent: int  # the server's process id: the child exits when it is gone


class IndexWorker:
    """The child: an `IndexUpdater` on an event loop of its own, one request at a time (`__call__`). Its collector
    runs only at rest (`CollectorAtRest`), never over what an update leaves."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, updater: IndexUpdater, collect_every: int = COLLECT_EVERY
    ) -> None:
        self._loop, self._updater = loop, updater
        self._collector = CollectorAtRest(collect_every)

    @classmethod
    def open(cls, settings: IndexerSettings, collect_every: int = COLLECT_EVERY) -> "IndexWorker":
        exit_with_parent(settings.parent)
        loop = asyncio.new_event_loop()
        storage = loop.run_until_complete(open_storage(settings.data, settings.config, CHILD_POOL, INDEXER_TIMEOUT))
        store = loop.run_until_complete(open_status_store(settings.data, settings.config, indexer=True))
        store.count_ahead()  # while the first update reads the log and starts its shards
        updater = IndexUpdater(storage, store, max_entries_per_step=STEP, overlap=True)
        if settings.config.index_shards > 1:
            shards = shard_settings(settings.data, settings.config, UPPER_DEPTH, collect_every)
            updater.shards = ShardPool(shards)  # started at the first update they make
        return cls(loop, updater, collect_every)

    def close(self) -> None:
        """Close its connections and loop (the child needs not: it exits at end of file; a caller running a worker
        in its own process does)."""
        self._loop.run_until_complete(self._updater.close())
        self._loop.run_until_complete(self._updater.store.close())
        self._loop.run_until_complete(self._updater.storage.close())
        self._loop.close()

    def __call__(self, request: tuple[Any, ...]) -> Advanced | Failed | None:
        answer: Advanced | Failed | None
        try:
            answer = self._loop.run_until_complete(self._answer(request))
        except (StorageError, TlogError, OSError) as exc:  # answered, not raised: a raise would end the child
            answer = Failed(str(exc))
        if request[0] == "prune":  # the end of a cycle: the index covers the log
            self._collector.at_rest()
            if self._updater.shards is not None:
                with contextlib.suppress(StorageError):  # a shard gone: the next big update fails and says so
                    self._loop.run_until_complete(self._updater.shards.rest())
        else:
            self._collector.after_update(isinstance(answer, Advanced))
        return answer

    async def _answer(self, request: tuple[Any, ...]) -> Advanced | None:
        if request[0] == "advance":
            _, served, entry = request
            if entry is not None:  # where the last version's root landed: recorded before the next commit
                await self._updater.store.set_entry(*entry)
            if served is not None:  # the server sends it with each step: pruning keeps pace with a long cycle
                self._updater.note_served(served)
            return await self._updater.advance()
        if request[0] == "prune":
            await self._updater.prune()
            return None
        raise ValueError(f"unknown request {request[0]!r}")


def open_worker(settings: IndexerSettings) -> IndexWorker:
    return IndexWorker.open(settings)


async def answer_of(worker: WorkerProcess) -> Advanced | None:
    try:
        answer = await worker.receive()
    except EOFError as exc:
        raise ChildFailed(str(exc)) from None
    if isinstance(answer, Failed):
        raise ChildFailed(answer.message)
    return answer  # type: ignore[no-any-return]


@dataclass
class IndexerProcess:
    """The server's side: the lag, the child's cycle every `interval` while this process sequences, each root
    stated. `store` is the server's own connection to the index (lookups read it)."""

    settings: IndexerSettings
    storage: Storage
    store: StatusStore
    roots: IndexRootLogger
    interval: float = 0.25
    metrics: Metrics | None = None
    may_write: Callable[[], bool] = field(default=lambda: True)  # only the sequencing process indexes
    _worker: WorkerProcess | None = None

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs (benchmarks add its CPU; tests kill it)."""
        return self._worker.pid if self._worker is not None else None

    async def run(self) -> None:
        """Cycle until cancelled; a failing cycle is logged and retried with a new child (the log is never held
        up). The child is started at the first cycle this process sequences, and stopped with the task."""
        try:
            while True:
                try:
                    _, served = await self.publish_lag()
                    if self.may_write():
                        await self._cycle(await self._started(), served)
                    else:
                        self.stop()  # a standby: its memory back (the kept top) until it sequences again
                except (ChildFailed, TimeoutError) as exc:  # TimeoutError: the child did not start in time
                    log.warning("status index update failed (retried with a new indexer process): %s", exc)
                    self.stop()
                except UPDATE_FAILURES as exc:
                    log.warning("status index update failed (retried): %s", exc)
                await asyncio.sleep(self.interval)
        finally:
            self.stop()

    async def _cycle(self, worker: WorkerProcess, served: int) -> None:
        unlogged = await unlogged_version(self.store)
        if unlogged is not None:
            await self.roots.log(unlogged)  # committed before a crash, its statement not yet logged
        worker.send(("advance", served, None))
        while (advanced := await answer_of(worker)) is not None:
            # The child goes on making the next version meanwhile (its shards' requests are out), and records
            # the entry on its writer's thread before that version's commit (`IndexWorker._answer`).
            entry = await self.roots.state(advanced.version) if advanced.stated else None
            worker.send(("advance", served, None if entry is None else (advanced.version.size, entry)))
            try:
                _, served = await self.publish_lag()
            except UPDATE_FAILURES:
                with contextlib.suppress(EOFError):  # the version in flight, committed or not: stated next cycle
                    await worker.receive()
                raise
        worker.send(("prune",))
        await answer_of(worker)

    async def publish_lag(self) -> tuple[int, int]:
        return await publish_lag(self.storage, self.store, self.metrics)

    async def _started(self) -> WorkerProcess:
        if self._worker is None:
            self._worker = await WorkerProcess.start(functools.partial(open_worker, self.settings), START_TIMEOUT)
        return self._worker

    def stop(self) -> None:
        """Stop the child (killed if busy: a kill mid-update leaves the index whole, as any crash does)."""
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.stop()
