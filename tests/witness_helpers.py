"""Helpers for the witness tests: a small log built with tlogcore, and real witness servers on 127.0.0.1.

`WitnessProcess` runs `python -m witness.cli serve` (the real CLI, uvicorn, SQLite)
in a subprocess; `serve_in_process` runs uvicorn inside the test's event loop,
for tests that pass collaborators the CLI does not expose (a pinned clock, the
race hook).
"""

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import httpx
import uvicorn
from starlette.types import ASGIApp

from loadtest.localproc import free_port
from tlogcore import merkle
from tlogcore.checkpoint import Checkpoint
from tlogcore.keys import Ed25519Signer, format_signer_key
from tlogcore.note import sign_note
from witness.client import request_body

REPO = Path(__file__).resolve().parent.parent
LOCALHOST = "127.0.0.1"


# --- a log, built with the core -------------------------------------------------


@dataclass
class TinyLog:
    """An append-only log whose leaf i is `entry <i>` (or, past `fork_at`, `fork <i>`): a fork of the same log."""

    origin: str
    key: Ed25519Signer
    fork_at: int | None = None
    stored: list[bytes] = field(default_factory=list)
    size: int = 0

    def leaf(self, i: int) -> bytes:
        prefix = b"fork" if self.fork_at is not None and i >= self.fork_at else b"entry"
        return merkle.leaf_hash(b"%s %d" % (prefix, i))

    def grow(self, size: int) -> None:
        if size > self.size:
            edge = [self.stored[merkle.stored_hash_index(*node)] for node in merkle.right_edge(self.size)]
            appended = merkle.append_leaves(self.size, edge, [self.leaf(i) for i in range(self.size, size)])
            self.stored.extend(appended.new_hashes)
            self.size = size

    def _assemble(self, plan: merkle.HashPlan) -> list[bytes]:
        return plan.assemble([self.stored[i] for i in plan.stored_indexes])

    def root(self, size: int) -> bytes:
        self.grow(size)
        return self._assemble(merkle.root_plan(size))[0] if size else merkle.EMPTY_ROOT

    def checkpoint(self, size: int) -> bytes:
        return sign_note(Checkpoint(self.origin, size, self.root(size)).text, [self.key])

    def proof(self, old: int, new: int) -> list[bytes]:
        self.grow(new)
        return self._assemble(merkle.consistency_plan(old, new))

    def body(self, old: int, new: int) -> bytes:
        return request_body(old, self.proof(old, new), self.checkpoint(new))

    def forked(self, at: int) -> "TinyLog":
        """The same origin and key, with other leaves from index `at` on: what a misbehaving log would sign."""
        return TinyLog(self.origin, self.key, at)

    @property
    def vkey(self) -> str:
        return self.key.verifier().vkey


def tiny_log(origin: str = "log.example.test/witness-tests", seed: int = 0x21) -> TinyLog:
    return TinyLog(origin, Ed25519Signer(origin, bytes([seed]) * 32))


# --- files ------------------------------------------------------------------------


def write_config(path: Path, name: str, logs: Sequence[tuple[str, str]], algorithms: Sequence[str] = ()) -> Path:
    """A witness TOML config with one [[log]] table per (origin, vkey); `algorithms`: its keys' (default Ed25519)."""
    text = f'name = "{name}"\n' + (f"algorithms = {list(algorithms)!r}\n".replace("'", '"') if algorithms else "")
    text += "".join(f'\n[[log]]\norigin = "{o}"\nvkey = "{v}"\n' for o, v in logs)
    path.write_text(text, encoding="utf-8")
    return path


def write_key(data: Path, name: str, seed: bytes) -> None:
    """Put a known witness seed where `serve` looks for it (owner-only, as serve requires)."""
    data.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = data / "witness.key"
    path.write_text(format_signer_key(Ed25519Signer(name, seed)) + "\n", encoding="ascii")
    path.chmod(0o600)


# --- a witness in a subprocess ---------------------------------------------------------


def cli(*args: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    """Run `python -m witness.cli ARGS` to completion."""
    return subprocess.run(
        [sys.executable, "-m", "witness.cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class WitnessProcess:
    """`tlog-witness serve` on a free port of 127.0.0.1; started and ready on __enter__, stopped on __exit__."""

    def __init__(self, data: Path, config: Path, port: int | None = None) -> None:
        self.data, self.config = data, config
        self.port = port or free_port()
        self.url = f"http://{LOCALHOST}:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, timeout: float = 20) -> None:
        self.starts += 1
        self.data.parent.mkdir(parents=True, exist_ok=True)
        out = (self.data.parent / f"{self.data.name}-{self.port}-{self.starts}.out").open("wb")
        err = (self.data.parent / f"{self.data.name}-{self.port}-{self.starts}.err").open("wb")
        with out, err:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "witness.cli",
                    "serve",
                    "--data",
                    str(self.data),
                    "--config",
                    str(self.config),
                    "--listen",
                    f"{LOCALHOST}:{self.port}",
                    "--no-access-log",
                    "--log-level",
                    "warning",
                ],
                cwd=REPO,
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
            )
        self.stdout_path, self.stderr_path = Path(out.name), Path(err.name)
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=1.0) as http:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"witness exited with {self.process.returncode}: {self.stderr_path.read_text()}")
                try:
                    if http.get(f"{self.url}/healthz").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"witness did not become ready in {timeout} s")

    @property
    def vkey(self) -> str:
        for line in self.stdout_path.read_text().splitlines():
            if line.startswith("vkey "):
                return line[5:]
        raise RuntimeError("witness printed no vkey")

    def kill9(self) -> None:
        if self.process is not None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
            self.process = None

    def __enter__(self) -> "WitnessProcess":
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


# --- a witness in this process --------------------------------------------------------------


@asynccontextmanager
async def serve_in_process(app: ASGIApp) -> AsyncIterator[str]:
    """Real uvicorn on a socket of 127.0.0.1 inside the running loop; yields the base URL."""
    sock = socket.socket()
    sock.bind((LOCALHOST, 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=5)
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("uvicorn stopped before starting")
            await asyncio.sleep(0.01)
        yield f"http://{LOCALHOST}:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()
