"""The status record's shortcuts for the common record, one issue and no revoke (tlogcore/statusrecord.py
`record_bytes`, `check_record`, used by the batch update statuspageupdate.py): the same bytes and the same
verdicts as making and parsing the object (docs/status-proofs.md §2)."""

import random

import pytest

from tlogcore.encoding import MAX_INT64
from tlogcore.errors import MalformedError
from tlogcore.statusrecord import check_record, new_record, parse_record, record_bytes

INDEXES = [0, 1, 255, 2**32, MAX_INT64 - 1, MAX_INT64]


@pytest.mark.parametrize("issued", [[i] for i in INDEXES] + [[3, 1], [5, 5], []])
@pytest.mark.parametrize("revoked", [[], [2], [7, 9]])
def test_record_bytes_are_the_records_bytes(issued: list[int], revoked: list[int]) -> None:
    if not issued and not revoked:
        with pytest.raises(MalformedError):
            record_bytes(issued, revoked)
        return
    assert record_bytes(issued, revoked) == new_record(issued, revoked).to_bytes()


@pytest.mark.parametrize("index", [-1, MAX_INT64 + 1, 2**64])
def test_record_bytes_refuse_what_the_record_refuses(index: int) -> None:
    with pytest.raises((MalformedError, OverflowError)) as shortcut:
        record_bytes([index], [])
    with pytest.raises(shortcut.type):
        new_record([index], []).to_bytes()


def verdict(check: object, data: bytes) -> str:
    try:
        check(data)  # type: ignore[operator]
    except MalformedError:
        return "malformed"
    return "ok"


def test_check_record_accepts_and_refuses_as_parse_record_does() -> None:
    rng = random.Random(2)
    samples = [new_record([i]).to_bytes() for i in INDEXES]
    samples += [new_record([1, 4], [6]).to_bytes(), new_record([], [3]).to_bytes()]
    one = new_record([12]).to_bytes()
    samples += [
        b"",
        one[:-1],
        one + b"\x00",
        b"\x02" + one[1:],  # another version
        one[:3] + b"\x80" + one[4:],  # an index of 2^63 or more
        one[:-2] + b"\x00\x01",  # a revoke count with no index after it
        one[:1] + b"\x00\x00" + one[3:],  # no issue: then 8 bytes too many
    ]
    for _ in range(2000):
        mutated = bytearray(rng.choice(samples[:3]))
        mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        samples.append(bytes(mutated))
    for data in samples:
        assert verdict(check_record, data) == verdict(parse_record, data), data.hex()
