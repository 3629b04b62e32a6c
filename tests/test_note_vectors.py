"""Signed notes, verifier keys, checkpoints and cosignatures against tests/vectors."""

import pytest
from conftest import load_vectors

from tlogcore.checkpoint import MAX_CHECKPOINT_NOTE_SIZE, parse_checkpoint
from tlogcore.cosignature import CosignatureV1Signer, signature_timestamp
from tlogcore.errors import MalformedError, SignatureError, UnverifiedError
from tlogcore.keys import Ed25519Signer, format_signer_key, parse_signer_key
from tlogcore.note import open_note, parse_note, sign_note
from tlogcore.vkeys import parse_verifier_key

NOTES = load_vectors("note/signed_notes.json")
VKEYS = load_vectors("note/vkeys.json")
CHECKPOINTS = load_vectors("checkpoint/checkpoints.json")
COSIGNATURES = load_vectors("cosignature/cosignatures.json")["vectors"]


def note_bytes(case: dict) -> bytes:
    return bytes.fromhex(case["note_hex"]) if "note_hex" in case else case["note"].encode()


def open_result(data: bytes, vkeys: list[str]) -> tuple[str, object]:
    """Classify like the vectors: ok / malformed / unverified / invalid_signature."""
    try:
        opened = open_note(data, [parse_verifier_key(v) for v in vkeys], MAX_CHECKPOINT_NOTE_SIZE)
    except MalformedError:
        return "malformed", None
    except SignatureError:
        return "invalid_signature", None
    except UnverifiedError:
        return "unverified", None
    return "ok", opened


def check_open(data: bytes, vkeys: list[str], expect: dict) -> None:
    result, opened = open_result(data, vkeys)
    assert result == expect["result"]
    if result == "ok":
        assert opened is not None
        if "text" in expect:
            assert opened.text == expect["text"]  # type: ignore[attr-defined]
        verified = [[s.name, f"{s.key_id:08x}"] for s, _ in opened.verified]  # type: ignore[attr-defined]
        unverified = [[s.name, f"{s.key_id:08x}"] for s in opened.unverified]  # type: ignore[attr-defined]
        assert verified == expect["verified"]
        assert unverified == expect["unverified"]


@pytest.mark.parametrize("case", NOTES["cases"], ids=[c["name"] for c in NOTES["cases"]])
def test_open_signed_notes(case: dict) -> None:
    check_open(note_bytes(case), case["verifier_vkeys"], case["expect"])


@pytest.mark.parametrize("case", NOTES["signing"], ids=[c["name"] for c in NOTES["signing"]])
def test_deterministic_signing(case: dict) -> None:
    signer = Ed25519Signer(case["key_name"], bytes.fromhex(case["ed25519_seed_hex"]))
    existing = parse_note(case["existing_signed_note"].encode()).signatures if "existing_signed_note" in case else ()
    assert sign_note(case["text"], [signer], existing).decode() == case["expected_signed_note"]
    if "go_signer_key" in case:
        assert format_signer_key(signer) == case["go_signer_key"]
        assert parse_signer_key(case["go_signer_key"]).seed == signer.seed


@pytest.mark.parametrize("case", VKEYS["vkeys"], ids=[c["vkey"][:50] for c in VKEYS["vkeys"]])
def test_verifier_keys(case: dict) -> None:
    if not case["expect_valid"]:
        with pytest.raises(MalformedError):
            parse_verifier_key(case["vkey"])
        return
    verifier = parse_verifier_key(case["vkey"])
    got = (verifier.name, f"{verifier.key_id:08x}", verifier.key_type)
    assert got == (case["key_name"], case["key_id"], case["type"])
    assert verifier.material.hex() == case["public_key_hex"]
    assert verifier.vkey == case["vkey"]


@pytest.mark.parametrize("case", VKEYS["derivations"], ids=[c["key_name"] for c in VKEYS["derivations"]])
def test_vkey_derivations(case: dict) -> None:
    verifier = parse_verifier_key(case["expected_vkey"])
    assert verifier.material.hex() == case["public_key_hex"] and verifier.key_type == case["type"]


def test_go_private_key_format() -> None:
    case = VKEYS["go_private_key_format"]
    signer = parse_signer_key(case["example"])
    assert signer.seed.hex() == case["seed_hex"]
    assert signer.verifier().vkey == case["matching_vkey"]
    with pytest.raises(MalformedError):
        parse_signer_key(case["example"].replace("c74f20a3", "c74f20a4"))


CPS = CHECKPOINTS["signed_checkpoints"]


@pytest.mark.parametrize("case", CPS, ids=[c["name"] for c in CPS])
def test_signed_checkpoints(case: dict) -> None:
    check_open(case["signed_note"].encode(), case["verifier_vkeys"], case["expect"])
    checkpoint = parse_checkpoint(parse_note(case["signed_note"].encode()).text)
    body = case["body"]
    assert (checkpoint.origin, checkpoint.size, checkpoint.root.hex(), list(checkpoint.extensions)) == (
        body["origin"],
        body["tree_size"],
        body["root_hash_hex"],
        body["extension_lines"],
    )
    if "private_seed_hex" in case:  # signing must reproduce the line byte for byte
        signer = Ed25519Signer(body["origin"], bytes.fromhex(case["private_seed_hex"]))
        assert sign_note(checkpoint.text, [signer]).decode() == case["signed_note"]


BODIES = CHECKPOINTS["body_parsing"]


@pytest.mark.parametrize("case", BODIES, ids=[c["body"][:40] for c in BODIES])
def test_checkpoint_body_parsing(case: dict) -> None:
    if not case["expect_valid"]:
        with pytest.raises(MalformedError):
            parse_checkpoint(case["body"])
        return
    checkpoint = parse_checkpoint(case["body"])
    parsed = case["parsed"]
    assert (checkpoint.origin, checkpoint.size, checkpoint.root.hex(), list(checkpoint.extensions)) == (
        parsed["origin"],
        parsed["tree_size"],
        parsed["root_hash_hex"],
        parsed["extension_lines"],
    )
    assert checkpoint.text == case["body"]


@pytest.mark.parametrize("case", COSIGNATURES, ids=[c["name"] for c in COSIGNATURES])
def test_cosignatures(case: dict) -> None:
    line = case.get("signature_line") or case.get("expected_signature_line")
    if "signature_base64" in case:
        line = "\u2014 x " + case["signature_base64"]
    if line is not None and "decoded" in case:
        signature = parse_note(("x\n\n" + line + "\n").encode()).signatures[0]
        assert f"{signature.key_id:08x}" == case["decoded"]["key_id"]
        assert signature_timestamp(signature.signature) == case["decoded"]["timestamp"]
    if "signed_message" in case and "timestamp" in case.get("decoded", case):
        from tlogcore.cosignature import cosignature_message

        timestamp = case.get("timestamp", case.get("decoded", {}).get("timestamp"))
        assert cosignature_message(case["checkpoint_body"].encode(), timestamp).decode() == case["signed_message"]
    if "cosigner_ed25519_seed_hex" in case:
        seed = bytes.fromhex(case["cosigner_ed25519_seed_hex"])
        signer = CosignatureV1Signer(case["cosigner_name"], seed, lambda: case["timestamp"])
        assert signer.verifier().vkey == case["cosigner_vkey"]
        assert Ed25519Signer(case["cosigner_name"], signer.seed).verifier().vkey == case["same_key_as_type_0x01_vkey"]
        made = sign_note(case["checkpoint_body"], [signer]).decode()
        assert made.endswith(case["expected_signature_line"] + "\n")
    if "expect_valid" in case:
        note = (case["checkpoint_body"] + "\n" + line + "\n").encode()
        result, _ = open_result(note, [case["cosigner_vkey"]])
        assert result == ("ok" if case["expect_valid"] else "invalid_signature")
