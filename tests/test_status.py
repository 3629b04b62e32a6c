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
from tlogcore.status import counted_revocations, document_status

CASES = load_vectors("status/status.json")["cases"]
DOCUMENT = hashlib.sha256(b"diploma").digest()
OTHER = Ed25519Signer("someone.example", b"\x09" * 32).verifier().vkey


def statement(wanted: dict[str, str], position: int) -> Statement:
    signer = Ed25519Signer(wanted["issuer"], hashlib.sha256(wanted["issuer"].encode()).digest())
    document = DOCUMENT if wanted["kind"] in DOCUMENT_KINDS else None
    issuer = None if document else OTHER
    return Statement("log.example", wanted["kind"], signer.verifier().vkey, 1790000000 + position, document, issuer)


def test_the_vector_file_has_every_status() -> None:
    assert {case["status"] for case in CASES} == {"valid", "revoked", "unknown"}
    assert len(CASES) >= 8


@pytest.mark.parametrize("case", CASES, ids=[case["why"] for case in CASES])
def test_status_vectors(case: dict[str, Any]) -> None:
    statements = [statement(s, i) for i, s in enumerate(case["statements"])]
    assert document_status(statements) == case["status"]
    if case["status"] == "revoked":
        assert counted_revocations(statements)


def test_the_generator_reproduces_the_file(tmp_path: Path) -> None:
    copy = tmp_path / "make_status.py"
    copy.write_text((VECTORS / "status" / "make_status.py").read_text(encoding="utf-8"))
    subprocess.run([sys.executable, str(copy)], check=True)
    assert (tmp_path / "status.json").read_bytes() == (VECTORS / "status" / "status.json").read_bytes()


def test_no_other_copy_of_the_rule() -> None:
    """The rule's shape: a revoke counts when its signer's key name is among the issuers'. Only status.py has it."""
    shape = re.compile(r"REVOKE and \w+\.signer_verifier\.name in ")
    copies = []
    for package in ("tlogcore", "logserver", "monitor", "tools", "witness"):
        for path in (REPO / package).rglob("*.py"):
            if shape.search(path.read_text(encoding="utf-8")):
                copies.append(str(path.relative_to(REPO)))
    assert copies == ["tlogcore/status.py"]
