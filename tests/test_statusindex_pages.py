"""The status index stored as pages of 4 levels (tlogcore/statusindex_pages.py, docs/status-proofs.md §6): the
pages an update writes, merged over the stored ones, are exactly the tree's nodes grouped by page, so roots and
proofs read through pages are the reference's; a page row has one encoding, byte for byte."""

import random

import pytest
import statusindex_reference as ref
from test_statusindex_reference import random_batch

from tlogcore.errors import MalformedError
from tlogcore.statusindex import KEY_BITS, verify_status
from tlogcore.statusindex_nodes import Interior, Leaf, NodeId, PathPlan, StoredNode
from tlogcore.statusindex_pages import (
    STRIDE,
    changed_pages,
    decode_page,
    encode_page,
    encode_raw,
    half_of,
    merge_pages,
    node_at,
    nodes_in,
    page_id_bytes,
    page_id_from_bytes,
    page_of,
    pages_of,
    path_nodes,
    path_pages,
    position_of,
    scan_page,
    top_ranges,
)
from tlogcore.statusrecord import new_record


class PagedRows:
    """Pages held as a database holds them: page id bytes -> page row bytes."""

    def __init__(self) -> None:
        self.rows: dict[bytes, bytes] = {}

    def pages(self, ids: set[NodeId]) -> dict[NodeId, dict[int, StoredNode]]:
        found = {page: self.rows.get(page_id_bytes(page)) for page in ids}
        return {page: scan_page(page[0], data) if data is not None else {} for page, data in found.items()}

    def read(self, plan: PathPlan) -> PathPlan:
        while wanted := plan.wanted():
            plan.supply(nodes_in(wanted, self.pages(pages_of(wanted))))
        return plan

    def write(self, writes: dict[NodeId, StoredNode]) -> None:
        changes = changed_pages(writes)
        merged = merge_pages(self.pages(set(changes)), changes)
        self.rows.update((page_id_bytes(page), encode_raw(nodes)) for page, nodes in merged.items())


@pytest.mark.parametrize("seed", range(6))
def test_pages_written_in_batches_are_the_tree_grouped_by_page(seed: int) -> None:
    rng = random.Random(seed)
    paged, every_node, known = PagedRows(), dict[NodeId, StoredNode](), dict[bytes, bytes]()
    base = rng.randbytes(32)
    for _ in range(12):
        batch = random_batch(rng, known, base)
        update = paged.read(PathPlan(batch, size_hint=len(known))).apply(batch)
        paged.write(update.writes)
        every_node.update(update.writes)
        known.update({key: record.to_bytes() for key, record in batch.items()})
        assert update.root == ref.root(known)
    # Each stored page holds exactly the tree's nodes under it (none lost by a merge, none left over).
    assert paged.rows == {page_id_bytes(p): encode_raw(n) for p, n in changed_pages(every_node).items()}
    probes = rng.sample(sorted(known), 5) + [rng.randbytes(32) for _ in range(5)]
    plan = paged.read(PathPlan(probes, size_hint=len(known)))
    for key in probes:
        record, proof = plan.lookup(key)
        assert proof.to_bytes() == ref.proof(known, key)
        verify_status(key, record, proof.to_bytes(), ref.root(known))


@pytest.mark.parametrize("seed", range(4))
def test_paths_read_a_page_per_round_give_the_same_updates_and_proofs(seed: int) -> None:
    """Below levels held in memory, a plan fed whole pages on its paths (path_pages, path_nodes, supply_walked:
    the indexer's reads) updates and proves exactly as one fed the node ids it asks for, and as the reference."""
    rng = random.Random(100 + seed)
    paged, every_node, known = PagedRows(), dict[NodeId, StoredNode](), dict[bytes, bytes]()
    base = rng.randbytes(32)
    for _ in range(10):
        batch = random_batch(rng, known, base)
        held = {node: row for node, row in every_node.items() if node[0] <= 7}  # depths 0-7: two pages deep
        by_ids = paged.read(PathPlan(batch, known=(held, 7)))
        by_pages = PathPlan(batch, known=(held, 7))
        while open_paths := by_pages.open_paths():
            by_pages.supply_walked(path_nodes(open_paths, paged.pages(path_pages(open_paths))), STRIDE)
        for key in batch:
            assert by_pages.lookup(key) == by_ids.lookup(key)
        update = by_pages.apply(batch)
        assert update == by_ids.apply(batch)
        paged.write(update.writes)
        every_node.update(update.writes)
        known.update({key: record.to_bytes() for key, record in batch.items()})
        assert update.root == ref.root(known)
    with pytest.raises(ValueError):
        path_pages({1: 5})  # a path read by pages stops at a page's root


def test_node_ids_and_page_positions() -> None:
    rng = random.Random(4)
    for depth in [*range(0, 12), 255, 256]:
        for _ in range(20):
            node = (depth, rng.getrandbits(depth) if depth else 0)
            page, position = page_of(node), position_of(node)
            assert page[0] % STRIDE == 0 and page[0] <= depth < page[0] + STRIDE and 1 <= position < 2**STRIDE
            assert node_at(page, position) == node
            assert page_id_from_bytes(page_id_bytes(page)) == page
    with pytest.raises(ValueError):
        page_id_bytes((5, 0))
    with pytest.raises(MalformedError):
        page_id_from_bytes(bytes([0, 5, 0]))


def test_the_tops_id_ranges_hold_exactly_its_pages_whole_or_by_halves() -> None:
    """top_ranges: a page id falls in one of the ranges iff the page starts at depth <= `depth` and, with a half,
    is the root's page or lies in that half (half_of), at the edges of each depth's ids too."""
    rng = random.Random(5)
    pages = [(0, 0)] + [(d, p) for d in range(STRIDE, 257, STRIDE) for p in (0, (1 << d) - 1, 1 << (d - 1))]
    pages += [(d, rng.getrandbits(d)) for d in range(STRIDE, 257, STRIDE) for _ in range(30)]
    for depth in (0, 3, 4, 16, 20, 23, 256):
        for half in (None, 0, 1):
            ranges = top_ranges(depth, half)
            for page in pages:
                inside = any(low <= page_id_bytes(page) < high for low, high in ranges)
                assert inside == (page[0] <= depth and (half is None or half_of(page) in (None, half))), (page, half)
    with pytest.raises(ValueError):
        top_ranges(20, 2)


# §6's example: the page at depth 4 under prefix 1011, holding an interior node (position 1) whose left child is
# a leaf (position 2) and whose right subtree is empty.
KEY = bytes([0xB0]) + bytes(31)
EXAMPLE_RECORD = new_record([7], [9]).to_bytes()
EXAMPLE = {1: Interior(b"\xaa" * 32, b"\x12" * 32), 2: Leaf(KEY, EXAMPLE_RECORD)}
EXAMPLE_HEX = (
    "0002" "0004" + "aa" * 32 + "12" * 32 + "b0" + "00" * 31 + "01" "0001" "0000000000000007" "0001" "0000000000000009"
)  # fmt: skip


def test_page_ids_in_byte_order_are_in_node_id_order() -> None:
    """Rows are written sorted by node id (logserver/statuspages.py, monitor/statusfile.py), which must be the
    order of their keys' bytes: every page depth, prefixes at both ends of their range and at random."""
    rng = random.Random(7)
    pages: list[NodeId] = []
    for depth in range(0, KEY_BITS, STRIDE):
        top = (1 << depth) - 1
        pages += {(depth, 0), (depth, top), *((depth, rng.randint(0, top)) for _ in range(20))}
    rng.shuffle(pages)
    assert [page_id_bytes(page) for page in sorted(pages)] == sorted(page_id_bytes(page) for page in pages)


def test_a_page_row_byte_for_byte() -> None:
    assert encode_page(EXAMPLE).hex() == EXAMPLE_HEX
    assert decode_page(4, bytes.fromhex(EXAMPLE_HEX)) == EXAMPLE
    assert page_id_bytes((4, 0b1011)).hex() == "0004b0"
    full = {position: Interior(bytes(32), bytes(32)) for position in range(1, 16)}
    assert len(encode_page(full)) == 964  # inside one 4 KiB SQLite page (about 1,000 bytes before overflow)


def test_page_rows_are_strict() -> None:
    good = bytes.fromhex(EXAMPLE_HEX)
    refused = {
        "no root": bytes.fromhex("00040000") + bytes(64),
        "bit 0": bytes.fromhex("00030004") + good[4:],
        "both masks": bytes.fromhex("00060004") + good[4:],
        "a node under no interior node": bytes.fromhex("00000012") + (KEY + EXAMPLE_RECORD) * 2,
        "trailing byte": good + b"\x00",
        "cut short": good[:-1],
        "masks only": good[:3],
    }
    for name, data in refused.items():
        with pytest.raises(MalformedError):
            decode_page(4, data)
            pytest.fail(name)
    with pytest.raises(MalformedError):
        decode_page(KEY_BITS, bytes.fromhex("00020000") + bytes(64))  # no interior node at depth 256
    assert decode_page(KEY_BITS, bytes.fromhex("00000002") + KEY + EXAMPLE_RECORD) == {1: Leaf(KEY, EXAMPLE_RECORD)}


def test_every_single_byte_change_of_a_page_row_is_refused_or_reads_as_written() -> None:
    """One encoding per page: a changed row either fails to parse or encodes back to exactly its bytes."""
    rng = random.Random(7)
    page: dict[int, StoredNode] = {1: Interior(rng.randbytes(32), rng.randbytes(32))}
    page |= {2: Interior(rng.randbytes(32), rng.randbytes(32))}
    page |= {3: Leaf(rng.randbytes(32), new_record([1, 2], [3]).to_bytes()), 4: Leaf(KEY, EXAMPLE_RECORD)}
    page |= {5: Leaf(rng.randbytes(32), new_record([5]).to_bytes())}
    data = encode_page(page)
    assert decode_page(8, data) == page
    for offset in range(len(data)):
        for flip in (0x01, 0x80, 0xFF):
            changed = data[:offset] + bytes([data[offset] ^ flip]) + data[offset + 1 :]
            try:
                read = decode_page(8, changed)
            except MalformedError:
                continue
            assert encode_page(read) == changed and read != page
