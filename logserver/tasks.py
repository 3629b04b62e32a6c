"""Background tasks: started so that a failure is said when it happens, and stopped so that each one's `finally`
blocks have run before the resources it uses (storage, sockets) are closed."""

import asyncio
import contextlib
import logging
from collections.abc import Coroutine, Iterable
from typing import Any

log = logging.getLogger("logserver.tasks")


def logged_task(work: Coroutine[Any, Any, object], name: str) -> "asyncio.Task[object]":
    """`work` as a task whose unforeseen failure is logged at once, with its traceback, and ends only this task.
    Unwatched, a background task that raised ended without a word, and its exception came out of the server's
    shutdown, before the storage was closed (found with the witnesses' refresh, docs/trust.md "Freshness")."""

    async def watched() -> object:
        try:
            return await work
        except Exception:  # asyncio.CancelledError is not an Exception: a stop still stops it
            log.exception("background task %r failed; the server goes on without it", name)
            return None

    return asyncio.create_task(watched(), name=name)


async def cancel_and_wait(tasks: Iterable["asyncio.Task[object]"]) -> None:
    for task in tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
