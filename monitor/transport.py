"""A lean HTTP/1.1 transport for httpx, used by the monitor's LogClient to fetch tiles from http:// logs.

Why: catching up means thousands of small GETs (two per 256 entries). Measured on this project's sandbox,
httpx's default transport (httpcore) spent about 1.8 ms of CPU per tile request — its connection-pool
bookkeeping, and a failed `import sniffio` on every request when sniffio is not installed — against
0.2 ms for a plain keep-alive connection, which made HTTP the monitor's bottleneck. This transport keeps a
few keep-alive connections per host over asyncio streams and speaks only what a GET needs (Content-Length
or chunked bodies). Anything else — https://, other methods — goes to httpx's own transport.
"""

import asyncio
import contextlib

import httpx

MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 64 * 1024 * 1024  # a full entry bundle is at most 256 x 64 KiB


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    def close(self) -> None:
        self.writer.close()


class StreamTransport(httpx.AsyncBaseTransport):
    def __init__(self, timeout: float, max_idle: int = 8) -> None:
        self.timeout, self.max_idle = timeout, max_idle
        self._idle: dict[tuple[str, int], list[_Connection]] = {}
        self._fallback: httpx.AsyncHTTPTransport | None = None  # made on first use (it loads the CA store)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.scheme != "http" or request.method != "GET":
            if self._fallback is None:
                self._fallback = httpx.AsyncHTTPTransport()
            return await self._fallback.handle_async_request(request)
        try:
            async with asyncio.timeout(self.timeout):  # not wait_for: on 3.11 it can drop a cancellation (cli.py)
                return await self._get(request)
        except TimeoutError:
            raise httpx.ReadTimeout(f"no answer in {self.timeout} s", request=request) from None
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            raise httpx.ReadError(f"{type(exc).__name__}: {exc}", request=request) from None

    async def _get(self, request: httpx.Request) -> httpx.Response:
        host, port = request.url.host, request.url.port or 80
        target = request.url.raw_path.decode("ascii")
        status, headers, body = await self.exchange(host, port, target, request.headers.raw)
        return httpx.Response(status, headers=headers, content=body, request=request)

    async def exchange(
        self, host: str, port: int, target: str, extra: list[tuple[bytes, bytes]] | None = None
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """One GET on a kept-alive connection: (status, headers, body). Raises OSError, IncompleteReadError or
        ValueError (a malformed answer)."""
        idle = self._idle.setdefault((host, port), [])
        reused = bool(idle)
        connection = idle.pop() if idle else _Connection(*await asyncio.open_connection(host, port))
        try:
            status, headers, body, keep = await self._exchange(connection, target, extra or [], host, port)
        except (OSError, asyncio.IncompleteReadError):
            connection.close()
            if not reused:
                raise
            # The server closed an idle keep-alive connection: one retry on a fresh one (GET is idempotent).
            connection = _Connection(*await asyncio.open_connection(host, port))
            status, headers, body, keep = await self._exchange(connection, target, extra or [], host, port)
        except BaseException:
            connection.close()
            raise
        if keep and len(idle) < self.max_idle:
            idle.append(connection)
        else:
            connection.close()
        return status, headers, body

    async def _exchange(
        self, connection: _Connection, target: str, extra: list[tuple[bytes, bytes]], host: str, port: int
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes, bool]:
        head = f"GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept-Encoding: identity\r\n"
        for name, value in extra:
            if name.lower() not in (b"host", b"accept-encoding", b"connection", b"content-length"):
                head += f"{name.decode('latin-1')}: {value.decode('latin-1')}\r\n"
        connection.writer.write((head + "\r\n").encode("latin-1"))
        await connection.writer.drain()
        reader = connection.reader
        try:  # the status line and headers in one read, not one await per line (two GETs per 256 entries)
            answer = await reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError:  # the stream's limit is 64 KiB, MAX_HEADER_BYTES
            raise ValueError("response headers too large") from None
        if len(answer) > MAX_HEADER_BYTES:
            raise ValueError("response headers too large")
        status_line, *lines = answer[:-4].split(b"\r\n")
        parts = status_line.split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            raise ValueError(f"not an HTTP/1.x status line: {status_line[:60]!r}")
        headers: list[tuple[bytes, bytes]] = []
        for line in lines:
            name, _, value = line.partition(b":")
            headers.append((name.strip(), value.strip()))
        fields = {name.lower(): value for name, value in headers}
        keep = fields.get(b"connection", b"").lower() != b"close" and parts[0] == b"HTTP/1.1"
        if fields.get(b"transfer-encoding", b"").lower() == b"chunked":
            body = await self._chunked(reader)
            headers = [(n, v) for n, v in headers if n.lower() != b"transfer-encoding"]
        elif b"content-length" in fields:
            length = int(fields[b"content-length"])
            if not 0 <= length <= MAX_BODY_BYTES:
                raise ValueError(f"response body of {length} bytes")
            body = await reader.readexactly(length)
        else:
            body, keep = await reader.read(MAX_BODY_BYTES), False
        return int(parts[1]), headers, body, keep

    @staticmethod
    async def _chunked(reader: asyncio.StreamReader) -> bytes:
        body = bytearray()
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                while await reader.readuntil(b"\r\n") != b"\r\n":
                    pass
                return bytes(body)
            if len(body) + size > MAX_BODY_BYTES:
                raise ValueError("chunked response body too large")
            body += await reader.readexactly(size)
            await reader.readexactly(2)

    async def aclose(self) -> None:
        for connections in self._idle.values():
            for connection in connections:
                with contextlib.suppress(Exception):
                    connection.close()
        self._idle.clear()
        if self._fallback is not None:
            await self._fallback.aclose()


class RawTiles:
    """Tile and entry-bundle GETs under one http:// log URL straight through a StreamTransport, without httpx's
    Request and Response objects: a catch-up makes two GETs per 256 entries, and httpx's own work per request (URL
    parsing, models, hooks) was most of their CPU in the monitor's profile (docs/performance.md, "The monitor")."""

    def __init__(self, transport: StreamTransport, host: str, port: int, prefix: str) -> None:
        self.transport, self.host, self.port, self.prefix = transport, host, port, prefix

    @classmethod
    def for_url(cls, transport: StreamTransport, base_url: str) -> "RawTiles | None":
        """For an http:// log URL; None for anything else (https goes through httpx)."""
        url = httpx.URL(base_url)
        if url.scheme != "http" or url.query:
            return None
        return cls(transport, url.host, url.port or 80, url.raw_path.decode("ascii").rstrip("/"))

    async def get(self, path: str) -> tuple[int, bytes]:
        """(status, body) of GET <log URL>/<path>. Raises TileGetError when there is no HTTP answer."""
        try:
            async with asyncio.timeout(self.transport.timeout):
                status, _, body = await self.transport.exchange(self.host, self.port, f"{self.prefix}/{path}")
        except TimeoutError:
            raise TileGetError(f"GET /{path}: no answer in {self.transport.timeout} s") from None
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            raise TileGetError(f"GET /{path}: {type(exc).__name__}: {exc}") from None
        return status, body


class TileGetError(Exception):
    """No HTTP answer to a tile GET (connection refused or reset, timeout, malformed answer)."""
