"""A document's status proof read straight from the stored pages on its path (tlogcore/statuspageproof.py, the
server's lookups): the same record and proof as PathPlan.lookup and the reference, for present documents, absent
ones (ending in an empty subtree or at another document's leaf), paths deeper than the pages given, and damaged
pages."""

import random

import pytest
import statusindex_reference as ref
from test_statusindex_pages import PagedRows
from test_statusindex_reference import clustered_key, random_batch

from tlogcore.errors import MalformedError
from tlogcore.statusindex import ABSENT_EMPTY, ABSENT_OTHER_LEAF, EMPTY, KEY_BITS, PRESENT, key_int, verify_status
from tlogcore.statusindex_nodes import IndexStorageError, Interior, NodeId, PathPlan
from tlogcore.statusindex_pages import STRIDE, Page, page_of, position_of, raw_node
from tlogcore.statuspageproof import path_page_ids, path_proof


def grown(seed: int, batches: int = 12) -> tuple[PagedRows, dict[bytes, bytes], bytes]:
    rng = random.Random(seed)
    paged, known = PagedRows(), dict[bytes, bytes]()
    base = rng.randbytes(32)
    for _ in range(batches):
        batch = random_batch(rng, known, base)
        paged.write(paged.read(PathPlan(batch, size_hint=len(known))).apply(batch).writes)
        known.update({key: record.to_bytes() for key, record in batch.items()})
    return paged, known, base


def probes(rng: random.Random, known: dict[bytes, bytes], base: bytes) -> list[bytes]:
    """Present keys, random absent ones, and absent ones that share a long prefix with present ones."""
    return (
        rng.sample(sorted(known), 8)
        + [rng.randbytes(32) for _ in range(8)]
        + [clustered_key(rng, base) for _ in range(8)]
    )


@pytest.mark.parametrize("seed", range(6))
def test_a_proof_read_from_the_pages_is_the_plans_and_the_references(seed: int) -> None:
    paged, known, base = grown(seed)
    rng = random.Random(seed)
    keys = probes(rng, known, base)
    plan = paged.read(PathPlan(keys, size_hint=len(known)))
    kinds = set()
    for key in keys:
        found = path_proof(key, paged.pages(set(path_page_ids(key, 0, KEY_BITS + 1))))
        assert not isinstance(found, int)
        record, proof = found
        assert found == plan.lookup(key)
        assert proof.to_bytes() == ref.proof(known, key)
        assert (record.to_bytes() if record is not None else None) == known.get(key)
        verify_status(key, record, proof.to_bytes(), ref.root(known))
        kinds.add(proof.kind)
    assert kinds == {PRESENT, ABSENT_EMPTY, ABSENT_OTHER_LEAF}  # every kind of answer was met


@pytest.mark.parametrize("seed", range(3))
def test_a_path_past_the_pages_given_says_where_to_read_on(seed: int) -> None:
    """Given the pages down to some depth only, the answer is the depth of the first page missing on the path
    (the reader reads on from there), or the whole proof if the path ended above it."""
    paged, known, base = grown(seed)
    rng = random.Random(seed)
    for key in probes(rng, known, base):
        whole = path_proof(key, paged.pages(set(path_page_ids(key, 0, KEY_BITS + 1))))
        assert not isinstance(whole, int)
        proof = whole[1]
        last_read = proof.depth - 1 if proof.kind == ABSENT_EMPTY else proof.depth  # the deepest node on the path
        for end in range(0, 40, STRIDE):
            found = path_proof(key, paged.pages(set(path_page_ids(key, 0, end))))
            assert found == (whole if last_read < end else end)


def test_an_empty_index_proves_every_key_absent() -> None:
    key = bytes(range(32))
    assert path_page_ids(key, 0, 9) == [(0, 0), (4, 0), (8, 0)]
    found = path_proof(key, {(0, 0): {}})
    assert not isinstance(found, int)
    assert found[0] is None and found[1].to_bytes() == ref.proof({}, key)


def without_a_path_node(pages: dict[NodeId, Page], key: bytes) -> list[dict[NodeId, Page]]:
    """Copies of a present key's pages, each without one node of its path below the root (each named by its
    parent)."""
    copies, bits = [], key_int(key)
    for depth in range(1, KEY_BITS + 1):
        node = (depth, bits >> (KEY_BITS - depth))
        if position_of(node) not in pages.get(page_of(node), {}):
            return copies
        copy = {page: dict(nodes) for page, nodes in pages.items()}
        del copy[page_of(node)][position_of(node)]
        copies.append(copy)
    return copies


@pytest.mark.parametrize("seed", range(3))
def test_a_node_missing_on_the_path_or_a_bad_record_is_damage(seed: int) -> None:
    paged, known, _ = grown(seed)
    for key in random.Random(seed).sample(sorted(known), 4):
        pages = paged.pages(set(path_page_ids(key, 0, KEY_BITS + 1)))
        copies = without_a_path_node(pages, key)
        assert copies  # the path crosses nodes below the root
        for copy in copies:
            with pytest.raises(IndexStorageError):
                path_proof(key, copy)
        leaf_page = next(page for page in pages.values() if any(raw[0] and raw[1][:32] == key for raw in page.values()))
        position = next(p for p, raw in leaf_page.items() if raw[0] and raw[1][:32] == key)
        leaf_page[position] = (True, key + b"\xff")  # a record that does not parse
        with pytest.raises(MalformedError):
            path_proof(key, pages)


def test_an_interior_node_with_an_empty_side_ends_the_path_there() -> None:
    """A key whose side of an interior node is EMPTY is absent there, whatever lies below (nothing is read)."""
    other = bytes(32)
    key = b"\x80" + bytes(31)  # parts from `other` at bit 0
    page: Page = {position_of((0, 0)): raw_node(Interior(ref.leaf(other, b"r"), EMPTY))}
    found = path_proof(key, {(0, 0): page})
    assert not isinstance(found, int)
    assert found[0] is None and found[1].kind == ABSENT_EMPTY and found[1].siblings == (ref.leaf(other, b"r"),)
