"""A doctored log — forked checkpoint, a tile that does not match, an altered statement in an entry bundle,
a rollback, a split view between log and witness, entries the log must have refused — each raises one
misbehaviour alert whose evidence re-checks by itself, and the monitor's trusted state does not move past it.

One real log with one real witness; the monitor (the real CLI) reads the log through `FaultProxy`. The
monitor's policy needs no cosignature (`quorum none`), so forged checkpoints signed with the log's own key
reach the monitor's own checks: those are the checks that matter when a log key is stolen or witnesses are
too few.
"""

import base64
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from monitor_faults import FaultProxy, StaticTree
from monitor_helpers import (
    FilledLog,
    doc,
    issuer_key,
    monitor_cli,
    monitor_config,
    read_alerts,
    report_json,
    start_log,
    wait_for,
)
from witness_helpers import WitnessProcess, write_config

from loadtest.localproc import log_identity
from tlogcore import merkle
from tlogcore.checkpoint import parse_checkpoint
from tlogcore.errors import ProofError
from tlogcore.keys import Ed25519Signer
from tlogcore.note import Note, Signature, parse_note
from tlogcore.statement import ISSUE, Statement, sign_statement

WATCH = """
[[watch]]
name = "moeys-key"
issuer_names = ["moeys.example.gov.kh"]
expected = "expected.txt"
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FilledLog, WitnessProcess]]:
    tmp = tmp_path_factory.mktemp("monitor-faults")
    ident = log_identity(tmp / "log")
    origin, log_vkey = ident.origin, ident.log_vkey
    witness = WitnessProcess(tmp / "w0", write_config(tmp / "w0.toml", "w0.example.org", [(origin, log_vkey)]))
    witness.start()
    config = tmp / "log.toml"
    config.write_text(
        f'[witnessing]\nwitness_timeout_ms = 2000\n[[witness]]\nurl = "{witness.url}"\nvkey = "{witness.vkey}"\n'
    )
    log = start_log(tmp, config=config)
    try:
        log.register("moeys", issuer_key("moeys.example.gov.kh", 1))
        log.register("other", issuer_key("other.example.gov.kh", 2))
        log.submit(log.issue("other", [doc(i) for i in range(600)]))
        log.wait_published(log.size)
        yield log, witness
    finally:
        log.close()
        witness.stop()


@pytest.fixture
def proxy(stack: tuple[FilledLog, WitnessProcess]) -> Iterator[FaultProxy]:
    log, _ = stack
    with FaultProxy(log.server.url) as fault:
        yield fault


def policy(log: FilledLog, witness: WitnessProcess) -> str:
    return f"log {log.log_vkey}\nwitness w0 {witness.vkey} {witness.url}\nquorum none\n"


def setup_monitor(tmp: Path, stack: tuple[FilledLog, WitnessProcess], proxy: FaultProxy) -> Path:
    log, witness = stack
    (tmp / "expected.txt").write_text("")
    return monitor_config(tmp / "monitor.toml", proxy.url, policy(log, witness), watch=WATCH)


def audit(config: Path) -> int:
    result = monitor_cli("audit-once", "--config", str(config))
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode


def grow(log: FilledLog, count: int, tag: bytes) -> None:
    log.submit(log.issue("other", [doc(i, tag) for i in range(count)]))
    log.wait_published(log.size)


def witness_holds(log: FilledLog, witness: WitnessProcess, size: int) -> None:
    path = f"{witness.url}/{hashlib.sha256(log.origin.encode()).hexdigest()}/checkpoint"

    def holds() -> bool:
        response = httpx.get(path, timeout=5)
        return response.status_code == 200 and parse_checkpoint(parse_note(response.content).text).size >= size

    wait_for(holds, 15, f"witness cosigning size {size}")


def only_alert(config: Path, rule: str) -> dict[str, Any]:
    alerts = [a for a in read_alerts(config.parent / "alerts.jsonl") if a["rule"] == rule]
    assert len(alerts) == 1, alerts
    assert alerts[0]["category"] == "misbehaviour"
    return alerts[0]


def verified_size(config: Path) -> int:
    return int(report_json(config)["verified"]["size"])


def checkpoint_of(note_text: str) -> tuple[int, bytes]:
    checkpoint = parse_checkpoint(parse_note(note_text.encode()).text)
    return checkpoint.size, checkpoint.root


def valid_extra(log: FilledLog, count: int, tag: bytes) -> list[bytes]:
    return log.issue("moeys", [doc(i, tag) for i in range(count)])


def test_forked_checkpoint(tmp_path: Path, stack: tuple[FilledLog, WitnessProcess], proxy: FaultProxy) -> None:
    log, _ = stack
    config = setup_monitor(tmp_path, stack, proxy)
    assert audit(config) == 3  # the registry's issuer-add of the watched key
    n = verified_size(config)
    # The log's key signs a bigger tree that rewrote entry n-2: self-consistent, but not an extension.
    forked = log.statements[: n - 2] + valid_extra(log, 5, b"fork")
    proxy.tree = StaticTree(log.origin, log.server.key("log.key"), forked)
    assert audit(config) == 3
    alert = only_alert(config, "log-consistency")
    evidence = alert["evidence"]
    old_size, old_root = checkpoint_of(evidence["verified_checkpoint"])
    new_size, new_root = checkpoint_of(evidence["checkpoint"])
    assert (old_size, new_size) == (n, n + 3)
    proof = [base64.b64decode(h) for h in evidence["consistency_proof_from_tiles"]]
    with pytest.raises(ProofError):  # anyone can re-check: the log's own tiles give no valid proof
        merkle.verify_consistency(old_size, new_size, old_root, new_root, proof)
    assert verified_size(config) == n
    assert audit(config) == 0  # the same fork again: the same alert, not sent twice
    assert len([a for a in read_alerts(tmp_path / "alerts.jsonl") if a["rule"] == "log-consistency"]) == 1
    proxy.reset()
    assert audit(config) == 0 and verified_size(config) == log.size  # the honest log is followed again


def test_tile_that_does_not_match(tmp_path: Path, stack: tuple[FilledLog, WitnessProcess], proxy: FaultProxy) -> None:
    log, _ = stack
    config = setup_monitor(tmp_path, stack, proxy)
    audit(config)
    n = verified_size(config)
    grow(log, 300, b"tile-test")  # completes level-0 tile n // 256
    path = f"tile/0/{n // 256:03d}"

    def corrupt(body: bytes) -> bytes:
        return body[:100] + bytes([body[100] ^ 1]) + body[101:]

    proxy.transform[path] = corrupt
    assert audit(config) == 3
    alert = only_alert(config, "log-tiles")
    evidence = alert["evidence"]
    assert evidence["tile"] == path
    body = base64.b64decode(evidence["tile_body"])
    hashes = [body[i : i + 32] for i in range(0, len(body), 32)]
    while len(hashes) > 1:
        hashes = [merkle.node_hash(hashes[i], hashes[i + 1]) for i in range(0, len(hashes), 2)]
    parent = base64.b64decode(evidence["parent_body"])
    assert hashes[0] != parent[(n // 256 % 256) * 32 :][:32]  # re-checked from the evidence alone
    assert verified_size(config) == n
    proxy.reset()
    assert audit(config) == 0 and verified_size(config) == log.size


def test_altered_statement_in_entry_bundle(
    tmp_path: Path, stack: tuple[FilledLog, WitnessProcess], proxy: FaultProxy
) -> None:
    log, _ = stack
    config = setup_monitor(tmp_path, stack, proxy)
    audit(config)
    n = verified_size(config)
    grow(log, 5, b"bundle-test")
    size = log.size
    path = f"tile/entries/{(size - 1) // 256:03d}" + (f".p/{size % 256}" if size % 256 else "")

    def alter(body: bytes) -> bytes:
        at = body.rfind(b"\ntime ") + len(b"\ntime ") + 3  # a digit of the last statement's time
        return body[:at] + (b"1" if body[at : at + 1] != b"1" else b"2") + body[at + 1 :]

    proxy.transform[path] = alter
    assert audit(config) == 3
    evidence = only_alert(config, "log-entry-bundle")["evidence"]
    assert evidence["bundle"] == path and evidence["index"] == size - 1
    entry = base64.b64decode(evidence["entry"])
    assert merkle.leaf_hash(entry) != base64.b64decode(evidence["expected_leaf_hash"])
    assert verified_size(config) == n
    proxy.reset()
    assert audit(config) == 0 and verified_size(config) == size


def test_rollback(tmp_path: Path, stack: tuple[FilledLog, WitnessProcess], proxy: FaultProxy) -> None:
    log, _ = stack
    config = setup_monitor(tmp_path, stack, proxy)
    old = httpx.get(f"{log.server.url}/checkpoint").content
    grow(log, 5, b"rollback-test")
    audit(config)
    n = verified_size(config)
    assert n == log.size
    proxy.checkpoint = old  # a genuine, older checkpoint: the log rolls the monitor back
    assert audit(config) == 3
    evidence = only_alert(config, "log-rollback")["evidence"]
    assert checkpoint_of(evidence["checkpoint"])[0] < checkpoint_of(evidence["verified_checkpoint"])[0] == n
    assert verified_size(config) == n


@pytest.mark.parametrize("bigger", [False, True], ids=["same-size", "bigger-than-witness"])
def test_split_view_between_log_and_witness(
    tmp_path: Path, stack: tuple[FilledLog, WitnessProcess], proxy: FaultProxy, bigger: bool
) -> None:
    log, witness = stack
    config = setup_monitor(tmp_path, stack, proxy)
    audit(config)
    n = verified_size(config)
    grow(log, 5, b"split-%d" % bigger)
    witness_holds(log, witness, log.size)
    # The monitor is shown a tree that extends what it verified (so it is consistent with it) but differs from
    # the one the witness cosigned: only the witness's view can reveal it.
    extra = 7 if bigger else 5
    split = log.statements[:n] + valid_extra(log, extra, b"split-view-%d" % bigger)
    proxy.tree = StaticTree(log.origin, log.server.key("log.key"), split)
    assert audit(config) == 3
    evidence = only_alert(config, "log-split-view")["evidence"]
    witness_size, witness_root = checkpoint_of(evidence["witness_checkpoint"])
    log_size, log_root = checkpoint_of(evidence["checkpoint"])
    assert witness_size == log.size and log_size == n + extra
    if bigger:
        proof = [base64.b64decode(h) for h in evidence["consistency_proof"]]
        with pytest.raises(ProofError):
            merkle.verify_consistency(witness_size, log_size, witness_root, log_root, proof)
    else:
        assert witness_root != log_root
    assert verified_size(config) == n


def bad_statement(log: FilledLog, kind: str) -> bytes:
    moeys = log.issuers["moeys"]
    if kind == "inactive-key":
        thief = Ed25519Signer("never-registered.example", b"\x77" * 32)
        return sign_statement(Statement(log.origin, ISSUE, thief.verifier().vkey, 1790000000, document=doc(1)), thief)
    if kind == "other-log":
        statement = Statement("another.example/log", ISSUE, moeys.verifier().vkey, 1790000000, document=doc(2))
        return sign_statement(statement, moeys)
    statement = Statement(log.origin, ISSUE, moeys.verifier().vkey, 1790000000, document=doc(3))
    wrong = Signature(moeys.name, moeys.key_id, moeys.sign(b"something else"))
    return Note(statement.text, (wrong,)).to_bytes()


def bad_statement_at(log: FilledLog, index: int) -> bytes:
    """A statement by a registered issuer whose signature is over other bytes: a forgery only Ed25519 catches."""
    moeys = log.issuers["moeys"]
    statement = Statement(log.origin, ISSUE, moeys.verifier().vkey, 1790000000, document=doc(index, b"forged"))
    wrong = Signature(moeys.name, moeys.key_id, moeys.sign(b"something else"))
    return Note(statement.text, (wrong,)).to_bytes()


@pytest.mark.parametrize("kind", ["inactive-key", "bad-signature", "other-log"])
def test_entry_the_log_must_have_refused(
    tmp_path: Path, stack: tuple[FilledLog, WitnessProcess], proxy: FaultProxy, kind: str
) -> None:
    log, _ = stack
    config = setup_monitor(tmp_path, stack, proxy)
    audit(config)
    n = verified_size(config)
    tree = StaticTree(log.origin, log.server.key("log.key"), log.statements[:n] + [bad_statement(log, kind)])
    proxy.tree = tree
    assert audit(config) == 3
    evidence = only_alert(config, "log-bad-entry")["evidence"]
    assert evidence["index"] == n
    size, root = checkpoint_of(evidence["checkpoint"])
    proof = [base64.b64decode(h) for h in evidence["inclusion_proof"]]
    merkle.verify_inclusion(merkle.leaf_hash(base64.b64decode(evidence["entry"])), n, size, proof, root)
    assert verified_size(config) == n + 1  # the tree itself is sound: the bad entry is in it, for good
    assert report_json(config)["bad_entries"] == 1


def test_bad_signatures_deep_in_a_big_batch_checked_by_workers_are_alerted_at_their_indexes(
    tmp_path: Path, stack: tuple[FilledLog, WitnessProcess], proxy: FaultProxy
) -> None:
    """Issue 20: the statement checks run in 2 worker processes, several chunks in flight at once. Two forged
    signatures among 3,000 good statements (one inside a worker's half of a chunk, one in the last chunk) are each
    alerted with their own index and evidence; nothing else is flagged and the audit reaches the end."""
    log, witness = stack
    n = log.size  # everything the witness may have cosigned: the tree below extends it
    good = log.issue("other", [doc(i, b"workers") for i in range(3000)])
    forged = [n + 1700, n + 2950]
    entries = list(log.statements) + good
    for index in forged:
        entries[index] = bad_statement_at(log, index)
    proxy.tree = StaticTree(log.origin, log.server.key("log.key"), entries)
    (tmp_path / "expected.txt").write_text("")
    config = monitor_config(
        tmp_path / "monitor.toml", proxy.url, policy(log, witness), watch=WATCH, extra="workers = 2\nchunk_tiles = 2"
    )
    assert audit(config) == 3
    alerts = [a for a in read_alerts(tmp_path / "alerts.jsonl") if a["category"] == "misbehaviour"]
    assert sorted(a["evidence"]["index"] for a in alerts) == forged
    assert {a["rule"] for a in alerts} == {"log-bad-entry"}
    for alert in alerts:
        evidence = alert["evidence"]
        assert base64.b64decode(evidence["entry"]) == entries[evidence["index"]]
        assert "does not verify" in alert["summary"]
    assert verified_size(config) == len(entries)
    assert report_json(config)["bad_entries"] == 2


def test_start_at_end_learns_the_registry_and_watches_new_entries(
    tmp_path: Path, stack: tuple[FilledLog, WitnessProcess], proxy: FaultProxy
) -> None:
    log, _ = stack
    config = setup_monitor(tmp_path, stack, proxy)
    result = monitor_cli("audit-once", "--config", str(config), "--start-at-end")
    assert result.returncode == 0, result.stderr
    report = report_json(config)
    start = report["verified"]["size"]
    assert report["audited_from"] == start and report["entries_audited"] == 0
    assert {k["name"] for k in report["issuers"]} == {"moeys.example.gov.kh", "other.example.gov.kh"}
    stolen = log.issue("moeys", [doc(99, b"stolen")])
    log.submit(stolen)
    log.wait_published(log.size)
    assert audit(config) == 3
    alerts = read_alerts(tmp_path / "alerts.jsonl")
    assert [(a["rule"], a["evidence"]["index"], a["evidence"]["matched"]) for a in alerts] == [
        ("moeys-key", log.size - 1, "unexpected")
    ]
    assert report_json(config)["entries_audited"] == log.size - start
