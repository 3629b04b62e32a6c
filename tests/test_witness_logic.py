"""The pure parts: request parsing, the decision table of tlog-witness's checks, config, and the client's parsers."""

import asyncio
import base64

import httpx
import pytest
from witness_helpers import TinyLog, tiny_log

from tlogcore import merkle
from tlogcore.checkpoint import Checkpoint
from tlogcore.cosignature import CosignatureV1Signer
from tlogcore.errors import MalformedError
from tlogcore.keys import Ed25519Signer, is_valid_key_name
from tlogcore.note import open_note, sign_note
from witness.client import (
    ConflictError,
    WitnessClient,
    WitnessClientError,
    WitnessProtocolError,
    parse_cosignatures,
    request_body,
)
from witness.config import DEFAULT_LISTEN, DEFAULT_NAME, parse_config, parse_listen
from witness.witness import (
    BadProof,
    BadRequest,
    BadSignature,
    Conflict,
    TreeHead,
    UnknownLog,
    check_update,
    cosign,
    parse_request,
    verify_log_signature,
)

LOG = tiny_log()
TRUSTED = {LOG.origin: (LOG.key.verifier(),)}


def test_parse_request_reads_every_field() -> None:
    proof = LOG.proof(3, 10)
    request = parse_request(request_body(3, proof, LOG.checkpoint(10)))
    assert (request.old_size, request.proof, request.note_bytes) == (3, tuple(proof), LOG.checkpoint(10))
    assert (request.checkpoint.origin, request.checkpoint.size, request.checkpoint.root) == (
        LOG.origin,
        10,
        LOG.root(10),
    )


def test_request_body_is_the_spec_layout() -> None:
    h = b"\x2a" * 32
    assert request_body(7, [h, h], b"NOTE") == b"old 7\n" + (base64.b64encode(h) + b"\n") * 2 + b"\nNOTE"
    with pytest.raises(ValueError):
        request_body(-1, [], b"")
    with pytest.raises(ValueError):
        request_body(1, [b"short"], b"")


@pytest.mark.parametrize("head", ["old 0x1", "old 1 ", "old ", "old", " old 1", "old 1\n", "old \u0661"])
def test_old_line_must_be_canonical(head: str) -> None:
    with pytest.raises(BadRequest):
        parse_request(head.encode() + b"\n\n" + LOG.checkpoint(1))


def decide(stored: TreeHead | None, old: int, new: int, proof: list[bytes] | None = None, log: TinyLog = LOG) -> str:
    body = request_body(old, LOG.proof(old, new) if proof is None else proof, log.checkpoint(new))
    try:
        check_update(parse_request(body), stored)
    except Conflict as conflict:
        return f"409 {conflict.known_size}"
    except BadRequest:
        return "400"
    except BadProof:
        return "422"
    return "ok"


def head(size: int) -> TreeHead:
    return TreeHead(size, LOG.root(size))


# The decision table of tlog-witness §add-checkpoint steps 4-8, in its order.
CASES = [
    ("first checkpoint", None, 0, 5, None, "ok"),
    ("first, old not 0", None, 2, 5, None, "409 0"),
    ("old > size", head(5), 6, 5, [], "400"),
    ("old > size beats 409", None, 6, 5, [], "400"),
    ("stale old", head(5), 3, 8, None, "409 5"),
    ("probe with old 0", head(5), 0, 8, None, "409 5"),
    ("consistent", head(5), 5, 8, None, "ok"),
    ("same size, same root", head(5), 5, 5, None, "ok"),
    ("same size with a proof", head(5), 5, 5, [b"\x01" * 32], "422"),
    ("old 0 with a proof", None, 0, 5, [b"\x01" * 32], "422"),
    ("stored size 0, old 0", head(0), 0, 3, None, "ok"),
    ("proof missing", head(5), 5, 8, [], "422"),
    ("wrong proof", head(5), 5, 8, [b"\x01" * 32] * 3, "422"),
]


@pytest.mark.parametrize(("stored", "old", "new", "proof", "expect"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_decision_table(stored: TreeHead | None, old: int, new: int, proof: list[bytes] | None, expect: str) -> None:
    assert decide(stored, old, new, proof) == expect


def test_fork_and_empty_tree_decisions() -> None:
    fork = LOG.forked(2)
    assert decide(head(5), 5, 5, [], fork) == "422"  # same size, other root
    assert decide(head(5), 5, 9, fork.proof(5, 9), fork) == "422"
    bad_empty = sign_note(Checkpoint(LOG.origin, 0, b"\x01" * 32).text, [LOG.key])
    with pytest.raises(BadProof, match="empty tree"):
        check_update(parse_request(request_body(0, [], bad_empty)), None)
    check_update(parse_request(request_body(0, [], LOG.checkpoint(0))), None)
    assert LOG.root(0) == merkle.EMPTY_ROOT


def test_signature_checks() -> None:
    with pytest.raises(UnknownLog):
        verify_log_signature(parse_request(tiny_log("other.example/log").body(0, 1)), TRUSTED)
    impostor = sign_note(Checkpoint(LOG.origin, 1, LOG.root(1)).text, [Ed25519Signer(LOG.origin, b"\x77" * 32)])
    with pytest.raises(BadSignature, match="no valid signature"):
        verify_log_signature(parse_request(request_body(0, [], impostor)), TRUSTED)
    opened = verify_log_signature(parse_request(LOG.body(0, 1)), TRUSTED)
    assert opened.text == Checkpoint(LOG.origin, 1, LOG.root(1)).text


def test_cosign_keeps_the_log_signature_and_adds_ours() -> None:
    witness = CosignatureV1Signer("w.example", b"\x03" * 32, lambda: 1_800_000_000)
    stranger = Ed25519Signer("stranger.example", b"\x04" * 32)
    note = sign_note(Checkpoint(LOG.origin, 2, LOG.root(2)).text, [stranger, LOG.key])
    opened = verify_log_signature(parse_request(request_body(0, [], note)), TRUSTED)
    cosigned = cosign(opened, [witness])
    assert len(cosigned.lines) == 1 and cosigned.lines[0].startswith("— w.example ")
    kept = open_note(cosigned.note, [LOG.key.verifier(), witness.verifier()])
    assert len(kept.verified) == 2 and not kept.unverified  # the stranger's line is not republished


# --- config -------------------------------------------------------------------------------


def test_config_defaults_and_values() -> None:
    config = parse_config(f'[[log]]\norigin = "{LOG.origin}"\nvkey = "{LOG.vkey}"\n')
    assert (config.name, config.listen) == (DEFAULT_NAME, DEFAULT_LISTEN)
    assert [v.vkey for v in config.trusted_keys()[LOG.origin]] == [LOG.vkey]
    other = tiny_log("b.example/log", 0x55)
    config = parse_config(
        f'name = "w.example"\nlisten = "[::1]:9000"\n[[log]]\norigin = "{LOG.origin}"\n'
        f'vkey = "{LOG.vkey}"\n[[log]]\norigin = "{other.origin}"\nvkey = "{other.vkey}"\n'
    )
    assert config.name == "w.example" and set(config.trusted_keys()) == {LOG.origin, other.origin}
    assert parse_listen(config.listen) == ("::1", 9000)
    assert config.workers == 2  # the default: verify and cosign in two processes beside the server
    assert parse_config(f'workers = 0\n[[log]]\norigin = "{LOG.origin}"\nvkey = "{LOG.vkey}"\n').workers == 0


@pytest.mark.parametrize("value", ["-1", "65", "true", '"2"', "1.5"])
def test_config_workers_errors(value: str) -> None:
    with pytest.raises(MalformedError, match="workers must be a whole number from 0 to 64"):
        parse_config(f'workers = {value}\n[[log]]\norigin = "{LOG.origin}"\nvkey = "{LOG.vkey}"\n')


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[log]]\norigin = "a.example"\n', "missing 'vkey'"),
        ('[[log]]\norigin = 5\nvkey = "x"\n', "'origin' must be a string"),
        ('log = "x"\n', "at least one [[log]]"),
        ('name = ["x"]\n', "'name' must be a string"),
        ("[[log]]\nextra = 1\n", "unknown key 'extra'"),
        ("[[log]]\n[[log]]\n", "missing 'origin'"),
        ('[log]\norigin = "x"\n', "at least one [[log]]"),
    ],
)
def test_config_errors(text: str, message: str) -> None:
    with pytest.raises(MalformedError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_config(text)


def test_config_duplicate_origin() -> None:
    table = f'[[log]]\norigin = "{LOG.origin}"\nvkey = "{LOG.vkey}"\n'
    with pytest.raises(MalformedError, match="two"):
        parse_config(table + table)


@pytest.mark.parametrize("text", ["host", "host:", ":80", "host:0", "host:65536", "host:+80", "host: 80", "a b:80"])
def test_listen_errors(text: str) -> None:
    with pytest.raises(MalformedError):
        parse_listen(text)


# --- the client's view of a misbehaving witness (an injected transport plays the remote server) ---


def answer(status: int, body: bytes, content_type: str = "text/plain; charset=utf-8") -> httpx.MockTransport:
    return httpx.MockTransport(
        lambda request: httpx.Response(status, content=body, headers={"content-type": content_type})
    )


async def add_via(transport: httpx.MockTransport) -> list[str]:
    async with WitnessClient("http://witness.invalid", timeout=1, transport=transport) as client:
        return await client.add_checkpoint(0, [], LOG.checkpoint(1))


def test_client_reads_answers_strictly() -> None:
    line = "— w.example AAAAAQI=\n"
    assert asyncio.run(add_via(answer(200, (line * 2).encode()))) == [line, line]
    with pytest.raises(ConflictError) as conflict:
        asyncio.run(add_via(answer(409, b"12\n", "text/x.tlog.size")))
    assert conflict.value.known_size == 12 and conflict.value.status == 409
    for bad in [
        answer(409, b"012\n", "text/x.tlog.size"),
        answer(409, b"12", "text/x.tlog.size"),
        answer(409, b"12\n", "text/plain"),
        answer(200, b"not a signature\n"),
        answer(200, b""),
        answer(200, (line + "\n" + line).encode()),
        answer(200, b"x" * (200 * 1024)),
    ]:
        with pytest.raises(WitnessProtocolError):
            asyncio.run(add_via(bad))
    with pytest.raises(WitnessClientError, match="403 invalid signature") as refused:
        asyncio.run(add_via(answer(403, b"invalid signature: no\n")))
    assert refused.value.status == 403 and not isinstance(refused.value, ConflictError)


def test_parse_cosignatures() -> None:
    assert parse_cosignatures("— a.example AAAAAQI=\n".encode()) == ["— a.example AAAAAQI=\n"]
    for bad in [b"\xff", "— a.example AAAAAQI=".encode(), "— a b c\n".encode(), "— a.example AAAA\n".encode()]:
        with pytest.raises(MalformedError):
            parse_cosignatures(bad)


def test_key_names_refuse_exactly_the_unicode_whitespace() -> None:
    """The key-name check (one regex search, not a loop over characters) refuses every character str.isspace calls
    whitespace, and only those (among printable characters), as the loop it replaced did."""
    for code in range(0x110000):
        char = chr(code)
        if char.isspace():
            assert not is_valid_key_name(f"a{char}b"), hex(code)
        elif char.isprintable() and char != "+":
            assert is_valid_key_name(f"a{char}b"), hex(code)
