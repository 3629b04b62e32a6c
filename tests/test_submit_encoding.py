"""The submit path's fast encodings (issue 20) decide and write exactly as the general ones they stand in front of:
statements' base64 read by one strict binascii call, and the no-proof receipt written without the codec's call per
field."""

import base64
import binascii
import random

from logserver import api
from logserver.sequencing import Sequenced
from tlogcore.errors import MalformedError

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
NOISE = ["=", "==", "-", "_", " ", "\n", "\r", "é", "\x00", ".", "A", "+", "/"]


def general(value: str) -> bytes | None:
    """The decoder before the fast path: base64.b64decode(validate=True), None where it refuses."""
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return None


def mutated(rng: random.Random) -> str:
    text = base64.b64encode(rng.randbytes(rng.randint(0, 40))).decode()
    for _ in range(rng.randint(0, 3)):
        at = rng.randint(0, len(text))
        choice = rng.random()
        if choice < 0.4:
            text = text[:at] + rng.choice(NOISE) + text[at:]
        elif choice < 0.7 and text:
            text = text[:at] + text[at + 1 :]
        else:
            text = text[:at] + rng.choice(ALPHABET) + text[at + 1 :]
    return text


def test_statement_base64_is_decided_as_the_general_decoder_decides() -> None:
    rng = random.Random(20)
    samples = [mutated(rng) for _ in range(20_000)] + [
        "",
        "=",
        "==",
        "A",
        "AA",
        "AA=",
        "AA==",
        "AAA=",
        "A===",
        "AA==AA",
    ]
    refused = 0
    for text in samples:
        expected = general(text)
        try:
            got: bytes | None = api.SubmitRequest.from_json({"statements": [text]}).statements[0]
        except MalformedError:
            got = None
        assert got == expected, text
        refused += expected is None
    assert 1_000 < refused < len(samples) - 1_000  # both sides of the rule were exercised


def test_the_receipt_is_written_as_the_codec_writes_it() -> None:
    rng = random.Random(21)
    for size in (1, 2, 1000):
        entries = tuple(
            api.EntryReceipt(rng.randrange(2**63), rng.randbytes(32), rng.random() < 0.5) for _ in range(size)
        )
        receipt = api.SubmitReceipt("log.example\n12\nroot ✓\n\n— sig\n".encode(), entries)
        assert receipt.to_json() == api.SubmitReceipt.codec().encode(receipt)
        assert api.SubmitReceipt.from_json(receipt.to_json()) == receipt


def test_the_server_writes_the_receipt_from_the_sequencers_answer_as_the_codec_writes_it() -> None:
    rng = random.Random(22)
    placed = [Sequenced(rng.randrange(2**63), rng.randbytes(32), rng.random() < 0.5) for _ in range(1000)]
    checkpoint = "log.example\n1000\nroot ✓\n\n— sig\n".encode()
    receipt = api.SubmitReceipt(checkpoint, tuple(api.EntryReceipt(p.index, p.leaf_hash, p.duplicate) for p in placed))
    assert api.SubmitReceipt.json_of(checkpoint, placed) == api.SubmitReceipt.codec().encode(receipt)
