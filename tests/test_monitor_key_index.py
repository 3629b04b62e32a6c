"""The monitor checks the key index root each `tlog-index-root/v2` entry states (monitor/keyaudit.py,
docs/status-proofs.md §12): recomputed from every issuer-add and issuer-retire entry it audited, kept in its status
index file so that a monitor started again from its state still checks the next roots. On a real log: an honest
log with keys added and one retired as stolen raises nothing and the roots were checked; a log whose stored
registry loses a retirement (the operator's database changed, so the next v2 root it signs leaves the stolen-key
report out) is caught with one alert naming the entry, by a monitor auditing it all at once and by one started
again after the retirement; `check-status` finds the served key proof that contradicts the entries. Without a real
log: a crash between the index's commit and the state's neither loses nor doubles a registry statement, a file from
before the key index is rebuilt, and `check-status` compares key proofs."""

import base64
import hashlib
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import statusindex_reference as reference
from log_harness import LogProcess, issue, post_statements, register_issuer, seed
from monitor_helpers import monitor_cli, monitor_config, read_alerts

from logserver import api
from monitor.audit import apply_registry, check_statements
from monitor.checkstatus import CONSISTENT, CONTRADICTS, check_status_file
from monitor.state import LogRow, State
from monitor.statusaudit import RULE_STATUS_INDEX, Finding, StatusAudit, status_items_of
from monitor.statusfile import index_path, indexed_size
from tests.test_monitor_late_roots import reference_root
from tests.test_monitor_status import indexed_log, wait_index_root
from tlogcore.indexroot import IndexRoot, parse_index_root, sign_index_root
from tlogcore.keys import Ed25519Signer
from tlogcore.keystatus import KeyMap, key_records, registry_item
from tlogcore.registry import Registry
from tlogcore.statement import ISSUE, ISSUER_ADD, ISSUER_RETIRE, REVOKE, Statement, parse_statement, sign_statement
from tlogcore.statusindex import EMPTY
from tlogcore.statusrecord import new_record

MINISTRY = Ed25519Signer("moeys.gov.kh", seed(61))
COURT = Ed25519Signer("court.gov.kh", seed(62))
ROTATED = Ed25519Signer("moeys.gov.kh", seed(63))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# --- a real log --------------------------------------------------------------------------------------------------


def registry_statement(client: httpx.Client, server: LogProcess, kind: str, key: Ed25519Signer, **extra: Any) -> int:
    registry = server.key("registry.key")
    origin = client.get("/api/v1/log").json()["origin"]
    statement = Statement(origin, kind, registry.verifier().vkey, int(time.time()), issuer=key.verifier().vkey, **extra)
    response = post_statements(client, [sign_statement(statement, registry)])
    assert response.status_code == 200, response.text
    return int(response.json()["entries"][0]["index"])


def submit(client: httpx.Client, statements: list[bytes]) -> list[int]:
    response = post_statements(client, statements)
    assert response.status_code == 200, response.text
    return [int(entry["index"]) for entry in response.json()["entries"]]


def with_keys(client: httpx.Client, server: LogProcess) -> dict[str, Any]:
    """Two issuers; the ministry's key rotated, the court's retired as stolen from its second document on. Returns
    the origin, the court's documents and the retirement's entry, once an index root covers it all."""
    origin = client.get("/api/v1/log").json()["origin"]
    register_issuer(client, server, MINISTRY, "Ministry of Education")
    register_issuer(client, server, COURT, "Supreme Court")
    court = [hashlib.sha256(b"ruling %d" % i).digest() for i in range(2)]
    submit(client, [issue(origin, MINISTRY, hashlib.sha256(b"diploma %d" % i).digest()) for i in range(5)])
    signed = submit(client, [issue(origin, COURT, d) for d in court])
    registry_statement(
        client, server, ISSUER_ADD, ROTATED, ref="Ministry of Education", continues=MINISTRY.verifier().vkey
    )
    retired = registry_statement(client, server, ISSUER_RETIRE, COURT, unsafe_from=signed[1], reason="laptop stolen")
    last = submit(client, [issue(origin, ROTATED, hashlib.sha256(b"diploma 9").digest())])[0]
    wait_index_root(client, last + 1)
    return {"origin": origin, "court": court, "retired": retired, "stolen": signed[1]}


def monitor_config_for(tmp: Path, client: httpx.Client, server: LogProcess, workers: int) -> Path:
    policy = f"log {client.get('/api/v1/log').json()['log_vkey']}\nquorum none\n"
    return monitor_config(tmp / "monitor.toml", server.url, policy, extra=f"workers = {workers}")


def audit_once(config: Path) -> tuple[int, list[dict[str, Any]]]:
    result = monitor_cli("audit-once", "--config", str(config))
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, read_alerts(config.parent / "alerts.jsonl")


def keys_checked(state: Path, origin: str) -> tuple[int, int | None]:
    """How many v2 roots the monitor's key index checked, and the largest size it found right."""
    audit = StatusAudit(state, origin)
    try:
        head = audit._head(0)
        assert head is not None
        return getattr(head, "keys_checked", 0), getattr(head, "keys_size", None)  # (0, None): never checked
    finally:
        audit.close()


def hide_retirement(client: httpx.Client, server: LogProcess, retired: int) -> int:
    """The operator's database changed, the server started again on it: the retirement no longer counts as a
    registry entry, so the log's key index leaves it out (a running server keeps the registry rows it read, and
    then serves no status proof: its map and the logged root differ). One statement more makes the log state a v2
    root over it: that root's entry."""
    server.stop()
    db = sqlite3.connect(server.data / "log.db", timeout=10)
    assert db.execute("UPDATE leaves SET registry = 0 WHERE idx = ?", (retired,)).rowcount == 1
    db.commit()
    db.close()
    server.start(init=False)
    origin = client.get("/api/v1/log").json()["origin"]
    last = submit(client, [issue(origin, ROTATED, hashlib.sha256(b"diploma 10").digest())])[0]
    wait_index_root(client, last + 1)
    served = client.get(f"/api/v1/documents/{hashlib.sha256(b'diploma 10').hexdigest()}").json()["index"]
    return int(served["index_root"]["index"])


def save_answer(client: httpx.Client, path: Path, document: bytes) -> Path:
    path.write_bytes(client.get(f"/api/v1/documents/{document.hex()}").content)
    return path


STOLEN = "issuer-key-stolen"  # the monitor's alerts about the retirement itself and the entry signed from then on


def honest_alerts(alerts: list[dict[str, Any]], log: dict[str, Any]) -> bool:
    """Only the two stolen-key alerts (monitor/stolenkeys.py): the retirement, and the ruling signed at its N."""
    found = sorted((a["rule"], a["evidence"]["index"]) for a in alerts)
    return found == [(STOLEN, log["stolen"]), (STOLEN, log["retired"])]


def assert_one_key_alert(alerts: list[dict[str, Any]], entry: int, log: dict[str, Any]) -> None:
    found = [a for a in alerts if a["rule"] == RULE_STATUS_INDEX]
    assert len(found) == 1 and honest_alerts([a for a in alerts if a not in found], log), alerts
    retired = log["retired"]
    evidence = found[0]["evidence"]
    assert evidence["index"] == entry and f"entry {entry}:" in found[0]["summary"], found[0]
    assert "key index root" in found[0]["summary"] and "logged_root" not in evidence  # the document index is right
    statement = parse_index_root(base64.b64decode(evidence["entry"]))
    assert statement.keys is not None and evidence["logged_keys_root"] == b64(statement.keys)
    assert evidence["monitor_keys_root"] != evidence["logged_keys_root"] and evidence["entries"] == [0, statement.size]
    assert evidence["left_out"] == {"index": retired, "kind": ISSUER_RETIRE, "key": COURT.verifier().vkey}
    assert evidence["key_records"][COURT.verifier().vkey]["retired"] == [retired]
    assert evidence["inclusion_proof"] and evidence["checkpoint"]


@pytest.mark.parametrize("workers", [1, 2])
def test_an_honest_log_with_keys_added_and_retired_raises_nothing_and_its_key_roots_are_checked(
    tmp_path: Path, workers: int
) -> None:
    server = indexed_log(tmp_path)
    try:
        with httpx.Client(base_url=server.url, timeout=20) as client:
            log = with_keys(client, server)
            config = monitor_config_for(tmp_path, client, server, workers)
            answer = save_answer(client, tmp_path / "court.json", log["court"][1])
        assert json.loads(answer.read_text())["index"]["keys"], "the log serves the court key's proof"
        code, alerts = audit_once(config)
        assert code == 3 and honest_alerts(alerts, log), alerts
        checked, right_to = keys_checked(tmp_path / "state.db", log["origin"])
        assert checked >= 1 and right_to is not None and right_to > log["retired"]  # a root over the retirement
        result = monitor_cli("check-status", "--config", str(config), str(answer))
        assert result.returncode == 0 and "key proofs too" in result.stdout, result.stdout + result.stderr
    finally:
        server.stop()


def test_a_v2_root_leaving_a_stolen_key_report_out_is_caught_with_the_entry(tmp_path: Path) -> None:
    server = indexed_log(tmp_path)
    try:
        with httpx.Client(base_url=server.url, timeout=20) as client:
            log = with_keys(client, server)
            config = monitor_config_for(tmp_path, client, server, 1)
            entry = hide_retirement(client, server, log["retired"])
            lying = save_answer(client, tmp_path / "court.json", log["court"][1])  # what a citizen was shown
        code, alerts = audit_once(config)
        assert code == 3
        assert_one_key_alert(alerts, entry, log)
        # The court key's proof under that root says it was never retired; it verifies, and the entries say otherwise.
        result = monitor_cli("check-status", "--config", str(config), str(lying))
        assert result.returncode == 3 and "CONTRADICTS" in result.stdout, result.stdout + result.stderr
        assert "key proof signed by the log says key court.gov.kh" in result.stdout
        assert result.stdout.count("\n") == 1 and "Traceback" not in result.stderr
        db = sqlite3.connect(tmp_path / "state.db")
        bodies = [
            json.loads(body) for (body,) in db.execute("SELECT body FROM alerts WHERE rule = ?", (RULE_STATUS_INDEX,))
        ]
        db.close()
        stored = [b for b in bodies if b["evidence"].get("key") == COURT.verifier().vkey]
        assert len(stored) == 1 and stored[0]["evidence"]["computed"]["retired"] == [log["retired"]], bodies
        assert stored[0]["evidence"]["shown"]["retired"] == []
    finally:
        server.stop()


def test_a_monitor_started_again_after_the_retirement_still_catches_a_later_lying_root(tmp_path: Path) -> None:
    """The registry statements are in the monitor's files, not only in its memory: a monitor that forgot the
    retirement would compute the log's lie itself and stay silent."""
    server = indexed_log(tmp_path)
    try:
        with httpx.Client(base_url=server.url, timeout=20) as client:
            log = with_keys(client, server)
            config = monitor_config_for(tmp_path, client, server, 2)
            code, alerts = audit_once(config)  # the retirement audited; the process ends
            assert code == 3 and honest_alerts(alerts, log), alerts
            before = keys_checked(tmp_path / "state.db", log["origin"])[0]
            entry = hide_retirement(client, server, log["retired"])
        code, alerts = audit_once(config)  # a new process, from the saved state
        assert code == 3
        assert_one_key_alert(alerts, entry, log)
        assert keys_checked(tmp_path / "state.db", log["origin"])[0] > before
    finally:
        server.stop()


# --- without a log: the monitor's index file, chunk by chunk ------------------------------------------------------

ORIGIN = "log.example/keys"
REGISTRY = Ed25519Signer("registry.example", b"\x71" * 32)
KEYS = frozenset([REGISTRY.verifier().vkey])


class Entries:
    """Signed entries of a log, built in log order, with the honest roots of both indexes."""

    def __init__(self) -> None:
        self.entries: list[bytes] = []

    def append(self, data: bytes) -> int:
        self.entries.append(data)
        return len(self.entries) - 1

    def registry(self, kind: str, key: Ed25519Signer, **extra: Any) -> int:
        statement = Statement(
            ORIGIN, kind, REGISTRY.verifier().vkey, 1_800_000_000, issuer=key.verifier().vkey, **extra
        )
        return self.append(sign_statement(statement, REGISTRY))

    def document(self, key: Ed25519Signer, kind: str, name: bytes) -> int:
        statement = Statement(ORIGIN, kind, key.verifier().vkey, 1_800_000_000, document=hashlib.sha256(name).digest())
        return self.append(sign_statement(statement, key))

    def statements(self) -> list[tuple[int, Statement]]:
        return [(i, parse_statement(d)) for i, d in enumerate(self.entries) if not d.startswith(b"tlog-index-root")]

    def keys_root(self, size: int, leave_out: int | None = None) -> bytes:
        """The key index root as the log makes it (tlogcore/keystatus.py), optionally without one entry."""
        items = [registry_item(i, s) for i, s in self.statements() if i != leave_out]
        return KeyMap(key_records([item for item in items if item is not None], size)).root

    def index_root(self, size: int, keys: bytes | None) -> int:
        documents = [(i, s.kind, s.document) for i, s in self.statements() if s.document is not None]
        root = reference_root(documents, size) if documents else EMPTY
        statement = IndexRoot(ORIGIN, REGISTRY.verifier().vkey, 1_800_000_000, size, root, keys)
        return self.append(sign_index_root(statement, REGISTRY))

    def audit(self, audit: StatusAudit, start: int, end: int) -> list[Finding]:
        """Entries [start, end) as entryaudit.py hands them to the index (the registry replayed from entry 0)."""
        checked = apply_registry(Registry(KEYS), check_statements(self.entries[:end], 0, ORIGIN, "signatures"))
        items = status_items_of(checked[start:], self.entries[start:end], start)
        return audit.chunk_items(items, start, end, KEYS)


def stolen_key_log() -> tuple[Entries, int]:
    log = Entries()
    log.registry(ISSUER_ADD, MINISTRY, ref="Ministry")
    log.registry(ISSUER_ADD, COURT, ref="Court")
    log.document(MINISTRY, ISSUE, b"diploma")
    stolen = log.document(COURT, ISSUE, b"ruling")
    log.document(MINISTRY, REVOKE, b"diploma")
    retired = log.registry(ISSUER_RETIRE, COURT, unsafe_from=stolen, reason="stolen")
    return log, retired


def test_a_crash_between_the_index_commit_and_the_states_loses_no_registry_statement(tmp_path: Path) -> None:
    """The registry statements are committed with the index's head: a chunk audited again after a crash (its
    state commit lost) keeps each once, and the next roots are checked from the file."""
    log, retired = stolen_key_log()
    honest = log.index_root(len(log.entries), log.keys_root(len(log.entries)))  # inside the chunk
    state = tmp_path / "state.db"
    audit = StatusAudit(state, ORIGIN)
    assert log.audit(audit, 0, len(log.entries)) == []
    audit.close(fold=False)  # the crash: the state never heard of the chunk
    again = StatusAudit(state, ORIGIN)
    try:
        assert log.audit(again, 0, len(log.entries)) == []  # the same chunk, again
        log.document(MINISTRY, ISSUE, b"diploma 2")
        size = len(log.entries)
        lie = log.index_root(size, log.keys_root(size, leave_out=retired))
        right = log.index_root(size, log.keys_root(size))  # a second root for that size, right this time
        found = log.audit(again, honest + 1, len(log.entries))
        assert [f.index for f in found] == [lie], [f.summary for f in found]
        assert found[0].evidence["left_out"]["index"] == retired and right == lie + 1
        db = sqlite3.connect(index_path(state))
        assert db.execute("SELECT count(*) FROM keys").fetchone()[0] == 3  # two adds and the retirement, once each
        db.close()
    finally:
        again.close()


def test_a_document_root_and_a_key_root_both_wrong_in_one_entry_are_one_finding(tmp_path: Path) -> None:
    log, _ = stolen_key_log()
    size = len(log.entries)
    statement = IndexRoot(ORIGIN, REGISTRY.verifier().vkey, 1_800_000_000, size, b"\x05" * 32, b"\x06" * 32)
    entry = log.append(sign_index_root(statement, REGISTRY))
    audit = StatusAudit(tmp_path / "state.db", ORIGIN)
    try:
        found = log.audit(audit, 0, len(log.entries))
    finally:
        audit.close()
    assert [f.index for f in found] == [entry]  # one alert per entry: its id is the entry's
    assert "status index root" in found[0].summary and "key index root" in found[0].summary
    assert {"logged_root", "logged_keys_root"} <= found[0].evidence.keys()


def test_an_index_file_from_before_the_key_index_is_rebuilt(tmp_path: Path) -> None:
    """Its registry statements were not kept: no v2 root can be checked against it until it is built again from
    entry 0 (statusaudit.py "Rebuilt"); `indexed_size` says it covers nothing, so the next round rebuilds it."""
    log, _ = stolen_key_log()
    state = tmp_path / "state.db"
    audit = StatusAudit(state, ORIGIN)
    assert log.audit(audit, 0, len(log.entries)) == []
    audit.close()
    db = sqlite3.connect(index_path(state))  # the head and tables as a monitor before the key index wrote them
    for column in ("keys_from", "keys_checked", "keys_size"):
        db.execute(f"ALTER TABLE head DROP COLUMN {column}")
    db.execute("DROP TABLE keys")
    db.commit()
    db.close()
    assert indexed_size(state, ORIGIN) == 0
    again = StatusAudit(state, ORIGIN)
    try:
        assert again.start_over_if_behind(len(log.entries))
        assert log.audit(again, 0, len(log.entries)) == []
        assert not again.start_over_if_behind(len(log.entries))
    finally:
        again.close()
    assert indexed_size(state, ORIGIN) == len(log.entries)


def signed_answer(tmp_path: Path, size: int, key_records_of: dict[str, Any], forged_proof: bool = False) -> Path:
    """The log's lookup answer for the court's ruling (`stolen_key_log`) under a v2 root for `size`, whose key index
    holds `key_records_of` (key -> (added, retired)): the court key's proof with it."""
    ruling, diploma = hashlib.sha256(b"ruling").digest(), hashlib.sha256(b"diploma").digest()
    documents = {ruling: reference.record_bytes([3], []), diploma: reference.record_bytes([2], [4])}
    keymap = KeyMap({key: new_record(*lists) for key, lists in key_records_of.items()})
    court = COURT.verifier().vkey
    record, proof = keymap.prove(court)
    if forged_proof:
        proof = proof[:-1] + bytes([proof[-1] ^ 1])
    root = reference.root(documents)
    statement = sign_index_root(IndexRoot(ORIGIN, REGISTRY.verifier().vkey, 1, size, root, keymap.root), REGISTRY)
    keys = (api.KeyStatusProof(court, record.to_bytes() if record is not None else None, proof),)
    entry = api.IndexRootEntry(size, statement)
    served = api.StatusIndexProof(size, root, documents[ruling], reference.proof(documents, ruling), entry, keys)
    path = tmp_path / f"answer-{len(list(tmp_path.glob('answer-*')))}.json"
    path.write_text(json.dumps(api.DocumentHistory(ruling, "valid", (), (), served).to_json()))
    return path


@pytest.mark.parametrize(
    ("court", "forged", "code", "said"),
    [
        (([1], [5]), False, CONSISTENT, "key proofs too"),
        (([1], []), False, CONTRADICTS, "key court.gov.kh was added in entries [1] and retired in []"),
        (([1], []), True, CONSISTENT, "the key proofs of court.gov.kh do not verify"),
    ],
)
def test_check_status_compares_a_served_key_proof_with_the_audited_entries(
    tmp_path: Path, court: tuple[list[int], list[int]], forged: bool, code: int, said: str
) -> None:
    log, retired = stolen_key_log()
    assert retired == 5
    size = len(log.entries)
    log.index_root(size, log.keys_root(size))
    state = State.open(tmp_path / "state.db")
    state.create_log(LogRow(ORIGIN, None, None, len(log.entries), tuple(KEYS), Registry(KEYS), 0, 0.0), time.time())
    audit = StatusAudit(tmp_path / "state.db", ORIGIN)
    try:
        assert log.audit(audit, 0, len(log.entries)) == []
    finally:
        audit.close()
    records = {MINISTRY.verifier().vkey: ([0], []), COURT.verifier().vkey: court}
    answer = signed_answer(tmp_path, size, records, forged)
    checked = check_status_file(answer, state, tmp_path / "state.db", time.time())
    assert checked.code == code and said in checked.line, checked.line
    state.close()
