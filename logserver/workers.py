"""`[server] workers = N`: N processes serve one port; the one holding the sequencer lease sequences, the others
serve reads and forward submissions to it.

- Each worker listens on the port with SO_REUSEPORT: the kernel spreads new connections over the workers evenly
  (by a hash of the connection). A socket shared by all was tried first: then the process that happened to be
  waiting took almost every connection. The supervisor holds the port bound (not listening, so it is given no
  connection) from the start, so no other program takes it while a worker restarts.
- Each worker also listens on a private 127.0.0.1 socket of its own (also made by the supervisor). A worker that
  does not sequence forwards `POST /api/v1/entries` to its siblings' private sockets; the one that sequences
  answers, and it answers only once the entries are durable and in the log (intake.py), so an acknowledgement
  means the same whichever process took the request. Forwarding rather than a queue table for SQLite: SQLite has
  one writer, and a queue would make each submission two fsync'd commits (enqueue, then sequence) plus a poll;
  forwarding is one local round trip. (PostgreSQL's standbys queue through the database instead: storage.py,
  contract 5; they are not forwarded.)
- Requests on the private socket come from a sibling only: they skip the per-client rate limit (the sibling
  applied it to the real client) and are never forwarded again.
- The first worker starts alone (its start-up checks write files in --data); the others once it serves.
- SIGTERM or SIGINT to the supervisor: every worker gets SIGTERM and shuts down as `serve` does with one process.
  A worker that dies otherwise is started again.
"""

import logging
import multiprocessing
import os
import signal
import socket
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.process import BaseProcess

import httpx
import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from witness.processes import StopSignals, restart_until_stopped

log = logging.getLogger("logserver.workers")

ENTRIES = "/api/v1/entries"
FORWARDED = b"x-tlog-forwarded"


@dataclass(frozen=True)
class Sockets:
    """What one worker serves: the shared port, its private socket, and its siblings' private addresses."""

    public: socket.socket  # this worker's own listening socket on the shared port (SO_REUSEPORT)
    private: socket.socket
    siblings: tuple[str, ...]  # base URLs of the other workers' private sockets


def serving_socket(address: tuple[str, int], reuse_port: bool = False) -> socket.socket:
    """A listening socket whose connections send each write at once (TCP_NODELAY, inherited by accepted sockets
    on Linux). asyncio sets TCP_NODELAY itself only on sockets created with proto IPPROTO_TCP, and
    `socket.create_server` leaves proto 0: without this, a response written in two parts (headers, then body)
    waited for the client's delayed ACK, 40 ms, and a keep-alive client such as wrk got ~20 answers/s per connection."""
    sock = socket.create_server(address, reuse_port=reuse_port)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def reserve_port(host: str, port: int) -> socket.socket:
    """The port, bound with SO_REUSEPORT but not listening: held for the workers, given no connection."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def private_sockets(count: int) -> list[socket.socket]:
    return [serving_socket(("127.0.0.1", 0)) for _ in range(count)]


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{host}:{port}"


class WorkerApp:
    """The app as one of several workers serves it: requests on the private socket reach `inner` (no per-client
    limit, never forwarded); on the public port, submissions are forwarded while this process does not sequence."""

    def __init__(
        self,
        public: ASGIApp,
        inner: ASGIApp,
        private_port: int,
        sequencing: Callable[[], bool],
        siblings: tuple[str, ...],
    ) -> None:
        self.public, self.inner, self.private_port = public, inner, private_port
        self.sequencing, self.siblings = sequencing, siblings
        self._client: httpx.AsyncClient | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.public(scope, receive, send)
            return
        if (scope.get("server") or ("", 0))[1] == self.private_port:
            await self.inner(scope, receive, send)
            return
        if scope["method"] != "POST" or scope["path"] != ENTRIES or self.sequencing():
            await self.public(scope, receive, send)
            return
        messages = await _read_all(receive)
        body = b"".join(m.get("body", b"") for m in messages)
        if messages and messages[-1]["type"] == "http.request" and not await self._forward(scope, body, send):
            # no sibling sequences right now: this process answers (503 not_sequencing), as a single one would
            await self.public(scope, _replay(messages, receive), send)

    async def _forward(self, scope: Scope, body: bytes, send: Send) -> bool:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=120.0)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"] if k == b"content-type"}
        for base in self.siblings:
            try:
                answer = await self._client.post(base + ENTRIES, content=body, headers=headers)
            except httpx.HTTPError:
                continue  # that sibling is restarting
            if answer.status_code == 503 and _code(answer.content) == "not_sequencing":
                continue
            kept = [(b"content-type", answer.headers.get("content-type", "application/json").encode())]
            kept.append((FORWARDED, b"1"))  # for operators and tests: this answer came from the sequencing sibling
            if "retry-after" in answer.headers:
                kept.append((b"retry-after", answer.headers["retry-after"].encode()))
            await send({"type": "http.response.start", "status": answer.status_code, "headers": kept})
            await send({"type": "http.response.body", "body": answer.content})
            return True
        return False


def _code(body: bytes) -> str | None:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return parsed.get("error") if isinstance(parsed, dict) else None


async def _read_all(receive: Receive) -> list[Message]:
    """The request's messages up to its last body part or a disconnect. The app's own limits (body size and
    time, intake.py) apply when it reads them again, replayed, if this process answers itself; a forwarded body
    meets them in the sequencing sibling."""
    messages = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request" or not message.get("more_body", False):
            return messages


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()

    return replayed


# --- the supervisor --------------------------------------------------------------------------------------------

Run = Callable[[Sockets], None]  # one worker's whole life (cli.py: the server's asyncio.run)


@dataclass(frozen=True)
class Plan:
    address: tuple[str, int]  # the shared port
    private: socket.socket
    siblings: tuple[str, ...]


def _worker_main(run: Run, plan: Plan, parent: int, watch: Callable[[int], None]) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # uvicorn installs its own handlers for a clean stop
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    watch(parent)  # exit if the supervisor is killed (kill -9): nobody else would stop this process
    public = serving_socket(plan.address, reuse_port=True)
    run(Sockets(public, plan.private, plan.siblings))


def supervise(run: Run, address: tuple[str, int], count: int, watch: Callable[[int], None]) -> int:
    """Run `count` workers on `address` (held by `reserve_port`) until SIGTERM or SIGINT; restart any that dies
    meanwhile. Returns 0."""
    context = multiprocessing.get_context("fork")  # the private sockets are inherited; nothing else runs here yet
    privates = private_sockets(count)
    urls = [url_of(p) for p in privates]
    plans = [Plan(address, privates[i], tuple(u for j, u in enumerate(urls) if j != i)) for i in range(count)]
    signals = StopSignals()

    def start(i: int) -> BaseProcess:
        process = context.Process(target=_worker_main, args=(run, plans[i], os.getpid(), watch), name=f"worker-{i}")
        process.start()
        return process

    processes = [start(0)]
    _wait_serving(urls[0], processes[0])  # the start-up checks (identity, key guard, files in --data) run once, alone
    processes += [start(i) for i in range(1, count)]
    return restart_until_stopped(signals, processes, start, "worker")


def _wait_serving(url: str, process: BaseProcess, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while process.is_alive() and time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2):
                return
        except OSError:
            time.sleep(0.1)


def worker_app(public: ASGIApp, inner: ASGIApp, sockets: Sockets, accepts: Callable[[], bool]) -> WorkerApp:
    """`accepts`: this process takes submissions itself (it sequences, or queues them for PostgreSQL's sequencer)."""
    return WorkerApp(public, inner, sockets.private.getsockname()[1], accepts, sockets.siblings)
