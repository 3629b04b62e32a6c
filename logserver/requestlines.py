"""The request log's lines written in batches, not one write(2) each (RequestLog, logserver/app.py, makes them).

A line per request through `logging`, written at once, cost every answer a LogRecord, the handler chain, a system
call and a flush: 24-32 us of the server's CPU per `/healthz` over HTTP (about a sixth) went with it when the
server's RequestLog handed its lines straight to a batch (`BatchedLines.add`; BENCHMARKS.md "Thirty-seventh
round"). So the lines wait in memory and go out together, as nginx's `access_log ... buffer= flush=` does: at most
`[server] request_log_flush_ms` (250 ms by default; 0 writes each line at once, through the root logger) after
they were made (the serving process's own task, `flush_every`), as soon as MAX_LINES wait, and when the server
stops (`flush_all`, from its shutdown: uvicorn ends a process stopped by SIGTERM with that signal again, so
Python's exit hooks never run, nor do they in a forked worker). Only request lines wait: warnings and errors go to
stderr at once, through the root logger. A process killed outright (kill -9) loses at most its last batch of
request lines, nothing else.
"""

import asyncio
import logging
from collections.abc import Callable
from typing import TextIO

REQUESTS = "logserver.requests"  # RequestLog's logger
MAX_LINES = 256


class BatchedLines(logging.Handler):
    """Formatted records kept in memory, written to `stream` in one write and one flush per batch."""

    def __init__(self, stream: TextIO, max_lines: int = MAX_LINES) -> None:
        super().__init__()
        self.stream, self.max_lines = stream, max_lines
        self._lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:  # called with the handler's lock held (Handler.handle)
        try:
            line = self.format(record)
        except Exception:  # as logging.StreamHandler: a record that cannot be formatted is reported, not raised
            self.handleError(record)
            return
        self.add(line)

    def add(self, line: str) -> None:
        """One line, as it is (RequestLog's `lines`: no LogRecord made)."""
        self.acquire()
        try:
            self._lines.append(line)
            if len(self._lines) >= self.max_lines:
                self.flush()
        finally:
            self.release()

    def flush(self) -> None:
        self.acquire()  # reentrant: `add` calls this with the lock held
        try:
            if not self._lines:
                return
            text = "\n".join(self._lines) + "\n"
            self._lines.clear()
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # stderr closed or gone: the lines are dropped, the server goes on
            pass
        finally:
            self.release()

    def close(self) -> None:
        self.flush()
        super().close()


def batch_request_lines(stream: TextIO, max_lines: int = MAX_LINES) -> BatchedLines:
    """Send RequestLog's lines through a BatchedLines on `stream` (in place of the root logger's handlers)."""
    handler = BatchedLines(stream, max_lines)
    handler.setFormatter(logging.Formatter("%(message)s"))
    requests = logging.getLogger(REQUESTS)
    requests.addHandler(handler)
    requests.propagate = False
    return handler


def request_lines() -> Callable[[str], None] | None:
    """Where RequestLog writes its lines straight (`BatchedLines.add`), if the server batches them; else None."""
    for handler in logging.getLogger(REQUESTS).handlers:
        if isinstance(handler, BatchedLines):
            return handler.add
    return None


def flush_all() -> None:
    """Write every request line still waiting (a process that stops; a forked worker skips logging's exit hook)."""
    for handler in logging.getLogger(REQUESTS).handlers:
        handler.flush()


async def flush_every(seconds: float) -> None:
    """The serving process's task: the lines waiting go out at least every `seconds` (cancelled when it stops)."""
    while True:
        await asyncio.sleep(seconds)
        flush_all()
