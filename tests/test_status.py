"""The document-status rule (tlogcore/status.py) on the shared vectors, tests/vectors/status/status.json; the page
runs the same file in tests/test_web_status.py. And the rule has one home: no other copy in the Python tree."""

import hashlib
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, VECTORS, load_vectors

from tlogcore.keys import Ed25519Signer
from tlogcore.statement import DOCUMENT_KINDS, Statement
from tlogcore.status import counted_revocations, document_status, unshown_registration

VECTORS_FILE = load_vectors("status/status.json")
CASES, KEYS = VECTORS_FILE["cases"], VECTORS_FILE["keys"]
DOCUMENT = hashlib.sha256(b"diploma").digest()
OTHER = Ed25519Signer("someone.example", b"\x09" * 32).verifier().vkey


def vkey(token: str) -> str:
    """One Ed25519 key per token, carrying the key name the vectors give it (several tokens share a name)."""
    return Ed25519Signer(KEYS[token], hashlib.sha256(token.encode()).digest()).verifier().vkey


def statement(wanted: dict[str, str], position: int) -> Statement:
    signer = Ed25519Signer(KEYS[wanted["key"]], hashlib.sha256(wanted["key"].encode()).digest())
    document = DOCUMENT if wanted["kind"] in DOCUMENT_KINDS else None
    issuer = None if document else OTHER
    return Statement("log.example", wanted["kind"], signer.verifier().vkey, 1790000000 + position, document, issuer)


def test_the_vector_file_has_every_status() -> None:
    assert {case["status"] for case in CASES} == {"valid", "revoked", "unknown"}
    assert len(CASES) >= 8


@pytest.mark.parametrize("case", CASES, ids=[case["why"] for case in CASES])
def test_status_vectors(case: dict[str, Any]) -> None:
    statements = [statement(s, i) for i, s in enumerate(case["statements"])]
    continues = {vkey(new): vkey(old) for new, old in case["continues"].items()}
    assert document_status(statements, continues) == case["status"]
    assert bool(counted_revocations(statements, continues)) == (case["status"] == "revoked")


def test_same_named_keys_are_distinct_keys() -> None:
    """The vectors' point: tokens sharing a key name are different keys, so the rule cannot go by name."""
    assert KEYS["A"] == KEYS["X"] and vkey("A") != vkey("X")


def test_the_generator_reproduces_the_file(tmp_path: Path) -> None:
    copy = tmp_path / "make_status.py"
    copy.write_text((VECTORS / "status" / "make_status.py").read_text(encoding="utf-8"))
    subprocess.run([sys.executable, str(copy)], check=True)
    assert (tmp_path / "status.json").read_bytes() == (VECTORS / "status" / "status.json").read_bytes()


def test_no_other_copy_of_the_rule() -> None:
    """The rule's shape: a revoke counts when its signer continues an issuing key. Only status.py has it; and no
    module compares revoke and issue signers by key name any more."""
    shape = re.compile(r"REVOKE and (not \w+\.isdisjoint\(continued_keys|\w+\.signer_verifier\.name in )")
    copies = []
    for package in ("tlogcore", "logserver", "monitor", "tools", "witness"):
        for path in (REPO / package).rglob("*.py"):
            if shape.search(path.read_text(encoding="utf-8")):
                copies.append(str(path.relative_to(REPO)))
    assert copies == ["tlogcore/status.py"]


def test_a_revocation_needs_every_registration_on_its_chain_of_rotations_shown() -> None:
    """K3 continues K2, which continues K1, which issued the document; K3 revoked it. Whether that counts rests on
    both registrations: each one left out is named (tools/verify.py then says "tampered"); a revocation by the
    issuing key itself, or with no issue at all, needs none."""
    k1, k2, k3 = (vkey(token) for token in ("A", "A2", "A3"))
    issued = Statement("log.example", "issue", k1, 1790000000, DOCUMENT)
    revoked = Statement("log.example", "revoke", k3, 1790000001, DOCUMENT)
    continues = {k3: k2, k2: k1}
    assert unshown_registration([issued, revoked], {k1, k2, k3}, continues) is None
    assert unshown_registration([issued, revoked], {k1, k3}, {k3: k2}) == k2
    assert unshown_registration([issued, revoked], {k1, k2}, {k2: k1}) == k3
    by_issuer = Statement("log.example", "revoke", k1, 1790000002, DOCUMENT)
    assert unshown_registration([issued, by_issuer], set(), {}) is None
    assert unshown_registration([revoked], set(), {}) is None
