"""The signature workers: processes joined to the server by socket pairs (witness/workerprocess.py), each sent
one part of a big batch as one frame and answering with one frame, read by the event loop itself.

`concurrent.futures.ProcessPoolExecutor` was used first. Its feeder and manager threads pickle each call and
read each result while taking the GIL from the event loop, and its call queue adds pipes and locks on both sides:
about 10 µs per entry in the workers and 5 in the server at batches of 1,000 (docs/performance.md, "HTTP
submit"). Here a part goes out in one `send`, and its answer comes back as the worker's outcome for the part.

A worker that dies (kill -9, the OOM killer) is replaced, and each part it held is sent once more, to another
worker or to its replacement: the checks are pure, so running one twice is harmless. A part whose second
worker dies too raises `WorkersUnavailable` (503 with Retry-After). When the server dies, even by kill -9, the
kernel closes its end of each socket and the workers exit.
"""

import asyncio
import collections
import logging
from collections.abc import Callable
from typing import Any

from witness.workerprocess import Handler, WorkerProcess

log = logging.getLogger("logserver.workerpool")

Pending = collections.deque["asyncio.Future[Any]"]  # a worker's parts in flight, in the order it answers them


class WorkersUnavailable(Exception):
    """No signature worker could check a part: two died holding it, or none started in time. Nothing was logged."""


class WorkerLost(Exception):
    """The worker holding a part died before answering (internal: the part is sent again once)."""


class SignaturePool:
    """`workers` processes, each built by `make_handler` (picklable: a module-level function or a partial of one);
    `call(request)` sends one request to the least busy and returns its answer."""

    def __init__(
        self,
        make_handler: Callable[[], Handler],
        workers: int,
        on_replace: Callable[[], None] = lambda: None,  # e.g. a metric: a dead worker was replaced
        ready_timeout: float = 60.0,
    ) -> None:
        self._make_handler, self._count = make_handler, workers
        self._on_replace, self._ready_timeout = on_replace, ready_timeout
        self._pending: dict[WorkerProcess, Pending] = {}
        self._joined = asyncio.Event()  # set while at least one worker runs
        self._starting = 0  # replacements being started
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    async def start(self) -> None:
        """Every worker started and ready; raises if one cannot build its handler in time."""
        workers = await asyncio.gather(
            *(WorkerProcess.start(self._make_handler, self._ready_timeout) for _ in range(self._count)),
            return_exceptions=True,
        )
        for worker in workers:
            if isinstance(worker, BaseException):
                await self.close()
                raise worker
            self._join(worker)

    def _join(self, worker: WorkerProcess) -> None:
        self._pending[worker] = collections.deque()
        self._keep(asyncio.create_task(self._read_answers(worker)))
        self._joined.set()

    def _keep(self, task: "asyncio.Task[None]") -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def call(self, request: object) -> Any:
        """The answer of one worker to `request`; sent again once if that worker dies meanwhile."""
        for _ in range(2):
            worker = await self._least_busy()
            done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self._pending[worker].append(done)
            worker.send(request)
            try:
                return await done
            except WorkerLost:
                continue
        raise WorkersUnavailable("two signature worker processes died checking this batch; nothing was logged")

    async def _least_busy(self) -> WorkerProcess:
        if not self._pending:
            if not self._starting and not self._closed:  # the last replacement failed to start: try once more
                self._start_replacement()
            try:
                async with asyncio.timeout(self._ready_timeout):
                    await self._joined.wait()  # a replacement is starting (one starts whenever one is lost)
            except TimeoutError:
                raise WorkersUnavailable("no signature worker process is running; nothing was logged") from None
        return min(self._pending, key=lambda w: len(self._pending[w]))

    async def _read_answers(self, worker: WorkerProcess) -> None:
        try:
            while True:
                answer = await worker.receive()
                done = self._pending[worker].popleft()
                if not done.done():  # the request may have gone away meanwhile
                    done.set_result(answer)
        except EOFError:
            self._lost(worker)
        except Exception:  # an answer that does not unpickle, or one too many: not to be trusted
            log.exception("a signature worker answered something unreadable: replacing it")
            self._lost(worker)

    def _lost(self, worker: WorkerProcess) -> None:
        held = self._pending.pop(worker, collections.deque())
        if not self._pending:
            self._joined.clear()
        worker.stop()
        for done in held:
            if not done.done():
                done.set_exception(WorkerLost())
        if not self._closed:
            log.warning("a signature worker process (pid %d) died: starting another", worker.pid)
            self._on_replace()
            self._start_replacement()

    def _start_replacement(self) -> None:
        self._starting += 1  # counted from now: a caller that finds no worker waits for this one
        self._keep(asyncio.create_task(self._replace()))

    async def _replace(self) -> None:
        try:
            worker = await WorkerProcess.start(self._make_handler, self._ready_timeout)
        except Exception as exc:  # callers waiting in _least_busy time out with WorkersUnavailable
            log.error("a signature worker process could not start: %s", exc)
            return
        finally:
            self._starting -= 1
        if self._closed:
            worker.stop()
            return
        self._join(worker)

    async def close(self) -> None:
        self._closed = True
        for worker in list(self._pending):
            worker.stop()
        self._pending.clear()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    @property
    def processes(self) -> list[int]:
        """Process ids of the running workers (tests kill one)."""
        return [worker.pid for worker in self._pending]
