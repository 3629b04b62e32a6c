"""Never stall (issue 18, promise 3): every connection is bounded in idle time whatever it sends; a slow witness
never holds publication; a dead signature worker heals; the witness server bounds headers, bodies and connections.

Each test drives the real processes on 127.0.0.1 and stops by itself (bounded loops and time).
"""

import asyncio
import time
from pathlib import Path

import httpx

from logserver.config import ServerConfig
from tests.log_harness import running_log

DEFAULTS = ServerConfig()
ATTACK = b"GET /checkpoint HTTP/1.1\r\nHost: attacker\r\nContent-Length: 5\r\n\r\n"  # a body the route never reads


async def lock_out(port: int, sockets: int) -> list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    """Open `sockets` connections; on each, a GET with a declared body, wait for the answer, send one byte more."""

    async def one() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(ATTACK)
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 60)
        lines = head.lower().split(b"\r\n")
        length = next(int(line.split(b":")[1]) for line in lines if line.startswith(b"content-length"))
        await reader.readexactly(length)
        writer.write(b"x")  # the byte that cancelled uvicorn's keep-alive timer for good
        await writer.drain()
        return reader, writer

    opened = []
    for start in range(0, sockets, 100):  # in waves, so the attack itself is not refused for the cap
        opened += await asyncio.gather(*(one() for _ in range(min(100, sockets - start))))
    return opened


async def closed_by_server(connections: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]) -> int:
    async def closed(reader: asyncio.StreamReader) -> bool:
        try:
            return await asyncio.wait_for(reader.read(1), 0.5) == b""
        except (TimeoutError, ConnectionError):
            return False

    return sum(await asyncio.gather(*(closed(r) for r, _ in connections)))


def test_a_thousand_sockets_sending_one_byte_more_cannot_lock_clients_out(tmp_path: Path) -> None:
    """Default config (max_connections 1000): the server closes each attacking connection within the header
    deadline, while the attacker keeps them open, and honest clients are served again."""
    assert DEFAULTS.max_connections == 1000
    with running_log(tmp_path) as server:

        async def attack() -> tuple[int, int, list[int]]:
            connections = await lock_out(server.port, DEFAULTS.max_connections)
            started = time.monotonic()
            statuses = []
            async with httpx.AsyncClient(base_url=server.url, timeout=5) as honest:
                deadline = started + DEFAULTS.header_timeout_seconds + DEFAULTS.keep_alive_seconds + 10
                while time.monotonic() < deadline:
                    statuses.append((await honest.get("/checkpoint", headers={"Connection": "close"})).status_code)
                    if statuses[-1] == 200 and time.monotonic() - started > DEFAULTS.header_timeout_seconds + 1:
                        break
                    await asyncio.sleep(0.5)
            closed = await closed_by_server(connections)
            for _, writer in connections:
                writer.close()
            return closed, len(connections), statuses

        closed, opened, statuses = asyncio.run(attack())
    assert opened == DEFAULTS.max_connections
    assert statuses[-1] == 200, statuses  # served while the attacker still holds its sockets
    assert closed == opened  # every attacking connection was closed by the server, none by the attacker
