"""A client that trusts only the log's public key and checks everything the server serves."""

import base64

import httpx

from tlogcore import merkle
from tlogcore.bundle import from_binary, parse_tlog_proof, verify_bundle
from tlogcore.checkpoint import Checkpoint, parse_checkpoint
from tlogcore.keys import Verifier
from tlogcore.note import open_note
from tlogcore.policy import parse_policy
from tlogcore.tiles import TileAddress, decode_entry_bundle, split_tile, tile_for_node, tiles_for_size


def verified_checkpoint(client: httpx.Client, log_key: Verifier) -> Checkpoint:
    response = client.get("/checkpoint")
    assert response.status_code == 200 and response.headers["cache-control"] == "no-cache"
    return parse_checkpoint(open_note(response.content, [log_key]).text)


def verify_tiles(client: httpx.Client, checkpoint: Checkpoint) -> list[bytes]:
    """Fetch every tile and entry bundle of the checkpoint's tree, authenticate all of them, return the entries."""
    size = checkpoint.size
    bodies: dict[str, bytes] = {}
    for tile in tiles_for_size(size):
        response = client.get("/" + tile.path)
        assert response.status_code == 200, tile.path
        want_cache = "public, max-age=604800, immutable" if not tile.is_partial else "public, max-age=5"
        assert response.headers["cache-control"] == want_cache
        split_tile(tile, response.content)  # length matches width
        bodies[tile.path] = response.content
    # The root, recomputed from the tiles alone.
    plan = merkle.root_plan(size)
    nodes = []
    for level, index in plan.nodes:
        address = tile_for_node(level, index, size)
        nodes.append(address.node_hash_from(bodies[address.tile.path]))
    assert (plan.assemble(nodes)[0] if size else merkle.EMPTY_ROOT) == checkpoint.root
    # Each hash of a level L+1 tile is the root of a full level-L tile.
    for tile in tiles_for_size(size):
        if tile.level == 0:
            continue
        for j, node in enumerate(split_tile(tile, bodies[tile.path])):
            below = tile_for_node(8 * tile.level - 8, (tile.index * 256 + j) * 256, size).tile
            assert TileAddress(below, 8, 0).node_hash_from(bodies[below.path]) == node
    # Entry bundles hash to the level-0 tiles.
    entries: list[bytes] = []
    for tile in tiles_for_size(size):
        if tile.level != 0:
            continue
        response = client.get(f"/tile/entries/{tile.path.removeprefix('tile/0/')}")
        assert response.status_code == 200
        bundle = decode_entry_bundle(response.content, tile.width)
        assert [merkle.leaf_hash(e) for e in bundle] == split_tile(tile, bodies[tile.path])
        entries += bundle
    assert len(entries) == size
    return entries


def verify_proofs(
    client: httpx.Client,
    log_key: Verifier,
    checkpoint: Checkpoint,
    entries: list[bytes],
    sample: list[int],
    old_roots: dict[int, bytes],
) -> None:
    policy = parse_policy(f"log {log_key.vkey}\nquorum none\n")
    for index in sample:
        for query in ({"index": index}, {"leaf_hash": merkle.leaf_hash(entries[index]).hex()}):
            body = client.get("/api/v1/proof/inclusion", params={**query, "size": checkpoint.size}).json()
            proof = [base64.b64decode(h) for h in body["proof"]]
            merkle.verify_inclusion(merkle.leaf_hash(entries[index]), index, checkpoint.size, proof, checkpoint.root)
        text = client.get(f"/api/v1/bundle/{index}").content
        assert verify_bundle(parse_tlog_proof(text), policy).statement is not None
        binary = client.get(f"/api/v1/bundle/{index}", params={"format": "binary"}).content
        assert from_binary(binary) == parse_tlog_proof(text)
    for old, root in old_roots.items():
        if old > checkpoint.size:
            continue
        body = client.get("/api/v1/proof/consistency", params={"old": old, "new": checkpoint.size}).json()
        proof = [base64.b64decode(h) for h in body["proof"]]
        merkle.verify_consistency(old, checkpoint.size, root, checkpoint.root, proof)
