"""The issuer's workflow traps of issue 17, each against a real log with three witnesses: outputs mirror the input
tree and are never overwritten; a revoked document is never issued again (a revocation is final); a wrong policy,
an --out under a file, an empty directory and a down log stop before anything is logged, with one line naming the file
and what to do; the tool reads the SVG it wrote; a document given as --bundle is a user error; key material is
never printed."""

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from click.testing import Result
from log_harness import free_port
from tools_stack import Stack, register_issuer, tlog, witnessed_log

from tlogcore.bundle import parse_tlog_proof, verify_bundle
from tlogcore.keys import Ed25519Signer
from tlogcore.policy import parse_policy


@dataclass
class World:
    stack: Stack
    tmp: Path
    key: Path
    policy: Path

    def size(self) -> int:
        return int(httpx.get(self.stack.url + "/api/v1/log").json()["size"])

    def submit(self, *args: str) -> Result:
        return tlog("submit", "--log", self.stack.url, "--key", str(self.key), "--policy", str(self.policy), *args)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("traps")
    with witnessed_log(tmp) as stack:
        key = tmp / "moeys.key"
        register_issuer(stack, key)
        policy = tmp / "trust.policy"
        policy.write_text(stack.policy_text)
        yield World(stack, tmp, key, policy)


def one_line_error(result: Result, *names: str) -> str:
    """A failure: non-zero exit, no traceback, one line of output that names each of `names`."""
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output and "Error(" not in result.output, result.output
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    for name in names:
        assert name in lines[0], (name, lines[0])
    return lines[0]


def test_outputs_mirror_the_input_tree_and_each_verifies(world: World) -> None:
    coll = world.tmp / "coll"
    for sub, text in (("a", b"student A"), ("b", b"student B")):
        (coll / sub).mkdir(parents=True)
        (coll / sub / "d1.pdf").write_bytes(b"%PDF-1.7\n% " + text + b"\n")
    out = world.tmp / "proofs"
    done = world.submit("--out", str(out), str(coll))
    assert done.exit_code == 0, done.output
    policy = parse_policy(world.stack.policy_text)
    for sub in ("a", "b"):
        bundle = parse_tlog_proof((out / sub / "d1.pdf.tlog-proof").read_bytes())
        document = hashlib.sha256((coll / sub / "d1.pdf").read_bytes()).digest()
        assert verify_bundle(bundle, policy, document=document)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert sorted(row["input"] for row in manifest["documents"]) == [str(coll / "a/d1.pdf"), str(coll / "b/d1.pdf")]
    for row in manifest["documents"]:
        assert row["sha256"] == hashlib.sha256(Path(row["input"]).read_bytes()).hexdigest()
        assert isinstance(row["index"], int) and Path(row["bundle"]).exists() and Path(row["qr_png"]).exists()
        assert row["link"].startswith(world.stack.url + "/verify#TL1:")


def test_two_inputs_with_one_output_name_are_refused_before_logging(world: World) -> None:
    for sub in ("x", "y"):
        (world.tmp / sub).mkdir()
        (world.tmp / sub / "same.pdf").write_bytes(b"%PDF-1.7\n% " + sub.encode() + b"\n")
    before = world.size()
    result = world.submit("--out", str(world.tmp / "clash"), str(world.tmp / "x"), str(world.tmp / "y"))
    one_line_error(result, "same.pdf")
    assert world.size() == before


def test_an_existing_output_of_another_document_is_never_overwritten(world: World) -> None:
    doc = world.tmp / "keep" / "d.pdf"
    doc.parent.mkdir()
    doc.write_bytes(b"%PDF-1.7\n% first\n")
    out = world.tmp / "keep-out"
    assert world.submit("--out", str(out), str(doc.parent)).exit_code == 0
    written = (out / "d.pdf.tlog-proof").read_bytes()
    doc.write_bytes(b"%PDF-1.7\n% another document, same name\n")
    before = world.size()
    one_line_error(world.submit("--out", str(out), str(doc.parent)), "d.pdf.tlog-proof")
    assert (out / "d.pdf.tlog-proof").read_bytes() == written
    assert world.size() == before


def test_a_revoked_document_is_not_issued_again_even_with_reissue(world: World) -> None:
    # Issue 17: `--reissue` used to log a new issue statement, and verifiers still said "revoked" (the one status
    # rule keeps a revocation final: docs/trust.md). It is refused, in one line saying what to do instead.
    doc = world.tmp / "revoked.pdf"
    doc.write_bytes(b"%PDF-1.7\n% licence issued in error\n")
    assert world.submit("--out", str(world.tmp / "r1"), str(doc)).exit_code == 0
    revoked = tlog("revoke", "--log", world.stack.url, "--key", str(world.key), str(doc), "--reason", "error")
    assert revoked.exit_code == 0, revoked.output
    before = world.size()
    one_line_error(world.submit("--out", str(world.tmp / "r2"), str(doc)), "revoked.pdf", "revocation is final")
    assert world.size() == before and not (world.tmp / "r2" / "revoked.pdf.tlog-proof").exists()
    other = world.tmp / "other.pdf"
    other.write_bytes(b"%PDF-1.7\n% the corrected licence\n")
    again = world.submit("--out", str(world.tmp / "r3"), "--reissue", str(doc), str(other))
    assert again.exit_code != 0 and "Traceback" not in again.output, again.output
    last = again.output.strip().splitlines()[-1]  # after the line for other.pdf, which was logged
    assert "revoked.pdf" in last and "revocation is final" in last and "corrected document" in last, last
    assert not (world.tmp / "r3" / "revoked.pdf.tlog-proof").exists()
    assert (world.tmp / "r3" / "other.pdf.tlog-proof").exists()  # the others are logged and written
    assert world.size() == before + 1
    listing = httpx.get(f"{world.stack.url}/api/v1/documents/{hashlib.sha256(doc.read_bytes()).hexdigest()}").json()
    assert [s["kind"] for s in listing["statements"]] == ["issue", "revoke"]


def test_a_policy_for_another_log_fails_before_anything_is_logged(world: World) -> None:
    other = Ed25519Signer(world.stack.origin, bytes(range(32))).verifier().vkey
    wrong = world.tmp / "wrong.policy"
    wrong.write_text(world.stack.policy_text.replace(world.stack.log_vkey, other))
    doc = world.tmp / "policy-doc.pdf"
    doc.write_bytes(b"%PDF-1.7\n% policy\n")
    before = world.size()
    result = tlog("submit", "--log", world.stack.url, "--key", str(world.key), "--policy", str(wrong), str(doc))
    one_line_error(result, str(wrong))
    assert world.size() == before


def test_out_under_a_file_is_one_line(world: World) -> None:
    blocker = world.tmp / "a-file"
    blocker.write_text("not a directory")
    doc = world.tmp / "o.pdf"
    doc.write_bytes(b"%PDF-1.7\n% o\n")
    before = world.size()
    one_line_error(world.submit("--out", str(blocker / "proofs"), str(doc)), str(blocker))
    assert world.size() == before


def test_an_empty_directory_is_an_error_not_all_logged(world: World) -> None:
    empty = world.tmp / "empty"
    empty.mkdir()
    line = one_line_error(world.submit(str(empty)), str(empty))
    assert "no documents" in line


def test_a_down_log_is_one_plain_line(world: World) -> None:
    doc = world.tmp / "down.pdf"
    doc.write_bytes(b"%PDF-1.7\n% down\n")
    down = f"http://127.0.0.1:{free_port()}"
    result = tlog("submit", "--log", down, "--key", str(world.key), str(doc))
    line = one_line_error(result, down)
    assert "ConnectError" not in line and "cannot reach" in line


def test_verify_reads_the_svg_the_tool_wrote(world: World) -> None:
    doc = world.tmp / "svg.pdf"
    doc.write_bytes(b"%PDF-1.7\n% svg\n")
    assert world.submit(str(doc)).exit_code == 0
    result = tlog("verify", str(doc), "--policy", str(world.policy), "--qr-image", str(world.tmp / "svg.pdf.qr.svg"))
    assert result.exit_code == 0 and result.stdout.startswith("GENUINE"), result.output


def test_a_document_given_as_bundle_is_a_user_error_not_tampering(world: World) -> None:
    doc = world.tmp / "asbundle.pdf"
    doc.write_bytes(b"%PDF-1.7\n% as bundle\n")
    assert world.submit(str(doc)).exit_code == 0
    result = tlog("verify", str(doc), "--policy", str(world.policy), "--bundle", str(doc))
    assert result.exit_code == 6, result.output
    assert "TAMPERED" not in result.output and "asbundle.pdf.tlog-proof" in result.output


def test_key_material_is_never_printed(world: World) -> None:
    # PRIVATE+KEY+<name>+<hash>+<base64>: the base64 may itself contain '+' (or end in one), so split from the left.
    secret = world.key.read_text().strip().split("+", 4)[4]
    assert len(secret) > 40
    doc = world.tmp / "k.pdf"
    doc.write_bytes(b"%PDF-1.7\n% k\n")
    verify = tlog("verify", str(doc), "--policy", str(world.key))
    submit = tlog("submit", "--log", world.stack.url, "--key", str(world.key), "--policy", str(world.key), str(doc))
    swapped = tlog("submit", "--log", world.stack.url, "--key", str(world.policy), str(doc))
    for result in (verify, submit, swapped):
        assert result.exit_code != 0, result.output
        assert "PRIVATE" not in result.output, result.output
        assert secret[:8] not in result.output and secret[-8:] not in result.output, result.output
        assert "Traceback" not in result.output
    assert "private key" in verify.output and str(world.key) in verify.output


@pytest.mark.parametrize("command", ["revoke", "checkpoint"])
def test_a_down_log_is_one_plain_line_for_every_command(world: World, command: str) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    args = ["revoke", "--log", down, "--key", str(world.key), "--sha256", "00" * 32] if command == "revoke" else []
    result = tlog(*(args or ["checkpoint", "--log", down]))
    line = one_line_error(result)
    assert "ConnectError" not in line and "cannot reach" in line, line
