"""The monitor's status index is a file of its own beside its state (`<state>.status-index`): it can be lost, or
restored from an older backup than the state, while the state says the entries were audited. The index is then
rebuilt from entry 0 (the entries read again, authenticated against the checkpoint as in any audit; statusaudit.py
"Rebuilt"): before this, the index-root audit stopped without a word, and a log whose index hid a revocation from
then on raised no alert. Both cases are the attack: the log's index is tampered with after the loss."""

import hashlib
import random
import shutil
import sqlite3
import time
from pathlib import Path

import httpx
import pytest
from log_harness import LogProcess, issue, post_statements, register_issuer
from monitor_helpers import monitor_cli, monitor_config, read_alerts, report_json, status_head

from monitor.statusaudit import RULE_STATUS_INDEX, StatusAudit
from monitor.statusfile import index_path, indexed_size
from tests.status_tamper import drop_stored_revocations
from tests.test_monitor_status import ISSUER, indexed_log, wait_index_root
from tests.test_monitor_status_journal import ORIGIN, documents
from tlogcore.statement import REVOKE, Statement, sign_statement
from tlogcore.statusindex import EMPTY


def index_files(state: Path) -> list[Path]:
    base = index_path(state)
    return [base, base.with_name(base.name + "-wal"), base.with_name(base.name + "-shm")]


def issue_some(client: httpx.Client, origin: str, tag: bytes, count: int) -> list[bytes]:
    docs = [hashlib.sha256(b"%s %d" % (tag, i)).digest() for i in range(count)]
    assert post_statements(client, [issue(origin, ISSUER, d) for d in docs]).status_code == 200
    return docs


def revoke_then_hide(client: httpx.Client, server: LogProcess, origin: str, document: bytes) -> None:
    """Revoke `document`, then make the log's index lose that revocation: the next index-root it logs is a lie."""
    revoke = Statement(origin, REVOKE, ISSUER.verifier().vkey, int(time.time()), document=document)
    answer = post_statements(client, [sign_statement(revoke, ISSUER)]).json()
    wait_index_root(client, answer["entries"][0]["index"] + 1)
    db = sqlite3.connect(server.data / "log.db.status", timeout=10)
    assert drop_stored_revocations(db, document)
    db.commit()
    db.close()
    later = post_statements(client, [issue(origin, ISSUER, document, when=int(time.time()) + 1)]).json()
    wait_index_root(client, later["entries"][0]["index"] + 1)


def monitored(client: httpx.Client, server: LogProcess, tmp: Path, workers: int) -> tuple[str, Path]:
    """The log's origin, with its issuer registered, and a monitor's config for it."""
    info = client.get("/api/v1/log").json()
    policy = f"log {info['log_vkey']}\nquorum none\n"
    register_issuer(client, server, ISSUER, "Ministry of Education")
    return info["origin"], monitor_config(tmp / "monitor.toml", server.url, policy, extra=f"workers = {workers}")


def report_text(config: Path) -> str:
    result = monitor_cli("report", "--config", str(config))
    assert result.returncode == 0, result.stderr
    return result.stdout


def audit_once(config: Path) -> tuple[int, list[dict]]:  # type: ignore[type-arg]
    result = monitor_cli("audit-once", "--config", str(config))
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, read_alerts(config.parent / "alerts.jsonl")


@pytest.mark.parametrize("loss", ["deleted", "older backup"])
@pytest.mark.parametrize("workers", [1, 2])
def test_a_lost_status_index_is_rebuilt_and_a_hidden_revocation_still_caught(
    tmp_path: Path, loss: str, workers: int
) -> None:
    server = indexed_log(tmp_path)
    state = tmp_path / "state.db"
    try:
        with httpx.Client(base_url=server.url, timeout=20) as client:
            origin, config = monitored(client, server, tmp_path, workers)
            issue_some(client, origin, b"first", 12)
            backup = tmp_path / "backup"
            backup.mkdir()
            if loss == "older backup":  # an index file of an earlier audit, kept while the state moves on
                assert audit_once(config) == (0, [])
                for path in index_files(state):
                    if path.exists():
                        shutil.copy(path, backup / path.name)
            docs = issue_some(client, origin, b"second", 12)
            wait_index_root(client, client.get("/api/v1/log").json()["size"])
            assert audit_once(config) == (0, [])
            audited, _ = status_head(state, origin)
            for path in index_files(state):
                path.unlink(missing_ok=True)
            for path in backup.iterdir():
                shutil.copy(path, tmp_path / path.name)
            assert report_json(config)["status_index"]["size"] < audited  # the report says the index is behind
            revoke_then_hide(client, server, origin, docs[5])
        code, alerts = audit_once(config)
        found = [a for a in alerts if a["rule"] == RULE_STATUS_INDEX]
        assert code == 3 and len(found) == 1, alerts
        assert found[0]["evidence"]["logged_root"] != found[0]["evidence"]["monitor_root"]
        assert [a for a in alerts if a["rule"] != RULE_STATUS_INDEX] == []  # nothing else raised a second time
        report = report_json(config)
        size, _ = status_head(state, origin)
        assert report["status_index"]["size"] == size == report["next_index"] > audited
    finally:
        server.stop()


def test_a_rebuilt_index_reaches_the_root_it_had(tmp_path: Path) -> None:
    """Rebuilt from the log's entries, the index reaches the same root as the one lost, and the audit's counts are
    not counted twice."""
    server = indexed_log(tmp_path)
    state = tmp_path / "state.db"
    try:
        with httpx.Client(base_url=server.url, timeout=20) as client:
            origin, config = monitored(client, server, tmp_path, 2)
            issue_some(client, origin, b"doc", 30)
            wait_index_root(client, client.get("/api/v1/log").json()["size"])
            assert audit_once(config) == (0, [])
            before, counts = status_head(state, origin), report_json(config)
            for path in index_files(state):
                path.unlink(missing_ok=True)
            assert "the next round rebuilds it from entry 0" in report_text(config)
            assert audit_once(config) == (0, [])  # nothing new in the log: the index is rebuilt all the same
            assert status_head(state, origin) == before
            assert f"status index: recomputed over entries 0-{before[0] - 1:,}\n" in report_text(config)
            after = report_json(config)
            assert after["issuers"] == counts["issuers"] and after["next_index"] == counts["next_index"]
            assert after["entries_audited"] == counts["entries_audited"] == counts["next_index"]
    finally:
        server.stop()


def test_an_index_never_skips_entries_it_did_not_see(tmp_path: Path) -> None:
    """A stale index file (of an earlier state) under a monitor that starts past its head (`--start-at-end`): the
    entries between were never applied, so the index is not updated over the gap (it would differ from the log's on
    every root after it: false alarms), and the chunk's findings are none."""
    rng, seen, state = random.Random(5), [], tmp_path / "state.db"
    audit = StatusAudit(state, ORIGIN)
    try:
        assert audit.chunk_items(documents(0, 100, rng, seen), 0, 100, frozenset()) == []
        head = status_of(audit)
        assert audit.chunk_items(documents(500, 100, rng, seen), 500, 600, frozenset()) == []
        assert status_of(audit) == head  # before: size 600, over a gap of 400 entries
        assert not audit.start_over_if_behind(100) and status_of(audit) == head
        assert audit.start_over_if_behind(101) and status_of(audit) == (0, EMPTY)
    finally:
        audit.close()


def status_of(audit: StatusAudit) -> tuple[int, bytes]:
    head = audit._head(0)
    assert head is not None
    return head.size, head.root


def test_a_damaged_index_file_reads_as_covering_nothing(tmp_path: Path) -> None:
    """`indexed_size` is read by the main process each round and by `report`: a file that is not a database reads
    as covering nothing (the round then asks the status process, which names the damage), not a traceback."""
    state = tmp_path / "state.db"
    assert indexed_size(state, ORIGIN) == 0  # no file
    index_path(state).write_bytes(b"not a database" * 100)
    assert indexed_size(state, ORIGIN) == 0
