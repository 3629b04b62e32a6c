"""Timestamped checkpoint signatures: cosignatures (c2sp.org/tlog-cosignature@v1.0.1) and friends.

Type 0x04, Ed25519 cosignature/v1. Signature bytes after the key ID:
    timestamp (uint64 BE, POSIX seconds) || Ed25519 signature (64)
over the message
    cosignature/v1\n
    time <timestamp>\n
    <checkpoint text, extension lines included>

Type 0x06, ML-DSA-44 subtree cosignature (tlog-cosignature v1.1.0): verified
here; witnesses sign it with `tlogcore.mldsa.MLDSA44CosignatureSigner`, which
builds its message with the same `subtree_message`.

Type 0x05, RFC 6962 TreeHeadSignature (c2sp.org/static-ct-api): a CT log's
checkpoint signature; verified so that CT checkpoints open here too.
"""

import hashlib
from collections.abc import Callable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, mldsa

from tlogcore.checkpoint import parse_checkpoint
from tlogcore.encoding import MAX_INT64
from tlogcore.errors import MalformedError
from tlogcore.keys import ECDSAVerifier, Ed25519Signer, Ed25519Verifier, Verifier, key_id_for

COSIGNATURE_V1 = 0x04
RFC6962_STH = 0x05
MLDSA44_SUBTREE = 0x06
MAX_FUTURE_SKEW = 600  # DESIGN.md: cosignatures more than 10 minutes in the future are not trusted


def cosignature_message(checkpoint_text: bytes, timestamp: int) -> bytes:
    return b"cosignature/v1\ntime " + str(timestamp).encode() + b"\n" + checkpoint_text


def signature_timestamp(signature: bytes) -> int:
    """The timestamp at the front of a type 0x04/0x05/0x06 signature (after the key ID)."""
    if len(signature) < 8:
        raise MalformedError("timestamped signature is shorter than 8 bytes")
    return int.from_bytes(signature[:8], "big")


def subtree_message(name: str, timestamp: bytes, origin: str, size: int, root: bytes) -> bytes | None:
    """The binary message an ML-DSA-44 cosignature signs, for a whole checkpoint (start 0, end = size), or None
    when a length does not fit its field (tlog-cosignature v1.1.0, "subtree/v1"; integers big-endian):

        "subtree/v1\n\0" || u8 len || cosigner name || u64 timestamp || u8 len || origin || u64 0 || u64 size || root
    """
    name_bytes, origin_bytes = name.encode(), origin.encode()
    if len(name_bytes) > 255 or len(origin_bytes) > 255 or len(timestamp) != 8 or not 0 <= size < 2**64:
        return None
    return (
        b"subtree/v1\n\x00"
        + bytes([len(name_bytes)])
        + name_bytes
        + timestamp
        + bytes([len(origin_bytes)])
        + origin_bytes
        + (0).to_bytes(8, "big")
        + size.to_bytes(8, "big")
        + root
    )


class CosignatureV1Verifier(Ed25519Verifier):
    """Type 0x04: an Ed25519 key (its own key ID) verifying cosignature/v1 messages."""

    key_type = COSIGNATURE_V1
    signature_size = 8 + 64  # timestamp, then the Ed25519 signature

    def verify(self, text: bytes, signature: bytes) -> bool:
        if len(signature) != 8 + 64:
            return False
        timestamp = signature_timestamp(signature)
        if timestamp > MAX_INT64:  # tlog-cosignature: the timestamp must be below 2^63
            return False
        return super().verify(cosignature_message(text, timestamp), signature[8:])


class CosignatureV1Signer(Ed25519Signer):
    """A witness's cosigning key: the same Ed25519 seed, type 0x04, and a clock for the timestamp."""

    def __init__(self, name: str, seed: bytes, clock: Callable[[], float]) -> None:
        super().__init__(name, seed)
        self.key_id = key_id_for(self.name, COSIGNATURE_V1, self.public_key)
        self._clock = clock

    def sign(self, text: bytes) -> bytes:
        timestamp = int(self._clock())
        if not 0 < timestamp <= MAX_INT64:
            raise ValueError(f"clock gave an unusable timestamp {timestamp}")
        return timestamp.to_bytes(8, "big") + super().sign(cosignature_message(text, timestamp))

    def verifier(self) -> CosignatureV1Verifier:
        return CosignatureV1Verifier(self.name, self.public_key)


class MLDSA44CosignatureVerifier(Verifier):
    """Type 0x06: ML-DSA-44 over the binary subtree/v1 message, for a whole checkpoint (start 0)."""

    key_type = MLDSA44_SUBTREE

    def __init__(self, name: str, material: bytes, key_id: int | None = None) -> None:
        if len(material) != 1312:
            raise MalformedError(f"ML-DSA-44 public key is {len(material)} bytes, want 1312")
        super().__init__(name, material, key_id)
        self._key = mldsa.MLDSA44PublicKey.from_public_bytes(material)

    def verify(self, text: bytes, signature: bytes) -> bool:
        if len(signature) != 8 + 2420:
            return False
        try:
            checkpoint = parse_checkpoint(text.decode())
        except (MalformedError, UnicodeDecodeError):
            return False
        message = subtree_message(self.name, signature[:8], checkpoint.origin, checkpoint.size, checkpoint.root)
        if message is None:
            return False
        try:
            self._key.verify(signature[8:], message)
        except InvalidSignature:
            return False
        return True


class RFC6962Verifier(ECDSAVerifier):
    """Type 0x05: an RFC 6962 TreeHeadSignature (ECDSA P-256) carried in a note (static-ct-api)."""

    key_type = RFC6962_STH

    def expected_key_id(self) -> int:
        return key_id_for(self.name, self.key_type, hashlib.sha256(self.material).digest())

    def verify(self, text: bytes, signature: bytes) -> bool:
        # timestamp_ms(8) || hash_alg(1)=4 sha256 || sig_alg(1)=3 ecdsa || uint16 length || DER signature
        if len(signature) < 12 or signature[8:10] != b"\x04\x03":
            return False
        if int.from_bytes(signature[10:12], "big") != len(signature) - 12:
            return False
        try:
            checkpoint = parse_checkpoint(text.decode())
        except (MalformedError, UnicodeDecodeError):
            return False
        if checkpoint.extensions or checkpoint.size > 2**64 - 1:
            return False
        signed = b"\x00\x01" + signature[:8] + checkpoint.size.to_bytes(8, "big") + checkpoint.root
        try:
            self._key.verify(signature[12:], signed, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return False
        return True
