"""Ed25519 signing with libsodium (PyNaCl) gives exactly the bytes OpenSSL (`cryptography`) gives.

tlogcore/keys.py signs with libsodium because it signs about twice as fast here (docs/performance.md, "The
witness"). Ed25519 is deterministic (RFC 8032 §5.1.6: the nonce is a hash of the key's prefix and the message), so
both libraries must agree byte for byte on every key and message; these tests hold them to it, and check that the
signer's public key, key ID and key string are still the ones `cryptography` derives from the seed.
"""

import functools
import random

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from tlogcore.cosignature import CosignatureV1Signer, cosignature_message
from tlogcore.keys import Ed25519Signer, format_signer_key, parse_signer_key


def openssl_signature(seed: bytes, message: bytes) -> bytes:
    return ed25519.Ed25519PrivateKey.from_private_bytes(seed).sign(message)


def openssl_public_key(seed: bytes) -> bytes:
    public = ed25519.Ed25519PrivateKey.from_private_bytes(seed).public_key()
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def test_signatures_are_openssls_over_many_keys_and_messages() -> None:
    rng = random.Random(20)
    for i in range(300):
        seed = rng.randbytes(32)
        signer = Ed25519Signer(f"keys.example/{i}", seed)
        for length in (0, 1, 63, 64, 65, rng.randrange(2, 300), rng.randrange(300, 70_000)):
            message = rng.randbytes(length)
            assert signer.sign(message) == openssl_signature(seed, message), (i, length)


def test_edge_seeds_sign_as_openssl() -> None:
    for seed in (bytes(32), b"\xff" * 32, b"\x01" + bytes(31), bytes(31) + b"\x80"):
        signer = Ed25519Signer("keys.example/edge", seed)
        for message in (b"", b"\n", b"checkpoint\n1\n" + bytes(44) + b"\n"):
            assert signer.sign(message) == openssl_signature(seed, message)


def test_public_key_key_id_and_key_strings_are_unchanged() -> None:
    rng = random.Random(21)
    for _ in range(50):
        seed = rng.randbytes(32)
        signer = Ed25519Signer("keys.example/log", seed)
        assert signer.public_key == openssl_public_key(seed)
        assert signer.verifier().material == signer.public_key
        again = parse_signer_key(format_signer_key(signer))
        assert (again.key_id, again.seed, again.public_key) == (signer.key_id, seed, signer.public_key)
        message = rng.randbytes(100)
        assert signer.verifier().verify(message, signer.sign(message))
        assert not signer.verifier().verify(message + b"x", signer.sign(message))


def test_cosignatures_are_openssls() -> None:
    rng = random.Random(22)
    for i in range(50):
        seed = rng.randbytes(32)
        timestamp = 1_700_000_000 + i
        signer = CosignatureV1Signer("witness.example", seed, functools.partial(float, timestamp))
        text = f"log.example/{i}\n{rng.randrange(1, 10**9)}\n{'A' * 43}=\n".encode()
        expected = timestamp.to_bytes(8, "big") + openssl_signature(seed, cosignature_message(text, timestamp))
        assert signer.sign(text) == expected
        assert signer.verifier().verify(text, expected)


def test_no_key_material_in_the_signers_text() -> None:
    seed = bytes(range(32))
    signer = Ed25519Signer("keys.example/log", seed)
    shown = repr(signer) + str(signer) + repr(vars(signer).keys())
    assert seed.hex() not in shown and repr(seed) not in shown
