"""`tlog-server rotate-key` on a real log with three real witnesses (docs/thirty-years.md, "Log key rotation"):
the announcement is logged, signed by the old log key and the registry key; checkpoints carry both log keys'
signatures during the overlap and only the new key's after it; witnesses given the new key keep cosigning; a bundle
made before the rotation still verifies; the key guard's one record covers both keys."""

import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from log_harness import REPO, SERVER
from tools_stack import Stack, all_entries, tlog, witnessed_log
from witness_helpers import write_config

from loadtest.localproc import free_port
from logserver.logkeys import successor_key_path
from tlogcore.logkey import is_log_key, parse_log_key_rotation
from tlogcore.note import parse_note

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
        made = tlog("keygen", "--name", "rupp.edu.kh", "--out", str(key))
        registry = str(stack.server.data / "registry.key")
        added = tlog("issuer", "add", "--log", stack.url, "--registry-key", registry, "--issuer", made.stdout.strip())
        assert added.exit_code == 0, added.output
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
    secret = private.read_text().strip().split("+")[-1]
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
