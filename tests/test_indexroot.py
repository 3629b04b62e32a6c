"""index-root statements (tlogcore.indexroot): signed, parsed strictly, and never mistaken for a document statement."""

import pytest
from corefixtures import NOW, ORIGIN, mini_log

from tlogcore.errors import MalformedError, SignatureError
from tlogcore.indexroot import IndexRoot, parse_index_root, sign_index_root
from tlogcore.keys import Ed25519Signer
from tlogcore.statement import parse_statement
from tlogcore.statusindex import EMPTY

REGISTRY = Ed25519Signer("registry.example.gov.kh", b"\x03" * 32)
GOOD = IndexRoot(ORIGIN, REGISTRY.verifier().vkey, NOW, 42, EMPTY)


def test_sign_and_parse_round_trip() -> None:
    signed = sign_index_root(GOOD, REGISTRY)
    assert parse_index_root(signed) == GOOD
    assert signed.decode().startswith(
        f"tlog-index-root/v1\nlog {ORIGIN}\nsigner {GOOD.signer}\ntime {NOW}\nsize 42\nroot "
    )


def test_a_tampered_signature_is_refused() -> None:
    signed = bytearray(sign_index_root(GOOD, REGISTRY))
    signed[-10] ^= 0x01  # inside the base64 signature
    with pytest.raises((SignatureError, MalformedError)):
        parse_index_root(bytes(signed))


def test_only_the_named_signer_may_sign() -> None:
    other = Ed25519Signer("registry.example.gov.kh", b"\x04" * 32)
    with pytest.raises(ValueError, match="not the index-root's signer"):
        sign_index_root(GOOD, other)


@pytest.mark.parametrize(
    "change",
    [
        {"origin": "has space"},
        {"origin": "a+b"},
        {"time": 0},
        {"size": -1},
        {"size": 2**63},
        {"root": b"\x00" * 31},
        {"signer": "not a vkey"},
    ],
    ids=str,
)
def test_invalid_fields_are_refused(change: dict[str, object]) -> None:
    fields = {**GOOD.__dict__, **change}
    with pytest.raises(MalformedError):
        IndexRoot(**fields)  # type: ignore[arg-type]


def test_it_is_not_a_document_statement_and_the_reverse() -> None:
    signed = sign_index_root(GOOD, REGISTRY)
    with pytest.raises(MalformedError):
        parse_statement(signed)
    assert parse_index_root(signed, check_signature=False) == GOOD
    with pytest.raises(MalformedError):
        parse_index_root(mini_log(1).entries[0])
