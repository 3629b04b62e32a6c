"""Writes tests/vectors/status/status.json: cases of the document-status rule (tlogcore/status.py), each with the
status expected, written here by hand from the rule's text, never computed by the code under test.
Run: .venv/bin/python tests/vectors/status/make_status.py

The file drives the Python test (tests/test_status.py) and the page's JavaScript in headless Chromium
(tests/test_web_status.py), so the server, `tlog verify` and the page cannot drift apart."""

import json
from pathlib import Path

A, B = "moeys.gov.kh", "other.gov.kh"
REGISTRY = "log.example/registry"


def s(kind: str, issuer: str) -> dict[str, str]:
    return {"kind": kind, "issuer": issuer}


CASES = [
    ("nothing about the document", [], "unknown"),
    ("issued", [s("issue", A)], "valid"),
    ("issued, then revoked by its issuer", [s("issue", A), s("revoke", A)], "revoked"),
    ("a revocation by another issuer does not count", [s("issue", A), s("revoke", B)], "valid"),
    ("a revocation alone is not an issue", [s("revoke", A)], "unknown"),
    ("order does not matter", [s("revoke", A), s("issue", A)], "revoked"),
    ("issued twice by two issuers, one revokes its own", [s("issue", A), s("issue", B), s("revoke", B)], "revoked"),
    ("issued twice by one issuer, neither revoked", [s("issue", A), s("issue", A)], "valid"),
    ("registry statements are ignored", [s("issuer-add", REGISTRY), s("issue", A)], "valid"),
    ("only registry statements", [s("issuer-add", REGISTRY), s("issuer-retire", REGISTRY)], "unknown"),
]


def main() -> None:
    cases = [{"why": why, "statements": statements, "status": status} for why, statements, status in CASES]
    text = json.dumps({"rule": "tlogcore/status.py", "cases": cases}, indent=1, ensure_ascii=False) + "\n"
    (Path(__file__).resolve().parent / "status.json").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
