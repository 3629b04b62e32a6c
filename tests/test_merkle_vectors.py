"""The Merkle vectors in tests/vectors/merkle, one parametrized test per file."""

import hashlib

import pytest
from conftest import load_vectors

from tlogcore import merkle
from tlogcore.errors import MalformedError, ProofError
from tlogcore.tiles import Tile, tile_bytes, tiles_for_size

H = bytes.fromhex
INCLUSION = load_vectors("merkle/inclusion_probes.json")["vectors"]
CONSISTENCY = load_vectors("merkle/consistency_probes.json")["vectors"]
EXHAUSTIVE = load_vectors("merkle/exhaustive_8_leaves.json")
REFERENCE = load_vectors("merkle/reference_tree.json")
TILED = load_vectors("merkle/tiles_70000.json")


def inclusion_ok(v: dict) -> bool:
    try:
        proof = [H(p) for p in v["proof"]]
        merkle.verify_inclusion(H(v["leaf_hash"]), v["leaf_index"], v["tree_size"], proof, H(v["root"]))
    except ProofError:
        return False
    return True


def consistency_ok(v: dict) -> bool:
    try:
        merkle.verify_consistency(v["size1"], v["size2"], H(v["root1"]), H(v["root2"]), [H(p) for p in v["proof"]])
    except ProofError:
        return False
    return True


@pytest.mark.parametrize("v", INCLUSION, ids=[v["name"] for v in INCLUSION])
def test_inclusion_probes(v: dict) -> None:
    assert inclusion_ok(v) == v["expect_valid"]


@pytest.mark.parametrize("v", CONSISTENCY, ids=[v["name"] for v in CONSISTENCY])
def test_consistency_probes(v: dict) -> None:
    # DESIGN.md: consistency from size 0 follows tlog-witness, where the vectors say so.
    assert consistency_ok(v) == v.get("tlog_witness_expect_valid", v["expect_valid"])


def test_exhaustive_8_leaves() -> None:
    for v in EXHAUSTIVE["inclusion"]:
        assert inclusion_ok(v), v
    for v in EXHAUSTIVE["consistency"]:
        assert consistency_ok(v), v
    assert len(EXHAUSTIVE["inclusion"]) == 36 and len(EXHAUSTIVE["consistency"]) == 36


def build(entries: list[bytes]) -> tuple[list[bytes], list[bytes]]:
    """Stored hashes and root-by-size for `entries`, appended one batch at a time."""
    stored: list[bytes] = []
    roots = [merkle.EMPTY_ROOT]
    for size, entry in enumerate(entries):
        edge = [stored[merkle.stored_hash_index(level, index)] for level, index in merkle.right_edge(size)]
        appended = merkle.append_leaves(size, edge, [merkle.leaf_hash(entry)])
        stored += appended.new_hashes
        roots.append(appended.root)
    return stored, roots


def test_reference_tree() -> None:
    leaves = [H(x) for x in REFERENCE["leaf_inputs_hex"]]
    assert [merkle.leaf_hash(x).hex() for x in leaves] == REFERENCE["leaf_hashes_hex"]
    stored, roots = build(leaves)
    assert [r.hex() for r in roots] == REFERENCE["root_by_size_hex"]
    for level, row in enumerate(REFERENCE["perfect_subtree_hashes_by_level_hex"]):
        for index, expected in enumerate(row):
            assert stored[merkle.stored_hash_index(level, index)].hex() == expected


@pytest.fixture(scope="module")
def tiled() -> tuple[list[bytes], list[bytes]]:
    return build_batched([b"entry %d" % i for i in range(TILED["tree_size"])])


def build_batched(entries: list[bytes]) -> tuple[list[bytes], list[bytes]]:
    stored: list[bytes] = []
    roots: list[bytes] = []
    size = 0
    for batch_size in (1, 254, 1, 999, 65000, 10_000):
        batch = entries[size : size + batch_size]
        edge = [stored[merkle.stored_hash_index(level, index)] for level, index in merkle.right_edge(size)]
        appended = merkle.append_leaves(size, edge, [merkle.leaf_hash(e) for e in batch])
        stored += appended.new_hashes
        size += len(batch)
        roots.append(appended.root)
        assert len(stored) == merkle.stored_hash_count(size)
    return stored, roots


def test_tiled_70000_roots(tiled: tuple[list[bytes], list[bytes]]) -> None:
    stored, _ = tiled
    for size_text, root in TILED["root_by_size_hex"].items():
        plan = merkle.root_plan(int(size_text))
        assert plan.assemble([stored[i] for i in plan.stored_indexes])[0].hex() == root


def test_tiled_70000_tiles(tiled: tuple[list[bytes], list[bytes]]) -> None:
    stored, _ = tiled
    inventory = TILED["tile_inventory_for_size_70000"]
    tiles = tiles_for_size(TILED["tree_size"])
    assert [t.path for t in tiles] == [t["path"] for t in inventory]
    for tile, expected in zip(tiles, inventory, strict=True):
        body = tile_bytes(tile, [stored[i] for i in tile.stored_indexes])
        assert hashlib.sha256(body).hexdigest() == expected["sha256_of_tile"]
        if "tile_hex" in expected:
            assert body.hex() == expected["tile_hex"]


def test_tiled_70000_proofs(tiled: tuple[list[bytes], list[bytes]]) -> None:
    stored, _ = tiled
    for v in TILED["inclusion"]:
        plan = merkle.inclusion_plan(v["leaf_index"], v["tree_size"])
        assert [h.hex() for h in plan.assemble([stored[i] for i in plan.stored_indexes])] == v["proof"]
        assert inclusion_ok(v)
    for v in TILED["consistency"]:
        plan = merkle.consistency_plan(v["size1"], v["size2"])
        assert [h.hex() for h in plan.assemble([stored[i] for i in plan.stored_indexes])] == v["proof"]
        assert consistency_ok(v)


def test_plan_rejects_impossible_requests() -> None:
    with pytest.raises(MalformedError):
        merkle.inclusion_plan(5, 5)
    with pytest.raises(MalformedError):
        merkle.consistency_plan(6, 5)
    with pytest.raises(MalformedError):
        merkle.root_plan(2**63)
    with pytest.raises(MalformedError):
        merkle.append_leaves(3, [], [b"x" * 32])


def test_tile_body_of_wrong_width_is_refused() -> None:
    with pytest.raises(MalformedError):
        tile_bytes(Tile(0, 0, 2), [b"\x00" * 32])
