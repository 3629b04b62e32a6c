"""The stolen-key marker (issue 22): `issuer-retire ... unsafe-from N`, its canonical bytes (vectors in
tests/vectors/registry/unsafe_from.json), the registry's rules, and the flag rule (tlogcore/status.py). A retired
key's documents stay valid; only what a key reported stolen signed at index N or later is flagged."""

import base64
import hashlib
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import VECTORS, load_vectors

from tlogcore.errors import MalformedError, NotAllowedError
from tlogcore.keys import Ed25519Signer
from tlogcore.registry import Registry
from tlogcore.statement import ISSUE, ISSUER_ADD, ISSUER_RETIRE, Statement, parse_statement, sign_statement
from tlogcore.status import VALID, document_status, signed_while_unsafe

FILE = load_vectors("registry/unsafe_from.json")
REGISTRY = Ed25519Signer("log.example.gov.kh-registry", bytes([0x71]) * 32)
ISSUER = Ed25519Signer("moeys.gov.kh", bytes([0x72]) * 32)
ORIGIN = FILE["origin"]


@pytest.mark.parametrize("case", FILE["statements"], ids=[c["name"] for c in FILE["statements"]])
def test_marker_vectors_parse_and_re_sign_to_the_same_bytes(case: dict[str, Any]) -> None:
    data = base64.b64decode(case["signed_b64"])
    statement = parse_statement(data)
    assert statement.kind == ISSUER_RETIRE and statement.text == case["text"]
    assert statement.unsafe_from == case["unsafe_from"] and statement.reason == case["reason"]
    assert statement.issuer == ISSUER.verifier().vkey and statement.signer == REGISTRY.verifier().vkey
    assert sign_statement(statement, REGISTRY) == data  # our encoder gives the vector's bytes


@pytest.mark.parametrize("case", FILE["refused"], ids=[c["name"] for c in FILE["refused"]])
def test_non_canonical_markers_are_refused(case: dict[str, Any]) -> None:
    with pytest.raises(MalformedError):
        parse_statement(base64.b64decode(case["signed_b64"]))


@pytest.mark.parametrize("case", FILE["rule"], ids=[c["name"] for c in FILE["rule"]])
def test_flag_rule_vectors(case: dict[str, Any]) -> None:
    assert signed_while_unsafe(case["signer"], case["index"], case["unsafe_from"]) is case["flagged"]


def test_the_generator_reproduces_the_file(tmp_path: Path) -> None:
    copy = tmp_path / "make_unsafe_from.py"
    copy.write_text((VECTORS / "registry" / "make_unsafe_from.py").read_text(encoding="utf-8"))
    subprocess.run([sys.executable, str(copy)], check=True)
    assert (tmp_path / "unsafe_from.json").read_bytes() == (VECTORS / "registry" / "unsafe_from.json").read_bytes()


def registry_with_issuer() -> Registry:
    """Entry 0 adds the registry's issuer; the issuer signs entries 1.. ."""
    registry = Registry(frozenset({REGISTRY.verifier().vkey}))
    add = Statement(ORIGIN, ISSUER_ADD, REGISTRY.verifier().vkey, 1, issuer=ISSUER.verifier().vkey, ref="MoEYS")
    registry.apply(add, 5)
    return registry


def retire(unsafe_from: int | None) -> Statement:
    vkey = REGISTRY.verifier().vkey
    return Statement(ORIGIN, ISSUER_RETIRE, vkey, 2, issuer=ISSUER.verifier().vkey, unsafe_from=unsafe_from)


def test_the_registry_records_the_marker_and_a_retired_keys_documents_stay_valid() -> None:
    registry = registry_with_issuer()
    registry.apply(retire(40), 50)
    assert registry.unsafe_from() == {ISSUER.verifier().vkey: 40}
    assert not registry.is_active(ISSUER.verifier().vkey)
    issued = Statement(ORIGIN, ISSUE, ISSUER.verifier().vkey, 3, document=hashlib.sha256(b"d").digest())
    assert document_status([issued], registry.continuations()) == VALID  # retire is not revoke
    assert not signed_while_unsafe(issued.signer, 39, registry.unsafe_from())
    assert signed_while_unsafe(issued.signer, 40, registry.unsafe_from())


def test_a_plain_retirement_flags_nothing() -> None:
    registry = registry_with_issuer()
    registry.apply(retire(None), 50)
    assert registry.unsafe_from() == {}
    assert not signed_while_unsafe(ISSUER.verifier().vkey, 49, registry.unsafe_from())


def test_a_marker_before_the_keys_registration_is_refused() -> None:
    registry = registry_with_issuer()
    with pytest.raises(NotAllowedError, match="before the key was registered"):
        registry.check(retire(4))
    registry.check(retire(5))  # its registration entry itself is allowed: everything it signed is flagged


@pytest.mark.parametrize("kind", [ISSUER_ADD, ISSUE])
def test_only_issuer_retire_carries_a_marker(kind: str) -> None:
    vkey = REGISTRY.verifier().vkey
    with pytest.raises(MalformedError, match="unsafe-from"):
        if kind == ISSUE:
            Statement(ORIGIN, kind, vkey, 2, document=b"\0" * 32, unsafe_from=1)
        else:
            Statement(ORIGIN, kind, vkey, 2, issuer=ISSUER.verifier().vkey, unsafe_from=1)
