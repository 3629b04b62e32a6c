"""Verifier-key strings (c2sp.org/signed-note): `<name>+<8 hex key ID>+<base64(type || key)>`.

Strict (DESIGN.md): the key ID must equal the one derived from the key, the hex
is lowercase, and only the types we can verify are accepted.
"""

from tlogcore.cosignature import CosignatureV1Verifier, MLDSA44CosignatureVerifier, RFC6962Verifier
from tlogcore.encoding import b64decode
from tlogcore.errors import MalformedError
from tlogcore.keys import ECDSAVerifier, Ed25519Verifier, Verifier

VERIFIER_TYPES: dict[int, type[Verifier]] = {
    cls.key_type: cls
    for cls in (Ed25519Verifier, ECDSAVerifier, CosignatureV1Verifier, RFC6962Verifier, MLDSA44CosignatureVerifier)
}
MAX_VKEY_SIZE = 4096


def parse_verifier_key(vkey: str) -> Verifier:
    """Parse a vkey; split on the first two '+' only, since base64 may contain '+'."""
    if len(vkey) > MAX_VKEY_SIZE:
        raise MalformedError("verifier key is too long")
    parts = vkey.split("+", 2)
    if len(parts) != 3:
        raise MalformedError(f"verifier key {vkey[:60]!r}: want <name>+<key ID>+<key>")
    name, key_id_hex, key_b64 = parts
    if len(key_id_hex) != 8 or any(c not in "0123456789abcdef" for c in key_id_hex):
        raise MalformedError(f"verifier key {name[:60]!r}: key ID must be 8 lowercase hex digits")
    raw = b64decode(key_b64, f"verifier key {name[:60]!r}")
    if not raw or raw[0] not in VERIFIER_TYPES:
        raise MalformedError(f"verifier key {name[:60]!r}: unknown key type")
    verifier = VERIFIER_TYPES[raw[0]](name, raw[1:], int(key_id_hex, 16))
    if verifier.key_id != verifier.expected_key_id():
        raise MalformedError(f"verifier key {name[:60]!r}: key ID does not match the key")
    return verifier
