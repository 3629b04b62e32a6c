"""`tlog refresh` and the refresh inside `tlog verify --log`, against a real log with three real witnesses: an old
bundle is moved onto the newest cosigned checkpoint and the verdict names that checkpoint; a bundle whose
checkpoint the log's history contradicts is "log misbehaved" (exit 9), never genuine, and is never rewritten."""

import json
import time
from pathlib import Path

import pytest
from log_harness import free_port
from refresh_helpers import forked_bundle
from tools_stack import register_issuer, tlog, witnessed_log

from tlogcore.bundle import BINARY_MAGIC, from_binary, parse_tlog_proof, to_binary, verify_bundle
from tlogcore.policy import parse_policy

PDF = b"%PDF-1.7\n% Land title 2026/5, Phnom Penh\n%%EOF\n" * 10


@pytest.fixture(scope="module")
def issued(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A witnessed log, a registered issuer, one PDF submitted (its bundle kept aside as `old`), then more entries."""
    tmp = tmp_path_factory.mktemp("tools-refresh")
    with witnessed_log(tmp) as stack:
        key = tmp / "issuer.key"
        register_issuer(stack, key, "mlmupc.gov.kh")
        policy = tmp / "trust.policy"
        policy.write_text(stack.policy_text)
        pdf = tmp / "title.pdf"
        pdf.write_bytes(PDF)
        sent = tlog("submit", "--log", stack.url, "--key", str(key), "--policy", str(policy), "--qr", "none", str(pdf))
        assert sent.exit_code == 0, sent.output
        old = tmp / "old.tlog-proof"
        old.write_bytes((tmp / "title.pdf.tlog-proof").read_bytes())
        for i in range(3):  # the log grows after the bundle was made
            other = tmp / f"other{i}.pdf"
            other.write_bytes(PDF + bytes([i]))
            more = tlog(
                "submit", "--log", stack.url, "--key", str(key), "--policy", str(policy), "--qr", "none", str(other)
            )
            assert more.exit_code == 0, more.output
        yield stack, tmp, policy, pdf, old


def _size(bundle: bytes, policy: Path) -> int:
    return verify_bundle(parse_tlog_proof(bundle), parse_policy(policy.read_text()), time.time()).checkpoint.size


def test_refresh_writes_a_bundle_on_the_newest_checkpoint_and_then_says_it_is_up_to_date(issued) -> None:  # type: ignore[no-untyped-def]
    stack, tmp, policy, pdf, old = issued
    target = tmp / "refreshed.tlog-proof"
    target.write_bytes(old.read_bytes())
    before = _size(old.read_bytes(), policy)
    done = tlog("refresh", str(target), "--log", stack.url, "--policy", str(policy))
    assert done.exit_code == 0, done.output
    after = _size(target.read_bytes(), policy)
    assert after > before and f"was tree size {before}" in done.stdout and f"tree size {after}" in done.stdout
    assert "cosigned at" in done.stdout and "W" in done.stdout
    offline = tlog("verify", str(pdf), "--policy", str(policy), "--bundle", str(target))
    assert offline.exit_code == 0 and f"tree size {after}" in offline.stdout, offline.output
    again = tlog("refresh", str(target), "--log", stack.url, "--policy", str(policy))
    assert again.exit_code == 0 and "up to date" in again.stdout, again.output


def test_refresh_keeps_the_binary_form_and_writes_elsewhere_with_out(issued) -> None:  # type: ignore[no-untyped-def]
    stack, tmp, policy, _, old = issued
    binary = tmp / "old.bin"
    binary.write_bytes(to_binary(parse_tlog_proof(old.read_bytes())))
    out = tmp / "new.bin"
    done = tlog("refresh", str(binary), "--log", stack.url, "--policy", str(policy), "--out", str(out))
    assert done.exit_code == 0, done.output
    assert out.read_bytes().startswith(BINARY_MAGIC)
    assert _size(from_binary(out.read_bytes()).to_text(), policy) > _size(old.read_bytes(), policy)
    assert binary.read_bytes() == to_binary(parse_tlog_proof(old.read_bytes()))  # the input is left alone


def test_verify_online_with_an_old_bundle_relies_on_the_newest_checkpoint_and_says_so(issued) -> None:  # type: ignore[no-untyped-def]
    stack, _, policy, pdf, old = issued
    result = tlog("verify", str(pdf), "--policy", str(policy), "--bundle", str(old), "--log", stack.url)
    assert result.exit_code == 0, result.output
    before = _size(old.read_bytes(), policy)
    assert "relied on the log's newest checkpoint of tree size" in result.stdout
    assert f"refreshed from the bundle's (tree size {before})" in result.stdout
    as_json = tlog("verify", str(pdf), "--policy", str(policy), "--bundle", str(old), "--log", stack.url, "--json")
    checkpoint = json.loads(as_json.stdout)["checkpoint"]
    assert checkpoint["refreshed_from"] == before and checkpoint["size"] > before, as_json.output


def test_a_bundle_from_a_forked_tree_is_log_misbehaved_and_never_rewritten(issued) -> None:  # type: ignore[no-untyped-def]
    stack, tmp, policy, pdf, old = issued
    forked = tmp / "forked.tlog-proof"
    forked.write_bytes(forked_bundle(stack, old.read_bytes()))
    offline = tlog("verify", str(pdf), "--policy", str(policy), "--bundle", str(forked))
    assert offline.exit_code == 0, offline.output  # offline, the fork cannot be seen: that is what refresh is for
    online = tlog("verify", str(pdf), "--policy", str(policy), "--bundle", str(forked), "--log", stack.url)
    assert online.exit_code == 9 and online.stdout.startswith("LOG MISBEHAVED: "), online.output
    assert "not a prefix" in online.stdout and "GENUINE" not in online.stdout
    kept = forked.read_bytes()
    refused = tlog("refresh", str(forked), "--log", stack.url, "--policy", str(policy))
    assert refused.exit_code == 1 and "the log misbehaved" in refused.output and "Traceback" not in refused.output
    assert forked.read_bytes() == kept


def test_a_bundle_on_a_bigger_tree_than_the_logs_newest_is_log_misbehaved(issued) -> None:  # type: ignore[no-untyped-def]
    """A log that signed a tree of size N and now shows a smaller one as its newest has gone back in time."""
    stack, tmp, policy, pdf, old = issued
    ahead = tmp / "ahead.tlog-proof"
    ahead.write_bytes(forked_bundle(stack, old.read_bytes(), size=1000))
    online = tlog("verify", str(pdf), "--policy", str(policy), "--bundle", str(ahead), "--log", stack.url)
    assert online.exit_code == 9 and "is smaller than the bundle's (size 1000)" in online.stdout, online.output
    refused = tlog("refresh", str(ahead), "--log", stack.url, "--policy", str(policy))
    assert refused.exit_code == 1 and "the log misbehaved" in refused.output


def test_refresh_refuses_what_is_not_a_bundle_in_one_line(issued) -> None:  # type: ignore[no-untyped-def]
    stack, tmp, policy, pdf, old = issued
    refused = tlog("refresh", str(pdf), "--log", stack.url, "--policy", str(policy))
    assert refused.exit_code == 1 and str(pdf) in refused.output and "not a proof bundle" in refused.output
    assert len(refused.output.strip().splitlines()) == 1
    damaged = tmp / "damaged.tlog-proof"
    data = bytearray(old.read_bytes())
    data[len(data) // 3] ^= 0x01
    damaged.write_bytes(bytes(data))
    refused = tlog("refresh", str(damaged), "--log", stack.url, "--policy", str(policy))
    assert refused.exit_code == 1 and str(damaged) in refused.output and "Traceback" not in refused.output
    assert damaged.read_bytes() == bytes(data)
    gone = tlog("refresh", str(old), "--log", f"http://127.0.0.1:{free_port()}", "--policy", str(policy))
    assert gone.exit_code == 1 and "cannot reach" in gone.output
