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
"""

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from witness.onewrite import OneWriteTransport


class HeaderDeadlineProtocol(HttpToolsProtocol):
    """uvicorn's HTTP protocol plus the header deadline; make one with `header_deadline_protocol`."""

    header_timeout: float = 10.0
    one_write: bool = False  # each response in one send (witness/onewrite.py)
    _header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(OneWriteTransport(transport, self.loop) if self.one_write else transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # Idle again (no pipelined request started): bounded until the next request's headers are complete.
        if not self.transport.is_closing() and (self.cycle is None or self.cycle.response_complete):
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._header_deadline = self.loop.call_later(self.header_timeout, self._too_slow)

    def _disarm(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _too_slow(self) -> None:
        self._header_deadline = None
        if not self.transport.is_closing():
            self.transport.close()


def header_deadline_protocol(header_timeout: float, one_write: bool = False) -> type[HeaderDeadlineProtocol]:
    """A protocol class for `uvicorn.Config(http=...)` with this deadline (uvicorn takes a class, not an instance);
    `one_write`: each response leaves in one send rather than two (witness/onewrite.py)."""
    return type("HeaderDeadline", (HeaderDeadlineProtocol,), {"header_timeout": header_timeout, "one_write": one_write})
