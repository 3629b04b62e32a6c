"""Strict parsers for the small pieces every format shares (STYLE.md §3).

Each accepts exactly one encoding of a value: `str(int(s)) == s` for decimals,
RFC 4648 §4 base64 with padding, 32-byte hashes. A lenient parser here would be
a security bug everywhere else.
"""

import base64
import binascii

from tlogcore.errors import MalformedError

HASH_SIZE = 32
MAX_UINT64 = 2**64 - 1
MAX_INT64 = 2**63 - 1


def parse_decimal(text: str, what: str, maximum: int = MAX_UINT64) -> int:
    """Parse an unsigned decimal with no sign, spaces, underscores or leading zeros."""
    if not text or len(text) > 20 or not text.isascii() or not text.isdigit():
        raise MalformedError(f"{what}: {text[:30]!r} is not a decimal number")
    value = int(text)
    if str(value) != text:
        raise MalformedError(f"{what}: {text[:30]!r} is not in canonical form (leading zero?)")
    if value > maximum:
        raise MalformedError(f"{what}: {value} exceeds the maximum {maximum}")
    return value


def b64encode(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).decode("ascii")  # base64.b64encode without its wrapper


def canonical_b64(text: str) -> bytes | None:
    """The bytes of canonical base64 `text` (it prints back the same), or None: exactly what `b64decode` accepts,
    by one C call instead of base64.b64decode's checks in Python (issue 20: every checkpoint root, proof line and
    signature line goes through here; tests/test_parse_fast_paths.py holds it to the plain definition)."""
    try:
        blob = binascii.a2b_base64(text.encode("ascii"), strict_mode=True)
    except (binascii.Error, UnicodeEncodeError):
        return None
    return blob if b64encode(blob) == text else None


def b64decode(text: str, what: str) -> bytes:
    """Decode standard base64 with padding; reject anything that would not re-encode the same."""
    data = canonical_b64(text)
    if data is not None:
        return data
    data = b64decode_lenient_padding(text, what)  # the general path names the fault
    if b64encode(data) != text:
        raise MalformedError(f"{what}: base64 is not in canonical form")
    return data


def b64decode_lenient_padding(text: str, what: str) -> bytes:
    """Base64 whose only fault may be non-zero padding bits (what Go's StdEncoding accepts)."""
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise MalformedError(f"{what}: not valid base64") from exc


def parse_hash_b64(text: str, what: str) -> bytes:
    data = b64decode(text, what)
    if len(data) != HASH_SIZE:
        raise MalformedError(f"{what}: hash is {len(data)} bytes, want {HASH_SIZE}")
    return data


def parse_hash_hex(text: str, what: str) -> bytes:
    """Parse 64 lowercase hex digits (the one form we emit)."""
    if len(text) != 2 * HASH_SIZE or text.strip("0123456789abcdef"):  # one C call, not a loop (issue 20)
        raise MalformedError(f"{what}: want {2 * HASH_SIZE} lowercase hex digits")
    return bytes.fromhex(text)


def check_hash(value: bytes, what: str) -> bytes:
    if len(value) != HASH_SIZE:
        raise MalformedError(f"{what}: hash is {len(value)} bytes, want {HASH_SIZE}")
    return value


def decode_utf8(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedError(f"{what}: not valid UTF-8") from exc


def put_uvarint(value: int) -> bytes:
    """Unsigned LEB128 (the varint of Go's encoding/binary and protobuf)."""
    if value < 0:
        raise ValueError("varint must be unsigned")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def put_str8(value: str, form: str) -> bytes:
    """`value` as UTF-8 after a one-byte length (the `str8` of our binary forms); `form` names the binary form
    in the error when it does not fit."""
    raw = value.encode()
    if len(raw) > 255:
        raise MalformedError(f"{value[:30]!r} is too long for {form}")
    return bytes([len(raw)]) + raw


class Reader:
    """Bounds-checked cursor over binary input; every read names what it was reading."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def take(self, count: int, what: str) -> bytes:
        end = self._pos + count
        if count < 0 or end > len(self._data):
            raise MalformedError(f"{what}: truncated input")
        chunk = self._data[self._pos : end]
        self._pos = end
        return chunk

    def byte(self, what: str) -> int:
        return self.take(1, what)[0]

    def uint(self, size: int, what: str) -> int:
        return int.from_bytes(self.take(size, what), "big")

    def uvarint(self, what: str, maximum: int = MAX_UINT64) -> int:
        value = 0
        for shift in range(0, 70, 7):
            byte = self.byte(what)
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                if byte == 0 and shift:
                    raise MalformedError(f"{what}: varint is not minimal")
                if value > maximum:
                    raise MalformedError(f"{what}: {value} exceeds the maximum {maximum}")
                return value
        raise MalformedError(f"{what}: varint too long")

    def short_bytes(self, what: str) -> bytes:
        """A length-prefixed (one byte) string of at most 255 bytes."""
        return self.take(self.byte(what), what)

    def str8(self, what: str) -> str:
        """UTF-8 text written by `put_str8`."""
        return decode_utf8(self.short_bytes(what), what)

    def done(self, what: str) -> None:
        if self._pos != len(self._data):
            raise MalformedError(f"{what}: {len(self._data) - self._pos} unexpected trailing bytes")
