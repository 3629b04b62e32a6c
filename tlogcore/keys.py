"""Signers and verifiers for C2SP signed notes (c2sp.org/signed-note@v1.0.0), Ed25519 first.

Every signature type lives behind the same two small classes, so a second
algorithm (ML-DSA-44 for post-quantum) is one more subclass, not a rewrite:

* a `Verifier` knows its key name, 4-byte key ID and type, and checks the
  signature bytes that follow the key ID in a signature line; fixed-size
  algorithms also say their key and signature sizes (`key_size`,
  `signature_size`), which compact encodings read instead of hard-coding;
* a `Signer` makes those bytes.

Which key types a role accepts (statement signer, log, witness) is decided in
one place, `tlogcore.vkeys`, by exact class.

Key ID = SHA-256(name || 0x0A || type || public key)[:4] (signed-note §"Signatures").
Verifier key string: `<name>+<8 hex key ID>+<base64(type || key material)>`.
"""

import functools
import hashlib
import re
from abc import ABC, abstractmethod
from typing import ClassVar

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from nacl._sodium import ffi as _ffi  # type: ignore[import-not-found]  # PyNaCl's cffi module, no stubs:
from nacl._sodium import lib as _sodium  # nacl.bindings calls libsodium by it
from nacl.signing import SigningKey

from tlogcore.encoding import b64decode, b64encode
from tlogcore.errors import MalformedError

ED25519 = 0x01
ECDSA = 0x02
ED25519_SEED_SIZE = 32


_WHITESPACE = re.compile(r"\s")  # exactly str.isspace (both are Py_UNICODE_ISSPACE), in one C call per name


@functools.lru_cache(maxsize=4096)
def is_valid_key_name(name: str) -> bool:
    """Non-empty, no Unicode whitespace, no '+' (signed-note §"Signatures"). Cached: every signature line of a
    signer's statements names the same key."""
    return bool(name) and "+" not in name and _WHITESPACE.search(name) is None and name.isprintable()


def check_key_name(name: str) -> str:
    if not is_valid_key_name(name) or len(name.encode()) > 255:
        raise MalformedError(f"invalid key name {name[:40]!r}")
    return name


def key_id_for(name: str, key_type: int, material: bytes) -> int:
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([key_type]) + material).digest()
    return int.from_bytes(digest[:4], "big")


class Verifier(ABC):
    """Checks one key's signatures. `material` is the key as it appears in the vkey after the type byte."""

    key_type: int
    key_size: ClassVar[int | None] = None  # bytes of `material`, when the algorithm fixes it
    signature_size: ClassVar[int | None] = None  # bytes after the key ID, when the algorithm fixes it

    def __init__(self, name: str, material: bytes, key_id: int | None = None) -> None:
        self.name = check_key_name(name)
        self.material = material
        self.key_id = self.expected_key_id() if key_id is None else key_id

    def expected_key_id(self) -> int:
        return key_id_for(self.name, self.key_type, self.material)

    @property
    def vkey(self) -> str:
        return f"{self.name}+{self.key_id:08x}+{b64encode(bytes([self.key_type]) + self.material)}"

    @abstractmethod
    def verify(self, text: bytes, signature: bytes) -> bool:
        """Whether `signature` (the bytes after the key ID) is valid for note text `text`."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.vkey!r})"


class Signer(ABC):
    """Makes one key's signatures: the bytes that follow the key ID in a signature line."""

    name: str
    key_id: int

    @abstractmethod
    def sign(self, text: bytes) -> bytes: ...

    @abstractmethod
    def verifier(self) -> Verifier: ...


def libsodium_verifies(key: bytes, text: bytes, signature: bytes) -> bool:
    """libsodium's verdict on an Ed25519 signature (64 bytes), called as `nacl.bindings.crypto_sign_open` calls
    it but with no buffer for the message: libsodium (crypto_sign_ed25519_open) then checks the signature and
    copies nothing out. The check PyNaCl's `VerifyKey.verify` makes, without its type checks, buffers and copy
    (issue 20, sixth round: 1-1.5 of 54 µs; tests/test_ed25519_edges.py holds it to `VerifyKey.verify`)."""
    if len(key) != 32 or len(signature) != 64:  # libsodium reads exactly these sizes from the pointers
        return False
    return bool(_sodium.crypto_sign_open(_ffi.NULL, _ffi.NULL, signature + text, 64 + len(text), key) == 0)


class Ed25519Verifier(Verifier):
    """Type 0x01: pure Ed25519 over the note text.

    libsodium (PyNaCl) checks first: it verifies about twice as fast as `cryptography` (OpenSSL) here
    (loadtest/core_bench.py). It is also stricter: it refuses small-order public keys and R points and
    non-canonical key encodings, which OpenSSL and Go's crypto/ed25519 (the interop reference) accept when the
    cofactorless equation holds (RFC 8032 §5.1.7 leaves both choices open). So a refusal is confirmed by
    OpenSSL: the verdict is exactly OpenSSL's, as before (tests/test_ed25519_edges.py), and only invalid
    signatures pay for two checks.
    """

    key_type = ED25519
    key_size = 32
    signature_size = 64

    def __init__(self, name: str, material: bytes, key_id: int | None = None) -> None:
        if len(material) != 32:
            raise MalformedError(f"Ed25519 public key is {len(material)} bytes, want 32")
        super().__init__(name, material, key_id)
        self._key = ed25519.Ed25519PublicKey.from_public_bytes(material)

    def verify(self, text: bytes, signature: bytes) -> bool:
        if len(signature) != 64:
            return False
        if libsodium_verifies(self.material, text, signature):
            return True
        try:  # libsodium's extra refusals (see the class comment): OpenSSL decides, as it always did
            self._key.verify(signature, text)
        except InvalidSignature:
            return False
        return True


class Ed25519Signer(Signer):
    """Type 0x01 signer. Ed25519 is deterministic: the same key and text give the same line.

    libsodium (PyNaCl) signs: about twice as fast as `cryptography` (OpenSSL) here (21 against 39 µs a signature,
    docs/performance.md "The witness"), and, Ed25519 being deterministic (RFC 8032 §5.1.6), byte for byte the same
    signature (tests/test_ed25519_signing.py). `cryptography` still derives the public key from the seed.
    """

    def __init__(self, name: str, seed: bytes) -> None:
        if len(seed) != ED25519_SEED_SIZE:
            raise MalformedError(f"Ed25519 seed is {len(seed)} bytes, want {ED25519_SEED_SIZE}")
        self.name = check_key_name(name)
        self.seed = seed
        self._key = ed25519.Ed25519PrivateKey.from_private_bytes(seed)
        self.public_key = self._key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.key_id = key_id_for(self.name, ED25519, self.public_key)
        self._fast = SigningKey(seed)

    def sign(self, text: bytes) -> bytes:
        return self._fast.sign(text).signature

    def verifier(self) -> Ed25519Verifier:
        return Ed25519Verifier(self.name, self.public_key)


class ECDSAVerifier(Verifier):
    """Type 0x02 (transparency-dev): ECDSA P-256 over SHA-256 of the text; key ID = SHA-256(DER SPKI)[:4]."""

    key_type = ECDSA

    def __init__(self, name: str, material: bytes, key_id: int | None = None) -> None:
        try:
            key = serialization.load_der_public_key(material)
        except (ValueError, UnsupportedAlgorithm) as exc:  # found by fuzzing: an unknown key OID is the latter
            raise MalformedError(f"type 0x{self.key_type:02x} key is not a DER public key") from exc
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise MalformedError(f"type 0x{self.key_type:02x} key is not an ECDSA key")
        self._key = key
        super().__init__(name, material, key_id)

    def expected_key_id(self) -> int:
        return int.from_bytes(hashlib.sha256(self.material).digest()[:4], "big")

    def verify(self, text: bytes, signature: bytes) -> bool:
        try:
            self._key.verify(signature, text, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, ValueError):
            return False
        return True


def generate_ed25519_seed() -> bytes:
    return ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )


def format_signer_key(signer: Ed25519Signer) -> str:
    """Go's private-key string, `PRIVATE+KEY+<name>+<hex ID>+base64(0x01 || seed)` (golang.org/x/mod/sumdb/note)."""
    return f"PRIVATE+KEY+{signer.name}+{signer.key_id:08x}+{b64encode(bytes([ED25519]) + signer.seed)}"


def check_private_key_mode(mode: int, where: str) -> None:
    """Refuse a private key file that anyone but its owner can read or write (pure: give it st_mode)."""
    if mode & 0o077:
        raise MalformedError(f"{where} is accessible by others (mode {oct(mode & 0o777)}): run chmod 600 {where}")


def parse_signer_key(text: str) -> Ed25519Signer:
    """Parse Go's private-key string strictly: the key ID must match the derived key."""
    parts = text.split("+", 4)
    if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
        raise MalformedError("private key: want PRIVATE+KEY+<name>+<id>+<key>")
    _, _, name, key_id_hex, key_b64 = parts
    raw = b64decode(key_b64, "private key")
    if len(raw) != 1 + ED25519_SEED_SIZE or raw[0] != ED25519:
        raise MalformedError("private key: want an Ed25519 seed of type 0x01")
    signer = Ed25519Signer(name, raw[1:])
    if len(key_id_hex) != 8 or f"{signer.key_id:08x}" != key_id_hex:
        raise MalformedError("private key: key ID does not match the key")
    return signer
