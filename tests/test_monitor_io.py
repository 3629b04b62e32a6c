"""The monitor's I/O pieces against real files, processes and HTTP servers on 127.0.0.1: sinks (webhook retries
with backoff, command hook, deduplicating file), expected-document sources and their reload, the state."""

import asyncio
import contextlib
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from logserver.client import LogClient, LogClientError
from monitor.alerts import WATCH, Alert
from monitor.config import WatchRule
from monitor.expected import ExpectedError, Watchlist
from monitor.sinks import CommandSink, FileSink, SinkError, WebhookSink, deliver_pending
from monitor.state import AuditedChunk, LogRow, Signed, State
from monitor.transport import RawTiles, StreamTransport, TileGetError
from tlogcore.registry import IssuerKey, Registry
from tlogcore.tiles import Tile

ALERT = Alert(
    "moeys", WATCH, "log.example/x", "entry 1 aa unexpected", "entry 1: unexpected", 1790000000, {"index": 1}
).to_json()


class Receiver:
    """A webhook receiver on 127.0.0.1 answering the statuses in `script` in turn (then 200)."""

    def __init__(self, script: list[int]) -> None:
        self.script = list(script)
        self.bodies: list[bytes] = []
        self.headers: list[dict[str, str]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.bodies.append(body)
                receiver.headers.append(dict(self.headers))
                status = receiver.script.pop(0) if receiver.script else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Callable[[list[int]], Receiver]]:
    made: list[Receiver] = []

    def make(script: list[int]) -> Receiver:
        made.append(Receiver(script))
        return made[-1]

    yield make
    for r in made:
        r.close()


def test_webhook_retries_with_backoff_then_delivers(receiver: Callable[[list[int]], Receiver]) -> None:
    hook = receiver([503, 429, 200])
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    async def go() -> None:
        sink = WebhookSink("hook", hook.url, [("Authorization", "Bearer t")], retries=5, sleep=sleep)
        try:
            await sink.send(ALERT)
        finally:
            await sink.close()

    asyncio.run(go())
    assert len(hook.bodies) == 3 and sleeps == [0.5, 1.0]
    assert json.loads(hook.bodies[-1]) == ALERT
    assert hook.headers[-1]["Authorization"] == "Bearer t"
    assert hook.headers[-1]["Content-Type"] == "application/json"


def test_webhook_gives_up(receiver: Callable[[list[int]], Receiver]) -> None:
    refused = receiver([400])
    down = receiver([500, 500, 500])

    async def no_sleep(seconds: float) -> None:
        pass

    async def send(url: str, retries: int) -> str:
        sink = WebhookSink("hook", url, retries=retries, sleep=no_sleep)
        try:
            await sink.send(ALERT)
        except SinkError as exc:
            return str(exc)
        finally:
            await sink.close()
        return "delivered"

    assert "HTTP 400" in asyncio.run(send(refused.url, 5)) and len(refused.bodies) == 1  # no retry on 4xx
    assert "HTTP 500" in asyncio.run(send(down.url, 2)) and len(down.bodies) == 3
    unreachable = f"http://127.0.0.1:{refused.server.server_address[1]}/nothing-here"
    refused.close()
    assert "ConnectError" in asyncio.run(send(unreachable, 1))


def test_command_sink_gets_the_alert_on_stdin(tmp_path: Path) -> None:
    out = tmp_path / "got.json"
    script = "import os, sys; open(sys.argv[1], 'w').write(os.environ['TLOG_ALERT_RULE'] + ' ' + sys.stdin.read())"
    ok = CommandSink("cmd", [sys.executable, "-c", script, str(out)])
    asyncio.run(ok.send(ALERT))
    rule, _, body = out.read_text().partition(" ")
    assert rule == "moeys" and json.loads(body) == ALERT
    failing = CommandSink("cmd", [sys.executable, "-c", "import sys; sys.stderr.write('no pager'); sys.exit(4)"])
    with pytest.raises(SinkError, match="exited with 4: no pager"):
        asyncio.run(failing.send(ALERT))
    with pytest.raises(SinkError, match="cannot run"):
        asyncio.run(CommandSink("cmd", [str(tmp_path / "missing")]).send(ALERT))
    slow = CommandSink("cmd", [sys.executable, "-c", "import time; time.sleep(30)"], timeout=0.5)
    started = time.monotonic()
    with pytest.raises(SinkError, match="did not finish"):
        asyncio.run(slow.send(ALERT))
    assert time.monotonic() - started < 10


def test_file_sink_appends_once_per_id_even_across_restarts(tmp_path: Path) -> None:
    path = tmp_path / "alerts.jsonl"
    asyncio.run(FileSink("f", path).send(ALERT))
    asyncio.run(FileSink("f", path).send(ALERT))  # a new process that did not record the delivery
    other = {**ALERT, "id": "0" * 32}
    asyncio.run(FileSink("f", path).send(other))
    lines = path.read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == [ALERT["id"], "0" * 32]
    assert oct(path.stat().st_mode & 0o777) == "0o600"


# --- expected documents ------------------------------------------------------------------------------


def test_expected_sources_and_reload(tmp_path: Path) -> None:
    one, two = "aa" * 32, "bb" * 32
    listing = tmp_path / "issued.txt"
    listing.write_text(one + "\n")
    folder = tmp_path / "issued"
    folder.mkdir()
    (folder / "a.txt").write_text(one + "\n")
    command = (sys.executable, "-c", f"print('{two}')")
    rules = [
        WatchRule("file", issuer_names=frozenset(["x"]), expected=listing),
        WatchRule("dir", issuer_names=frozenset(["x"]), expected=folder),
        WatchRule("cmd", issuer_names=frozenset(["x"]), expected_command=command),
        WatchRule("none", issuer_names=frozenset(["x"])),
    ]
    watchlist = Watchlist.load(rules)
    assert watchlist.expected == {
        "file": {bytes.fromhex(one)},
        "dir": {bytes.fromhex(one)},
        "cmd": {bytes.fromhex(two)},
        "none": None,
    }
    listing.write_text(one + "\n" + two + "\n")
    os.utime(listing, ns=(time.time_ns(), time.time_ns() + 10**9))
    (folder / "b.txt").write_text(two + "\n")
    assert watchlist.refresh() == []
    assert watchlist.expected["file"] == watchlist.expected["dir"] == {bytes.fromhex(one), bytes.fromhex(two)}
    listing.write_text("not a hash\n")
    os.utime(listing, ns=(time.time_ns(), time.time_ns() + 2 * 10**9))
    errors = watchlist.refresh()
    assert len(errors) == 1 and "line 1" in errors[0]
    assert len(watchlist.expected["file"] or ()) == 2  # the last good list stays in force
    with pytest.raises(ExpectedError, match="exited with 3"):
        Watchlist.load(
            [
                WatchRule(
                    "c",
                    issuer_names=frozenset(["x"]),
                    expected_command=(sys.executable, "-c", "import sys; sys.exit(3)"),
                )
            ]
        )
    with pytest.raises(ExpectedError, match="No such file"):
        Watchlist.load([WatchRule("f", issuer_names=frozenset(["x"]), expected=tmp_path / "missing.txt")])


# --- state --------------------------------------------------------------------------------------------


def test_state_commits_progress_and_alerts_together(tmp_path: Path) -> None:
    state = State.open(tmp_path / "s.db")
    registry = Registry(frozenset(["reg"]))
    state.create_log(LogRow("o", None, None, 0, ("reg",), registry, 0, 5.0), 5.0)
    target = Signed(10, b"\x01" * 32, b"note")
    state.set_target("o", target, 6.0)
    registry.keys["k"] = IssuerKey("k", "Ministry", 0, 1)
    alert = Alert("moeys", WATCH, "o", "entry 3", "s", 7)
    first = AuditedChunk(4, registry, {"k": 3}, {"k": 1}, {"entries": 4}, [alert], {"tile/1/000": b"t"})
    state.commit_chunk("o", first, 7.0)
    state.commit_chunk("o", AuditedChunk(10, registry, {"k": 6}, {}, {"entries": 6}, [alert], verified=target), 8.0)
    state.close()
    state = State.open(tmp_path / "s.db")
    row = state.log("o")
    assert row is not None and row.verified == target and row.target is None and row.next_index == 10
    assert row.registry.keys["k"].label == "Ministry" and row.last_growth_at == 6.0
    assert state.issuer_counts("o") == {"k": (9, 1)} and state.counters("o") == {"entries": 10}
    assert [a["id"] for a in state.alerts()] == [alert.id]  # the same alert found twice is kept once
    assert state.cached_tiles("o", ["tile/1/000", "tile/1/001"]) == {"tile/1/000": b"t"}
    state.record_checkpoint("o", target, "log", 9.0)
    assert state.other_root("o", 10, b"\x01" * 32) is None
    assert state.other_root("o", 10, b"\x02" * 32) == (target, "log")
    state.mark_good("o", 3, None, "fine")
    assert state.known_good("o") == ({3}, set())


def test_delivery_keeps_what_a_sink_refused(tmp_path: Path) -> None:
    state = State.open(tmp_path / "s.db")
    state.add_alerts([Alert("r", WATCH, "o", f"k{i}", "s", 1) for i in range(3)])

    class Flaky:
        def __init__(self) -> None:
            self.name, self.up, self.got = "flaky", False, []  # type: ignore[var-annotated]

        async def send(self, alert: dict[str, object]) -> None:
            if not self.up:
                raise SinkError("down")
            self.got.append(str(alert["id"]))

        async def close(self) -> None:
            pass

    flaky = Flaky()
    good = FileSink("file", tmp_path / "a.jsonl")
    assert asyncio.run(deliver_pending(state, [flaky, good], time.time)) == ["down"]
    assert len((tmp_path / "a.jsonl").read_text().splitlines()) == 3
    flaky.up = True
    assert asyncio.run(deliver_pending(state, [flaky, good], time.time)) == []
    assert len(flaky.got) == 3 and len((tmp_path / "a.jsonl").read_text().splitlines()) == 3
    assert state.pending(["flaky", "file"]) == []


# --- the tile transport --------------------------------------------------------------------------------


class TileServer:
    """Answers GET /<n> with n bytes, in the framing the path asks for (length, chunked, close)."""

    def __init__(self) -> None:
        self.connections = 0
        server_self = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                server_self.connections += 1

            def do_GET(self) -> None:
                framing, _, size = self.path.strip("/").partition("/")
                body = bytes(range(256)) * (int(size) // 256) + b"x" * (int(size) % 256)
                self.send_response(404 if framing == "missing" else 200)
                if framing == "chunked":
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for start in range(0, len(body), 1000):
                        chunk = body[start : start + 1000]
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.write(b"0\r\n\r\n")
                    return
                if framing == "close":
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_the_tile_transport_reads_every_framing_and_reuses_connections() -> None:
    server = TileServer()

    async def go() -> list[bytes | None]:
        async with LogClient(server.url, 5.0, StreamTransport(5.0)) as client:
            got = [await client.tile(f"length/{n}") for n in (0, 1, 8192, 100_000)]
            got += [await client.tile("chunked/70000"), await client.tile("close/300"), await client.tile("missing/3")]
            got += [await client.tile("length/5") for _ in range(20)]
            return got

    try:
        got = asyncio.run(go())
    finally:
        server.server.shutdown()
        server.server.server_close()
    assert [len(g) if g is not None else None for g in got[:7]] == [0, 1, 8192, 100_000, 70000, 300, None]
    assert got[3] == bytes(range(256)) * 390 + b"x" * 160
    assert server.connections == 2  # one keep-alive connection, and one more after the server closed it


def test_the_tile_transport_reports_a_dead_server_as_an_http_error() -> None:
    async def go() -> str:
        async with LogClient("http://127.0.0.1:9", 2.0, StreamTransport(2.0)) as client:
            try:
                await client.tile("tile/0/000")
            except LogClientError as exc:
                return str(exc)
        return "answered"

    assert "ReadError" in asyncio.run(go())


def test_the_tile_transport_refuses_an_oversized_header_as_an_http_error() -> None:
    """A header line longer than the 64 KiB a response's head may take: a TileGetError naming it, not the stream's
    LimitOverrunError escaping the round as a traceback."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 70_000 + b"\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    async def go() -> str:
        server = await asyncio.start_server(answer, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        transport = StreamTransport(5.0)
        try:
            await RawTiles(transport, "127.0.0.1", port, "").get("tile/0/000")
        except TileGetError as exc:
            return str(exc)
        finally:
            await transport.aclose()
            server.close()
            await server.wait_closed()
        return "answered"

    assert asyncio.run(go()) == "GET /tile/0/000: ValueError: response headers too large"


def test_concurrent_tile_gets_reuse_their_connections(tmp_path: Path) -> None:
    """A round's tile GETs, `max_concurrent_requests` at a time, through the transport the monitor builds: each
    connection is kept for the next GET, so a catch-up opens at most one per request in flight. (With 8 idle
    connections kept for 16 in flight, those beyond 8 were closed after each burst: these 160 GETs opened 88.)"""
    from monitor.commands import Runtime, load_config
    from tests.log_harness import seed
    from tests.monitor_helpers import monitor_config
    from tlogcore.keys import Ed25519Signer

    policy = f"log {Ed25519Signer('io.example/log', seed(9)).verifier().vkey}\nquorum none\n"
    opened: list[asyncio.StreamWriter] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        opened.append(writer)
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                await reader.readuntil(b"\r\n\r\n")
                await asyncio.sleep(0.001)  # the GETs overlap
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 32\r\n\r\n" + b"h" * 32)
                await writer.drain()
        writer.close()

    async def go() -> list[bytes]:
        server = await asyncio.start_server(answer, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        config = load_config(monitor_config(tmp_path / "m.toml", url, policy, extra="max_concurrent_requests = 16"))
        runtime = Runtime(config, False, progress=False)
        try:
            fetcher = runtime.followers[0].context.fetcher
            bodies: list[bytes] = []
            for burst in range(10):
                got = await fetcher.fetch_all([Tile(1, burst * 16 + n) for n in range(16)])
                bodies += got.values()
            return bodies
        finally:
            await runtime.close()
            server.close()
            for writer in opened:
                writer.close()
                with contextlib.suppress(ConnectionError):
                    await writer.wait_closed()
            await server.wait_closed()

    bodies = asyncio.run(go())
    assert bodies == [b"h" * 32] * 160
    assert len(opened) <= 17, len(opened)
