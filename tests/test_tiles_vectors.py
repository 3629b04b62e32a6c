"""Tile paths, inventories, node coordinates and entry bundles against tests/vectors."""

import hashlib

import pytest
from conftest import load_vectors

from tlogcore import merkle
from tlogcore.errors import MalformedError
from tlogcore.tiles import (
    Tile,
    decode_entry_bundle,
    encode_entry_bundle,
    entry_bundle_for,
    parse_tile_path,
    tile_for_node,
    tiles_for_size,
)

PATHS = load_vectors("tiles/tile_paths.json")
TILED = load_vectors("merkle/tiles_70000.json")


@pytest.mark.parametrize("case", PATHS["encode"], ids=[c["path"] for c in PATHS["encode"]])
def test_encode(case: dict) -> None:
    tile = Tile(case["level"], case["index"], case["partial_width"] or 256)
    assert tile.path == case["path"]
    assert parse_tile_path(case["path"]) == tile


@pytest.mark.parametrize("case", PATHS["entry_bundle_for_index"], ids=lambda c: str(c["entry_index"]))
def test_entry_bundle_paths(case: dict) -> None:
    assert entry_bundle_for(case["entry_index"], case["tree_size"]).path == case["bundle_path"]


@pytest.mark.parametrize("case", PATHS["parse"], ids=lambda c: f"{c['level_element']}/{c['index_elements']}")
def test_parse(case: dict) -> None:
    path = f"tile/{case['level_element']}/{case['index_elements']}"
    if not case["expect_valid"]:
        with pytest.raises(MalformedError):
            parse_tile_path(path)
        return
    tile = parse_tile_path(path)
    assert (tile.level, tile.index, tile.width % 256) == (case["level"], case["index"], case["partial_width"])


@pytest.mark.parametrize("case", PATHS["inventory"], ids=lambda c: str(c["tree_size"]))
def test_inventory(case: dict) -> None:
    tiles = tiles_for_size(case["tree_size"])
    for row in case["levels"]:
        at_level = [t for t in tiles if t.level == row["level"]]
        assert sum(not t.is_partial for t in at_level) == row["full_tiles"]
        partial = [t.width for t in at_level if t.is_partial]
        assert partial == ([row["partial_width"]] if row["partial_width"] else [])
    assert {t.level for t in tiles} == {row["level"] for row in case["levels"]}


@pytest.mark.parametrize("case", PATHS["node_to_tile"], ids=lambda c: f"{c['tree_level']}/{c['tree_index']}")
def test_node_to_tile(case: dict) -> None:
    size = 1 << 40
    address = tile_for_node(case["tree_level"], case["tree_index"], size)
    assert (address.tile.level, address.tile.index, address.level_in_tile, address.index_in_tile) == (
        case["tile_level"],
        case["tile_index"],
        case["level_within_tile"],
        case["index_within_tile_row"],
    )


def test_go_sumdb_paths_are_not_ours() -> None:
    for case in PATHS["NOT_C2SP_golang_sumdb_paths"]["paths"]:
        with pytest.raises(MalformedError):
            tile = parse_tile_path(case["path"])
            assert (tile.level, tile.index) == (case["level"], case["index"])  # must not get here


def test_entry_bundles_of_the_70000_log() -> None:
    entries = [b"entry %d" % i for i in range(TILED["tree_size"])]
    for case in TILED["entry_bundles"]:
        tile = parse_tile_path(case["path"])
        first = tile.index * 256
        body = encode_entry_bundle(entries[first : first + tile.width])
        if "bundle_hex" in case:
            assert body.hex() == case["bundle_hex"]
        if "sha256_of_bundle" in case:
            assert hashlib.sha256(body).hexdigest() == case["sha256_of_bundle"]
        assert decode_entry_bundle(body, tile.width) == entries[first : first + tile.width]


def test_node_hashes_from_tiles_match_stored_hashes() -> None:
    size = 70000
    entries = [b"entry %d" % i for i in range(size)]
    appended = merkle.append_leaves(0, [], [merkle.leaf_hash(e) for e in entries])
    stored = appended.new_hashes
    bodies = {t.path: b"".join(stored[i] for i in t.stored_indexes) for t in tiles_for_size(size)}
    for level, index in [(0, 0), (3, 5), (8, 0), (9, 100), (15, 1), (16, 0), (10, 67), (4, 4374)]:
        address = tile_for_node(level, index, size)
        assert address.node_hash_from(bodies[address.tile.path]) == stored[merkle.stored_hash_index(level, index)]


def test_entry_bundle_limits() -> None:
    with pytest.raises(MalformedError):
        encode_entry_bundle([b"x" * 65536])
    with pytest.raises(MalformedError):
        decode_entry_bundle(b"\x00\x05abc")
    with pytest.raises(MalformedError):
        decode_entry_bundle(encode_entry_bundle([b"a", b"b"]), 3)
