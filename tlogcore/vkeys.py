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

# The key types each role accepts, as exact classes. A witness's cosignature key (type 0x04) is an Ed25519 key
# underneath and its class subclasses Ed25519Verifier, but it never signs a statement or a checkpoint; nor does
# a log or issuer key cosign. A second issuer algorithm is one Verifier subclass added to STATEMENT_KEYS.
STATEMENT_KEYS: tuple[type[Verifier], ...] = (Ed25519Verifier,)  # issuer and registry keys
LOG_KEYS: tuple[type[Verifier], ...] = (Ed25519Verifier, ECDSAVerifier, RFC6962Verifier)  # ours, and CT logs'
WITNESS_KEYS: tuple[type[Verifier], ...] = (CosignatureV1Verifier, MLDSA44CosignatureVerifier)


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


def check_key_role(verifier: Verifier, accepted: tuple[type[Verifier], ...], what: str) -> Verifier:
    """`verifier`, if its exact type is one `accepted` for this role; else a MalformedError naming both."""
    if type(verifier) not in accepted:
        want = " or ".join(f"0x{cls.key_type:02x}" for cls in accepted)
        raise MalformedError(f"{what}: a type 0x{verifier.key_type:02x} key cannot be used here (want type {want})")
    return verifier


def parse_key_for(vkey: str, accepted: tuple[type[Verifier], ...], what: str) -> Verifier:
    """Parse a vkey for one role (STATEMENT_KEYS, LOG_KEYS, WITNESS_KEYS)."""
    return check_key_role(parse_verifier_key(vkey), accepted, what)
