"""Ed25519 edge cases: the verifier (libsodium first, OpenSSL on a refusal) gives exactly OpenSSL's verdicts.

tlogcore/keys.py verifies with PyNaCl (libsodium) for speed, and libsodium is stricter than OpenSSL and Go's
crypto/ed25519 (the interop reference): it refuses small-order keys and R points and non-canonical key encodings.
These tests build those signatures with a small affine Edwards-curve arithmetic (RFC 8032 §5.1), check which
library accepts which, and that `Ed25519Verifier` answers exactly as `cryptography` always did.
"""

import hashlib
import random

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from tlogcore.cosignature import CosignatureV1Signer
from tlogcore.keys import Ed25519Signer, Ed25519Verifier, libsodium_verifies

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493  # the prime order of the base point
D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)
IDENTITY = (0, 1)
Point = tuple[int, int]


def inverse(value: int) -> int:
    return pow(value, P - 2, P)


def add(a: Point, b: Point) -> Point:
    """Affine addition on -x^2 + y^2 = 1 + d x^2 y^2 (complete: d is not a square)."""
    t = D * a[0] * b[0] * a[1] * b[1] % P
    return (a[0] * b[1] + a[1] * b[0]) * inverse(1 + t) % P, (a[1] * b[1] + a[0] * b[0]) * inverse(1 - t) % P


def times(k: int, point: Point) -> Point:
    result = IDENTITY
    while k:
        if k & 1:
            result = add(result, point)
        point, k = add(point, point), k >> 1
    return result


def x_for(y: int, sign: int) -> int | None:
    """RFC 8032 §5.1.3: the x with this parity on the curve at y, or None."""
    xx = (y * y - 1) * inverse(D * y * y + 1) % P
    x = pow(xx, (P + 3) // 8, P)
    if (x * x - xx) % P:
        x = x * SQRT_M1 % P
    if (x * x - xx) % P:
        return None
    return P - x if x & 1 != sign else x


def encode(point: Point) -> bytes:
    return (point[1] | (point[0] & 1) << 255).to_bytes(32, "little")


BASE = (x_for(4 * inverse(5) % P, 0) or 0, 4 * inverse(5) % P)


def order_8_point() -> Point:
    """A point of order 8: L times a curve point lands in the torsion subgroup."""
    for y in range(2, 100):
        x = x_for(y, 0)
        if x is not None:
            torsion = times(L, (x, y))
            if times(4, torsion) != IDENTITY:
                return torsion
    raise AssertionError("no order-8 point found")


def challenge(r: bytes, a: bytes, message: bytes) -> int:
    return int.from_bytes(hashlib.sha512(r + a + message).digest(), "little") % L


def scalar_of(seed: bytes) -> int:
    digest = int.from_bytes(hashlib.sha512(seed).digest()[:32], "little")
    return (digest & ((1 << 254) - 8)) | (1 << 254)


def message_with_challenge(r: bytes, a: bytes, divisible: bool) -> bytes:
    """A message whose challenge is (or is not) a multiple of 8, so h times a torsion point is (not) zero."""
    for i in range(1000):
        message = b"edge case %d" % i
        if (challenge(r, a, message) % 8 == 0) == divisible:
            return message
    raise AssertionError("no such message")


def openssl_accepts(key: bytes, message: bytes, signature: bytes) -> bool:
    try:
        ed25519.Ed25519PublicKey.from_public_bytes(key).verify(signature, message)
    except InvalidSignature:
        return False
    return True


def libsodium_accepts(key: bytes, message: bytes, signature: bytes) -> bool:
    try:
        VerifyKey(key).verify(message, signature)
    except BadSignatureError:
        return False
    return True


def ours_accepts(key: bytes, message: bytes, signature: bytes) -> bool:
    return Ed25519Verifier("edge", key).verify(message, signature)


R_SCALAR = 123456789
R_POINT = encode(times(R_SCALAR, BASE))
SEED = bytes(range(32))
A_SCALAR = scalar_of(SEED)
A_POINT = times(A_SCALAR, BASE)
T8 = order_8_point()
NON_CANONICAL_IDENTITY = (P + 1).to_bytes(32, "little")  # y = 1 spelled as p + 1


def small_order_key_case() -> tuple[bytes, bytes, bytes]:
    """Key = the order-8 point, h*A = 0: s*B = R holds with s = r."""
    key = encode(T8)
    message = message_with_challenge(R_POINT, key, divisible=True)
    return key, message, R_POINT + R_SCALAR.to_bytes(32, "little")


def identity_key_case(key: bytes = encode(IDENTITY)) -> tuple[bytes, bytes, bytes]:
    return key, b"any message at all", R_POINT + R_SCALAR.to_bytes(32, "little")


def small_order_r_case(r: bytes = encode(IDENTITY)) -> tuple[bytes, bytes, bytes]:
    """R = the identity, s = h*a: s*B = h*A = R + h*A."""
    key = encode(A_POINT)
    message = b"small-order R"
    return key, message, r + (challenge(r, key, message) * A_SCALAR % L).to_bytes(32, "little")


def mixed_order_key_case(divisible: bool) -> tuple[bytes, bytes, bytes]:
    """Key = a*B + T8 (not in the prime-order group); s = r + h*a holds cofactorless only when 8 divides h."""
    key = encode(add(A_POINT, T8))
    message = message_with_challenge(R_POINT, key, divisible)
    s = (R_SCALAR + challenge(R_POINT, key, message) * A_SCALAR) % L
    return key, message, R_POINT + s.to_bytes(32, "little")


def valid_case() -> tuple[bytes, bytes, bytes]:
    signer = Ed25519Signer("edge", SEED)
    return signer.public_key, b"a plain message", signer.sign(b"a plain message")


def non_canonical_s_case() -> tuple[bytes, bytes, bytes]:
    key, message, signature = valid_case()
    s = int.from_bytes(signature[32:], "little") + L  # the same scalar, spelled >= L (malleability)
    return key, message, signature[:32] + s.to_bytes(32, "little")


# (name, case, OpenSSL's verdict = the project's, libsodium's raw verdict). Go's crypto/ed25519 verifies
# cofactorless with no small-order blocklist and requires s < L: its verdicts are OpenSSL's on every row here.
CASES = [
    ("valid signature", valid_case, True, True),
    ("s + L (malleable spelling of s)", non_canonical_s_case, False, False),
    ("identity public key", identity_key_case, True, False),
    ("order-8 public key", small_order_key_case, True, False),
    ("identity public key spelled y = p + 1", lambda: identity_key_case(NON_CANONICAL_IDENTITY), True, False),
    ("small-order R (identity)", small_order_r_case, True, False),
    ("small-order R spelled y = p + 1", lambda: small_order_r_case(NON_CANONICAL_IDENTITY), False, False),
    ("mixed-order key, 8 divides h", lambda: mixed_order_key_case(True), True, True),
    ("mixed-order key, 8 does not divide h", lambda: mixed_order_key_case(False), False, False),
]


@pytest.mark.parametrize(("name", "case", "openssl", "libsodium"), CASES, ids=[c[0] for c in CASES])
def test_edge_case_verdicts(name: str, case: object, openssl: bool, libsodium: bool) -> None:
    key, message, signature = case()  # type: ignore[operator]
    assert openssl_accepts(key, message, signature) is openssl, name
    assert libsodium_accepts(key, message, signature) is libsodium, name
    assert libsodium_verifies(key, message, signature) is libsodium, f"{name}: the direct call is not PyNaCl's"
    assert ours_accepts(key, message, signature) is openssl, f"{name}: the verdict changed from before"


def test_the_arithmetic_is_ed25519() -> None:
    """The helper curve is the real one: it derives the same public key as OpenSSL from a seed (RFC 8032 §5.1.5)."""
    assert encode(A_POINT) == Ed25519Signer("edge", SEED).public_key
    assert times(L, BASE) == IDENTITY and times(8, T8) == IDENTITY and times(4, T8) != IDENTITY


def test_rfc8032_test_1() -> None:
    """RFC 8032 §7.1, TEST 1 (empty message)."""
    key = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
    signature = bytes.fromhex(
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0"
        "595bbe24655141438e7a100b"
    )
    assert ours_accepts(key, b"", signature)
    assert not ours_accepts(key, b"\x00", signature)
    assert not ours_accepts(key, b"", signature[:63] + bytes([signature[63] ^ 1]))
    assert not ours_accepts(key, b"", signature[:63])
    assert libsodium_verifies(key, b"", signature)
    assert not libsodium_verifies(key, b"", signature[:63]) and not libsodium_verifies(key[:31], b"", signature)


def test_random_signatures_and_mutations_agree_with_openssl() -> None:
    """Valid signatures and one-bit mutations of key, message and signature: the same verdict as OpenSSL."""
    rng = random.Random(20)
    for _ in range(150):
        signer = Ed25519Signer("edge", rng.randbytes(32))
        message = rng.randbytes(rng.randrange(0, 400))
        signature = signer.sign(message)
        key = signer.public_key
        assert ours_accepts(key, message, signature)
        bit = rng.randrange(8)
        mutated_signature = bytearray(signature)
        mutated_signature[rng.randrange(64)] ^= 1 << bit
        mutated_key = bytearray(key)
        mutated_key[rng.randrange(32)] ^= 1 << bit
        for case in ((key, message, bytes(mutated_signature)), (bytes(mutated_key), message, signature)):
            assert ours_accepts(*case) is openssl_accepts(*case)
            assert libsodium_verifies(*case) is libsodium_accepts(*case)
        assert libsodium_verifies(key, message, signature)
        if message:
            changed = bytes([message[0] ^ 1]) + message[1:]
            assert not ours_accepts(key, changed, signature)


def test_cosignature_verifier_keeps_the_verdicts() -> None:
    """Type 0x04 goes through the same Ed25519 path: valid cosignatures verify, a changed timestamp does not."""
    signer = CosignatureV1Signer("witness.example", SEED, clock=lambda: 1_700_000_000)
    text = b"example.com/log\n5\n" + b"A" * 43 + b"=\n"
    signature = signer.sign(text)
    verifier = signer.verifier()
    assert verifier.verify(text, signature)
    assert not verifier.verify(text, (1_700_000_001).to_bytes(8, "big") + signature[8:])
