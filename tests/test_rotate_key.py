"""`tlog-server rotate-key` on a real log with three real witnesses (docs/thirty-years.md, "Log key rotation"):
the announcement is logged, signed by the old log key and the registry key; checkpoints carry both log keys'
signatures during the overlap and only the new key's after it; witnesses given the new key keep cosigning; a bundle
made before the rotation still verifies; the key guard's one record covers both keys."""

import base64
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from log_harness import REPO, SERVER
from monitor_faults import FaultProxy
from monitor_helpers import monitor_cli, monitor_config, read_alerts
from tools_stack import Stack, all_entries, register_issuer, tlog, witnessed_log
from witness_helpers import write_config

from loadtest.localproc import free_port
from logserver.logkeys import successor_key_path
from tlogcore.bundle import parse_tlog_proof
from tlogcore.checkpoint import parse_checkpoint
from tlogcore.errors import ProofError
from tlogcore.logkey import LogKeyRotation, is_log_key, parse_log_key_rotation, proven_rotations
from tlogcore.note import Note, parse_note, sign_note
from tlogcore.policy import parse_policy

PDF = b"%PDF-1.7\n% Diploma 2026/7, Royal University of Phnom Penh\n%%EOF\n" * 10
OVERLAP = 2


def tlog_server(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SERVER, *args], cwd=REPO, capture_output=True, text=True, timeout=120)


def submit(stack: Stack, tmp: Path, key: Path, policy: Path, name: str) -> Path:
    pdf = tmp / f"{name}.pdf"
    pdf.write_bytes(PDF + name.encode())
    sent = tlog("submit", "--log", stack.url, "--key", str(key), "--policy", str(policy), "--qr", "none", str(pdf))
    assert sent.exit_code == 0, sent.output
    return pdf


def log_signers(note: bytes) -> set[int]:
    """The key IDs of the signature lines by the log's origin (the log keys, not the witnesses)."""
    parsed = parse_note(note)
    origin = parsed.text.split("\n", 1)[0]
    return {signature.key_id for signature in parsed.signatures if signature.name == origin}


def published_checkpoint(stack: Stack, at_least: int) -> bytes:
    """The log's published (cosigned) checkpoint once it reaches `at_least` entries (bounded wait)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        note = httpx.get(stack.url + "/checkpoint", timeout=5).content
        if int(parse_note(note).text.split("\n")[1]) >= at_least:
            return note
        time.sleep(0.1)
    raise AssertionError(f"the log did not publish a checkpoint of size {at_least}: {stack.server.output()[-2000:]}")


@dataclass
class Rotated:
    stack: Stack
    tmp: Path
    issuer_key: Path
    old_bundle: Path  # made before the rotation
    new_vkey: str
    done: subprocess.CompletedProcess[str]  # rotate-key's run
    backup: Path  # the database as it was before the rotation


def both_keys_policy(rotated: Rotated) -> Path:
    """The policy after the rotation: both log keys (docs/thirty-years.md), the same witnesses."""
    policy = rotated.tmp / "both.policy"
    policy.write_text(f"log {rotated.new_vkey}\n" + rotated.stack.policy_text)
    return policy


def key_id(vkey: str) -> int:
    return int(vkey.split("+")[1], 16)


@pytest.fixture(scope="module")
def rotated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rotated]:
    """A witnessed log with one document (its bundle kept as `old`), then `rotate-key`, then more documents."""
    tmp = tmp_path_factory.mktemp("rotate-key")
    with witnessed_log(tmp) as stack:
        key = tmp / "issuer.key"
        register_issuer(stack, key, "rupp.edu.kh")
        policy = tmp / "before.policy"
        policy.write_text(stack.policy_text)
        submit(stack, tmp, key, policy, "before")
        shutil.copy(tmp / "before.pdf.tlog-proof", tmp / "old.tlog-proof")
        stack.server.stop()
        backup = tmp / "log-before-rotation.db"
        shutil.copy(stack.server.data / "log.db", backup)
        config = str(stack.server.config)
        data = str(stack.server.data)
        done = tlog_server("rotate-key", "--data", data, "--config", config, "--overlap", str(OVERLAP))
        assert done.returncode == 0, done.stdout + done.stderr
        new_vkey = next(line[4:] for line in done.stdout.splitlines() if line.startswith("log "))
        for number, witness in enumerate(stack.witnesses):  # the witness operators add the new key
            witness.stop()
            keys = [(stack.origin, stack.log_vkey), (stack.origin, new_vkey)]
            write_config(witness.config, f"witness{number}.example.org", keys)
            witness.start()
        stack.server.start(init=False)
        yield Rotated(stack, tmp, key, tmp / "old.tlog-proof", new_vkey, done, backup)


def test_rotate_key_logs_the_announcement_signed_by_the_old_key_and_the_registry(rotated: Rotated) -> None:
    stack, new_vkey, done = rotated.stack, rotated.new_vkey, rotated.done
    private = successor_key_path(stack.server.data, 1)
    assert private.stat().st_mode & 0o777 == 0o600
    secret = private.read_text().strip().split("+", 4)[4]  # PRIVATE+KEY+name+id+base64: the base64 may hold "+"
    assert len(secret) > 40
    assert secret not in done.stdout + done.stderr  # the private key is never printed
    announced = [parse_log_key_rotation(e) for e in all_entries(stack.url) if is_log_key(e)]
    assert len(announced) == 1
    rotation = announced[0]
    assert (rotation.old, rotation.new) == (stack.log_vkey, new_vkey)
    assert rotation.until == rotation.start + OVERLAP
    assert f"entry {rotation.start - 1}" in done.stdout


def test_the_overlap_carries_both_keys_and_afterwards_only_the_new_one(rotated: Rotated) -> None:
    stack, tmp, new_vkey = rotated.stack, rotated.tmp, rotated.new_vkey
    policy = both_keys_policy(rotated)
    rotation = next(parse_log_key_rotation(e) for e in all_entries(stack.url) if is_log_key(e))
    during = published_checkpoint(stack, rotation.start)
    assert int(parse_note(during).text.split("\n")[1]) < rotation.until, "the test needs a checkpoint in the overlap"
    assert log_signers(during) == {key_id(stack.log_vkey), key_id(new_vkey)}
    for i in range(OVERLAP + 1):
        submit(stack, tmp, rotated.issuer_key, policy, f"after{i}")
    after = published_checkpoint(stack, rotation.until)
    assert log_signers(after) == {key_id(new_vkey)}
    cosigners = {s.name for s in parse_note(after).signatures} - {stack.origin}
    assert len(cosigners) == 3  # the witnesses, given the new key, keep cosigning


def test_the_key_guard_refuses_a_database_from_before_the_rotation(rotated: Rotated) -> None:
    """The record beside the keys (log.key.signed) is one for both keys: a restored old database, on which the
    old key alone would sign sizes the log already published under the new key, is refused at start."""
    stack, tmp = rotated.stack, rotated.tmp
    restored = tmp / "restored"
    shutil.copytree(stack.server.data, restored, ignore=shutil.ignore_patterns("log.db*", "*.lock"))
    shutil.copy(rotated.backup, restored / "log.db")
    refused = subprocess.run(
        [*SERVER, "serve", "--data", str(restored), "--listen", f"127.0.0.1:{free_port()}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "refusing to sign" in refused.stderr and "log.key.signed" in refused.stderr
    assert "the log key has signed size" in refused.stderr


def test_check_accepts_checkpoints_signed_by_the_announced_key(rotated: Rotated) -> None:
    """`tlog-server check` verifies every stored checkpoint: after the rotation some carry the new key only."""
    stack = rotated.stack
    for i in range(OVERLAP + 1):
        submit(stack, rotated.tmp, rotated.issuer_key, both_keys_policy(rotated), f"checked{i}")
    audited = tlog_server("check", "--data", str(stack.server.data), "--config", str(stack.server.config))
    assert audited.returncode == 0, audited.stdout + audited.stderr
    assert audited.stdout.startswith("ok: ")


def past_the_overlap(rotated: Rotated) -> tuple[LogKeyRotation, bytes]:
    """The rotation, and a published checkpoint of a size after its overlap (submitting documents until there is)."""
    stack = rotated.stack
    rotation = next(parse_log_key_rotation(e) for e in all_entries(stack.url) if is_log_key(e))
    for i in range(OVERLAP + 2):
        size = int(parse_note(httpx.get(stack.url + "/checkpoint", timeout=5).content).text.split("\n")[1])
        if size >= rotation.until:
            break
        submit(stack, rotated.tmp, rotated.issuer_key, both_keys_policy(rotated), f"past{i}")
    return rotation, published_checkpoint(stack, rotation.until)


def forged_with_the_old_key(rotated: Rotated, note: bytes) -> bytes:
    """`note` with its log signature replaced by one of the OLD log key; the witnesses' cosignatures still verify
    (they sign the checkpoint text): what a thief of the retired key could show after the rotation."""
    parsed = parse_note(note)
    old_signature = parse_note(sign_note(parsed.text, [rotated.stack.server.key("log.key")])).signatures
    cosignatures = tuple(s for s in parsed.signatures if s.name != rotated.stack.origin)
    return Note(parsed.text, old_signature + cosignatures).to_bytes()


def test_the_log_publishes_both_keys_and_lists_its_rotation_with_a_proof(rotated: Rotated) -> None:
    stack = rotated.stack
    policy = httpx.get(stack.url + "/api/v1/policy", timeout=5).text
    assert f"log {stack.log_vkey}\nlog {rotated.new_vkey}\n" in policy
    published = parse_checkpoint(parse_note(published_checkpoint(stack, 1)).text)
    history = httpx.get(stack.url + "/api/v1/log-keys", params={"size": published.size}, timeout=5).json()
    assert history["size"] == published.size and len(history["entries"]) == 1
    entry = history["entries"][0]
    data, proof = base64.b64decode(entry["statement"]), [base64.b64decode(h) for h in entry["inclusion_proof"]]
    [rotation] = proven_rotations([(entry["index"], data, proof)], published)
    assert rotation.new == rotated.new_vkey
    with pytest.raises(ProofError):
        proven_rotations([(entry["index"] + 1, data, proof)], published)
    too_big = httpx.get(stack.url + "/api/v1/log-keys", params={"size": 10**9}, timeout=5)
    assert too_big.status_code == 400 and "beyond" in too_big.json()["message"]


def test_old_and_new_bundles_verify_after_the_rotation_through_refresh(rotated: Rotated) -> None:
    stack, tmp = rotated.stack, rotated.tmp
    past_the_overlap(rotated)
    policy = both_keys_policy(rotated)
    pdf = tmp / "before.pdf"
    online = tlog("verify", str(pdf), "--policy", str(policy), "--bundle", str(rotated.old_bundle), "--log", stack.url)
    assert online.exit_code == 0 and online.stdout.startswith("GENUINE"), online.output
    assert "refreshed from the bundle's" in online.stdout
    refreshed = tmp / "refreshed.tlog-proof"
    shutil.copy(rotated.old_bundle, refreshed)
    done = tlog("refresh", str(refreshed), "--log", stack.url, "--policy", str(policy))
    assert done.exit_code == 0, done.output
    assert log_signers(parse_tlog_proof(refreshed.read_bytes()).checkpoint) == {key_id(rotated.new_vkey)}
    offline = tlog("verify", str(pdf), "--policy", str(policy), "--bundle", str(refreshed))
    assert offline.exit_code == 0 and offline.stdout.startswith("GENUINE"), offline.output
    new_pdf = submit(stack, tmp, rotated.issuer_key, policy, "new-after-rotation")
    new = tlog("verify", str(new_pdf), "--policy", str(policy), "--bundle", f"{new_pdf}.tlog-proof", "--log", stack.url)
    assert new.exit_code == 0 and new.stdout.startswith("GENUINE"), new.output


def test_a_policy_without_the_new_key_is_told_to_add_it(rotated: Rotated) -> None:
    stack, tmp = rotated.stack, rotated.tmp
    past_the_overlap(rotated)
    pdf, old_only = tmp / "before.pdf", tmp / "before.policy"
    result = tlog(
        "verify", str(pdf), "--policy", str(old_only), "--bundle", str(rotated.old_bundle), "--log", stack.url
    )
    assert result.exit_code != 0 and not result.stdout.startswith("GENUINE"), result.output
    assert f"add 'log {rotated.new_vkey}' to the policy" in result.output


def test_a_checkpoint_signed_by_the_old_key_after_the_rotation_is_refused_and_alerted(rotated: Rotated) -> None:
    stack, tmp = rotated.stack, rotated.tmp
    rotation, published = past_the_overlap(rotated)
    forged = forged_with_the_old_key(rotated, published)
    policy = both_keys_policy(rotated)
    parse_policy(policy.read_text()).verify_checkpoint(forged)  # without the rotation, either listed key would do
    with FaultProxy(stack.url) as proxy:
        config = monitor_config(tmp / "monitor.toml", proxy.url, policy.read_text())
        clean = monitor_cli("audit-once", "--config", str(config))
        assert clean.returncode == 0, clean.stderr  # the log-key entry is audited, no false alarm
        proxy.checkpoint = forged
        pdf = tmp / "before.pdf"
        refused = tlog(
            "verify", str(pdf), "--policy", str(policy), "--bundle", str(rotated.old_bundle), "--log", proxy.url
        )
        assert refused.exit_code != 0 and not refused.stdout.startswith("GENUINE"), refused.output
        assert "that the log's key rotation calls for from that size" in refused.output
        alerted = monitor_cli("audit-once", "--config", str(config))
    assert alerted.returncode == 3, alerted.stderr  # 3: new alerts
    [alert] = [a for a in read_alerts(tmp / "alerts.jsonl") if a["rule"] == "log-retired-key"]
    assert stack.log_vkey in alert["summary"] and f"from size {rotation.until}" in alert["summary"]
