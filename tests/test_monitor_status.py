"""tlog-monitor recomputes the log's status index from the entries it audits (monitor/statusaudit.py): an honest
indexed log raises no alert (its index-root entries are not "bad entries"), and a log whose index hides a
revocation (its stored index rewritten, so the next index-root it signs and logs is wrong) is caught, with the
statement, its inclusion proof, both roots and the entry range as evidence."""

import base64
import hashlib
import sqlite3
import time
from pathlib import Path

import httpx
import pytest
from log_harness import LogProcess, issue, post_statements, register_issuer
from monitor_helpers import monitor_cli, monitor_config, read_alerts, wait_for

from loadtest.localproc import free_port
from monitor.statusaudit import RULE_STATUS_INDEX
from tests.status_tamper import drop_stored_revocations
from tlogcore.keys import Ed25519Signer
from tlogcore.statement import REVOKE, Statement, sign_statement

ISSUER = Ed25519Signer("moeys.gov.kh", b"\x51" * 32)
INDEXED = "[status_index]\nindex_interval_ms = 50\n"


def indexed_log(tmp: Path) -> LogProcess:
    config = tmp / "log.toml"
    config.write_text(INDEXED)
    return LogProcess(tmp / "log", free_port(), config=config).start()


def wait_index_root(client: httpx.Client, size: int) -> None:
    """Until the log's lookups carry an index proof covering `size` entries (the root is logged and published)."""
    probe = hashlib.sha256(b"probe").hexdigest()

    def covered() -> bool:
        served = client.get(f"/api/v1/documents/{probe}").json()["index"]
        return served is not None and served["size"] >= size

    wait_for(covered, 30, f"an index root covering {size} entries")
    published = client.get("/api/v1/log").json()
    wait_for(lambda: client.get("/api/v1/log").json()["published_size"] >= published["size"], 15, "publication")


def audit(tmp: Path, server: LogProcess, policy: str, workers: int) -> tuple[int, list[dict]]:  # type: ignore[type-arg]
    # workers > 1: the index is recomputed in the status process (monitor/statusworker.py), else in the main one
    config = monitor_config(tmp / "monitor.toml", server.url, policy, extra=f"workers = {workers}")
    result = monitor_cli("audit-once", "--config", str(config))
    return result.returncode, read_alerts(tmp / "alerts.jsonl")


@pytest.mark.parametrize("workers", [1, 2])
def test_an_honest_indexed_log_raises_no_alert_and_a_tampered_index_is_caught(tmp_path: Path, workers: int) -> None:
    server = indexed_log(tmp_path)
    try:
        with httpx.Client(base_url=server.url, timeout=20) as client:
            info = client.get("/api/v1/log").json()
            origin, policy = info["origin"], f"log {info['log_vkey']}\nquorum none\n"
            register_issuer(client, server, ISSUER, "Ministry of Education")
            docs = [hashlib.sha256(b"doc %d" % i).digest() for i in range(20)]
            assert post_statements(client, [issue(origin, ISSUER, d) for d in docs]).status_code == 200
            revoke = Statement(origin, REVOKE, ISSUER.verifier().vkey, int(time.time()), document=docs[3])
            answer = post_statements(client, [sign_statement(revoke, ISSUER)]).json()
            wait_index_root(client, answer["entries"][0]["index"] + 1)
            code, alerts = audit(tmp_path, server, policy, workers)
            assert code == 0 and alerts == [], alerts
            honest = save_answer(client, tmp_path / "honest.json", docs[3])
            checked = monitor_cli("check-status", "--config", str(tmp_path / "monitor.toml"), str(honest))
            assert checked.returncode == 0 and "consistent" in checked.stdout, checked.stdout + checked.stderr
            # The operator's database is changed: the revoked document's record loses its revocation, in every version.
            db = sqlite3.connect(server.data / "log.db.status", timeout=10)
            assert drop_stored_revocations(db, docs[3])
            db.commit()
            db.close()
            # The document is issued again: the next update rewrites its leaf from the tampered row, revocation gone.
            again = issue(origin, ISSUER, docs[3], when=int(time.time()) + 1)
            later = post_statements(client, [again]).json()
            wait_index_root(client, later["entries"][0]["index"] + 1)
            lying = save_answer(client, tmp_path / "lying.json", docs[3])
        code, alerts = audit(tmp_path, server, policy, workers)
        found = [a for a in alerts if a["rule"] == RULE_STATUS_INDEX]
        assert code == 3 and len(found) == 1, alerts
        evidence = found[0]["evidence"]
        assert evidence["logged_root"] != evidence["monitor_root"] and evidence["entries"][0] == 0
        assert evidence["inclusion_proof"] and evidence["checkpoint"] and base64.b64decode(evidence["entry"])
        assert "cannot be trusted" in found[0]["summary"]
        # The proof a citizen was shown for the re-issued document: signed by the log, and a lie.
        checked = monitor_cli("check-status", "--config", str(tmp_path / "monitor.toml"), str(lying))
        assert checked.returncode == 3 and "CONTRADICTS" in checked.stdout, checked.stdout + checked.stderr
        assert checked.stdout.count("\n") == 1 and "Traceback" not in checked.stderr
        assert monitor_cli("check-status", "--config", str(tmp_path / "monitor.toml"), str(honest)).returncode == 0
    finally:
        server.stop()


def save_answer(client: httpx.Client, path: Path, document: bytes) -> Path:
    """What a citizen's page was given for `document`, saved as the file they hand to a monitor."""
    path.write_bytes(client.get(f"/api/v1/documents/{document.hex()}").content)
    return path
