"""Keys for `tlog keygen`: issuer, log, registry and witness keys, and the verifier key each one publishes.

Private keys are Go's `PRIVATE+KEY+<name>+<id>+<base64>` strings (tlogcore.keys); cli.py writes them
owner-only (0600, O_EXCL: never overwrites) and refuses to read one that others can read.
Witnesses cosign with type 0x04 (tlog-cosignature), so a witness key's verifier key is of that type;
the other kinds sign notes or statements with plain Ed25519 (type 0x01).
"""

from tlogcore.cosignature import CosignatureV1Signer
from tlogcore.keys import Ed25519Signer, check_key_name, format_signer_key, generate_ed25519_seed

KINDS = ("issuer", "log", "registry", "witness")


def vkey_for(signer: Ed25519Signer, kind: str) -> str:
    if kind == "witness":
        return CosignatureV1Signer(signer.name, signer.seed, lambda: 0.0).verifier().vkey
    return signer.verifier().vkey


def new_key(name: str, kind: str) -> tuple[str, str]:
    """(private key file text, verifier key) for a fresh key."""
    signer = Ed25519Signer(check_key_name(name), generate_ed25519_seed())
    return format_signer_key(signer) + "\n", vkey_for(signer, kind)
