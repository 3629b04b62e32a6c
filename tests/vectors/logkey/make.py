"""Writes tests/vectors/logkey/logkey.json: `tlog-log-key/v1` statements (tlogcore/logkey.py), good and mutated.
Deterministic keys, so a re-run gives the same file (tests/test_logkey.py checks that).
Run: .venv/bin/python tests/vectors/logkey/make.py"""

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from corefixtures import NOW, ORIGIN  # noqa: E402

from tlogcore.keys import Ed25519Signer  # noqa: E402
from tlogcore.logkey import LogKeyRotation, sign_log_key_rotation  # noqa: E402
from tlogcore.note import sign_note  # noqa: E402

OLD = Ed25519Signer(ORIGIN, b"\x01" * 32)  # corefixtures' log key
NEW = Ed25519Signer(ORIGIN, b"\x05" * 32)
REGISTRY = Ed25519Signer(f"{ORIGIN}/registry", b"\x03" * 32)
GOOD = LogKeyRotation(ORIGIN, OLD.verifier().vkey, NEW.verifier().vkey, REGISTRY.verifier().vkey, NOW, 21, 25)


def good() -> list[dict[str, object]]:
    no_overlap = LogKeyRotation(GOOD.origin, GOOD.old, GOOD.new, GOOD.registry, NOW + 1, 30, 30)
    return [
        {
            "statement": sign_log_key_rotation(s, OLD, REGISTRY).decode(),
            "origin": s.origin,
            "old": s.old,
            "new": s.new,
            "registry": s.registry,
            "time": s.time,
            "from": s.start,
            "until": s.until,
        }
        for s in (GOOD, no_overlap)
    ]


def bad() -> list[dict[str, str]]:
    text = GOOD.text
    signed = sign_log_key_rotation(GOOD, OLD, REGISTRY).decode()
    other = Ed25519Signer(ORIGIN, b"\x06" * 32)

    swapped = text.replace(f"time {NOW}\nfrom 21\n", f"from 21\ntime {NOW}\n")

    def resigned(new_text: str) -> str:
        return sign_note(new_text, [OLD, REGISTRY]).decode()

    return [
        {"why": "registry signature only", "statement": sign_note(text, [REGISTRY]).decode()},
        {"why": "old log key signature only", "statement": sign_note(text, [OLD]).decode()},
        {"why": "signatures in the wrong order", "statement": sign_note(text, [REGISTRY, OLD]).decode()},
        {"why": "signed by the new key instead of the old", "statement": sign_note(text, [NEW, REGISTRY]).decode()},
        {"why": "signed by another key of the log's name", "statement": sign_note(text, [other, REGISTRY]).decode()},
        {"why": "a third signature", "statement": sign_note(text, [OLD, REGISTRY, NEW]).decode()},
        {"why": "changed from after signing", "statement": signed.replace("from 21", "from 22")},
        {"why": "bad header", "statement": resigned(text.replace("tlog-log-key/v1", "tlog-log-key/v2"))},
        {"why": "until before from", "statement": resigned(text.replace("until 25", "until 20"))},
        {"why": "from zero", "statement": resigned(text.replace("from 21", "from 0"))},
        {"why": "non-canonical number", "statement": resigned(text.replace("from 21", "from 021"))},
        {"why": "new key is the old key", "statement": resigned(text.replace(GOOD.new, GOOD.old))},
        {"why": "lines out of order", "statement": resigned(swapped)},
        {"why": "a missing line", "statement": resigned(text.replace(f"time {NOW}\n", ""))},
        {
            "why": "new key named after another log",
            "statement": resigned(text.replace(GOOD.new, Ed25519Signer("other.example", b"\x05" * 32).verifier().vkey)),
        },
        {"why": "trailing byte", "statement": signed + "\n"},
    ]


def vectors() -> dict[str, object]:
    return {"header": "tlog-log-key/v1", "good": good(), "bad": bad()}


if __name__ == "__main__":
    (HERE / "logkey.json").write_text(json.dumps(vectors(), indent=1, ensure_ascii=False) + "\n")
