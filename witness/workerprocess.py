"""A worker process joined to the server by a socket pair: batches go out and outcomes come back as length-prefixed
pickles, in order, read by the server's event loop itself.

`concurrent.futures.ProcessPoolExecutor` was measured first and cost more than the work it moved: a feeder thread
pickles each call and a manager thread reads each result, both taking the GIL from the event loop, about 70 µs of
the server's CPU per cosignature (docs/performance.md, "The witness"). Here one `send` carries a batch and the
loop reads the answer like any other socket; no thread is added to the server.

A worker is `python -m witness.workerprocess FD`, not a `multiprocessing` child: it imports only what its
handler needs (a spawned child re-imports the server's whole main module, uvicorn and all: a second more per start
on a busy machine) and leaves no resource-tracker process behind. Its first request is the picklable function that
builds its handler. It reads until end of file: when the server dies, even by kill -9, the kernel closes the
server's end and the worker exits. The pickles travel only between this server and the children it started.
"""

import asyncio
import contextlib
import pickle
import socket
import subprocess
import sys
from collections.abc import Callable
from typing import Any

LENGTH = 4  # bytes of the big-endian length before each pickle
Handler = Callable[[Any], Any]  # in the worker: one request → one answer (both picklable)


def _read_exactly(sock: socket.socket, size: int) -> bytes | None:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return bytes(data)


def _frame(value: object) -> bytes:
    data = pickle.dumps(value, pickle.HIGHEST_PROTOCOL)
    return len(data).to_bytes(LENGTH, "big") + data


def _read_frame(sock: socket.socket) -> Any:
    """The next request, or None at end of file."""
    head = _read_exactly(sock, LENGTH)
    body = _read_exactly(sock, int.from_bytes(head, "big")) if head is not None else None
    return pickle.loads(body) if body is not None else None


def serve_requests(sock: socket.socket) -> None:
    """The worker's whole life: build the handler the first frame names, say so (None: ready), then answer each
    request until end of file."""
    with sock, contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the caller gone: the life is over
        make_handler = _read_frame(sock)
        if make_handler is None:
            return
        handler = make_handler()
        sock.sendall(_frame(None))
        while (request := _read_frame(sock)) is not None:
            sock.sendall(_frame(handler(request)))


class WorkerProcess:
    """The server's side of one worker: `send` a request, `receive` the answers in the same order."""

    def __init__(
        self, process: "subprocess.Popen[bytes]", reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.process, self._reader, self._writer = process, reader, writer

    @classmethod
    async def start(cls, make_handler: Callable[[], Handler], ready_timeout: float) -> "WorkerProcess":
        """Start a worker (a new interpreter, not a fork: the server runs threads) and wait until it has built its
        handler with `make_handler` (picklable: a module-level function, or a partial of one)."""
        ours, theirs = socket.socketpair()
        try:
            command = [sys.executable, "-m", "witness.workerprocess", str(theirs.fileno())]
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL, pass_fds=(theirs.fileno(),))
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        reader, writer = await asyncio.open_connection(sock=ours)
        worker = cls(process, reader, writer)
        try:
            worker.send(make_handler)
            async with asyncio.timeout(ready_timeout):
                await worker.receive()
        except BaseException:
            worker.stop()
            raise
        return worker

    def send(self, request: object) -> None:
        self._writer.write(_frame(request))

    async def receive(self) -> Any:
        """The next answer; EOFError if the worker is gone."""
        try:
            head = await self._reader.readexactly(LENGTH)
            return pickle.loads(await self._reader.readexactly(int.from_bytes(head, "big")))
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            raise EOFError("the worker process is gone") from exc

    @property
    def pid(self) -> int:
        return int(self.process.pid)

    def stop(self) -> None:
        self._writer.close()
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(5)


if __name__ == "__main__":
    serve_requests(socket.socket(fileno=int(sys.argv[1])))
