"""The monitor's fast paths over tiles (issue 20) give exactly what the one-hash-at-a-time rules give."""

import random

import pytest

from tlogcore import merkle
from tlogcore.errors import MalformedError
from tlogcore.tileauth import fold_tile
from tlogcore.tiles import decode_entry_bundle, encode_entry_bundle


def slow_root(hashes: list[bytes]) -> bytes:
    while len(hashes) > 1:
        hashes = [merkle.node_hash(hashes[i], hashes[i + 1]) for i in range(0, len(hashes), 2)]
    return hashes[0]


@pytest.mark.parametrize("count", [1, 2, 4, 64, 256])
def test_perfect_root_is_the_pairwise_fold(count: int) -> None:
    rng = random.Random(count)
    hashes = [rng.randbytes(32) for _ in range(count)]
    assert merkle.perfect_root(b"".join(hashes)) == slow_root(hashes)
    # and the tree's own root rule (RFC 9162 MTH) agrees for a perfect tree
    assert merkle.perfect_root(b"".join(hashes)) == merkle.fold_range([slow_root(hashes)])


def test_fold_tile_is_the_root_of_the_tiles_leaves() -> None:
    leaves = [merkle.leaf_hash(b"entry %d" % i) for i in range(256)]
    appended = merkle.append_leaves(0, [], leaves)
    assert fold_tile(b"".join(leaves)) == appended.root


@pytest.mark.parametrize("size", [0, 31, 33, 3 * 32, 100 * 32])
def test_perfect_root_refuses_what_is_not_a_power_of_two_of_hashes(size: int) -> None:
    with pytest.raises(MalformedError):
        merkle.perfect_root(b"\x01" * size)


def test_leaf_hashes_are_the_leaf_hashes_joined() -> None:
    entries = [b"", b"a", b"\x00" * 300, "ឯកសារ".encode()]
    assert merkle.leaf_hashes(entries) == b"".join(merkle.leaf_hash(e) for e in entries)
    assert merkle.leaf_hashes([]) == b""


def test_entry_bundles_still_split_and_refuse_as_before() -> None:
    rng = random.Random(7)
    entries = [rng.randbytes(rng.randrange(0, 700)) for _ in range(256)] + [b"\xff" * 65535]
    assert decode_entry_bundle(encode_entry_bundle(entries[:256]), 256) == entries[:256]
    assert decode_entry_bundle(encode_entry_bundle(entries[-1:]), 1) == entries[-1:]
    body = encode_entry_bundle(entries[:3])
    for cut in (1, len(body) - 1):
        with pytest.raises(MalformedError):
            decode_entry_bundle(body[:cut])
    with pytest.raises(MalformedError):
        decode_entry_bundle(encode_entry_bundle([b"x"] * 257))
