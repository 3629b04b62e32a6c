"""Operator access (RELIABILITY.md "Operator access"): nothing changes state without the right key.

- The log's only write route is POST /api/v1/entries, and what it writes must be signed: by an active issuer, or,
  for registry changes, by the registry key. The witness's only write route, POST /add-checkpoint, takes only
  checkpoints signed by the log it follows. Every other method on every route is refused.
- A private key file that others can read is refused by tlog-server, tlog-witness and tlog.
- No private key reaches a log line or an answer.
"""

import asyncio
import base64
import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import pytest
from starlette.routing import Route

from logserver.app import LogState, build_app
from logserver.sequencer import Sequencer, SequencerConfig
from logserver.sqlite import SQLiteStorage
from logserver.submission import SubmissionRules
from tests.log_harness import REPO, LogProcess, issue, post_statements, register_issuer, running_log, seed
from tests.witness_helpers import WitnessProcess, tiny_log, write_config
from tlogcore.keys import Ed25519Signer, format_signer_key
from tlogcore.statement import ISSUER_ADD, ISSUER_RETIRE, Statement, sign_statement
from witness.app import create_app
from witness.config import WitnessConfig
from witness.storage import SQLiteStorage as WitnessSQLiteStorage

WRITE_METHODS = ["POST", "PUT", "PATCH", "DELETE"]
LOG_WRITES = {("/api/v1/entries", "POST")}
# POSTs that only read: the bulk lookup carries up to 1,000 hashes in its body (test_a_read_only_post_writes_nothing).
LOG_READ_ONLY_POSTS = {("/api/v1/documents:lookup", "POST")}
WITNESS_WRITES = {("/add-checkpoint", "POST")}


def write_routes(routes: Sequence[object]) -> set[tuple[str, str]]:
    found = set()
    for route in routes:
        if isinstance(route, Route):
            found |= {(route.path, m) for m in route.methods or () if m not in ("GET", "HEAD")}
    return found


def test_the_log_and_the_witness_have_exactly_one_write_route_each(tmp_path: Path) -> None:
    """Read from the route tables themselves, so a route added later without review fails here."""

    async def tables() -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
        storage = await SQLiteStorage.open(tmp_path / "log.db")
        try:
            signer = Ed25519Signer("log.example", seed(1))
            sequencer = Sequencer(storage, signer, SequencerConfig("log.example", frozenset()))
            state = LogState(storage, sequencer, SubmissionRules("log.example", 300), signer.verifier().vkey, [])
            log_writes = write_routes(build_app(state).routes)
        finally:
            await storage.close()
        witness_storage = await WitnessSQLiteStorage.open(str(tmp_path / "witness.db"))
        try:
            witness = create_app(WitnessConfig("w.example", "127.0.0.1:0", ()), witness_storage, (), time.time)
        finally:
            await witness_storage.close()
        return log_writes, write_routes(witness.routes)

    log_writes, witness_writes = asyncio.run(tables())
    assert log_writes == LOG_WRITES | LOG_READ_ONLY_POSTS
    assert witness_writes == WITNESS_WRITES


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LogProcess]:
    with running_log(tmp_path_factory.mktemp("access")) as server:
        yield server


def test_every_other_method_on_every_log_route_is_refused(log: LogProcess) -> None:
    with httpx.Client(base_url=log.url, timeout=10) as client:
        paths = [
            "/checkpoint",
            "/tile/0/000.p/1",
            "/tile/entries/000.p/1",
            "/api/v1/proof/inclusion?index=0",
            "/api/v1/proof/consistency?old=0",
            "/api/v1/bundle/0",
            "/api/v1/documents/" + "00" * 32,
            "/api/v1/issuers",
            "/api/v1/log",
            "/healthz",
            "/metrics",
            "/openapi.json",
            "/verify",
            "/api/v1/entries",
            "/admin",
            "/api/v1/issuers/add",
        ]
        before = client.get("/api/v1/log").json()["size"]
        for path in paths:
            for method in WRITE_METHODS:
                if (path, method) in LOG_WRITES:
                    continue
                response = client.request(method, path, content=b"{}")
                assert response.status_code in (404, 405), (method, path, response.status_code)
        assert client.get("/api/v1/log").json()["size"] == before


def test_a_read_only_post_writes_nothing(log: LogProcess) -> None:
    with httpx.Client(base_url=log.url, timeout=10) as client:
        before = client.get("/api/v1/log").json()["size"]
        for path, method in LOG_READ_ONLY_POSTS:
            answer = client.request(method, path, json={"documents": ["00" * 32, "ab" * 32]})
            assert answer.status_code == 200, answer.text
            assert [d["status"] for d in answer.json()["documents"]] == ["unknown", "unknown"]
        assert client.get("/api/v1/log").json()["size"] == before


def test_registry_changes_need_the_registry_key(log: LogProcess) -> None:
    with httpx.Client(base_url=log.url, timeout=10) as client:
        origin = client.get("/api/v1/log").json()["origin"]
        registry = log.key("registry.key")
        issuer = Ed25519Signer("issuer.example", seed(11))
        stranger = Ed25519Signer("stranger.example", seed(12))
        register_issuer(client, log, issuer)
        before = client.get("/api/v1/log").json()["size"]

        def registry_statement(kind: str, signer: Ed25519Signer, subject: Ed25519Signer) -> bytes:
            statement = Statement(
                origin, kind, signer.verifier().vkey, int(time.time()), issuer=subject.verifier().vkey
            )
            return sign_statement(statement, signer)

        refused = {
            "a stranger adds itself": registry_statement(ISSUER_ADD, stranger, stranger),
            "an active issuer adds another key": registry_statement(ISSUER_ADD, issuer, stranger),
            "an active issuer retires itself": registry_statement(ISSUER_RETIRE, issuer, issuer),
            "an unregistered key issues": issue(origin, stranger, b"\x01" * 32),
        }
        for what, statement in refused.items():
            response = post_statements(client, [statement])
            assert response.status_code == 403, what
            assert response.json()["error"] == "signer_not_allowed", what
        # Claiming to be the registry key without holding it: the signature does not verify.
        forged = Statement(
            origin, ISSUER_ADD, registry.verifier().vkey, int(time.time()), issuer=stranger.verifier().vkey
        )
        body = bytearray(sign_statement(forged, registry))
        body[-10] ^= 1  # any change breaks the registry key's signature
        assert post_statements(client, [bytes(body)]).status_code in (400, 422)
        assert client.get("/api/v1/log").json()["size"] == before  # nothing was written
        keys = {k["vkey"] for i in client.get("/api/v1/issuers").json()["issuers"] for k in i["keys"]}
        assert stranger.verifier().vkey not in keys
        assert post_statements(client, [registry_statement(ISSUER_ADD, registry, stranger)]).status_code == 200


def test_the_witness_takes_only_checkpoints_signed_by_its_log(tmp_path: Path) -> None:
    log_tree = tiny_log()
    impostor = tiny_log(seed=0x55)  # same origin, another key
    log_tree.grow(3)
    impostor.grow(3)
    config = write_config(tmp_path / "w.toml", "witness.example", [(log_tree.origin, log_tree.vkey)])
    with WitnessProcess(tmp_path / "w", config) as witness, httpx.Client(timeout=10) as client:
        monitoring = f"{witness.url}/{hashlib.sha256(log_tree.origin.encode()).hexdigest()}/checkpoint"
        response = client.post(f"{witness.url}/add-checkpoint", content=impostor.body(0, 3))
        assert response.status_code == 403
        assert client.get(monitoring).status_code == 404  # it holds nothing for that log
        for method in ["PUT", "PATCH", "DELETE"]:
            assert client.request(method, f"{witness.url}/add-checkpoint").status_code == 405
        assert client.post(f"{witness.url}/add-checkpoint", content=log_tree.body(0, 3)).status_code == 200
        assert client.get(monitoring).status_code == 200


# --- key files others can read are refused --------------------------------------------------------------------


def run_cli(module: str, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", f"from {module} import main; main()", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def one_readable_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize("key_file", ["log.key", "registry.key"])
@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_tlog_server_refuses_a_key_others_can_read(tmp_path: Path, key_file: str, mode: int) -> None:
    data = tmp_path / "data"
    assert run_cli("logserver.cli", "init", "--data", str(data)).returncode == 0
    (data / key_file).chmod(mode)
    for command in (["serve", "--listen", "127.0.0.1:1"], ["info"]):  # refused before it would listen
        line = one_readable_line(run_cli("logserver.cli", command[0], "--data", str(data), *command[1:]))
        assert "chmod 600" in line and key_file in line


def test_tlog_witness_refuses_a_key_others_can_read(tmp_path: Path) -> None:
    config = write_config(tmp_path / "w.toml", "witness.example", [(tiny_log().origin, tiny_log().vkey)])
    data = tmp_path / "w"
    data.mkdir(mode=0o700)
    key = data / "witness.key"
    key.write_text(format_signer_key(Ed25519Signer("witness.example", seed(3))) + "\n")
    key.chmod(0o644)
    for args in (
        ["serve", "--data", str(data), "--config", str(config), "--listen", "127.0.0.1:1"],
        ["info", "--data", str(data)],
    ):
        line = one_readable_line(run_cli("witness.cli", *args))
        assert "chmod 600" in line


def test_tlog_refuses_a_key_others_can_read(tmp_path: Path, log: LogProcess) -> None:
    issuer_key = tmp_path / "issuer.key"
    assert run_cli("tools.cli", "keygen", "--name", "issuer.example", "--out", str(issuer_key)).returncode == 0
    registry_copy = tmp_path / "registry.key"
    registry_copy.write_text((log.data / "registry.key").read_text())
    document = tmp_path / "doc.pdf"
    document.write_bytes(b"a document")
    issuer_key.chmod(0o644)
    registry_copy.chmod(0o640)
    vkey = run_cli("tools.cli", "vkey", "--key", str(issuer_key))
    assert "chmod 600" in one_readable_line(vkey)
    add = run_cli(
        "tools.cli",
        "issuer",
        "add",
        "--log",
        log.url,
        "--registry-key",
        str(registry_copy),
        "--issuer",
        "issuer.example+00000000+" + base64.b64encode(b"\x01" + b"\x00" * 32).decode(),
    )
    assert "chmod 600" in one_readable_line(add)
    submit = run_cli("tools.cli", "submit", "--log", log.url, "--key", str(issuer_key), str(document))
    assert "chmod 600" in one_readable_line(submit)


# --- no private key in logs or answers ------------------------------------------------------------------------


def secrets_of(*key_files: Path) -> list[str]:
    """The strings that would reveal a key: the whole key line and its base64 seed part."""
    found = []
    for path in key_files:
        line = path.read_text().strip()
        found += [line, line.split("+", 4)[4]]  # PRIVATE+KEY+name+id+base64: base64 may hold "+"
    return found


def test_private_keys_never_reach_logs_or_answers(tmp_path: Path) -> None:
    with running_log(tmp_path) as log, httpx.Client(base_url=log.url, timeout=10) as client:
        issuer = Ed25519Signer("issuer.example", seed(21))
        register_issuer(client, log, issuer)
        origin = client.get("/api/v1/log").json()["origin"]
        assert post_statements(client, [issue(origin, issuer, bytes(32))]).status_code == 200
        assert post_statements(client, [b"garbage"]).status_code == 400
        assert (
            client.post("/api/v1/entries", content=b"{", headers={"content-type": "application/json"}).status_code
            == 400
        )
        answers = [
            client.get(p).text for p in ["/api/v1/log", "/metrics", "/api/v1/issuers", "/checkpoint", "/openapi.json"]
        ]
        info = run_cli("logserver.cli", "info", "--data", str(log.data))
        log.kill()  # and a crash on top: whatever it leaves in the output
        secrets = secrets_of(log.data / "log.key", log.data / "registry.key")
        outputs = [log.output(), info.stdout + info.stderr, *answers]
    for path in tmp_path.rglob("*.log"):
        outputs.append(path.read_text(errors="replace"))
    assert len(outputs[0]) > 200  # the server did log (one line per request)
    assert all(len(secret) >= 44 for secret in secrets)  # a whole seed, not a fragment that could match by chance
    for secret in secrets:
        leaks = [text[max(0, text.index(secret) - 200) : text.index(secret) + 60] for text in outputs if secret in text]
        assert not leaks, leaks
    assert all("PRIVATE+KEY" not in text for text in outputs)
    assert os.stat(tmp_path / "log" / "log.key").st_mode & 0o077 == 0
