"""`tlog` end to end against a real log with three real witnesses and a 2-of-3 policy: submit a PDF, verify it
offline (bundle file, QR image read back by a real decoder, QR text) and online, and get the right verdict and
exit code for every kind of damage."""

import base64
import hashlib
import json
import os
import re
import time
from pathlib import Path

import pytest
from log_harness import free_port
from qr_scan import scanned_text
from tools_stack import register_issuer, tlog, witnessed_log

from tlogcore.bundle import from_binary, parse_tlog_proof, to_binary, verify_bundle
from tlogcore.cosignature import CosignatureV1Signer
from tlogcore.errors import ProofError, TlogError
from tlogcore.keys import Ed25519Signer
from tlogcore.note import parse_note
from tlogcore.policy import parse_policy
from tlogcore.qrlink import decode_payload, link_url, online_payload, split_link, to_bundle
from tools.verdict import verdict_for_error
from tools.verify import check_bundle

PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n% Diploma 2026/17, Sok Dara\n%%EOF\n" * 20


@pytest.fixture(scope="module")
def issued(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A witnessed log, a registered issuer, and one PDF submitted through the tool with its bundle and QR codes."""
    tmp = tmp_path_factory.mktemp("tools-e2e")
    with witnessed_log(tmp) as stack:
        key = tmp / "moeys.key"
        register_issuer(stack, key, label="Ministry of Education")
        policy = tmp / "trust.policy"
        policy.write_text(stack.policy_text)
        pdf = tmp / "diploma.pdf"
        pdf.write_bytes(PDF)
        submitted = tlog(
            "submit",
            "--log",
            stack.url,
            "--key",
            str(key),
            "--policy",
            str(policy),
            "--ref",
            "Diploma 2026/17",
            str(pdf),
        )
        assert submitted.exit_code == 0, submitted.output
        assert "offline QR version" in submitted.stdout
        yield stack, tmp, key, policy, pdf


def verify(*args: str) -> tuple[int, str]:
    result = tlog("verify", *args)
    assert "Traceback" not in result.output
    assert len(result.stdout.strip().splitlines()) == 1, result.output  # one verdict line
    return result.exit_code, result.stdout.strip()


def test_pdf_bundle_verifies_offline_with_quorum(issued) -> None:  # type: ignore[no-untyped-def]
    stack, tmp, _key, policy, pdf = issued
    code, line = verify(str(pdf), "--policy", str(policy))
    assert code == 0 and line.startswith("GENUINE: issued by key moeys.gov.kh+"), line
    assert "(registration not checked offline; use --log for it), ref 'Diploma 2026/17'" in line, line
    # When the witnesses cosigned: an older checkpoint replayed with the answers of its time shows its age
    assert re.search(r"cosigned by [^)]+ at \d{4}-\d\d-\d\d \d\d:\d\d UTC\)", line), line
    code, out = verify(str(pdf), "--policy", str(policy), "--json")
    data = json.loads(out)
    assert code == 0 and data["verdict"] == "genuine" and data["kind"] == "issue"
    assert data["document"] == hashlib.sha256(PDF).hexdigest() and data["issuer"] == "moeys.gov.kh"
    assert data["checkpoint"]["origin"] == stack.origin and len(data["witnesses"]) >= 2
    # The bundle alone, with only public keys: the statement, log signature, 2-of-3 cosignatures, inclusion.
    bundle = parse_tlog_proof((tmp / "diploma.pdf.tlog-proof").read_bytes())
    assert len(verify_bundle(bundle, parse_policy(stack.policy_text)).trusted.witnesses) >= 2


def test_qr_image_decodes_with_a_real_decoder_to_a_bundle_that_verifies(issued) -> None:  # type: ignore[no-untyped-def]
    stack, tmp, _key, policy, pdf = issued
    png, svg = tmp / "diploma.pdf.qr.png", tmp / "diploma.pdf.qr.svg"
    assert svg.read_bytes().startswith(b"<?xml") and b"<svg" in svg.read_bytes()
    link = scanned_text(png)  # every code is a link a phone camera opens; the offline one carries the bundle
    assert link.startswith(f"{stack.url}/verify#TL1:")
    parts = decode_payload(split_link(link)[1]).offline
    assert parts is not None
    bundle = to_bundle(parts, parse_policy(stack.policy_text))
    written = parse_tlog_proof((tmp / "diploma.pdf.tlog-proof").read_bytes())
    assert (bundle.extra, bundle.index, bundle.proof) == (written.extra, written.index, written.proof)
    assert len(parse_note(bundle.checkpoint).signatures) == 3  # the log and the quorum's 2 of 3 witnesses
    assert verify_bundle(bundle, parse_policy(stack.policy_text), document=hashlib.sha256(PDF).digest())
    with pytest.raises(ProofError):
        verify_bundle(bundle, parse_policy(stack.policy_text), document=hashlib.sha256(PDF + b"x").digest())
    code, line = verify(str(pdf), "--policy", str(policy), "--qr-image", str(png))
    assert code == 0 and line.startswith("GENUINE"), line
    code, line = verify(str(pdf), "--policy", str(policy), "--qr-text", link)
    assert code == 0 and line.startswith("GENUINE"), line
    text = base64.urlsafe_b64encode(to_binary(written)).rstrip(b"=").decode()  # codes printed before links
    code, line = verify(str(pdf), "--policy", str(policy), "--qr-text", text)
    assert code == 0 and line.startswith("GENUINE"), line


def test_one_changed_byte_in_the_pdf_is_tampered(issued) -> None:  # type: ignore[no-untyped-def]
    _stack, tmp, _key, policy, _pdf = issued
    changed = tmp / "changed.pdf"
    data = bytearray(PDF)
    data[100] ^= 0x01
    changed.write_bytes(bytes(data))
    code, line = verify(str(changed), "--policy", str(policy), "--bundle", str(tmp / "diploma.pdf.tlog-proof"))
    assert code == 3 and line.startswith("TAMPERED") and "document was changed" in line, line
    code, line = verify(str(changed), "--policy", str(policy), "--qr-image", str(tmp / "diploma.pdf.qr.png"))
    assert code == 3, line


def test_changed_bytes_in_the_bundle(issued) -> None:  # type: ignore[no-untyped-def]
    stack, tmp, _key, policy, pdf = issued
    bundle = parse_tlog_proof((tmp / "diploma.pdf.tlog-proof").read_bytes())
    binary = to_binary(bundle)
    statement_sig = base64.b64decode(bundle.extra.rsplit(b" ", 1)[1])[4:]
    cases = {
        "statement signature": (binary.index(statement_sig) + 10, 4),
        "proof hash": (binary.index(bundle.proof[0]) + 5, 3),
        "log signature": (len(binary) - 70, 4),  # inside a checkpoint signature blob
    }
    for what, (position, want) in cases.items():
        damaged = bytearray(binary)
        damaged[position] ^= 0x01
        path = tmp / f"damaged-{what.replace(' ', '-')}.bin"
        path.write_bytes(bytes(damaged))
        code, line = verify(str(pdf), "--policy", str(policy), "--bundle", str(path))
        assert code in (want, 3, 4, 5) and code != 0, (what, line)
        if what != "log signature":
            assert code == want, (what, line)
    # Exhaustively: no single flipped bit anywhere in the binary bundle leaves a genuine verdict.
    trust, digest = parse_policy(stack.policy_text), hashlib.sha256(PDF).digest()
    original = check_bundle(digest, bundle, trust, now=time.time())
    assert original.verdict == "genuine"
    for position in range(len(binary)):
        damaged = bytearray(binary)
        damaged[position] ^= 0x40
        try:
            outcome = check_bundle(digest, from_binary(bytes(damaged)), trust, now=time.time())
        except TlogError as exc:  # does not even decode: `tlog verify` maps this error to a verdict
            assert verdict_for_error(exc) in ("tampered", "signature invalid"), position
            continue
        # Still genuine only if the flip hit a witness's name or key ID: that cosignature then no longer counts
        # (an unknown key's line is ignored) and the others still make the quorum.
        assert outcome.verdict != "genuine" or set(outcome.witnesses) < set(original.witnesses), position
    # And the text form: a flipped character in the proof is caught as tampering.
    text = (tmp / "diploma.pdf.tlog-proof").read_bytes()
    at = text.index(b"\nindex ") + 1
    line_end = text.index(b"\n", text.index(b"\n", at) + 1)
    other = b"A" if text[line_end - 5 : line_end - 4] != b"A" else b"B"
    damaged_text = text[: line_end - 5] + other + text[line_end - 4 :]
    (tmp / "damaged.tlog-proof").write_bytes(damaged_text)
    code, line = verify(str(pdf), "--policy", str(policy), "--bundle", str(tmp / "damaged.tlog-proof"))
    assert code == 3 and line.startswith("TAMPERED"), line


def test_changed_policy(issued) -> None:  # type: ignore[no-untyped-def]
    stack, tmp, _key, _policy, pdf = issued
    # One changed byte in the log key: the policy no longer parses (its key ID no longer matches): input error.
    text = stack.policy_text
    at = text.index(stack.log_vkey) + len(stack.log_vkey) - 5
    broken = tmp / "broken.policy"
    broken.write_text(text[:at] + ("A" if text[at] != "A" else "B") + text[at + 1 :])
    code, line = verify(str(pdf), "--policy", str(broken))
    assert code == 6 and "policy" in line, line
    # Another log key under the same name: an untrusted log.
    other_log = Ed25519Signer(stack.origin, b"\x07" * 32).verifier().vkey
    (tmp / "other-log.policy").write_text(text.replace(stack.log_vkey, other_log))
    code, line = verify(str(pdf), "--policy", str(tmp / "other-log.policy"))
    assert code == 5 and line.startswith("QUORUM NOT MET"), line
    # The quorum raised from 2 to 3 of 3 still holds only if all three cosigned; 2-of-2 of keys nobody holds fails.
    fake = [
        CosignatureV1Signer(f"witness{i}.example.org", bytes([i + 9]) * 32, lambda: 0.0).verifier().vkey
        for i in range(3)
    ]
    fake_text = text
    for witness, vkey in zip(stack.witnesses, fake, strict=True):
        fake_text = fake_text.replace(witness.vkey, vkey)
    (tmp / "fake-witnesses.policy").write_text(fake_text)
    code, line = verify(str(pdf), "--policy", str(tmp / "fake-witnesses.policy"))
    assert code == 5 and "quorum not met" in line, line


def test_online_genuine_revoked_not_logged_and_errors(issued) -> None:  # type: ignore[no-untyped-def]
    stack, tmp, key, policy, pdf = issued
    code, line = verify(str(pdf), "--policy", str(policy), "--log", stack.url)
    assert code == 0 and line.startswith("GENUINE") and "not revoked" in line, line
    assert re.search(r"cosigned by [^)]+ at \d{4}-\d\d-\d\d \d\d:\d\d UTC\)", line), line
    stranger = tmp / "never-issued.pdf"
    stranger.write_bytes(b"%PDF-1.7 never issued")
    code, line = verify(str(stranger), "--policy", str(policy), "--log", stack.url)
    assert code == 2 and line.startswith("NOT LOGGED"), line
    # Online with the bundle too: the bundle's checkpoint must be consistent with today's.
    code, line = verify(
        str(pdf), "--policy", str(policy), "--log", stack.url, "--bundle", str(tmp / "diploma.pdf.tlog-proof")
    )
    assert code == 0, line
    # Revoke a second document and see it revoked online, while its bundle alone still verifies offline.
    second = tmp / "second.pdf"
    second.write_bytes(PDF + b"second")
    assert (
        tlog(
            "submit", "--log", stack.url, "--key", str(key), "--policy", str(policy), "--qr", "online", str(second)
        ).exit_code
        == 0
    )
    revoked = tlog("revoke", "--log", stack.url, "--key", str(key), "--reason", "issued in error", str(second))
    assert revoked.exit_code == 0, revoked.output
    deadline = time.monotonic() + 15
    while True:
        code, line = verify(str(second), "--policy", str(policy), "--log", stack.url, "--json")
        if json.loads(line)["verdict"] == "revoked" or time.monotonic() > deadline:
            break
        time.sleep(0.2)  # the revocation is counted once a cosigned checkpoint covers it
    assert code == 1 and json.loads(line)["verdict"] == "revoked" and "issued in error" in json.loads(line)["message"]
    code, line = verify(str(second), "--policy", str(policy))
    assert code == 0 and "revocation not checked" in line, line
    # The online QR code of the second document: a URL that `verify --qr-text` follows.
    url = scanned_text(tmp / "second.pdf.qr.png")
    index = parse_tlog_proof((tmp / "second.pdf.tlog-proof").read_bytes()).index
    assert url == link_url(f"{stack.url}/verify", online_payload(hashlib.sha256(PDF + b"second").digest(), index))
    code, line = verify(str(second), "--policy", str(policy), "--qr-text", url)
    assert code == 1 and line.startswith("REVOKED"), line
    code, line = verify(str(pdf), "--policy", str(policy), "--qr-text", url)
    assert code == 3, line  # the QR code is about another document
    # Network down: 7; unreadable input: 6, one line, no traceback.
    code, line = verify(str(pdf), "--policy", str(policy), "--log", f"http://127.0.0.1:{free_port()}")
    assert code == 7 and line.startswith("NETWORK ERROR"), line
    code, line = verify(str(tmp / "missing.pdf"), "--policy", str(policy))
    assert code == 6 and line.startswith("ERROR"), line
    garbage = tmp / "garbage.png"
    garbage.write_bytes(b"not a picture")
    code, line = verify(str(pdf), "--policy", str(policy), "--qr-image", str(garbage))
    assert code == 6, line
    usage = tlog("verify", str(pdf))
    assert usage.exit_code == 6 and "Traceback" not in usage.output


def test_operator_commands(issued) -> None:  # type: ignore[no-untyped-def]
    stack, tmp, _key, policy, _pdf = issued
    checked = tlog("policy", "check", str(policy), "--log", stack.url)
    assert checked.exit_code == 0 and "group two-of-three: 2 of W0, W1, W2" in checked.stdout, checked.output
    assert "ok: checkpoint of" in checked.stdout
    bad = tmp / "bad.policy"
    bad.write_text("log nonsense\nquorum none\n")
    refused = tlog("policy", "check", str(bad))
    assert refused.exit_code == 1 and "policy" in refused.output and "Traceback" not in refused.output
    cp = tlog("checkpoint", "--log", stack.url, "--policy", str(policy), "--out", str(tmp / "old.checkpoint"))
    assert cp.exit_code == 0 and f"origin {stack.origin}" in cp.stdout and "verified; cosigned by" in cp.stdout
    listed = tlog("issuer", "list", "--log", stack.url)
    assert listed.exit_code == 0 and "moeys.gov.kh 'Ministry of Education': active" in listed.stdout, listed.output
    inclusion = tlog(
        "proof",
        "inclusion",
        "--log",
        stack.url,
        "--policy",
        str(policy),
        "--bundle",
        str(tmp / "diploma.pdf.tlog-proof"),
    )
    assert inclusion.exit_code == 0 and "ok: the entry is included" in inclusion.stdout, inclusion.output
    bundle = str(tmp / "diploma.pdf.tlog-proof")
    from_tiles = tlog(
        "proof", "inclusion", "--log", stack.url, "--policy", str(policy), "--bundle", bundle, "--from-tiles"
    )
    assert from_tiles.exit_code == 0 and from_tiles.stdout == inclusion.stdout, from_tiles.output
    consistency = tlog(
        "proof",
        "consistency",
        "--log",
        stack.url,
        "--policy",
        str(policy),
        "--old",
        str(tmp / "diploma.pdf.tlog-proof"),
    )
    assert consistency.exit_code == 0 and "ok: the current checkpoint is consistent" in consistency.stdout
    tiles = tlog("proof", "consistency", "--log", stack.url, "--policy", str(policy), "--old", bundle, "--from-tiles")
    assert tiles.exit_code == 0 and tiles.stdout == consistency.stdout, tiles.output


def test_every_command_has_help_with_an_example() -> None:
    commands = [
        ["keygen"],
        ["vkey"],
        ["submit"],
        ["revoke"],
        ["verify"],
        ["policy", "check"],
        ["checkpoint"],
        ["issuer", "add"],
        ["issuer", "retire"],
        ["issuer", "list"],
        ["proof", "inclusion"],
        ["proof", "consistency"],
        ["verifier-site"],
    ]
    for command in commands:
        result = tlog(*command, "--help")
        assert result.exit_code == 0 and "Example" in result.stdout, command
    assert "6 usage or input error" in tlog("verify", "--help").stdout


def test_keygen_kinds_and_key_file_rules(tmp_path: Path) -> None:
    for kind, type_byte in (("issuer", 1), ("log", 1), ("registry", 1), ("witness", 4)):
        out = tmp_path / f"{kind}.key"
        made = tlog("keygen", "--name", f"{kind}.example.org", "--kind", kind, "--out", str(out))
        assert made.exit_code == 0 and os.stat(out).st_mode & 0o777 == 0o600
        assert base64.b64decode(made.stdout.strip().split("+", 2)[2])[0] == type_byte
        assert tlog("vkey", "--key", str(out), "--kind", kind).stdout == made.stdout
    os.chmod(tmp_path / "issuer.key", 0o644)
    loose = tlog("vkey", "--key", str(tmp_path / "issuer.key"))
    assert loose.exit_code != 0 and "chmod 600" in loose.output
    again = tlog("keygen", "--name", "x.example.org", "--out", str(tmp_path / "log.key"))
    assert again.exit_code != 0 and "refusing to overwrite" in again.output
    bad = tlog("keygen", "--name", "has space", "--out", str(tmp_path / "bad.key"))
    assert bad.exit_code != 0 and not (tmp_path / "bad.key").exists()
