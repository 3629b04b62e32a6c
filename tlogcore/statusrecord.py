"""A document's status record: the value the status index maps a document's SHA-256 to (docs/status-proofs.md §2).

The record lists the log entries that name the document: the indexes of its `issue` statements and of its `revoke`
statements, nothing else. Which of those count (the status rule: only the issuer that issued may revoke) is decided
by the verifier from the entries themselves, fetched with their inclusion proofs, so the index never has to be
trusted for anything but completeness. Byte for byte (one canonical encoding; every integer big-endian):

    0x01                          format version
    u16  I                        number of issue entries, then I x u64 entry index, strictly ascending
    u16  R                        number of revoke entries, then R x u64 entry index, strictly ascending
                                  every index < 2^63; no index in both lists; I + R >= 1; no trailing bytes

A browser decodes it with a `DataView` (`getUint16`, `getBigUint64`): no varints, no text.
"""

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tlogcore.encoding import MAX_INT64, Reader
from tlogcore.errors import MalformedError

RECORD_VERSION = 0x01
MAX_ENTRIES_PER_LIST = 0xFFFF  # u16 count: the log refuses a 65,536th issue (or revoke) of one document


def _check_indexes(indexes: tuple[int, ...], what: str) -> None:
    if len(indexes) > MAX_ENTRIES_PER_LIST:
        raise MalformedError(f"status record: more than {MAX_ENTRIES_PER_LIST} {what} entries")
    previous = -1
    for index in indexes:
        if not previous < index <= MAX_INT64:
            raise MalformedError(f"status record: {what} entry indexes must be strictly ascending and below 2^63")
        previous = index


@dataclass(frozen=True, slots=True)
class StatusRecord:
    issued: tuple[int, ...]  # log indexes of the `issue` statements about the document
    revoked: tuple[int, ...]  # log indexes of the `revoke` statements about the document

    def __post_init__(self) -> None:
        _check_indexes(self.issued, "issue")
        _check_indexes(self.revoked, "revoke")
        if not self.issued and not self.revoked:
            raise MalformedError("status record: a document in the index has at least one entry")
        if set(self.issued) & set(self.revoked):
            raise MalformedError("status record: one entry cannot both issue and revoke")

    def to_bytes(self) -> bytes:
        out = bytearray([RECORD_VERSION])
        for indexes in (self.issued, self.revoked):
            out += len(indexes).to_bytes(2, "big")
            for index in indexes:
                out += index.to_bytes(8, "big")
        return bytes(out)

    def with_entries(self, issued: Iterable[int] = (), revoked: Iterable[int] = ()) -> "StatusRecord":
        return StatusRecord(tuple(sorted({*self.issued, *issued})), tuple(sorted({*self.revoked, *revoked})))


def new_record(issued: Iterable[int] = (), revoked: Iterable[int] = ()) -> StatusRecord:
    return StatusRecord(tuple(sorted(set(issued))), tuple(sorted(set(revoked))))


# The record of a document issued once and never revoked (most of an index): 01 | 0001 | u64 index | 0000.
_ONE_ISSUE = bytes([RECORD_VERSION, 0, 1])
_NO_REVOKE = b"\x00\x00"
_ONE_ISSUE_SIZE = len(_ONE_ISSUE) + 8 + len(_NO_REVOKE)


def record_bytes(issued: Sequence[int], revoked: Sequence[int]) -> bytes:
    """`new_record(issued, revoked).to_bytes()`, the same bytes and errors; a batch update makes one per document,
    so the common record (one issue, no revoke) is encoded without the object."""
    if len(issued) == 1 and not revoked and 0 <= issued[0] <= MAX_INT64:
        return _ONE_ISSUE + issued[0].to_bytes(8, "big") + _NO_REVOKE
    return new_record(issued, revoked).to_bytes()


def check_record(data: bytes) -> None:
    """MalformedError unless `parse_record(data)` parses; the common record (one issue, no revoke) is checked
    without making the object (a batch update checks every leaf it moves down)."""
    if len(data) == _ONE_ISSUE_SIZE and data.startswith(_ONE_ISSUE) and data.endswith(_NO_REVOKE) and data[3] < 0x80:
        return  # index < 2^63: its top bit clear
    parse_record(data)


def parse_record(data: bytes) -> StatusRecord:
    """Parse exactly the encoding `StatusRecord.to_bytes` produces; anything else is MalformedError."""
    # Every stored index row is parsed when read: lengths first, then one struct call per list; a record whose
    # lengths do not add up goes through the Reader below, which names what is wrong.
    if len(data) >= 5 and data[0] == RECORD_VERSION:
        issues = int.from_bytes(data[1:3], "big")
        cut = 3 + 8 * issues
        if len(data) >= cut + 2:
            revokes = int.from_bytes(data[cut : cut + 2], "big")
            if len(data) == cut + 2 + 8 * revokes:
                return StatusRecord(
                    struct.unpack_from(f">{issues}Q", data, 3), struct.unpack_from(f">{revokes}Q", data, cut + 2)
                )
    return _parse_with_reader(data)


def _parse_with_reader(data: bytes) -> StatusRecord:
    reader = Reader(data)
    if reader.byte("status record version") != RECORD_VERSION:
        raise MalformedError(f"status record: unknown format version (want {RECORD_VERSION})")
    lists = []
    for what in ("issue", "revoke"):
        count = reader.uint(2, f"status record {what} count")
        lists.append(tuple(reader.uint(8, f"status record {what} index") for _ in range(count)))
    reader.done("status record")
    return StatusRecord(lists[0], lists[1])
