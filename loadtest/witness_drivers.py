"""The clients of loadtest/witness_bench.py: httpx (what `witness.client` uses) and a minimal asyncio HTTP/1.1
keep-alive client whose cost is a few µs per request, each sender on its own connection, posting its bodies in
order (an empty body: GET /healthz) until the time is up. Each request's status and latency go into a `Tally`."""

import asyncio
import itertools
import time
from collections.abc import Callable, Iterable

import httpx

LOCALHOST = "127.0.0.1"
Bodies = Callable[[int], Iterable[bytes]]  # sender number → the request bodies it posts, in order


class Tally:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.statuses: dict[int, int] = {}
        self.exhausted = 0  # senders that ran out of prepared requests before the time was up

    def add(self, status: int, seconds: float) -> None:
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if status == 200:
            self.latencies.append(seconds)


async def drive_httpx(url: str, bodies: Bodies, tasks: int, seconds: float) -> tuple[Tally, float]:
    """`tasks` concurrent senders, each an httpx.AsyncClient on one keep-alive connection, posting bodies(i) in
    order (an empty body means GET /healthz) until the time is up."""
    tally = Tally()
    stop_at = time.perf_counter() + seconds

    async def sender(i: int) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            for body in bodies(i):
                if time.perf_counter() >= stop_at:
                    return
                began = time.perf_counter()
                try:
                    if body:
                        response = await http.post("/add-checkpoint", content=body)
                    else:
                        response = await http.get("/healthz")
                except httpx.TransportError:  # e.g. a keep-alive connection the server just closed
                    tally.add(0, time.perf_counter() - began)
                    continue
                tally.add(response.status_code, time.perf_counter() - began)
            tally.exhausted += 1

    start = time.perf_counter()
    await asyncio.gather(*(sender(i) for i in range(tasks)))
    return tally, time.perf_counter() - start


async def drive_raw(url: str, bodies: Bodies, tasks: int, seconds: float) -> tuple[Tally, float]:
    """The same load through a minimal asyncio HTTP/1.1 keep-alive client, one connection per sender.

    httpx's async client tops out near 750 requests/s per core here (measured
    against /healthz too), below what one witness process serves; this client
    costs a few µs per request, so its figure is the server's.
    """
    tally = Tally()
    stop_at = time.perf_counter() + seconds
    port = int(url.rsplit(":", 1)[1])
    healthz = b"GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n" % LOCALHOST.encode()

    async def sender(i: int) -> None:
        reader, writer = await asyncio.open_connection(LOCALHOST, port)
        try:
            for body in bodies(i):
                if time.perf_counter() >= stop_at:
                    return
                began = time.perf_counter()
                writer.write(
                    b"POST /add-checkpoint HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n\r\n%s"
                    % (LOCALHOST.encode(), len(body), body)
                    if body
                    else healthz
                )
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head.split(b" ", 2)[1])
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.lower().split(b"\r\n")
                    if line.startswith(b"content-length:")
                )
                await reader.readexactly(length)
                tally.add(status, time.perf_counter() - began)
            tally.exhausted += 1
        finally:
            writer.close()
            await writer.wait_closed()

    start = time.perf_counter()
    await asyncio.gather(*(sender(i) for i in range(tasks)))
    return tally, time.perf_counter() - start


def repeat(body: bytes) -> Bodies:
    return lambda i: itertools.repeat(body)


def per_sender(bodies: list[list[bytes]]) -> Bodies:
    return lambda i: bodies[i]


DRIVERS = {"httpx": drive_httpx, "raw": drive_raw}
