"""Run real `tlog-server` processes on 127.0.0.1 for tests, and talk to them as a client holding only public keys."""

import base64
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from loadtest.localproc import free_port
from tlogcore.keys import Ed25519Signer, parse_signer_key
from tlogcore.statement import ISSUE, ISSUER_ADD, Statement, sign_statement
from tlogcore.vkeys import parse_verifier_key

REPO = Path(__file__).resolve().parent.parent
SERVER = [sys.executable, "-c", "from logserver.cli import main; main()"]


@dataclass
class LogProcess:
    data: Path
    port: int
    process: subprocess.Popen[bytes] | None = None
    config: Path | None = None
    extra_args: list[str] = field(default_factory=list)
    dsn: str | None = None  # a PostgreSQL database to use instead of SQLite (keys stay in `data`)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait: bool = True, init: bool = True) -> "LogProcess":
        """Start `tlog-server serve`; with `init`, first `tlog-server init` (keys on first use, the database's
        identity), as an operator does for a new log (docs/key-guard.md)."""
        config = self.config
        if self.dsn is not None:
            config = self.data.parent / f"server-{self.port}.toml"
            config.write_text(postgres_config(self.dsn) + (self.config.read_text() if self.config else ""))
        config_args = ["--config", str(config)] if config is not None else []
        if init:
            subprocess.run(
                [*SERVER, "init", "--data", str(self.data), *config_args], cwd=REPO, check=True, capture_output=True
            )
        args = [*SERVER, "serve", "--data", str(self.data), "--listen", f"127.0.0.1:{self.port}", *self.extra_args]
        args += config_args
        with (self.data.parent / f"server-{self.port}.log").open("ab") as log_file:
            self.process = subprocess.Popen(args, cwd=REPO, stdout=log_file, stderr=log_file)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}: {self.output()[-2000:]}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"server on port {self.port} did not start: {self.output()[-2000:]}")

    def output(self) -> str:
        path = self.data.parent / f"server-{self.port}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def key(self, name: str) -> Ed25519Signer:
        return parse_signer_key((self.data / name).read_text().strip())


def postgres_config(dsn: str) -> str:
    return f'[storage]\nengine = "postgresql"\npostgresql_dsn = "{dsn}"\npostgresql_pool_size = 4\n'


@contextmanager
def running_log(
    tmp: Path, name: str = "log", config_text: str | None = None, dsn: str | None = None
) -> Iterator[LogProcess]:
    """A server on SQLite, or on PostgreSQL with `dsn` (see the `log_dsn` fixture in pg_cluster.py)."""
    data = tmp / name
    config = None
    if config_text is not None:
        config = tmp / f"{name}.toml"
        config.write_text(config_text)
    server = LogProcess(data, free_port(), config=config, dsn=dsn).start()
    try:
        yield server
    finally:
        server.stop()


def post_statements(client: httpx.Client, statements: list[bytes]) -> httpx.Response:
    return client.post("/api/v1/entries", json={"statements": [base64.b64encode(s).decode() for s in statements]})


def register_issuer(client: httpx.Client, server: LogProcess, issuer: Ed25519Signer, label: str | None = None) -> int:
    """An issuer-add for `issuer`, labelled `label` or, by default, after its key name (labels belong to one issuer)."""
    label = label or f"Issuer {issuer.verifier().name}"
    registry = server.key("registry.key")
    origin = client.get("/api/v1/log").json()["origin"]
    statement = Statement(
        origin, ISSUER_ADD, registry.verifier().vkey, int(time.time()), issuer=issuer.verifier().vkey, ref=label
    )
    response = post_statements(client, [sign_statement(statement, registry)])
    response.raise_for_status()
    return int(response.json()["entries"][0]["index"])


def issue(
    origin: str, issuer: Ed25519Signer, document: bytes, when: int | None = None, ref: str | None = None
) -> bytes:
    statement = Statement(origin, ISSUE, issuer.verifier().vkey, when or int(time.time()), document=document, ref=ref)
    return sign_statement(statement, issuer)


def log_verifier(client: httpx.Client):  # type: ignore[no-untyped-def]
    """The only thing a client trusts: the log's public key (fetched once, as an operator would publish it)."""
    return parse_verifier_key(client.get("/api/v1/log").json()["log_vkey"])


def seed(i: int) -> bytes:
    return i.to_bytes(4, "big") * 8


os.environ.setdefault("PYTHONUNBUFFERED", "1")
