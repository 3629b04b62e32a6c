"""One send per HTTP response: a transport wrapper that joins the writes of one event-loop step.

uvicorn writes a response in two calls, the status line and headers at `http.response.start`, then the body: two
`send` syscalls and two TCP segments for a few hundred bytes. On loopback each send also runs the receiver's TCP
input, so the second one was a large share of a cosignature's cost (profile in docs/performance.md, "The
witness"). Here the first write of a step is held and goes out with the next one, which for a whole response comes
in the same step (Starlette sends start and body back to back); anything still held at the end of the step (a HEAD
response, `100 Continue`, a streamed body's first part) is sent by a callback queued for the next step, so nothing
waits longer than one turn of the loop. Every other call goes to the real transport; `close` sends what is held
first.
"""

import asyncio
from typing import Any


class OneWriteTransport(asyncio.Transport):
    """Wraps a connected transport; see the module docstring."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._transport, self._loop = transport, loop
        self._held = b""
        self._flush_queued = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._held:
            self._transport.write(self._held + bytes(data))
            self._held = b""
            return
        self._held = bytes(data)
        if not self._flush_queued:
            self._flush_queued = True
            self._loop.call_soon(self._flush_at_step_end)

    def _flush_at_step_end(self) -> None:
        self._flush_queued = False
        self.flush()

    def flush(self) -> None:
        """Send what is held now."""
        if self._held:
            held, self._held = self._held, b""
            self._transport.write(held)

    def writelines(self, list_of_data: Any) -> None:
        self.flush()
        self._transport.writelines(list_of_data)

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._held = b""
        self._transport.abort()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + len(self._held)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)
