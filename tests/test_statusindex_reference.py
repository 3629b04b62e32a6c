"""The fast status index (batched updates through stored rows, proofs in rounds) against the slow reference, on many
random maps and batch sizes, with keys that share long prefixes; and the stored-row contract."""

import random

import pytest
import statusindex_reference as ref

from tlogcore.errors import MalformedError, ProofError
from tlogcore.statusindex import EMPTY, MAX_PROOF_SIZE, verify_status
from tlogcore.statusindex_nodes import (
    IndexStorageError,
    Interior,
    Leaf,
    NodeId,
    PathPlan,
    StoredNode,
    node_id_bytes,
    parse_node,
    read_paths,
)
from tlogcore.statusrecord import StatusRecord, new_record

Rows = dict[NodeId, StoredNode]


def clustered_key(rng: random.Random, base: bytes) -> bytes:
    """A key sharing a random-length prefix (up to all 255 bits) with `base`."""
    shared = rng.randrange(256)
    mask = (1 << (256 - shared)) - 1
    bits = (int.from_bytes(base, "big") & ~mask) | (int.from_bytes(rng.randbytes(32), "big") & mask)
    return bits.to_bytes(32, "big")


def random_batch(rng: random.Random, known: dict[bytes, bytes], base: bytes) -> dict[bytes, StatusRecord]:
    count = rng.choice([1, 1, 2, 3, 5, 8, 20, 60])
    keys = [clustered_key(rng, base) if rng.random() < 0.3 else rng.randbytes(32) for _ in range(count)]
    keys += rng.sample(sorted(known), min(len(known), rng.randrange(3)))  # overwrite some existing records
    return {
        key: new_record([rng.randrange(10**6)], [rng.randrange(10**6, 2 * 10**6)] * rng.randrange(2)) for key in keys
    }


def apply_batch(rows: Rows, known: dict[bytes, bytes], batch: dict[bytes, StatusRecord]) -> bytes:
    update = read_paths(PathPlan(batch, size_hint=len(known)), rows).apply(batch)
    rows.update(update.writes)
    known.update({key: record.to_bytes() for key, record in batch.items()})
    return update.root


def check_proofs(rows: Rows, known: dict[bytes, bytes], root: bytes, keys: list[bytes]) -> None:
    plan = read_paths(PathPlan(keys, size_hint=len(known)), rows)
    for key in keys:
        record, proof = plan.lookup(key)
        assert (record.to_bytes() if record else None) == known.get(key)
        assert proof.to_bytes() == ref.proof(known, key)
        verify_status(key, record, proof.to_bytes(), root)


@pytest.mark.parametrize("seed", range(8))
def test_random_maps_match_the_reference_after_every_batch(seed: int) -> None:
    rng = random.Random(seed)
    rows: Rows = {}
    known: dict[bytes, bytes] = {}
    base = rng.randbytes(32)
    for _ in range(rng.randrange(5, 25)):
        root = apply_batch(rows, known, random_batch(rng, known, base))
        assert root == ref.root(known)
        probe = rng.sample(sorted(known), min(4, len(known))) + [rng.randbytes(32), clustered_key(rng, base)]
        check_proofs(rows, known, root, probe)
    check_proofs(rows, known, root, rng.sample(sorted(known), min(25, len(known))))


def test_one_big_batch_equals_many_small_ones() -> None:
    rng = random.Random(7)
    records = {rng.randbytes(32): new_record([i]) for i in range(500)}
    one: Rows = {}
    root_one = apply_batch(one, {}, records)
    many: Rows = {}
    known: dict[bytes, bytes] = {}
    items = list(records.items())
    while items:
        count = rng.randrange(1, 40)
        root_many = apply_batch(many, known, dict(items[:count]))
        items = items[count:]
    assert root_one == root_many == ref.root({k: r.to_bytes() for k, r in records.items()})
    assert one == many  # the rows are a function of the map, not of the batches that built it


def test_keys_differing_only_in_the_last_bit_sit_at_depth_256() -> None:
    key0 = bytes(31) + b"\x00"
    key1 = bytes(31) + b"\x01"
    rows: Rows = {}
    known: dict[bytes, bytes] = {}
    root = apply_batch(rows, known, {key0: new_record([1])})
    root = apply_batch(rows, known, {key1: new_record([2])})  # pushes key0 from the root down to depth 256
    assert root == ref.root(known)
    assert isinstance(rows[(256, 0)], Leaf) and isinstance(rows[(256, 1)], Leaf)
    assert all(isinstance(rows[(depth, 0)], Interior) for depth in range(256))
    plan = read_paths(PathPlan([key0]), rows)
    record, proof = plan.lookup(key0)
    assert proof.depth == 256 and len(proof.siblings) == 1
    verify_status(key0, record, proof.to_bytes(), root)
    assert len(proof.to_bytes()) == 1 + 32 + 32 <= MAX_PROOF_SIZE


def test_a_deep_path_is_read_in_several_rounds() -> None:
    rows: Rows = {}
    known: dict[bytes, bytes] = {}
    keys = [bytes(31) + bytes([i]) for i in range(2)]
    root = apply_batch(rows, known, {k: new_record([i]) for i, k in enumerate(keys)})
    plan = PathPlan([keys[0]], size_hint=0)
    rounds = 0
    while wanted := plan.wanted():
        rounds += 1
        plan.supply({node: rows[node] for node in wanted if node in rows})
    assert rounds == 256 // 8 + 1  # a first window of 8 depths, then 8 per round, to depth 256
    record, proof = plan.lookup(keys[0])
    verify_status(keys[0], record, proof.to_bytes(), root)


def test_entries_become_issue_and_revoke_records() -> None:
    document, other = b"\x11" * 32, b"\x22" * 32
    rows: Rows = {}
    update = read_paths(PathPlan([document, other]), rows).apply_entries(
        [(3, "issue", document), (4, "issue", other), (5, "revoke", document)]
    )
    rows.update(update.writes)
    update = read_paths(PathPlan([document]), rows).apply_entries([(9, "issue", document)])
    rows.update(update.writes)
    plan = read_paths(PathPlan([document, other]), rows)
    assert plan.record(document) == StatusRecord((3, 9), (5,))  # issued, revoked, re-issued
    assert plan.record(other) == StatusRecord((4,), ())
    assert plan.root_hash() == update.root
    with pytest.raises(ValueError, match="names no document"):
        plan.apply_entries([(10, "issuer-add", document)])


@pytest.mark.parametrize("seed", range(6))
def test_entries_on_documents_already_indexed_match_the_reference(seed: int) -> None:
    """apply_entries finds each document's stored record at its leaf during the update: random batches of issue
    and revoke entries, many on documents indexed earlier (or twice in one batch), next to new documents that
    share long prefixes with them, give the reference's root and proofs after every batch."""
    rng = random.Random(100 + seed)
    rows: Rows = {}
    lists: dict[bytes, tuple[list[int], list[int]]] = {}
    base, index = rng.randbytes(32), 0
    for _ in range(rng.randrange(6, 14)):
        entries = []
        for _ in range(rng.choice([1, 2, 5, 20, 60])):
            reuse = lists and rng.random() < 0.5
            document = rng.choice(sorted(lists)) if reuse else clustered_key(rng, base)
            kind = "revoke" if reuse and rng.random() < 0.5 else "issue"
            entries.append((index, kind, document))
            issued, revoked = lists.setdefault(document, ([], []))
            (issued if kind == "issue" else revoked).append(index)
            index += 1
        update = read_paths(PathPlan({d for _, _, d in entries}, size_hint=len(lists)), rows).apply_entries(entries)
        rows.update(update.writes)
        known = {document: new_record(*pair).to_bytes() for document, pair in lists.items()}
        assert update.root == ref.root(known)
        check_proofs(rows, known, update.root, rng.sample(sorted(known), min(6, len(known))))


def test_a_missing_row_is_reported_as_damage_not_as_absence() -> None:
    rng = random.Random(3)
    rows: Rows = {}
    known: dict[bytes, bytes] = {}
    apply_batch(rows, known, {rng.randbytes(32): new_record([i]) for i in range(50)})
    victim = sorted(known)[0]
    plan = read_paths(PathPlan([victim]), rows)
    deepest = max(node for node in plan.nodes if node[1] == int.from_bytes(victim, "big") >> (256 - node[0]))
    del rows[deepest]
    damaged = read_paths(PathPlan([victim]), rows)
    with pytest.raises(IndexStorageError, match="missing"):
        damaged.lookup(victim)
    with pytest.raises(IndexStorageError, match="missing"):
        damaged.apply({victim: new_record([99])})
    with pytest.raises(IndexStorageError, match="missing"):
        damaged.record(victim)  # the proof-less walk the batch update uses
    with pytest.raises(IndexStorageError, match="missing"):
        damaged.apply_entries([(99, "issue", victim)])


def test_plans_refuse_misuse() -> None:
    plan = PathPlan([b"\x01" * 32])
    assert plan.wanted()
    with pytest.raises(ValueError, match="not asked for"):
        plan.supply({(1, 1): Leaf(b"\x01" * 32, new_record([1]).to_bytes())})
    with pytest.raises(ValueError, match="not finished"):
        PathPlan([b"\x01" * 32]).apply({b"\x01" * 32: new_record([1])})
    with pytest.raises(ValueError, match="not finished"):
        PathPlan([b"\x01" * 32]).lookup(b"\x01" * 32)
    with pytest.raises(ValueError, match="not finished"):
        PathPlan([]).root_hash()  # even a plan for no key reads the root first
    rows: Rows = {}
    apply_batch(rows, {}, {b"\x01" * 32: new_record([1])})
    assert read_paths(PathPlan([]), rows).root_hash() == ref.root({b"\x01" * 32: new_record([1]).to_bytes()})
    with pytest.raises(MalformedError):
        PathPlan([b"\x01" * 31])


def test_an_empty_index() -> None:
    plan = read_paths(PathPlan([b"\x05" * 32]), {})
    assert plan.root_hash() == EMPTY == ref.root({})
    record, proof = plan.lookup(b"\x05" * 32)
    assert record is None and proof.to_bytes() == b"\x01" + bytes(32)
    verify_status(b"\x05" * 32, None, proof.to_bytes(), EMPTY)
    with pytest.raises(ProofError):
        verify_status(b"\x05" * 32, new_record([1]), proof.to_bytes(), EMPTY)


def test_stored_rows_round_trip_and_node_ids_are_fixed() -> None:
    leaf = Leaf(b"\x07" * 32, new_record([1], [2]).to_bytes())
    interior = Interior(b"\x01" * 32, EMPTY)
    assert parse_node(leaf.to_bytes()) == leaf and parse_node(interior.to_bytes()) == interior
    for bad in (b"", b"\x03" + bytes(64), interior.to_bytes() + b"\x00", leaf.to_bytes()[:-1], b"\x02" + bytes(32)):
        with pytest.raises(MalformedError):
            parse_node(bad)
    assert node_id_bytes((0, 0)) == b"\x00\x00"
    assert node_id_bytes((1, 1)) == b"\x00\x01\x80"
    assert node_id_bytes((9, 0b101010101)) == b"\x00\x09\xaa\x80"
    assert node_id_bytes((256, 2**256 - 1)) == b"\x01\x00" + b"\xff" * 32
    with pytest.raises(ValueError):
        node_id_bytes((3, 8))
