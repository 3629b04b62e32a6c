"""Steps 1-8 of an add-checkpoint request (FORMATS.md §e) and its cosignature: in the event loop, or in batches on
worker processes.

Parsing, the log signature check, the consistency proof and the cosignature are CPU-bound and most of a request's
cost: one Ed25519 verify, one sign, SHA-256 up a proof path. In one process they shared one core with the HTTP
stack, which bounded the witness at about a quarter of its sign + verify ceiling (docs/performance.md, "The
witness"). `PoolCosigner` sends the bodies that arrive in one turn of the event loop as one task per worker
process; each worker reads the stored tree head from the database itself (its own read-only use of it), so the
event loop is left with HTTP and the durable compare-and-swap.

The promise is unchanged: the checks run against the head last committed, and the cosignature reaches the client
only if the compare-and-swap from exactly that head then wins (witness/storage.py); if another request moved the
state meanwhile, it loses (409) and the cosignature is dropped unseen. Only a checkpoint signed by a configured log
and consistent with the stored head is ever cosigned.
"""

import asyncio
import collections
import functools
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

from tlogcore.checkpoint import Checkpoint
from tlogcore.keys import Signer, Verifier
from witness.config import parse_config
from witness.keyfiles import read_key
from witness.storage import StorageUnavailable, connect, read_head, unavailable_on_error
from witness.witness import (
    Cosigned,
    TreeHead,
    WitnessError,
    check_update,
    cosign,
    parse_request,
    verify_log_signature,
)
from witness.workerprocess import WorkerProcess

log = logging.getLogger("witness.cosigner")


@dataclass(frozen=True)
class Signed:
    """A request that passed every check against `head`: what the compare-and-swap needs, and the cosignature."""

    old_size: int  # the request's
    checkpoint: Checkpoint  # the request's, now cosigned
    head: TreeHead | None  # the stored head the checks ran against (None: never cosigned): the swap's expected value
    cosigned: Cosigned

    def __reduce__(self) -> tuple[Callable[..., "Signed"], tuple[object, ...]]:
        """Pickled from a worker process as builtins only: a dataclass graph pickles each class by name, which cost
        the worker and the event loop 15-20 µs each per answer (`witness_bench --phases`); this, about 1."""
        checkpoint, head = self.checkpoint, self.head
        stored = (head.size, head.root) if head is not None else None
        fields = (checkpoint.origin, checkpoint.size, checkpoint.root, checkpoint.extensions)
        return _unpickle_signed, (self.old_size, fields, stored, self.cosigned.lines, self.cosigned.note)


def _unpickle_signed(
    old_size: int,
    fields: tuple[str, int, bytes, tuple[str, ...]],
    stored: tuple[int, bytes] | None,
    lines: tuple[str, ...],
    note: bytes,
) -> Signed:
    head = TreeHead(*stored) if stored is not None else None
    return Signed(old_size, Checkpoint(*fields), head, Cosigned(lines, note))


class WorkersUnavailable(Exception):
    """The worker processes failed twice in a row (killed, out of memory): nothing was signed; try again later."""


class Cosigner(Protocol):
    async def start(self) -> None:
        """Ready to sign (worker processes started), or an error naming why not."""

    async def sign(self, body: bytes) -> Signed:
        """Check and cosign one body; raises the WitnessError that refuses it, or StorageUnavailable."""

    async def close(self) -> None: ...


Trusted = Mapping[str, Sequence[Verifier]]


def check_and_cosign(
    body: bytes, head_of: Callable[[str], TreeHead | None], trusted: Trusted, signers: Sequence[Signer]
) -> Signed:
    """Steps 1-8 in their order (a bad signature is refused before the state is read), then the cosignature."""
    request = parse_request(body)
    opened = verify_log_signature(request, trusted)
    head = head_of(request.checkpoint.origin)
    check_update(request, head)
    return Signed(request.old_size, request.checkpoint, head, cosign(opened, signers, request.note_bytes))


class InlineCosigner:
    """In the event loop itself (tests, `workers = 0`), reading the head through the server's storage."""

    def __init__(
        self, trusted: Trusted, signers: Sequence[Signer], latest: Callable[[str], Awaitable[TreeHead | None]]
    ) -> None:
        self._trusted, self._signers, self._latest = trusted, list(signers), latest

    async def start(self) -> None:
        pass

    async def sign(self, body: bytes) -> Signed:
        request = parse_request(body)
        opened = verify_log_signature(request, self._trusted)
        head = await self._latest(request.checkpoint.origin)
        check_update(request, head)
        return Signed(request.old_size, request.checkpoint, head, cosign(opened, self._signers, request.note_bytes))

    async def close(self) -> None:
        pass


# --- in worker processes --------------------------------------------------------------


Outcomes = list[Signed | Exception]  # one per body, in order: a refusal (WitnessError) or, for a bug, any error


@dataclass(frozen=True)
class WorkerSetup:
    """What a worker needs to build the log keys and the witness keys itself (no key material crosses a pipe) and
    to read the stored heads."""

    config_text: str
    data: str  # the witness's data directory (its key files)
    database: str  # the witness's SQLite state (WAL: reads see the last commit and never wait for a write)


def batch_handler(setup: WorkerSetup) -> Callable[[list[bytes]], Outcomes]:
    """In a worker, once: the trusted log keys and the signers, in the config's order (as `tlog-witness serve`
    has them), and a connection to read the stored heads, bound to `sign_batch`."""
    config = parse_config(setup.config_text)
    signers = [read_key(Path(setup.data), algorithm, time.time) for algorithm in config.algorithms]
    head_of = functools.partial(stored_head, connect(setup.database))
    return functools.partial(sign_batch, head_of, config.trusted_keys(), signers)


def stored_head(connection: sqlite3.Connection, origin: str) -> TreeHead | None:
    with unavailable_on_error():
        return read_head(connection, origin)


def sign_batch(
    head_of: Callable[[str], TreeHead | None], trusted: Trusted, signers: Sequence[Signer], bodies: list[bytes]
) -> Outcomes:
    """In a worker: each body's outcome, in order. A refusal is a value here, so one bad body fails only itself;
    so is an unexpected error (a bug), which its request alone then raises, as a RuntimeError naming it (any
    exception class would not survive the pickle back, and a worker that cannot answer is a worker lost)."""
    outcomes: Outcomes = []
    for body in bodies:
        try:
            outcomes.append(check_and_cosign(body, head_of, trusted, signers))
        except (WitnessError, StorageUnavailable) as refusal:
            outcomes.append(refusal)
        except Exception as error:
            outcomes.append(RuntimeError(f"cosigning failed: {error!r}"[:500]))
    return outcomes


Waiting = list[tuple[bytes, "asyncio.Future[Signed]"]]
T = TypeVar("T")

# A turn's bodies are split over the workers only in shares of at least this many. Each batch costs its worker a
# wake-up, a read, a pickle each way and a send, and the event loop a write and a read: with shares of a few bodies
# these cost more than the bodies' own Python (CPU per cosignature 400 against 250 µs at 8 connections, wrk,
# docs/performance.md "The witness", third round).
MIN_SHARE = 8


def split_batches(items: list[T], workers: int) -> list[list[T]]:
    """`items` in order, in as many batches as there are workers but each of at least MIN_SHARE items (one batch
    if there are fewer), their sizes differing by at most one."""
    count = max(1, min(workers, len(items) // MIN_SHARE))
    size, larger = divmod(len(items), count)
    batches, start = [], 0
    for i in range(count):
        end = start + size + (i < larger)
        batches.append(items[start:end])
        start = end
    return [batch for batch in batches if batch]


class PoolCosigner:
    """Worker processes (witness/workerprocess.py) fed in batches: the bodies waiting at the end of a turn of the
    event loop are split over the workers with the least in flight. A worker that dies is replaced, and what it held
    is sent again once (the work is pure); a second failure answers 503."""

    def __init__(self, setup: WorkerSetup, workers: int, ready_timeout: float = 60.0) -> None:
        self._make_handler = functools.partial(batch_handler, setup)
        self._count, self._ready_timeout = workers, ready_timeout
        self._workers: list[WorkerProcess] = []
        self._starting = 0  # workers being started: batches wait for them rather than fail
        self._in_flight: dict[WorkerProcess, collections.deque[tuple[Waiting, bool]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()  # readers and starts, cancelled at close
        self._waiting: list[tuple[Waiting, bool]] = []  # (batch, may be retried)
        self._loose: Waiting = []  # single bodies of this turn, not yet a batch
        self._closed = False

    async def start(self) -> None:
        """Start every worker; raises if one cannot build its keys within the timeout (it exits, or hangs)."""
        await asyncio.gather(*(self._start_worker() for _ in range(self._count)))

    def _start_worker(self) -> "asyncio.Task[None]":
        """Start one worker in the background, counted as starting from now on."""
        self._starting += 1
        task = asyncio.create_task(self._run_start())
        self._keep(task)
        return task

    async def _run_start(self) -> None:
        try:
            worker = await WorkerProcess.start(self._make_handler, self._ready_timeout)
        except BaseException:
            self._starting -= 1
            self._dispatch()  # if nothing runs now, what waits is refused rather than left waiting
            raise
        self._starting -= 1
        if self._closed:
            worker.stop()
            return
        self._workers.append(worker)
        self._in_flight[worker] = collections.deque()
        self._keep(asyncio.create_task(self._read_answers(worker)))
        self._dispatch()

    def _keep(self, task: "asyncio.Task[None]") -> None:
        self._tasks.add(task)
        task.add_done_callback(self._forget)

    def _forget(self, task: "asyncio.Task[None]") -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("cosigning worker: %s", task.exception())

    async def sign(self, body: bytes) -> Signed:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Signed] = loop.create_future()
        self._loose.append((body, done))
        if len(self._loose) == 1:  # the first of this turn: send them all once the turn's requests are read
            loop.call_soon(self._batch_loose)
        return await done

    def _batch_loose(self) -> None:
        loose, self._loose = self._loose, []
        self._waiting.extend((batch, True) for batch in split_batches(loose, len(self._workers)))
        self._dispatch()

    def _dispatch(self) -> None:
        while self._waiting and self._workers:
            worker = min(self._workers, key=lambda w: sum(len(batch) for batch, _ in self._in_flight[w]))
            batch, retry = self._waiting.pop(0)
            self._in_flight[worker].append((batch, retry))
            worker.send([body for body, _ in batch])
        if self._waiting and not self._workers and not self._starting:  # the last start failed
            for batch, _ in self._waiting:
                fail(batch, WorkersUnavailable("no cosigning worker process is running; try again"))
            self._waiting.clear()
            if not self._closed:
                self._start_worker()  # and try again, for the next requests

    async def _read_answers(self, worker: WorkerProcess) -> None:
        try:
            while True:
                outcomes = await worker.receive()
                batch, _ = self._in_flight[worker].popleft()
                settle(batch, outcomes)
        except EOFError:
            self._lost(worker)
        except Exception:  # an answer that does not unpickle or fit its batch: this worker is not to be trusted
            log.exception("a cosigning worker answered something unreadable: replacing it")
            self._lost(worker)

    def _lost(self, worker: WorkerProcess) -> None:
        """A worker died: start another in its place and send what it held again (once)."""
        self._workers.remove(worker)
        held = self._in_flight.pop(worker)
        worker.stop()
        if not self._closed:
            log.warning("a cosigning worker process died: starting another")
            self._start_worker()
        for batch, retry in held:
            if retry:
                self._waiting.append((batch, False))
            else:
                fail(batch, WorkersUnavailable("the cosigning worker processes failed twice; try again"))
        self._dispatch()  # to the workers still running, or to the new one once it is ready

    async def close(self) -> None:
        self._closed = True
        for worker in self._workers:
            worker.stop()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def settle(batch: Waiting, outcomes: Outcomes) -> None:
    for (_, done), outcome in zip(batch, outcomes, strict=True):
        if done.done():  # the request went away meanwhile
            continue
        if isinstance(outcome, Exception):
            done.set_exception(outcome)
        else:
            done.set_result(outcome)


def fail(batch: Waiting, error: Exception) -> None:
    for _, done in batch:
        if not done.done():
            done.set_exception(error)
