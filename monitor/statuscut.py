"""The root the monitor's status index had at an earlier size, computed from the index it holds now
(statusaudit.py: an index-root logged after the monitor's index passed the size it states). Pure: the caller
reads the nodes.

Records only grow with the entry index, so the index over entries [0, size) is the index now with the record of
every document that has an entry at or past `size` cut below it; a record left empty takes its document out. Only
the paths of those documents change (docs/status-proofs.md §3): a subtree none of them is in keeps its hash. A
subtree left with a single key is that key's leaf hash, wherever it sits, so where one side of a node empties, the
other side's node is read to know whether it is a lone leaf (it then takes the node's place) or an interior node.
"""

from collections.abc import Callable, Iterable, Mapping, Sequence

from tlogcore.statusindex import EMPTY, KEY_BITS, key_int, leaf_hash, node_hash
from tlogcore.statusindex_nodes import IndexStorageError, Interior, NodeId, PathPlan, StoredNode
from tlogcore.statusrecord import parse_record, record_bytes

# What a subtree is after the cut: nothing, one key (its leaf hash floats up), or an interior node; or not known
# yet (a subtree the cut does not enter, whose node is read only if its sibling empties).
_EMPTY, _LEAF, _NODE, _UNREAD = range(4)
Reader = Callable[[Sequence[NodeId]], Mapping[NodeId, StoredNode]]


def root_before(size: int, documents: Iterable[bytes], read: Reader) -> bytes:
    """The index's root over entries [0, size): `documents` are those with an entry at or past `size` (every one
    of them is in the index now), `read` gives the stored nodes among the ids asked (absent: no node)."""
    keys = sorted({key_int(document) for document in documents})
    plan = PathPlan([key.to_bytes(32, "big") for key in keys])
    while wanted := plan.wanted():
        plan.supply(read(wanted))
    if not keys:
        return plan.root_hash()
    nodes: dict[NodeId, StoredNode | None] = dict(plan.nodes)

    def node_at(node: NodeId) -> StoredNode | None:
        if node not in nodes:
            nodes[node] = read([node]).get(node)
        return nodes[node]

    kind, digest = _cut((0, 0), keys, size, node_at)
    return EMPTY if kind == _EMPTY else digest


def _cut(at: NodeId, keys: list[int], size: int, node_at: Callable[[NodeId], StoredNode | None]) -> tuple[int, bytes]:
    """What the subtree at `at` is once the records of `keys` (all in it) are cut below `size`."""
    node = node_at(at)
    if node is None:
        raise IndexStorageError(f"status index: a document with entries is missing under node {at}")
    if not isinstance(node, Interior):
        if keys != [key_int(node.key)]:
            raise IndexStorageError(f"status index: the leaf at node {at} is not the document's")
        record = parse_record(node.record)
        issued, revoked = [i for i in record.issued if i < size], [i for i in record.revoked if i < size]
        if not issued and not revoked:
            return _EMPTY, EMPTY
        return _LEAF, leaf_hash(node.key, record_bytes(issued, revoked))
    depth, prefix = at
    if depth >= KEY_BITS:
        raise IndexStorageError(f"status index: an interior node at depth {depth}")
    split = next((n for n, key in enumerate(keys) if (key >> (KEY_BITS - 1 - depth)) & 1), len(keys))
    sides = []
    for bit, child, below in ((0, node.left, keys[:split]), (1, node.right, keys[split:])):
        if below:
            sides.append(_cut((depth + 1, 2 * prefix + bit), below, size, node_at))
        else:
            sides.append((_EMPTY if child == EMPTY else _UNREAD, child))
    (left, left_hash), (right, right_hash) = sides
    if left == _EMPTY and right == _EMPTY:
        return _EMPTY, EMPTY
    for lone, other, bit, digest in ((left, right, 0, left_hash), (right, left, 1, right_hash)):
        if other != _EMPTY or lone == _NODE:
            continue
        if lone == _UNREAD:
            sibling = node_at((depth + 1, 2 * prefix + bit))
            if sibling is None:
                raise IndexStorageError(f"status index: node {at} names a child that is missing")
            lone = _NODE if isinstance(sibling, Interior) else _LEAF
        if lone == _LEAF:
            return _LEAF, digest  # a lone key: its leaf takes this node's place
    return _NODE, node_hash(left_hash, right_hash)
