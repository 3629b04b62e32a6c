"""For the `tlog` tool's tests: a real log with three real witnesses on 127.0.0.1, the 2-of-3 policy file a
verifier holds, and running the tool through click's runner or as a real process."""

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TypeVar

import httpx
from click.testing import CliRunner, Result
from log_harness import REPO, LogProcess, free_port
from witness_helpers import WitnessProcess, write_config

from loadtest.localproc import log_identity
from tlogcore.tiles import decode_entry_bundle, entry_bundle_for
from tools.cli import main

T = TypeVar("T")


@dataclass
class Stack:
    server: LogProcess
    witnesses: list[WitnessProcess]
    origin: str
    log_vkey: str
    policy_text: str

    @property
    def url(self) -> str:
        return self.server.url


@contextmanager
def witnessed_log(
    tmp: Path, witnessing: str = "", more_config: str = "", route: Callable[[int, str], str] | None = None
) -> Iterator[Stack]:
    """A log with three real witnesses and a policy of two of them; `witnessing`: more lines of the log's
    [witnessing] table, `more_config`: more tables; `route(i, url)`: the URL the log uses for witness i (a proxy)."""
    ident = log_identity(tmp / "log")
    origin, log_vkey = ident.origin, ident.log_vkey
    witnesses: list[WitnessProcess] = []
    try:
        for i in range(3):
            config = write_config(tmp / f"w{i}.toml", f"witness{i}.example.org", [(origin, log_vkey)])
            witness = WitnessProcess(tmp / f"w{i}", config)
            witness.start()
            witnesses.append(witness)
        log_config = tmp / "log.toml"
        log_config.write_text(
            "[witnessing]\nwitness_timeout_ms = 500\nwitness_retries = 1\n"
            + witnessing
            + "".join(
                f'[[witness]]\nurl = "{route(i, w.url) if route else w.url}"\nvkey = "{w.vkey}"\n'
                for i, w in enumerate(witnesses)
            )
            + more_config
        )
        server = LogProcess(tmp / "log", free_port(), config=log_config).start()
        policy = (
            f"log {log_vkey}\n"
            + "".join(f"witness W{i} {w.vkey}\n" for i, w in enumerate(witnesses))
            + "group two-of-three 2 W0 W1 W2\nquorum two-of-three\n"
        )
        try:
            yield Stack(server, witnesses, origin, log_vkey, policy)
        finally:
            server.stop()
    finally:
        for w in witnesses:
            w.stop()


def tlog(*args: str) -> Result:
    """`tlog ARGS` through click's runner (stdout and stderr kept apart)."""
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def register_issuer(stack: Stack, key: Path, name: str = "moeys.gov.kh", label: str | None = None) -> str:
    """`tlog keygen` an issuer key into `key` and `tlog issuer add` it to the stack's log with its registry key; the
    issuer's verifier key."""
    made = tlog("keygen", "--name", name, "--out", str(key))
    assert made.exit_code == 0, made.output
    vkey = made.stdout.strip()
    registry = str(stack.server.data / "registry.key")
    labelled = ["--label", label] if label else []
    added = tlog("issuer", "add", "--log", stack.url, "--registry-key", registry, "--issuer", vkey, *labelled)
    assert added.exit_code == 0, added.output
    return vkey


def tlog_process(*args: str) -> subprocess.Popen[bytes]:
    """`tlog ARGS` as a real process (to be killed mid-way); its output is not kept."""
    return subprocess.Popen(
        [sys.executable, "-c", "from tools.cli import main; main()", *args],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )


def all_entries(url: str) -> list[bytes]:
    """Every leaf of the log, read from its entry tiles (what a monitor reads)."""
    with httpx.Client(base_url=url, timeout=20) as client:
        size = int(client.get("/api/v1/log").json()["size"])
        entries: list[bytes] = []
        for start in range(0, size, 256):
            tile = entry_bundle_for(start, size)
            response = client.get("/" + tile.path)
            response.raise_for_status()
            entries.extend(decode_entry_bundle(response.content, tile.width))
        return entries


def wait_for(found: Callable[[], T | None], seconds: float = 30) -> T:
    """The first value `found` gives that is not None, asked every 0.1 s (bounded)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = found()
        if value is not None:
            return value
        time.sleep(0.1)
    raise AssertionError(f"not within {seconds} s")


def local_http_server(handler: type[BaseHTTPRequestHandler]) -> tuple[ThreadingHTTPServer, str]:
    """`handler` served on 127.0.0.1 in a thread of its own; the server (shut down by the caller) and its URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def reply(handler: BaseHTTPRequestHandler, status: int, media: str, body: bytes, **headers: str) -> None:
    handler.send_response(status)
    for name, value in {"Content-Type": media, "Content-Length": str(len(body)), **headers}.items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(body)
