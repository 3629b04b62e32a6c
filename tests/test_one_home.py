"""Each rule of the protocol has one home (issue 15): RFC 9162 hashing only in tlogcore/merkle.py, tile
authentication only in tlogcore/tileauth.py (the status rule's guard is in test_status.py)."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("tlogcore", "logserver", "witness", "monitor", "tools", "loadtest")
# SHA-256 over 0x00 || x or 0x01 || x: a leaf or node hash (RFC 9162 §2.1.1), however it is spelled.
RFC9162_HASH = re.compile(r"sha256\(\s*b\"\\x0[01]\"\s*\+|b\"\\x0[01]\"\s*\+\s*\w+(\s*\+\s*\w+)?\s*\)\.digest\(\)")
TILE_AUTH = re.compile(r"^(def fold_tile|class TreeView)\b", re.MULTILINE)


def offenders(pattern: re.Pattern[str], home: str) -> list[str]:
    found = []
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            relative = path.relative_to(REPO).as_posix()
            if relative != home and pattern.search(path.read_text(encoding="utf-8")):
                found.append(relative)
    return found


def test_rfc9162_hashing_lives_in_tlogcore_merkle() -> None:
    assert offenders(RFC9162_HASH, "tlogcore/merkle.py") == []
    assert RFC9162_HASH.search((REPO / "tlogcore/merkle.py").read_text())  # the pattern finds the real thing


def test_the_patterns_catch_the_copies_there_were() -> None:
    # What monitor/audit.py and monitor/treeview.py held before issue 15.
    assert RFC9162_HASH.search('leaf = hashlib.sha256(b"\\x00" + data).digest()')
    assert RFC9162_HASH.search('[sha256(b"\\x01" + hashes[i] + hashes[i + 1]).digest() for i in r]')


def test_tile_authentication_lives_in_tlogcore_tileauth() -> None:
    assert offenders(TILE_AUTH, "tlogcore/tileauth.py") == []
    assert TILE_AUTH.search((REPO / "tlogcore/tileauth.py").read_text())
