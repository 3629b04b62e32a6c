"""What a witness refuses, over HTTP against one `tlog-witness serve` process (c2sp.org/tlog-witness, FORMATS.md §e).

Each test uses its own log origin, so the tests share the process but not state.
"""

import asyncio
import base64
import hashlib
from collections.abc import Iterator

import httpx
import pytest
from witness_helpers import TinyLog, WitnessProcess, tiny_log, write_config

from tlogcore import merkle
from tlogcore.checkpoint import Checkpoint, parse_checkpoint
from tlogcore.keys import Ed25519Signer
from tlogcore.note import open_note, sign_note
from tlogcore.vkeys import parse_verifier_key
from witness.client import request_body
from witness.storage import SQLiteStorage

NAMES = ["advance", "fork", "rollback", "proofs", "signatures", "malformed", "empty", "resubmit", "evidence"]
LOGS = {name: tiny_log(f"log.example.test/{name}", 0x30 + i) for i, name in enumerate(NAMES)}


@pytest.fixture(scope="module")
def witness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WitnessProcess]:
    root = tmp_path_factory.mktemp("refusals")
    logs = [(log.origin, log.vkey) for log in LOGS.values()]
    config = write_config(root / "witness.toml", "witness.example.test", logs)
    with WitnessProcess(root / "data", config) as process:
        yield process


def post(witness: WitnessProcess, body: bytes) -> httpx.Response:
    return httpx.post(f"{witness.url}/add-checkpoint", content=body, timeout=10)


def latest(witness: WitnessProcess, log: TinyLog) -> Checkpoint | None:
    response = httpx.get(f"{witness.url}/{hashlib.sha256(log.origin.encode()).hexdigest()}/checkpoint", timeout=10)
    if response.status_code == 404:
        return None
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-cache"
    opened = open_note(response.content, [log.key.verifier(), parse_verifier_key(witness.vkey)])
    assert len(opened.verified) == 2
    return parse_checkpoint(opened.text)


def assert_cosigned(witness: WitnessProcess, log: TinyLog, body: bytes, response: httpx.Response) -> None:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    note = body.split(b"\n\n", 1)[1] + response.content
    witness_key = parse_verifier_key(witness.vkey)
    assert open_note(note, [log.key.verifier(), witness_key]).verified_by(witness_key) is not None


def advance(witness: WitnessProcess, log: TinyLog, old: int, new: int) -> None:
    body = log.body(old, new)
    assert_cosigned(witness, log, body, post(witness, body))


def test_first_checkpoint_then_consistent_growth(witness: WitnessProcess) -> None:
    log = LOGS["advance"]
    assert latest(witness, log) is None
    advance(witness, log, 0, 5)
    for old, new in [(5, 6), (6, 8), (8, 8), (8, 100), (100, 1000)]:
        advance(witness, log, old, new)
    head = latest(witness, log)
    assert head is not None and (head.size, head.root) == (1000, log.root(1000))


def test_a_fork_is_refused(witness: WitnessProcess) -> None:
    log = LOGS["fork"]
    advance(witness, log, 0, 5)
    fork = log.forked(3)
    assert fork.root(5) != log.root(5)
    # Same size, another root (tlog-witness HEAD: 422, not 409).
    response = post(witness, request_body(5, [], fork.checkpoint(5)))
    assert (response.status_code, response.text) == (
        422,
        "conflicting root: size 5 was already cosigned with a different root (a fork)\n",
    )
    # A larger fork with a proof valid inside the fork, but not from the root the witness holds.
    response = post(witness, fork.body(5, 9))
    assert response.status_code == 422 and "bad consistency proof" in response.text
    head = latest(witness, log)
    assert head is not None and (head.size, head.root) == (5, log.root(5))
    advance(witness, log, 5, 9)  # the honest log still goes on


def test_rollback_is_refused(witness: WitnessProcess) -> None:
    log = LOGS["rollback"]
    advance(witness, log, 0, 8)
    response = post(witness, request_body(8, [], log.checkpoint(5)))  # an older checkpoint, claiming old 8
    assert (response.status_code, response.text) == (400, "old size 8 is larger than the checkpoint size 5\n")
    for body in [log.body(5, 6), log.body(0, 5), request_body(0, [], log.checkpoint(8)), log.body(7, 8)]:
        response = post(witness, body)  # any old size but the stored one: 409 with the size known
        assert (response.status_code, response.text) == (409, "8\n")
        assert response.headers["content-type"] == "text/x.tlog.size"
    head = latest(witness, log)
    assert head is not None and head.size == 8


def test_bad_proofs_are_422(witness: WitnessProcess) -> None:
    log = LOGS["proofs"]
    advance(witness, log, 0, 7)
    good = log.proof(7, 13)
    assert len(good) >= 3
    flipped = [bytes([good[0][0] ^ 1]) + good[0][1:], *good[1:]]
    cases = {
        "truncated": good[:-1],
        "extended": [*good, good[0]],
        "one bit flipped": flipped,
        "reordered": [good[1], good[0], *good[2:]],
        "empty": [],
        "proof to another size": log.proof(7, 12),
        "proof from another size": log.proof(6, 13),
    }
    for what, proof in cases.items():
        response = post(witness, request_body(7, proof, log.checkpoint(13)))
        assert response.status_code == 422, what
        assert "consistency proof" in response.text, what
    response = post(witness, request_body(7, [good[0]], log.checkpoint(7)))  # equal sizes need an empty proof
    assert response.status_code == 422
    head = latest(witness, log)
    assert head is not None and head.size == 7
    advance(witness, log, 7, 13)


def test_old_size_zero_needs_an_empty_proof(witness: WitnessProcess) -> None:
    log = LOGS["empty"]
    response = post(witness, request_body(0, [log.root(1)], log.checkpoint(4)))
    assert (response.status_code, response.text) == (422, "bad consistency proof: old size 0 needs an empty proof\n")
    bad_empty = sign_note(Checkpoint(log.origin, 0, bytes(32)).text, [log.key])
    response = post(witness, request_body(0, [], bad_empty))
    assert response.status_code == 422 and "empty tree" in response.text
    assert latest(witness, log) is None
    advance(witness, log, 0, 0)  # the empty tree may be cosigned…
    head = latest(witness, log)
    assert head is not None and (head.size, head.root) == (0, merkle.EMPTY_ROOT)
    advance(witness, log, 0, 3)  # …and grown from


def test_signatures(witness: WitnessProcess) -> None:
    log = LOGS["signatures"]
    text = Checkpoint(log.origin, 3, log.root(3)).text
    impostor = Ed25519Signer(log.origin, b"\x99" * 32)  # right name, another key: not a key the witness trusts
    stranger = Ed25519Signer("someone.example", b"\x98" * 32)
    tampered = log.checkpoint(3).replace(b"\n3\n", b"\n4\n")  # the log's signature over other text
    cases = {
        "impostor": sign_note(text, [impostor]),
        "stranger": sign_note(text, [stranger]),
        "tampered text": tampered,
        "good and failing": sign_note(text, [log.key]) + sign_note(text + "x\n", [log.key]).split(b"\n\n")[1],
    }
    for what, note in cases.items():
        response = post(witness, request_body(0, [], note))
        assert response.status_code == 403, (what, response.text)
        assert response.text.startswith("invalid signature"), what
    assert latest(witness, log) is None
    # Unknown signature lines beside a valid log signature are ignored, and not republished.
    body = request_body(0, [], sign_note(text, [stranger, log.key]))
    assert_cosigned(witness, log, body, post(witness, body))
    stored = httpx.get(f"{witness.url}/{hashlib.sha256(log.origin.encode()).hexdigest()}/checkpoint").content
    assert b"someone.example" not in stored


def test_unknown_origin_is_404(witness: WitnessProcess) -> None:
    stray = tiny_log("log.example.test/not-configured", 0x70)
    response = post(witness, stray.body(0, 2))
    assert response.status_code == 404 and response.text.startswith("unknown log")
    response = httpx.get(f"{witness.url}/{hashlib.sha256(stray.origin.encode()).hexdigest()}/checkpoint")
    assert response.status_code == 404
    assert httpx.get(f"{witness.url}/{'ab' * 32}/checkpoint").status_code == 404
    assert httpx.get(f"{witness.url}/add-checkpoint").status_code == 405
    assert httpx.get(f"{witness.url}/healthz").text == "ok\n"


def malformed_bodies() -> dict[str, bytes]:
    log = LOGS["malformed"]
    note = log.checkpoint(3)
    h = base64.b64encode(b"\x2a" * 32)
    text = Checkpoint(log.origin, 3, log.root(3)).text
    return {
        "no blank line": b"old 0\n" + note.replace(b"\n\n", b"\n"),
        "no old line": b"\n" + note,
        "old 01": b"old 01\n\n" + note,
        "old +1": b"old +1\n\n" + note,
        "old -1": b"old -1\n\n" + note,
        "old with two spaces": b"old  0\n\n" + note,
        "Old": b"Old 0\n\n" + note,
        "old 2^63": b"old 9223372036854775808\n\n" + note,
        "CRLF": b"old 0\r\n\r\n" + note,
        "64 proof lines": b"old 0\n" + (h + b"\n") * 64 + b"\n" + note,
        "bad base64": b"old 0\n" + h[:-2] + b"!=\n\n" + note,
        "base64 with padding bits": b"old 0\n" + base64.b64encode(b"\x2a" * 31 + b"\x01")[:-2] + b"B=\n\n" + note,
        "31-byte hash": b"old 0\n" + base64.b64encode(b"\x2a" * 31) + b"\n\n" + note,
        "non-ASCII header": "old 0\n\u00e9\n\n".encode() + note,
        "note without signatures": b"old 0\n\n" + text.encode(),
        "checkpoint size 03": b"old 0\n\n" + sign_note(text.replace("\n3\n", "\n03\n"), [log.key]),
        "checkpoint size 2^63": b"old 0\n\n" + sign_note(text.replace("\n3\n", "\n9223372036854775808\n"), [log.key]),
        "control character in the note": b"old 0\n\n" + note.replace(b"\n3\n", b"\n3\x07\n"),
        "note over 64 KiB": b"old 0\n\n" + sign_note(text + "x" * 65536 + "\n", [log.key]),
        "empty": b"",
    }


@pytest.mark.parametrize("name", list(malformed_bodies()))
def test_malformed_bodies_are_400(witness: WitnessProcess, name: str) -> None:
    response = post(witness, malformed_bodies()[name])
    assert response.status_code == 400, response.text
    assert response.text.startswith(("malformed request", "old size")), response.text
    assert latest(witness, LOGS["malformed"]) is None


def test_63_proof_lines_parse(witness: WitnessProcess) -> None:
    """The bound is 63: one more line than that is malformed (above), 63 merely fail as a proof."""
    log = LOGS["malformed"]
    body = request_body(0, [b"\x2a" * 32] * 63, log.checkpoint(3))
    assert post(witness, body).status_code == 422


def test_oversize_body_is_413(witness: WitnessProcess) -> None:
    response = post(witness, b"old 0\n\n" + b"x" * (128 * 1024))
    assert response.status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds while streaming
        yield b"old 0\n\n"
        for _ in range(40):
            yield b"y" * 4096

    assert httpx.post(f"{witness.url}/add-checkpoint", content=chunks(), timeout=10).status_code == 413


def test_resubmitting_the_same_checkpoint_is_cosigned_again(witness: WitnessProcess) -> None:
    log = LOGS["resubmit"]
    advance(witness, log, 0, 4)
    for _ in range(3):
        advance(witness, log, 4, 4)


def test_refused_but_validly_signed_checkpoints_are_kept_as_evidence(witness: WitnessProcess) -> None:
    log = LOGS["evidence"]
    advance(witness, log, 0, 6)
    fork = log.forked(2)
    forked_body = request_body(6, [], fork.checkpoint(6))
    assert post(witness, forked_body).status_code == 422
    assert post(witness, forked_body).status_code == 422  # kept once
    assert (
        post(
            witness,
            request_body(
                6, [], sign_note(Checkpoint(log.origin, 6, bytes(32)).text, [Ed25519Signer(log.origin, b"\x97" * 32)])
            ),
        ).status_code
        == 403
    )

    async def kept() -> list[tuple[int, bytes, bytes]]:
        storage = await SQLiteStorage.open(str(witness.data / "witness.sqlite"))  # a second reader, as WAL allows
        try:
            return [(e.size, e.root, e.request) for e in await storage.evidence(log.origin)]
        finally:
            await storage.close()

    assert asyncio.run(kept()) == [(6, fork.root(6), forked_body)]


def test_every_stored_checkpoint_is_the_honest_logs(witness: WitnessProcess) -> None:
    """After every refusal above, each stored note opens with log and witness keys and holds the honest root."""
    for log in LOGS.values():
        head = latest(witness, log)
        if head is not None:
            assert head.root == log.root(head.size)
