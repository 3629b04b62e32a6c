"""Stopping background tasks: each cancelled, then awaited, so that its `finally` blocks have run before the
resources it uses (storage, sockets) are closed."""

import asyncio
import contextlib
from collections.abc import Iterable


async def cancel_and_wait(tasks: Iterable["asyncio.Task[object]"]) -> None:
    for task in tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
