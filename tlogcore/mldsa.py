"""ML-DSA-44 cosigning for post-quantum witnesses (c2sp.org/tlog-cosignature@v1.1.0, type 0x06; FIPS 204).

A line's signature bytes, after the 4-byte key ID:
    timestamp (uint64 BE, POSIX seconds) || ML-DSA-44 signature (2420 bytes, empty context)
over `tlogcore.cosignature.subtree_message` (the binary "subtree/v1" message; start 0, end = the tree size).
Key ID = SHA-256(name || 0x0A || 0x06 || public key (1312 bytes))[:4]; vkey `<name>+<id>+base64(0x06 || key)`.

The private key is the 32-byte FIPS 204 seed, kept in the form Go uses for Ed25519 keys with the type byte
changed: `PRIVATE+KEY+<name>+<hex key ID>+base64(0x06 || seed)`. ML-DSA signing is hedged (randomised): the
same text signed twice gives two different, equally valid lines.
"""

from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric import mldsa

from tlogcore.checkpoint import parse_checkpoint
from tlogcore.cosignature import MLDSA44_SUBTREE, MLDSA44CosignatureVerifier, subtree_message
from tlogcore.encoding import MAX_INT64, b64decode, b64encode
from tlogcore.errors import MalformedError
from tlogcore.keys import Signer, check_key_name

MLDSA44_SEED_SIZE = 32


class MLDSA44CosignatureSigner(Signer):
    """A witness's post-quantum cosigning key: a FIPS 204 seed, its name, and a clock for the timestamp."""

    def __init__(self, name: str, seed: bytes, clock: Callable[[], float]) -> None:
        if len(seed) != MLDSA44_SEED_SIZE:
            raise MalformedError(f"ML-DSA-44 seed is {len(seed)} bytes, want {MLDSA44_SEED_SIZE}")
        self.name = check_key_name(name)
        self.seed = seed
        self._key = mldsa.MLDSA44PrivateKey.from_seed_bytes(seed)
        self.public_key = self._key.public_key().public_bytes_raw()
        self._verifier = MLDSA44CosignatureVerifier(self.name, self.public_key)
        self.key_id = self._verifier.key_id
        self._clock = clock

    def sign(self, text: bytes) -> bytes:
        timestamp = int(self._clock())
        if not 0 < timestamp <= MAX_INT64:
            raise ValueError(f"clock gave an unusable timestamp {timestamp}")
        checkpoint = parse_checkpoint(text.decode())
        stamp = timestamp.to_bytes(8, "big")
        message = subtree_message(self.name, stamp, checkpoint.origin, checkpoint.size, checkpoint.root)
        if message is None:
            raise MalformedError("checkpoint origin or key name is longer than 255 bytes: no ML-DSA-44 cosignature")
        return stamp + self._key.sign(message)

    def verifier(self) -> MLDSA44CosignatureVerifier:
        return self._verifier


def generate_mldsa44_seed() -> bytes:
    return mldsa.MLDSA44PrivateKey.generate().private_bytes_raw()


def format_mldsa44_key(signer: MLDSA44CosignatureSigner) -> str:
    """`PRIVATE+KEY+<name>+<hex ID>+base64(0x06 || seed)`: the seed is the whole secret (FIPS 204 §6.1)."""
    return f"PRIVATE+KEY+{signer.name}+{signer.key_id:08x}+{b64encode(bytes([MLDSA44_SUBTREE]) + signer.seed)}"


def parse_mldsa44_key(text: str, clock: Callable[[], float]) -> MLDSA44CosignatureSigner:
    """Parse the private-key string strictly: type 0x06, a 32-byte seed, and the key ID of the derived key."""
    parts = text.split("+", 4)
    if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
        raise MalformedError("private key: want PRIVATE+KEY+<name>+<id>+<key>")
    _, _, name, key_id_hex, key_b64 = parts
    raw = b64decode(key_b64, "private key")
    if len(raw) != 1 + MLDSA44_SEED_SIZE or raw[0] != MLDSA44_SUBTREE:
        raise MalformedError("private key: want an ML-DSA-44 seed of type 0x06")
    signer = MLDSA44CosignatureSigner(name, raw[1:], clock)
    if len(key_id_hex) != 8 or f"{signer.key_id:08x}" != key_id_hex:
        raise MalformedError("private key: key ID does not match the key")
    return signer
