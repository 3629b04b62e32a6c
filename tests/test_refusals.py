"""The smaller faults of issue 18 (items 9 to 14), each against the real `tlog-server`: an abandoned upload is the
client's fault, a refused batch stores nothing, a damaged database is refused in one line at start, a failed start
exits at once, and the last plain-text 404 is JSON."""

import socket
import sqlite3
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from loadtest.localproc import free_port
from tests.log_harness import REPO, SERVER, LogProcess, issue, post_statements, register_issuer, running_log, seed
from tlogcore.keys import Ed25519Signer
from tlogcore.statement import ISSUER_RETIRE, Statement, sign_statement


def serve(data: Path, port: int | None = None, timeout: float = 30) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    result = subprocess.run(
        [*SERVER, "serve", "--data", str(data), "--listen", f"127.0.0.1:{port or free_port()}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return result, time.monotonic() - started


def one_line(result: subprocess.CompletedProcess[str], *words: str) -> str:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


# --- 9. an upload the client abandons -------------------------------------------------------------------------


def test_an_abandoned_upload_is_one_line_and_no_server_error(tmp_path: Path) -> None:
    with running_log(tmp_path) as server:
        sock = socket.create_connection(("127.0.0.1", server.port))
        sock.sendall(
            b"POST /api/v1/entries HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100000\r\n\r\n{"statements": ["'
        )
        time.sleep(0.3)
        sock.close()  # half-way
        deadline = time.monotonic() + 10  # its request line is written within a fraction of a second (batched)
        while '"path":"/api/v1/entries"' not in server.output() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # a second line, if the server were to write one, would have come by now
        metrics = httpx.get(server.url + "/metrics").text
        output = server.output()
    assert "Traceback" not in output, output[-3000:]
    assert '"status":500' not in output
    assert sum('"path":"/api/v1/entries"' in line for line in output.splitlines()) == 1
    assert 'reason="internal' not in metrics


# --- 11. a refused batch stores nothing -----------------------------------------------------------------------


def test_a_batch_refused_at_sequencing_stores_nothing(tmp_path: Path) -> None:
    """[issuer-retire K, issue by K]: each passes the checks on arrival, the second is refused in log order."""
    with running_log(tmp_path) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        issuer = Ed25519Signer("issuer.example", seed(11))
        register_issuer(client, server, issuer)
        origin = client.get("/api/v1/log").json()["origin"]
        registry = server.key("registry.key")
        retire = Statement(
            origin, ISSUER_RETIRE, registry.verifier().vkey, int(time.time()), issuer=issuer.verifier().vkey, reason="x"
        )
        before = client.get("/api/v1/log").json()["size"]
        refused = post_statements(client, [sign_statement(retire, registry), issue(origin, issuer, bytes(32))])
        after = client.get("/api/v1/log").json()["size"]
        keys = client.get("/api/v1/issuers").json()["issuers"][0]["keys"]
        still_issues = post_statements(client, [issue(origin, issuer, b"\x01" * 32)]).status_code
    assert refused.status_code == 403, refused.text
    assert "nothing from this request was logged" in refused.json()["message"]
    assert after == before  # before: the retire was logged (size + 1)
    assert keys[0]["active"] is True and still_issues == 200  # the registry did not keep the refused retire


# --- 12. damaged databases ------------------------------------------------------------------------------------


def damaged_log(tmp_path: Path, sql: str) -> Path:
    server = LogProcess(tmp_path / "log", free_port()).start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            for i in range(3):
                register_issuer(client, server, Ed25519Signer(f"issuer{i}.example", seed(20 + i)))
    finally:
        server.stop()
    with sqlite3.connect(server.data / "log.db") as db:
        db.execute(sql)
    return server.data


@pytest.mark.parametrize(
    ("sql", "words"),
    [
        ("DELETE FROM hashes WHERE id = (SELECT max(id) FROM hashes)", ["hashes", "missing", "tlog-server check"]),
        ("DELETE FROM head", ["no head checkpoint", "damaged", "tlog-server check"]),
        ("DELETE FROM checkpoints WHERE size = (SELECT max(size) FROM checkpoints)", ["no head checkpoint"]),
    ],
    ids=["last-hash", "head-row", "head-checkpoint"],
)
def test_a_damaged_database_is_refused_in_one_line_at_start(tmp_path: Path, sql: str, words: list[str]) -> None:
    data = damaged_log(tmp_path, sql)
    result, seconds = serve(data)
    one_line(result, *words)
    assert seconds < 20  # 13: a failed start exits, it does not hang


# --- 13. a failed start exits ---------------------------------------------------------------------------------


def test_a_taken_port_is_one_line_and_the_process_exits(tmp_path: Path) -> None:
    assert (
        subprocess.run([*SERVER, "init", "--data", str(tmp_path / "d")], cwd=REPO, capture_output=True).returncode == 0
    )
    with socket.create_server(("127.0.0.1", 0)) as taken:
        result, seconds = serve(tmp_path / "d", taken.getsockname()[1])
    one_line(result, "cannot listen on", "choose another --listen")
    assert seconds < 15


# --- 14. the last plain-text 404, and the OpenAPI answers ---------------------------------------------------------


def test_unknown_verifier_files_answer_json_404(tmp_path: Path) -> None:
    with running_log(tmp_path) as server:
        response = httpx.get(server.url + "/verify/no-such-file.js")
        described = httpx.get(server.url + "/openapi.json").json()
    assert response.status_code == 404 and response.json()["error"] == "not_found"
    assert "content-security-policy" in response.headers
    entries = described["paths"]["/api/v1/entries"]["post"]["responses"]
    assert {"408", "413", "429"} <= set(entries)
