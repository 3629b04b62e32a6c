"""A worker process joined to the server by a socket pair: batches go out and outcomes come back as length-prefixed
pickles, in order, read by the server's event loop itself.

`concurrent.futures.ProcessPoolExecutor` was measured first and cost more than the work it moved: a feeder thread
pickles each call and a manager thread reads each result, both taking the GIL from the event loop, about 70 µs of
the server's CPU per cosignature (docs/performance.md, "The witness"). Here one `send` carries a batch and the
loop reads the answer like any other socket; no thread is added to the server.

The worker reads until end of file: when the server dies, even by kill -9, the kernel closes its end and the
worker exits. The pickles travel only between this server and the children it spawned.
"""

import asyncio
import multiprocessing
import pickle
import socket
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


def serve_requests(sock: socket.socket, make_handler: Callable[[], Handler]) -> None:
    """The worker's whole life: build the handler, say so (None: ready), then answer each request until EOF."""
    with sock:
        handler = make_handler()
        sock.sendall(_frame(None))
        while (head := _read_exactly(sock, LENGTH)) is not None:
            body = _read_exactly(sock, int.from_bytes(head, "big"))
            if body is None:
                return
            sock.sendall(_frame(handler(pickle.loads(body))))


class WorkerProcess:
    """The server's side of one worker: `send` a request, `receive` the answers in the same order."""

    def __init__(self, process: Any, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.process, self._reader, self._writer = process, reader, writer

    @classmethod
    async def start(cls, make_handler: Callable[[], Handler], ready_timeout: float) -> "WorkerProcess":
        """Spawn (not fork: the server runs threads) a worker and wait until its handler is built."""
        ours, theirs = socket.socketpair()
        process = multiprocessing.get_context("spawn").Process(
            target=serve_requests, args=(theirs, make_handler), daemon=True, name="witness-cosigner"
        )
        try:
            process.start()
        finally:
            theirs.close()
        reader, writer = await asyncio.open_connection(sock=ours)
        worker = cls(process, reader, writer)
        try:
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

    def stop(self) -> None:
        self._writer.close()
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)
