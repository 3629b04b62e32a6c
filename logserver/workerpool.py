"""A process pool that heals itself: a worker killed (kill -9, the OOM killer) costs one retry, not a restart.

`concurrent.futures.ProcessPoolExecutor` marks itself broken for good when one of its workers dies: every later
`submit` raises `BrokenProcessPool`, so every big batch would fail until the server restarts (RELIABILITY.md).
`HealingProcessPool` is an Executor that replaces a broken pool with a fresh one and resubmits the tasks the dead
worker took down with it, once each: the signature checks it runs are pure, so running one twice is harmless.
"""

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, ParamSpec, TypeVar

log = logging.getLogger("logserver.workerpool")

P = ParamSpec("P")
T = TypeVar("T")


class HealingProcessPool(Executor):
    def __init__(self, make_pool: Callable[[], ProcessPoolExecutor], on_replace: Callable[[], None] = lambda: None):
        self._make_pool = make_pool
        self._on_replace = on_replace  # e.g. a metric; called from the pool's own thread
        self._lock = threading.Lock()
        self._pool = make_pool()

    def _replace(self, broken: ProcessPoolExecutor) -> ProcessPoolExecutor:
        """A fresh pool in place of `broken`, unless another task replaced it already."""
        with self._lock:
            if self._pool is broken:
                log.warning("a signature worker process died: starting a fresh pool")
                broken.shutdown(wait=False, cancel_futures=True)
                self._pool = self._make_pool()
                self._on_replace()
            return self._pool

    def _submit_inner(self, fn: Callable[..., T], args: tuple[Any, ...]) -> tuple[ProcessPoolExecutor, "Future[T]"]:
        pool = self._pool
        try:
            return pool, pool.submit(fn, *args)
        except BrokenProcessPool:
            pool = self._replace(pool)
            return pool, pool.submit(fn, *args)

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> "Future[T]":
        if kwargs:
            raise TypeError("HealingProcessPool.submit takes positional arguments only")
        outer: Future[T] = Future()
        pool, inner = self._submit_inner(fn, args)

        def settle(done: "Future[T]", retry: bool) -> None:
            error = done.exception() if not done.cancelled() else BrokenProcessPool("cancelled")
            if isinstance(error, BrokenProcessPool) and retry:
                again: Future[T] = self._replace(pool).submit(fn, *args)  # type: ignore[call-arg]
                again.add_done_callback(lambda f: settle(f, retry=False))
                return
            if outer.done():  # the caller gave up (cancelled)
                return
            if error is not None:
                outer.set_exception(error)
            else:
                outer.set_result(done.result())

        inner.add_done_callback(lambda f: settle(f, retry=True))
        return outer

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=cancel_futures)

    @property
    def processes(self) -> list[int]:
        """Process ids of the current workers (tests kill one)."""
        return [p.pid for p in getattr(self._pool, "_processes", {}).values() if p.pid is not None]
