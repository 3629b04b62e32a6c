"""Writes tests/vectors/status/status.json: cases of the document-status rule (tlogcore/status.py), each with the
status expected, written here by hand from the rule's text, never computed by the code under test.
Run: .venv/bin/python tests/vectors/status/make_status.py

The file drives the Python test (tests/test_status.py) and the page's JavaScript in headless Chromium
(tests/test_web_status.py), so the server, `tlog verify` and the page cannot drift apart."""

import json
from pathlib import Path

# Keys are named by a token; KEYS gives the key name each token's key carries. Two tokens may carry one key name:
# names are not identity. The tests make one Ed25519 key per token; the page takes the tokens as they are.
KEYS = {
    "A": "moeys.gov.kh",  # the ministry's first key
    "A2": "moeys.gov.kh",  # its new key, registered as continuing A
    "A3": "moeys.gov.kh",  # a later key, continuing A2
    "X": "moeys.gov.kh",  # another issuer's key carrying the ministry's key name
    "B": "other.gov.kh",
    "R": "log.example-registry",
}
ROTATIONS = {"A2": "A", "A3": "A2"}  # registered continuations: new key -> the key it continues


def s(kind: str, key: str) -> dict[str, str]:
    return {"kind": kind, "key": key}


NONE: dict[str, str] = {}
CASES = [
    ("nothing about the document", [], NONE, "unknown"),
    ("issued", [s("issue", "A")], NONE, "valid"),
    ("issued, then revoked by its issuing key", [s("issue", "A"), s("revoke", "A")], NONE, "revoked"),
    ("a revocation by another issuer does not count", [s("issue", "A"), s("revoke", "B")], NONE, "valid"),
    ("a revocation alone is not an issue", [s("revoke", "A")], NONE, "unknown"),
    ("order does not matter", [s("revoke", "A"), s("issue", "A")], NONE, "revoked"),
    (
        "issued by two issuers, one revokes its own",
        [s("issue", "A"), s("issue", "B"), s("revoke", "B")],
        NONE,
        "revoked",
    ),
    ("issued twice by one key, neither revoked", [s("issue", "A"), s("issue", "A")], NONE, "valid"),
    ("registry statements are ignored", [s("issuer-add", "R"), s("issue", "A")], NONE, "valid"),
    ("only registry statements", [s("issuer-add", "R"), s("issuer-retire", "R")], NONE, "unknown"),
    ("another key with the issuer's key name cannot revoke", [s("issue", "A"), s("revoke", "X")], ROTATIONS, "valid"),
    ("the key that continues the issuing key can revoke", [s("issue", "A"), s("revoke", "A2")], ROTATIONS, "revoked"),
    ("continuation is followed through rotations", [s("issue", "A"), s("revoke", "A3")], ROTATIONS, "revoked"),
    ("an older key cannot revoke what its successor issued", [s("issue", "A2"), s("revoke", "A")], ROTATIONS, "valid"),
    (
        "without the registry's continuation the new key cannot revoke",
        [s("issue", "A"), s("revoke", "A2")],
        NONE,
        "valid",
    ),
    ("a continuation of another key does not help", [s("issue", "B"), s("revoke", "A2")], ROTATIONS, "valid"),
    # Issue 17: a revocation is final. A later issue statement by the same key (what `tlog submit --reissue` used to
    # log) does not re-validate: a thief of the issuing key could otherwise undo every revocation (docs/trust.md).
    (
        "a revocation is final: issuing again does not undo it",
        [s("issue", "A"), s("revoke", "A"), s("issue", "A")],
        NONE,
        "revoked",
    ),
    (
        "nor does issuing again with the continuing key",
        [s("issue", "A"), s("revoke", "A"), s("issue", "A2")],
        ROTATIONS,
        "revoked",
    ),
]


def main() -> None:
    cases = [
        {"why": why, "statements": statements, "continues": continues, "status": status}
        for why, statements, continues, status in CASES
    ]
    data = {"rule": "tlogcore/status.py", "keys": KEYS, "cases": cases}
    text = json.dumps(data, indent=1, ensure_ascii=False) + "\n"
    (Path(__file__).resolve().parent / "status.json").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
