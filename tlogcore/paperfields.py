"""Paper fields: the human-visible fields of a paper document, salted and hashed, so a paper copy can be checked.

A citizen holding paper cannot hash a file. Instead the issuer logs, as the statement's `document`, the hash
of the fields printed on the paper (name, title, number, date ... any set, UTF-8, Khmer included) and a random
salt; the QR code carries the fields and the salt, the verifier recomputes the hash and shows the fields to be
compared with the paper. The log holds only the hash: without the salt (16 random bytes, only on the paper) the
fields cannot be guessed from it.

Canonical bytes (what is hashed), byte for byte:

    "tlog-paper/v1\\n"              14 bytes, domain separation from file hashes
    salt                            16 bytes
    count                           1 byte, 1..MAX_FIELDS
    count times:
        len(name)  name             1 byte length, then UTF-8
        len(value) value            1 byte length, then UTF-8

    document = SHA-256(canonical bytes)

Names and values: NFC-normalised UTF-8, 1..255 bytes, no control characters, no leading or trailing
whitespace (the rule of statement text values). Names are unique; the order is the issuer's, kept as given
(it is the order the page shows them in), so a reordering is another document.
The same bytes without the 14-byte header are the fields part of a QR link (tlogcore.qrlink).
"""

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from tlogcore.encoding import Reader, decode_utf8
from tlogcore.errors import MalformedError
from tlogcore.statement import check_text_value

HEADER = b"tlog-paper/v1\n"
SALT_SIZE = 16
MAX_FIELDS = 32


@dataclass(frozen=True)
class PaperFields:
    fields: tuple[tuple[str, str], ...]  # (name, value), in the issuer's order
    salt: bytes

    def __post_init__(self) -> None:
        if len(self.salt) != SALT_SIZE:
            raise MalformedError(f"paper salt must be {SALT_SIZE} bytes")
        if not 1 <= len(self.fields) <= MAX_FIELDS:
            raise MalformedError(f"paper documents carry 1..{MAX_FIELDS} fields")
        names = [name for name, _ in self.fields]
        if len(set(names)) != len(names):
            raise MalformedError("paper field names must be unique")
        for name, value in self.fields:
            check_text_value(name, "paper field name")
            check_text_value(value, f"paper field {name[:30]!r}")

    def body(self) -> bytes:
        """Salt, count and fields: the canonical bytes without the header (also the QR link's fields part)."""
        out = bytearray(self.salt)
        out.append(len(self.fields))
        for name, value in self.fields:
            out += _str8(name) + _str8(value)
        return bytes(out)

    def canonical(self) -> bytes:
        return HEADER + self.body()

    @property
    def document(self) -> bytes:
        """The SHA-256 the statement logs as its `document`."""
        return hashlib.sha256(self.canonical()).digest()


def make_paper_fields(fields: Iterable[tuple[str, str]], salt: bytes) -> PaperFields:
    return PaperFields(tuple(fields), salt)


def read_paper_fields(reader: Reader) -> PaperFields:
    """Read the body (salt, count, fields) from a binary reader; strict."""
    salt = reader.take(SALT_SIZE, "paper salt")
    count = reader.byte("paper field count")
    fields = []
    for _ in range(count):
        name = decode_utf8(reader.short_bytes("paper field name"), "paper field name")
        value = decode_utf8(reader.short_bytes("paper field value"), "paper field value")
        fields.append((name, value))
    return PaperFields(tuple(fields), salt)


def parse_canonical(data: bytes) -> PaperFields:
    """The inverse of PaperFields.canonical; anything else (trailing bytes, a bad header) is refused."""
    if not data.startswith(HEADER):
        raise MalformedError("paper fields do not start with 'tlog-paper/v1'")
    reader = Reader(data[len(HEADER) :])
    fields = read_paper_fields(reader)
    reader.done("paper fields")
    return fields


def _str8(value: str) -> bytes:
    raw = value.encode()
    return bytes([len(raw)]) + raw
