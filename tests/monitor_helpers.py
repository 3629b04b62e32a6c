"""Helpers for the monitor tests: a real log filled over HTTP, monitor configs, and the real `tlog-monitor` CLI
run as a process (`run` in the background, killable with SIGKILL; the other commands to completion)."""

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from log_harness import REPO, LogProcess, free_port, issue, post_statements, seed

from monitor.audit import parse_unsigned
from monitor.statusaudit import StatusAudit, _Step
from tlogcore.keys import Ed25519Signer
from tlogcore.statement import ISSUER_ADD, Statement, sign_statement

MONITOR = [sys.executable, "-c", "from monitor.cli import main; main()"]
BATCH = 1000


def status_head(state: Path, origin: str) -> tuple[int, bytes]:
    """The size of the status index a monitor's state database holds, and its root over all of it: the documents
    that wait in the file for a batch or a root (monitor/statusaudit.py APPLY_EVERY) applied in memory, not
    written."""
    audit = StatusAudit(state, origin)
    try:
        head = audit._head(0)
        assert head is not None
        if head.indexed == head.size:
            return head.size, head.root
        audit._recover(head)  # as an update does first: a journal left by a crash folded in
        return head.size, audit._apply_below(head, _Step(), head.size)
    finally:
        audit.close()


def doc(i: int, tag: bytes = b"doc") -> bytes:
    return hashlib.sha256(b"%s %d" % (tag, i)).digest()


def leaf_hash(statement: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + statement).digest()


@dataclass
class FilledLog:
    """A running log with registered issuers, and the statements it holds (index -> statement)."""

    server: LogProcess
    client: httpx.Client
    origin: str
    log_vkey: str
    issuers: dict[str, Ed25519Signer]
    statements: list[bytes] = field(default_factory=list)
    _parsed: list[Statement] = field(default_factory=list)

    def submit(self, statements: Sequence[bytes]) -> list[int]:
        indexes = []
        for start in range(0, len(statements), BATCH):
            response = post_statements(self.client, list(statements[start : start + BATCH]))
            assert response.status_code == 200, response.text
            indexes += [e["index"] for e in response.json()["entries"]]
        for index, statement in zip(indexes, statements, strict=True):
            assert index == len(self.statements), "the log is expected to grow by exactly our statements"
            self.statements.append(statement)
        return indexes

    def registry_statement(self, kind: str, key: Ed25519Signer, text: str) -> bytes:
        registry = self.server.key("registry.key")
        extra = {"ref": text} if kind == ISSUER_ADD else {"reason": text}
        statement = Statement(
            self.origin, kind, registry.verifier().vkey, int(time.time()), issuer=key.verifier().vkey, **extra
        )
        return sign_statement(statement, registry)

    def register(self, name: str, key: Ed25519Signer) -> int:
        self.issuers[name] = key
        return self.submit([self.registry_statement(ISSUER_ADD, key, name)])[0]

    def issue(self, name: str, documents: Sequence[bytes]) -> list[bytes]:
        return [issue(self.origin, self.issuers[name], d) for d in documents]

    def close(self) -> None:
        self.client.close()
        self.server.stop()

    def parsed(self) -> list[Statement]:
        """Every statement, parsed (strictly, without the signature check: the log checked those)."""
        while len(self._parsed) < len(self.statements):
            self._parsed.append(parse_unsigned(self.statements[len(self._parsed)]))
        return self._parsed

    @property
    def size(self) -> int:
        return len(self.statements)

    def published_size(self) -> int:
        return int(self.client.get("/api/v1/log").json()["published_size"])

    def wait_published(self, size: int, timeout: float = 15) -> None:
        wait_for(lambda: self.published_size() >= size, timeout, f"log publishing size {size}")


def start_log(tmp: Path, name: str = "log", config: Path | None = None) -> FilledLog:
    server = LogProcess(tmp / name, free_port(), config=config).start()
    client = httpx.Client(base_url=server.url, timeout=60)
    info = client.get("/api/v1/log").json()
    return FilledLog(server, client, info["origin"], info["log_vkey"], {})


def issuer_key(name: str, number: int) -> Ed25519Signer:
    return Ed25519Signer(name, seed(number))


def wait_for(condition: Callable[[], bool], timeout: float, what: str, every: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


# --- configs ---------------------------------------------------------------------------------


def toml_string(text: str) -> str:
    return json.dumps(text)  # a JSON string is a valid TOML basic string


def monitor_config(
    path: Path, log_url: str, policy: str, *, watch: str = "", sinks: str | None = None, extra: str = ""
) -> Path:
    """A monitor config with one log (inline policy), a file sink `alerts.jsonl` by default."""
    sinks = sinks if sinks is not None else '[[sink]]\ntype = "file"\npath = "alerts.jsonl"\n'
    path.write_text(
        f'state = "state.db"\npoll_interval_seconds = 0.2\n{extra}\n'
        f"[[log]]\nurl = {toml_string(log_url)}\npolicy = {toml_string(policy)}\n\n{watch}\n{sinks}",
        encoding="utf-8",
    )
    return path


def read_alerts(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def state_progress(db: Path) -> tuple[int | None, int]:
    """(verified size, next index) straight from the state database, or (None, 0) before the first commit."""
    if not db.exists():
        return None, 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            row = conn.execute("SELECT verified_size, next_index FROM logs").fetchone()
    except sqlite3.OperationalError:
        return None, 0
    return (row[0], row[1]) if row else (None, 0)


def undelivered(db: Path) -> int:
    """Alerts in the state that no sink has taken yet (the tests use one sink)."""
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            row = conn.execute(
                "SELECT count(*) FROM alerts a WHERE NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.alert_id = a.id)"
            ).fetchone()
    except sqlite3.OperationalError:
        return 1
    return int(row[0])


# --- the CLI -------------------------------------------------------------------------------------


def monitor_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MONITOR, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False)


def report_json(config: Path) -> dict[str, Any]:
    result = monitor_cli("report", "--config", str(config), "--json")
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)["logs"][0]
    return data


class MonitorProcess:
    """`tlog-monitor run --config …` in the background; stderr goes to a file next to the config."""

    def __init__(self, config: Path, *args: str) -> None:
        self.config, self.args = config, list(args)
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> "MonitorProcess":
        self.starts += 1
        self.stderr_path = self.config.with_name(f"monitor-{self.starts}.err")
        with self.stderr_path.open("wb") as err:
            self.process = subprocess.Popen(
                [*MONITOR, "run", "--config", str(self.config), *self.args],
                cwd=REPO,
                stdout=subprocess.DEVNULL,
                stderr=err,
                stdin=subprocess.DEVNULL,
            )
        return self

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal(self, signum: int) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signum)

    def kill9(self) -> None:
        if self.alive():
            self.signal(signal.SIGKILL)
        if self.process is not None:
            self.process.wait(10)

    def stop(self) -> int:
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return self.process.returncode
