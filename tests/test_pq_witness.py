"""Post-quantum witnesses (issue 22): `tlog-witness` signs ML-DSA-44 cosignatures (c2sp.org/tlog-cosignature@v1.1.0,
type 0x06) beside or instead of Ed25519, and the core's verifier and a trust policy requiring a quorum of
post-quantum witnesses accept them."""

import hashlib
import json
import stat
from pathlib import Path

import httpx
import pytest
from conftest import load_vectors
from witness_helpers import WitnessProcess, cli, tiny_log

from tlogcore.checkpoint import Checkpoint
from tlogcore.cosignature import MLDSA44_SUBTREE, MLDSA44CosignatureVerifier, subtree_message
from tlogcore.encoding import b64decode
from tlogcore.errors import MalformedError, SignatureError, UnverifiedError
from tlogcore.mldsa import MLDSA44CosignatureSigner, format_mldsa44_key, parse_mldsa44_key
from tlogcore.note import open_note, parse_note, sign_note
from tlogcore.policy import parse_policy
from tlogcore.vkeys import WITNESS_KEYS, parse_key_for
from witness.config import parse_config

MLDSA_VECTOR = next(v for v in load_vectors("cosignature/cosignatures.json")["vectors"] if v["type"] == 6)
NOW = 1_800_000_000
SEED = bytes(range(32))
NAME = "pq.witness.test"


def checkpoint_text(size: int = 5, origin: str = "log.example.test/pq") -> bytes:
    return Checkpoint(origin, size, hashlib.sha256(b"root %d" % size).digest()).text.encode()


def test_the_message_is_byte_for_byte_the_one_a_real_mldsa_cosignature_signed() -> None:
    """Cross-check against a real type 0x06 cosignature (vectors/cosignature): our builder gives its exact bytes."""
    body = MLDSA_VECTOR["checkpoint_body"].split("\n")
    name = MLDSA_VECTOR["cosigner_vkey"].split("+", 1)[0]
    stamp = MLDSA_VECTOR["decoded"]["timestamp"].to_bytes(8, "big")
    message = subtree_message(name, stamp, body[0], int(body[1]), b64decode(body[2], "root"))
    assert message is not None
    assert message.hex() == MLDSA_VECTOR["signed_message_hex"]
    verifier = parse_key_for(MLDSA_VECTOR["cosigner_vkey"], WITNESS_KEYS, "witness key")
    line_bytes = b64decode(MLDSA_VECTOR["signature_line"].rsplit(" ", 1)[1], "line")
    assert verifier.verify(MLDSA_VECTOR["checkpoint_body"].encode(), line_bytes[4:])


def test_a_signed_cosignature_verifies_with_the_cores_verifier_and_a_changed_checkpoint_does_not() -> None:
    signer = MLDSA44CosignatureSigner(NAME, SEED, lambda: NOW)
    signature = signer.sign(checkpoint_text())
    assert len(signature) == 8 + 2420
    assert int.from_bytes(signature[:8], "big") == NOW
    verifier = parse_key_for(signer.verifier().vkey, WITNESS_KEYS, "witness key")  # through the vkey string
    assert isinstance(verifier, MLDSA44CosignatureVerifier)
    assert verifier.verify(checkpoint_text(), signature)
    assert not verifier.verify(checkpoint_text(size=6), signature)
    assert not verifier.verify(checkpoint_text(origin="log.example.test/other"), signature)
    later = (NOW + 1).to_bytes(8, "big") + signature[8:]
    assert not verifier.verify(checkpoint_text(), later)  # the timestamp is signed
    other_name = MLDSA44CosignatureVerifier("pq.other.test", signer.public_key)
    assert not other_name.verify(checkpoint_text(), signature)  # the cosigner's name is signed


def test_key_id_and_vkey_follow_the_spec_formula() -> None:
    signer = MLDSA44CosignatureSigner(NAME, SEED, lambda: NOW)
    assert len(signer.public_key) == 1312
    expected_id = hashlib.sha256(NAME.encode() + b"\n\x06" + signer.public_key).digest()[:4]
    assert signer.key_id == int.from_bytes(expected_id, "big")
    name, key_id, key = signer.verifier().vkey.split("+", 2)
    assert (name, key_id) == (NAME, expected_id.hex())
    assert b64decode(key, "vkey") == bytes([MLDSA44_SUBTREE]) + signer.public_key
    assert MLDSA44CosignatureSigner(NAME, SEED, lambda: NOW).public_key == signer.public_key  # the seed is the key


def test_private_key_string_round_trips_and_is_strict() -> None:
    signer = MLDSA44CosignatureSigner(NAME, SEED, lambda: NOW)
    text = format_mldsa44_key(signer)
    assert parse_mldsa44_key(text, lambda: NOW).public_key == signer.public_key
    wrong_id = text.replace(f"+{signer.key_id:08x}+", "+00000000+")
    with pytest.raises(MalformedError, match="key ID"):
        parse_mldsa44_key(wrong_id, lambda: NOW)
    with pytest.raises(MalformedError, match="type 0x06"):
        parse_mldsa44_key(
            "PRIVATE+KEY+pq.witness.test+00000000+AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", lambda: 1
        )


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('algorithms = ["rsa"]', "unknown 'rsa'"),
        ("algorithms = []", "non-empty list"),
        ('algorithms = "ed25519"', "non-empty list"),
        ('algorithms = ["ml-dsa-44", "ml-dsa-44"]', "listed twice"),
    ],
)
def test_config_algorithms_are_checked(line: str, message: str) -> None:
    log = tiny_log()
    text = f'name = "w"\n{line}\n[[log]]\norigin = "{log.origin}"\nvkey = "{log.vkey}"\n'
    with pytest.raises(MalformedError, match=message):
        parse_config(text)


def test_config_algorithms_default_to_ed25519_and_keep_their_order() -> None:
    log = tiny_log()
    tables = f'[[log]]\norigin = "{log.origin}"\nvkey = "{log.vkey}"\n'
    assert parse_config(f'name = "w"\n{tables}').algorithms == ("ed25519",)
    both = parse_config(f'name = "w"\nalgorithms = ["ml-dsa-44", "ed25519"]\n{tables}')
    assert both.algorithms == ("ml-dsa-44", "ed25519")


def test_init_makes_both_keys_owner_only_and_info_prints_both_vkeys(tmp_path: Path) -> None:
    data = tmp_path / "w"
    made = cli("init", "--data", str(data), "--name", NAME, "--algorithm", "ed25519", "--algorithm", "ml-dsa-44")
    assert made.returncode == 0, made.stderr
    for file in ("witness.key", "witness-mldsa44.key"):
        assert stat.S_IMODE((data / file).stat().st_mode) == 0o600
    lines = made.stdout.splitlines()
    assert lines[0] == f"name {NAME}" and len(lines) == 3
    ed_vkey, pq_vkey = lines[1].removeprefix("vkey "), lines[2].removeprefix("vkey ")
    assert parse_key_for(ed_vkey, WITNESS_KEYS, "w").key_type == 0x04
    assert parse_key_for(pq_vkey, WITNESS_KEYS, "w").key_type == 0x06
    info = cli("info", "--data", str(data), "--json")
    assert info.returncode == 0, info.stderr
    assert json.loads(info.stdout) == {"name": NAME, "vkey": ed_vkey, "vkeys": [ed_vkey, pq_vkey]}
    again = cli("init", "--data", str(data), "--name", NAME, "--algorithm", "ml-dsa-44")
    assert again.stdout.splitlines() == [f"name {NAME}", lines[2]]  # an existing key is kept, never replaced


def test_init_refuses_algorithm_with_config_in_one_line(tmp_path: Path) -> None:
    config = tmp_path / "w.toml"
    config.write_text('name = "w"\n', encoding="utf-8")
    result = cli("init", "--data", str(tmp_path / "w"), "--config", str(config), "--algorithm", "ml-dsa-44")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "--algorithm goes with --name" in result.stderr


def write_pq_config(path: Path, origin: str, vkey: str, algorithms: str) -> Path:
    path.write_text(
        f'name = "{NAME}"\nalgorithms = {algorithms}\n[[log]]\norigin = "{origin}"\nvkey = "{vkey}"\n',
        encoding="utf-8",
    )
    return path


def policy_text(log_vkey: str, ed_vkey: str | None, pq_vkey: str | None) -> str:
    """Two groups: `classic` (Ed25519) and `pq` (ML-DSA-44); the quorum requires the post-quantum one."""
    lines = [f"log {log_vkey}"]
    lines += [f"witness w-ed {ed_vkey}", "group classic any w-ed"] if ed_vkey else []
    lines += [f"witness w-pq {pq_vkey}", "group pq any w-pq", "quorum pq"]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("algorithms", ['["ed25519", "ml-dsa-44"]', '["ml-dsa-44"]'])
def test_a_real_witness_cosigns_with_mldsa_and_a_pq_quorum_policy_accepts_it(tmp_path: Path, algorithms: str) -> None:
    log = tiny_log()
    config = write_pq_config(tmp_path / "w.toml", log.origin, log.vkey, algorithms)
    with WitnessProcess(tmp_path / "data", config) as witness:
        answer = httpx.post(f"{witness.url}/add-checkpoint", content=log.body(0, 7), timeout=10)
        vkeys = [line[5:] for line in witness.stdout_path.read_text().splitlines() if line.startswith("vkey ")]
    assert answer.status_code == 200, answer.text
    lines = answer.text.splitlines()
    assert len(lines) == len(json.loads(algorithms)) == len(vkeys)
    pq_vkey = vkeys[-1]
    ed_vkey = vkeys[0] if len(vkeys) == 2 else None
    note = log.checkpoint(7) + "".join(line + "\n" for line in lines).encode()
    trusted = parse_policy(policy_text(log.vkey, ed_vkey, pq_vkey)).verify_checkpoint(note, now=NOW)
    assert "w-pq" in trusted.witnesses
    opened = open_note(note, [parse_key_for(pq_vkey, WITNESS_KEYS, "w")], 1 << 16)
    assert len(opened.verified) == 1  # the core's verifier, on the witness's own line


def test_a_pq_quorum_policy_refuses_a_checkpoint_with_only_the_ed25519_cosignature(tmp_path: Path) -> None:
    log = tiny_log()
    config = write_pq_config(tmp_path / "w.toml", log.origin, log.vkey, '["ed25519", "ml-dsa-44"]')
    with WitnessProcess(tmp_path / "data", config) as witness:
        answer = httpx.post(f"{witness.url}/add-checkpoint", content=log.body(0, 3), timeout=10)
        vkeys = [line[5:] for line in witness.stdout_path.read_text().splitlines() if line.startswith("vkey ")]
    ed_line, pq_line = answer.text.splitlines()
    policy = parse_policy(policy_text(log.vkey, vkeys[0], vkeys[1]))
    with pytest.raises(UnverifiedError, match="quorum not met"):
        policy.verify_checkpoint(log.checkpoint(3) + (ed_line + "\n").encode(), now=NOW)
    tampered = pq_line[:-8] + ("A" if pq_line[-8] != "A" else "B") + pq_line[-7:]
    bad_note = log.checkpoint(3) + (ed_line + "\n" + tampered + "\n").encode()
    parse_note(bad_note, 1 << 16)  # still well-formed: it is the signature that is wrong
    with pytest.raises(SignatureError):  # a known key's line that fails rejects the note (signed-note)
        policy.verify_checkpoint(bad_note, now=NOW)


def test_the_note_signer_puts_an_mldsa_line_a_note_parser_reads() -> None:
    signer = MLDSA44CosignatureSigner(NAME, SEED, lambda: NOW)
    note = sign_note(checkpoint_text().decode(), [signer])
    opened = open_note(note, [signer.verifier()], 1 << 16)
    assert len(opened.verified) == 1


def test_an_mldsa_key_made_for_another_name_is_refused_in_one_line(tmp_path: Path) -> None:
    """The name is inside the ML-DSA-44 key ID and signed message: a key made for another name is another witness."""
    made = cli("init", "--data", str(tmp_path / "w"), "--name", "old.name.test", "--algorithm", "ml-dsa-44")
    assert made.returncode == 0, made.stderr
    log = tiny_log()
    config = write_pq_config(tmp_path / "w.toml", log.origin, log.vkey, '["ml-dsa-44"]')
    result = cli("init", "--data", str(tmp_path / "w"), "--config", str(config))
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "witness-mldsa44.key" in result.stderr and "'old.name.test'" in result.stderr


def test_info_without_any_key_says_what_to_run(tmp_path: Path) -> None:
    result = cli("info", "--data", str(tmp_path / "empty"))
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "tlog-witness init --data" in result.stderr and len(result.stderr.strip().splitlines()) == 1
