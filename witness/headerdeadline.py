"""A deadline on each request's headers for uvicorn (slowloris), shared by both servers: `tlog-witness` and
`tlog-server` (logserver/cli.py). It lives in `witness/` because the log may import from the witness package, never
the reverse (docs/architecture.md, the import table).

uvicorn 0.54 arms `timeout_keep_alive` only after a response and cancels it on the first byte received: a client
that connects and sends nothing, or trickles a header line now and then, would hold its connection (and a slot of
`limit_concurrency`) for ever. So would one that, answered without its body being read (a GET with Content-Length,
a 413 or 415), sends one more byte: that byte cancels the keep-alive timer, and being body, not a new request,
never re-arms anything (issue 18, items 4 and 6). Here every connection that is not running a request is bounded:
closed when a request's headers are not complete `header_timeout` seconds after the connection opened, the previous
response completed, or the request's first byte arrived, whatever it sends meanwhile. Bodies have their own deadline
in each app.

The deadline moves with every request, so it is a time, not a timer: each connection has at most one timer, which
on firing closes the connection if the deadline has passed and is set again for the deadline otherwise. Setting and
cancelling a timer twice per request (uvloop's `call_later` and `cancel`, 2.3 µs a pair here) was a few percent of
a cheap read's CPU (docs/performance.md, "Read figures with wrk").
"""

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from witness.onewrite import OneWriteTransport


class HeaderDeadlineProtocol(HttpToolsProtocol):
    """uvicorn's HTTP protocol plus the header deadline; make one with `header_deadline_protocol`."""

    header_timeout: float = 10.0
    one_write: bool = False  # each response in one send (witness/onewrite.py)
    _deadline: float | None = None  # loop time by which the headers must be complete; None while a request runs
    _timer: asyncio.TimerHandle | None = None  # the one pending check of `_deadline`

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(OneWriteTransport(transport, self.loop) if self.one_write else transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_headers_complete(self) -> None:
        self._deadline = None
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # Idle again (no pipelined request started): bounded until the next request's headers are complete.
        if not self.transport.is_closing() and (self.cycle is None or self.cycle.response_complete):
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._deadline = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._deadline = self.loop.time() + self.header_timeout
        if self._timer is None:  # else the pending check finds the later deadline and waits for it
            self._timer = self.loop.call_at(self._deadline, self._check)

    def _check(self) -> None:
        self._timer = None
        if self._deadline is None:  # a request is running: the next _arm sets a timer again
            return
        if self.loop.time() < self._deadline:
            self._timer = self.loop.call_at(self._deadline, self._check)
        elif not self.transport.is_closing():
            self.transport.close()


def header_deadline_protocol(header_timeout: float, one_write: bool = False) -> type[HeaderDeadlineProtocol]:
    """A protocol class for `uvicorn.Config(http=...)` with this deadline (uvicorn takes a class, not an instance);
    `one_write`: each response leaves in one send rather than two (witness/onewrite.py)."""
    return type("HeaderDeadline", (HeaderDeadlineProtocol,), {"header_timeout": header_timeout, "one_write": one_write})
