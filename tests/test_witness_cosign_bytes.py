"""The witness keeps the request's own note bytes and appends its lines (witness.witness.cosign with `sent`, issue
20) only where that is byte for byte the note the general definition builds: the checkpoint text, the log
signatures that verified, then ours. Held to that definition over random notes: several log keys, unknown lines,
repeated lines, orders."""

import random

import pytest

from tlogcore.checkpoint import Checkpoint
from tlogcore.cosignature import CosignatureV1Signer
from tlogcore.errors import SignatureError, UnverifiedError
from tlogcore.keys import Ed25519Signer
from tlogcore.note import Note, Signature, open_note, parse_note, signature_for
from witness.witness import cosign

ORIGIN = "example.com/bytes"


def reference_note(text: str, verified: list[Signature], ours: list[str]) -> bytes:
    """The plain definition: the text, the verified log signatures in the order they verified, then ours."""
    return (text + "\n" + "".join(signature.line for signature in verified) + "".join(ours)).encode()


def random_note(rng: random.Random, logs: list[Ed25519Signer], strangers: list[Ed25519Signer]) -> tuple[str, bytes]:
    extensions = tuple(f"ext {rng.randrange(1000)}" for _ in range(rng.randint(0, 2)))
    text = Checkpoint(ORIGIN, rng.randrange(10**9), rng.randbytes(32), extensions).text
    signatures = [signature_for(text, key) for key in rng.sample(logs + strangers, rng.randint(1, 4))]
    if rng.random() < 0.3:
        signatures.append(rng.choice(signatures))  # a line repeated
    rng.shuffle(signatures)
    return text, Note(text, tuple(signatures)).to_bytes()


@pytest.mark.parametrize("seed", range(4))
def test_the_kept_note_is_the_general_definitions_bytes(seed: int) -> None:
    rng = random.Random(seed)
    logs = [Ed25519Signer(ORIGIN, bytes([seed, i]) * 16) for i in range(2)]
    strangers = [Ed25519Signer(f"stranger{i}", bytes([seed, 9, i, 0]) * 8) for i in range(2)]
    witness = CosignatureV1Signer("witness.example", b"\x42" * 32, lambda: 1_700_000_000.0)
    fast_taken = 0
    for _ in range(300):
        text, sent = random_note(rng, logs, strangers)
        try:
            opened = open_note(sent, [key.verifier() for key in logs])
        except UnverifiedError:
            continue
        ours = [signature_for(text, witness).line]
        verified = [signature for signature, _ in opened.verified]
        fast = cosign(opened, [witness], sent)
        general = cosign(opened, [witness])
        assert fast == general
        assert fast.note == reference_note(text, verified, ours)
        assert fast.lines == tuple(ours)
        fast_taken += fast.note.startswith(sent)
    assert fast_taken > 20  # the common case (every line a log key's, once) was among them


def test_a_note_from_the_log_alone_is_kept_as_sent() -> None:
    log = Ed25519Signer(ORIGIN, b"\x01" * 32)
    witness = CosignatureV1Signer("witness.example", b"\x42" * 32, lambda: 1_700_000_000.0)
    text = Checkpoint(ORIGIN, 5, b"\x07" * 32).text
    sent = Note(text, (signature_for(text, log),)).to_bytes()
    cosigned = cosign(open_note(sent, [log.verifier()]), [witness], sent)
    assert cosigned.note == sent + cosigned.lines[0].encode()
    assert parse_note(cosigned.note).signatures[0] == parse_note(sent).signatures[0]


def test_a_forged_line_of_a_known_key_is_still_refused() -> None:
    log = Ed25519Signer(ORIGIN, b"\x01" * 32)
    text = Checkpoint(ORIGIN, 5, b"\x07" * 32).text
    good = signature_for(text, log)
    forged = Note(text, (Signature(good.name, good.key_id, bytes(64)),)).to_bytes()
    with pytest.raises(SignatureError):
        open_note(forged, [log.verifier()])
