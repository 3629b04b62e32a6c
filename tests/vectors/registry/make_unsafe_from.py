"""Writes tests/vectors/registry/unsafe_from.json: the stolen-key marker (issue 22).

* `statements`: `issuer-retire` statements with `unsafe-from N`, as canonical signed bytes (Ed25519 is
  deterministic: fixed seeds give fixed bytes), and mutations that every parser must refuse. The canonical text of
  each is written here by hand, line by line, not produced by the code under test; the signature is made with
  `cryptography` directly.
* `rule`: cases of the flag rule (tlogcore/status.py `signed_while_unsafe`, verify.js `signedWhileUnsafe`), with the
  answer written by hand: a statement by key K at log index I is flagged when K was retired with unsafe-from N and
  I >= N.

Run: .venv/bin/python tests/vectors/registry/make_unsafe_from.py
The file drives tests/test_unsafe_from.py (Python) and tests/test_web_unsafe_from.py (the page in Chromium)."""

import base64
import hashlib
import json
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

ORIGIN = "log.example.gov.kh/documents"


def key(name: str, fill: int) -> tuple[ed25519.Ed25519PrivateKey, str]:
    private = ed25519.Ed25519PrivateKey.from_private_bytes(bytes([fill]) * 32)
    public = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    key_id = hashlib.sha256(name.encode() + b"\n\x01" + public).digest()[:4]
    material = base64.b64encode(bytes([0x01]) + public).decode()
    return private, f"{name}+{key_id.hex()}+{material}"


REGISTRY, REGISTRY_VKEY = key("log.example.gov.kh-registry", 0x71)
_, ISSUER_VKEY = key("moeys.gov.kh", 0x72)
_, OTHER_VKEY = key("other.gov.kh", 0x73)


def signed(text: str) -> str:
    """The signed note bytes (c2sp.org/signed-note): text, a blank line, one Ed25519 signature line."""
    name, key_id = REGISTRY_VKEY.split("+")[0], bytes.fromhex(REGISTRY_VKEY.split("+")[1])
    signature = REGISTRY.sign(text.encode())
    line = f"\u2014 {name} {base64.b64encode(key_id + signature).decode()}\n"
    return base64.b64encode((text + "\n" + line).encode()).decode()


def retire_text(*extra: str) -> str:
    lines = [
        "tlog-statement/v1",
        f"log {ORIGIN}",
        "kind issuer-retire",
        f"signer {REGISTRY_VKEY}",
        "time 1790000000",
        f"issuer {ISSUER_VKEY}",
        *extra,
    ]
    return "".join(line + "\n" for line in lines)


def main() -> None:
    valid = [
        ("stolen from entry 40", retire_text("unsafe-from 40"), 40, None),
        ("stolen from entry 0", retire_text("unsafe-from 0"), 0, None),
        (
            "stolen, with a reason",
            retire_text("unsafe-from 7", "reason key stolen from the office"),
            7,
            "key stolen from the office",
        ),
        ("retired, not stolen", retire_text("reason retired after 10 years"), None, "retired after 10 years"),
    ]
    add_text = retire_text().replace("kind issuer-retire", "kind issuer-add")
    refused = [
        ("leading zero", retire_text("unsafe-from 040")),
        ("a sign", retire_text("unsafe-from +40")),
        ("not a number", retire_text("unsafe-from forty")),
        ("empty", retire_text("unsafe-from ")),
        ("beyond 2^63-1", retire_text("unsafe-from 9223372036854775808")),
        ("after reason (field order)", retire_text("reason stolen", "unsafe-from 40")),
        ("twice", retire_text("unsafe-from 40", "unsafe-from 41")),
        ("on an issuer-add", add_text + "unsafe-from 40\n"),
        ("spelled with an underscore", retire_text("unsafe_from 40")),
    ]
    rule = [
        ("the marker's own index is flagged", ISSUER_VKEY, 40, {ISSUER_VKEY: 40}, True),
        ("after the marker: flagged", ISSUER_VKEY, 41, {ISSUER_VKEY: 40}, True),
        ("before the marker: stays valid", ISSUER_VKEY, 39, {ISSUER_VKEY: 40}, False),
        ("a retired key without a marker flags nothing", ISSUER_VKEY, 41, {}, False),
        ("another key's marker does not flag this key", OTHER_VKEY, 99, {ISSUER_VKEY: 40}, False),
        ("a marker at 0 flags everything the key signed", ISSUER_VKEY, 0, {ISSUER_VKEY: 0}, True),
    ]
    document = {
        "description": "issuer-retire with unsafe-from N (the stolen-key marker) and the rule that flags what the key "
        "signed at index >= N. Made by make_unsafe_from.py from fixed seeds; texts and answers written by hand.",
        "origin": ORIGIN,
        "registry_vkey": REGISTRY_VKEY,
        "statements": [
            {"name": n, "text": t, "signed_b64": signed(t), "unsafe_from": u, "reason": r} for n, t, u, r in valid
        ],
        "refused": [{"name": n, "text": t, "signed_b64": signed(t)} for n, t in refused],
        "rule": [{"name": n, "signer": k, "index": i, "unsafe_from": m, "flagged": f} for n, k, i, m, f in rule],
    }
    out = Path(__file__).with_name("unsafe_from.json")
    out.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
