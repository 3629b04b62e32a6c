"""The status index's stored nodes, read in two phases, updated in batches (docs/status-proofs.md §6).

Storage holds one row per non-empty subtree of the compressed tree (statusindex.py), keyed by its position:

    node id    u16 depth (0..256) || the first `depth` key bits, left-aligned in ceil(depth/8) bytes, zero-padded
    interior   0x01 || left child hash (32) || right child hash (32)          a subtree of two or more keys
    leaf       0x02 || key (32) || status record bytes                       a subtree of exactly one key

Reading works like tlogcore/merkle.py (STYLE.md §1), except that a path's length is only known once it has been
read: a `PathPlan` names the node ids it wants (`wanted`), the caller reads them however it likes and hands back
the rows it found (`supply`), and this repeats (usually once, at most a few times) until `wanted` is empty. The
plan then builds proofs (`lookup`) or the batch update (`apply`): every row to write, and the new root. An update
only ever inserts or overwrites rows (the index never forgets a document), so the writes of one batch, applied in
one transaction together with the new root, take the stored tree from one consistent state to the next.
"""

import bisect
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from tlogcore.encoding import HASH_SIZE
from tlogcore.errors import MalformedError
from tlogcore.statement import ISSUE, REVOKE
from tlogcore.statusindex import (
    ABSENT_EMPTY,
    ABSENT_OTHER_LEAF,
    EMPTY,
    KEY_BITS,
    NODE_PREFIX,
    PRESENT,
    StatusProof,
    key_int,
    leaf_hash,
    node_hash,
)
from tlogcore.statusrecord import StatusRecord, new_record, parse_record

NodeId = tuple[int, int]  # (depth, the first `depth` bits of the keys below, as an integer)
Added = tuple[list[int], list[int]]  # the issue and revoke entries a batch adds to one document
INTERIOR_TAG, LEAF_TAG = 0x01, 0x02
LATER_WINDOW = 8  # depths asked for per key in every round after the first
_sha256 = hashlib.sha256


class IndexStorageError(MalformedError):
    """The stored nodes contradict each other (a row is missing or has the wrong shape): the index is damaged."""


# Interior and Leaf are made about 16 times per document an update indexes (nodes read and written): they are
# plain slot classes, never changed once made, because a frozen dataclass's __init__ (object.__setattr__ per
# field) costs about twice as much (status-proofs.md §11, fourth round).


@dataclass(slots=True)
class Interior:
    left: bytes
    right: bytes

    @property
    def hash(self) -> bytes:
        return node_hash(self.left, self.right)

    def to_bytes(self) -> bytes:
        return bytes([INTERIOR_TAG]) + self.left + self.right


@dataclass(slots=True)
class Leaf:
    key: bytes
    record: bytes  # StatusRecord bytes, stored as they are hashed

    @property
    def hash(self) -> bytes:
        return leaf_hash(self.key, self.record)

    def to_bytes(self) -> bytes:
        return bytes([LEAF_TAG]) + self.key + self.record


StoredNode = Interior | Leaf


# Per depth: the id's u16 head, the prefix's byte width, and the shift that left-aligns it (ids are made for every
# row read or written, so these are looked up, not recomputed).
_ID_HEADS = [depth.to_bytes(2, "big") for depth in range(KEY_BITS + 1)]
_ID_WIDTHS = [(depth + 7) // 8 for depth in range(KEY_BITS + 1)]
_ID_SHIFTS = [8 * ((depth + 7) // 8) - depth for depth in range(KEY_BITS + 1)]


def node_id_bytes(node: NodeId) -> bytes:
    depth, prefix = node
    if not 0 <= depth <= KEY_BITS or prefix < 0 or prefix.bit_length() > depth:
        raise ValueError(f"no node at depth {depth} with prefix {prefix}")
    return _ID_HEADS[depth] + (prefix << _ID_SHIFTS[depth]).to_bytes(_ID_WIDTHS[depth], "big")


def node_id_from_bytes(data: bytes) -> NodeId:
    """The inverse of `node_id_bytes` (a stored row's key, read back to name the node)."""
    depth = int.from_bytes(data[:2], "big")
    width = (depth + 7) // 8
    if len(data) != 2 + width or depth > KEY_BITS:
        raise IndexStorageError(f"index node id {data.hex()} has the wrong length for its depth")
    prefix = int.from_bytes(data[2:], "big")
    if prefix & ((1 << (8 * width - depth)) - 1):
        raise IndexStorageError(f"index node id {data.hex()} has bits set past its depth")
    return depth, prefix >> (8 * width - depth)


def parse_node(data: bytes) -> StoredNode:
    """Parse a stored row strictly (the rows of a proof are read on every lookup: no Reader, plain slices)."""
    if len(data) == 1 + 2 * HASH_SIZE and data[0] == INTERIOR_TAG:
        return Interior(data[1 : 1 + HASH_SIZE], data[1 + HASH_SIZE :])
    if len(data) > 1 + HASH_SIZE and data[0] == LEAF_TAG:
        record = data[1 + HASH_SIZE :]
        parse_record(record)
        return Leaf(data[1 : 1 + HASH_SIZE], record)
    raise MalformedError(f"index row of {len(data)} bytes is neither an interior row (65) nor a leaf row")


def path_id(bits: int, depth: int) -> NodeId:
    return depth, bits >> (KEY_BITS - depth)


def _bit(bits: int, depth: int) -> int:
    return (bits >> (KEY_BITS - 1 - depth)) & 1


@dataclass(frozen=True)
class Update:
    root: bytes
    writes: dict[NodeId, StoredNode]  # rows to insert or overwrite, in one transaction with `root`


class PathPlan:
    """The stored nodes on the paths of some keys, gathered in rounds; then proofs or a batch update."""

    def __init__(
        self,
        keys: Iterable[bytes],
        size_hint: int = 0,
        first_window: int = 0,
        later_window: int = LATER_WINDOW,
        known: tuple[Mapping[NodeId, StoredNode], int] | None = None,
    ) -> None:
        """`first_window` depths are asked per key in the first round (0: about as deep as a path in an index of
        `size_hint` keys), `later_window` in each later one: fewer rounds against more ids asked past a path's
        end. A reader holding the top levels in memory passes them as `known` (every node at depth <= the depth
        given, as of the version read): the paths are walked through them at once, and the first round asks for
        `later_window` depths below them (no ids asked, then filtered, for the levels already held)."""
        self.nodes: dict[NodeId, StoredNode] = {}
        keys = list(keys)
        if any(len(key) != HASH_SIZE for key in keys):
            raise MalformedError(f"status index keys are {HASH_SIZE} bytes")
        # Open keys, in key order, each with the depth still to read on its path.
        self._open: dict[int, int] = dict.fromkeys(sorted({key_int(key) for key in keys}), 0)
        # A key's path is about log2(documents) + 2 deep: ask for that much at once, a few more later if needed.
        self._window = first_window or max(LATER_WINDOW, size_hint.bit_length() + 4)
        self._later_window = later_window
        if self._window < 1 or later_window < 1:
            raise ValueError("a read plan asks for at least one depth per round")
        self._round_window = 0
        self._asked: set[NodeId] = set()
        self._root_read = False  # the first round always asks for the root, even with no keys
        if known is not None:
            held, depth = known
            self.nodes.update(held)
            self._root_read, self._round_window, self._window = True, depth + 1, later_window
            self._walk_open()

    def wanted(self) -> list[NodeId]:
        """The node ids to read next (the next `window` depths of every open path); empty once all are read."""
        ids: set[NodeId] = set() if self._root_read else {(0, 0)}
        previous, previous_start = 0, -1
        for bits, start in self._open.items():
            low = start
            if start == previous_start:  # keys in order: the prefix shared with the previous key is asked already
                low = max(start, KEY_BITS + 1 - (bits ^ previous).bit_length())
            end = min(start + self._window, KEY_BITS + 1)
            ids.update([(depth, bits >> (KEY_BITS - depth)) for depth in range(low, end)])
            previous, previous_start = bits, start
        self._round_window, self._window = self._window, self._later_window
        self._asked = ids
        return list(ids)

    def supply(self, found: Mapping[NodeId, StoredNode]) -> None:
        """Phase two of a round: the rows found among `wanted()`; an id not in `found` has no row."""
        stray = found.keys() - self._asked
        if stray:
            raise ValueError(f"rows supplied that were not asked for: {sorted(stray)[:3]}")
        self.nodes.update(found)
        self._root_read = True
        self._walk_open()

    def open_paths(self) -> dict[int, int]:
        """The paths not ended yet (key bits -> the depth the walk reached), once the root has been read."""
        if not self._root_read:
            raise ValueError("the plan has not read the root yet")
        return dict(self._open)

    def supply_walked(self, found: Mapping[NodeId, StoredNode], window: int) -> None:
        """A round the caller chose itself: the stored nodes it found within `window` depths below each open
        path's depth (`open_paths`), on those paths (a reader of whole pages: statusindex_pages.path_nodes);
        a node absent there has no row. Then as `supply`."""
        if not self._root_read or window < 1:
            raise ValueError("a walked round follows the root's, over at least one depth")
        self.nodes.update(found)
        self._round_window = window
        self._walk_open()

    def _walk_open(self) -> None:
        """Move every open key down through the nodes read, at most the round's window; close the ended ones."""
        previous, previous_start, previous_stop = 0, -1, 0
        for bits, start in list(self._open.items()):
            depth = start
            if start == previous_start:  # the previous key walked the shared prefix: start where the paths part
                depth = max(start, min(KEY_BITS - (bits ^ previous).bit_length(), previous_stop))
            stop, finished = self._walk(bits, depth, min(start + self._round_window, KEY_BITS + 1))
            if finished:
                del self._open[bits]
            else:
                self._open[bits] = stop
            previous, previous_start, previous_stop = bits, start, stop

    def _walk(self, bits: int, depth: int, end: int) -> tuple[int, bool]:
        """Follow the key's path down from `depth` through the nodes read; where it stops, and whether it ended."""
        nodes = self.nodes
        while depth < end:
            node = nodes.get((depth, bits >> (KEY_BITS - depth)))
            if not isinstance(node, Interior) or depth == KEY_BITS:
                return depth, True  # an empty subtree or a leaf ends the path
            if (node.right if (bits >> (KEY_BITS - 1 - depth)) & 1 else node.left) == EMPTY:
                return depth, True  # the key's side is empty: nothing below to read
            depth += 1
        return depth, False

    def stored_child(self, node: NodeId, expected_hash: bytes) -> StoredNode | None:
        """The stored node that a parent says has `expected_hash` (None for EMPTY), checked to be there."""
        if expected_hash == EMPTY:
            return None
        found = self.nodes.get(node)
        if found is None:
            raise IndexStorageError(f"index node {node_id_bytes(node).hex()} is missing, but its parent names it")
        return found

    def _check_read(self, keys: Iterable[int]) -> None:
        unread = [f"{bits:064x}" for bits in keys if bits in self._open]
        if not self._root_read or unread:
            raise ValueError(f"the plan has not finished reading (the root, or the paths of {unread[:3]})")

    def root_hash(self) -> bytes:
        self._check_read(())
        root = self.nodes.get((0, 0))
        return EMPTY if root is None else root.hash

    def lookup(self, key: bytes) -> tuple[StatusRecord | None, StatusProof]:
        """The key's record (None: absent) and its proof, from the nodes read (docs/status-proofs.md §4)."""
        bits = key_int(key)
        self._check_read([bits])
        depth, bitmap, siblings = 0, 0, []
        node = self.nodes.get((0, 0))
        while isinstance(node, Interior):
            if _bit(bits, depth):
                child_hash, sibling = node.right, node.left
            else:
                child_hash, sibling = node.left, node.right
            if sibling != EMPTY:
                bitmap |= 1 << (KEY_BITS - 1 - depth)
                siblings.append(sibling)
            depth += 1
            node = self.stored_child(path_id(bits, depth), child_hash)
        siblings.reverse()  # deepest first
        if node is None:
            return None, StatusProof(ABSENT_EMPTY, bitmap, tuple(siblings))
        if node.key == key:
            return parse_record(node.record), StatusProof(PRESENT, bitmap, tuple(siblings))
        value_hash = hashlib.sha256(node.record).digest()
        return None, StatusProof(ABSENT_OTHER_LEAF, bitmap, tuple(siblings), node.key, value_hash)

    def record(self, key: bytes) -> StatusRecord | None:
        """The key's current record, from the nodes read (None: not in the index); `lookup` without the proof."""
        bits = key_int(key)
        self._check_read([bits])
        return self._record_of(key, bits)

    def _record_of(self, key: bytes, bits: int) -> StatusRecord | None:
        """`record` once the key's path is known to be read: one dict lookup per level."""
        nodes, depth = self.nodes, 0
        node = nodes.get((0, 0))
        while isinstance(node, Interior):
            if (node.right if (bits >> (KEY_BITS - 1 - depth)) & 1 else node.left) == EMPTY:
                return None
            depth += 1
            node = nodes.get((depth, bits >> (KEY_BITS - depth)))
            if node is None:
                raise IndexStorageError(
                    f"index node {node_id_bytes(path_id(bits, depth)).hex()} is missing, but its parent names it"
                )
        return parse_record(node.record) if node is not None and node.key == key else None

    def apply_entries(self, entries: Iterable[tuple[int, str, bytes]]) -> Update:
        """Add log entries (index, statement kind, document SHA-256) to the records they name; then as `apply`.

        Only `issue` and `revoke` statements name a document; the caller passes those alone. A document already
        in the index is found at its leaf while the update walks down (no separate walk per document).
        """
        added: dict[bytes, tuple[list[int], list[int]]] = {}
        for index, kind, document in entries:
            if kind not in (ISSUE, REVOKE):
                raise ValueError(f"a {kind!r} statement names no document")
            issued, revoked = added.setdefault(document, ([], []))
            (issued if kind == ISSUE else revoked).append(index)
        records = {document: new_record(issued, revoked) for document, (issued, revoked) in added.items()}
        return self._update(records, added)

    def apply(self, records: Mapping[bytes, StatusRecord]) -> Update:
        """Set each key's record (keys must be among the plan's); returns the rows to write and the new root."""
        return self._update(records, None)

    def _update(self, records: Mapping[bytes, StatusRecord], added: Mapping[bytes, Added] | None) -> Update:
        items = sorted((key_int(key), key, record.to_bytes()) for key, record in records.items())
        self._check_read(bits for bits, _, _ in items)
        writes: dict[NodeId, StoredNode] = {}
        leaves = [Leaf(key, record) for _, key, record in items]
        batch = _Batch([bits for bits, _, _ in items], leaves, self, writes, added)
        root = batch.update(0, 0, self.nodes.get((0, 0)), 0, len(items)) if items else self.root_hash()
        return Update(root, writes)


@dataclass
class _Batch:
    """One batch update: keys sorted by their bits, recursed over with index ranges (no list copies)."""

    bits: list[int]
    leaves: list[Leaf]
    plan: PathPlan
    writes: dict[NodeId, StoredNode]
    added: Mapping[bytes, Added] | None  # apply_entries: merge these into a key's stored record

    def update(self, depth: int, prefix: int, current: StoredNode | None, lo: int, hi: int) -> bytes:
        """The new hash of subtree (depth, prefix) holding `current`, after setting leaves[lo:hi] in it."""
        if isinstance(current, Interior):
            return self._interior(depth, prefix, current, lo, hi)
        if isinstance(current, Leaf):
            where = bisect.bisect_left(self.bits, key_int(current.key), lo, hi)
            if where < hi and self.leaves[where].key == current.key:
                if self.added is not None:  # the document is in the index already: its entries are added
                    record = parse_record(current.record).with_entries(*self.added[current.key])
                    self.leaves[where] = Leaf(current.key, record.to_bytes())
                return self._fresh(depth, prefix, self.bits, self.leaves, lo, hi)
            # The one key already here moves down beside the new ones: build the subtree from both.
            bits, leaves = self.bits[lo:hi], self.leaves[lo:hi]
            bits.insert(where - lo, key_int(current.key))
            leaves.insert(where - lo, current)
            return self._fresh(depth, prefix, bits, leaves, 0, len(bits))
        return self._fresh(depth, prefix, self.bits, self.leaves, lo, hi)

    # _fresh and _interior run once per node written (about 10 per document): the hash and the child lookup are
    # written inline (node_hash, PathPlan.stored_child), as they define them.

    def _fresh(self, depth: int, prefix: int, bits: list[int], leaves: list[Leaf], lo: int, hi: int) -> bytes:
        """Build subtree (depth, prefix) from leaves[lo:hi] alone (nothing else is stored below it)."""
        if hi - lo == 1:
            leaf = leaves[lo]
            self.writes[(depth, prefix)] = leaf
            return leaf.hash
        middle = bisect.bisect_left(bits, ((prefix << 1) | 1) << (KEY_BITS - 1 - depth), lo, hi)
        left = self._fresh(depth + 1, prefix << 1, bits, leaves, lo, middle) if middle > lo else EMPTY
        right = self._fresh(depth + 1, (prefix << 1) | 1, bits, leaves, middle, hi) if hi > middle else EMPTY
        self.writes[(depth, prefix)] = Interior(left, right)
        return _sha256(NODE_PREFIX + left + right).digest()

    def _interior(self, depth: int, prefix: int, current: Interior, lo: int, hi: int) -> bytes:
        middle = bisect.bisect_left(self.bits, ((prefix << 1) | 1) << (KEY_BITS - 1 - depth), lo, hi)
        left, right = current.left, current.right
        nodes, below = self.plan.nodes, depth + 1
        if middle > lo:
            child = None if left == EMPTY else nodes.get((below, prefix << 1))
            if child is None and left != EMPTY:
                self.plan.stored_child((below, prefix << 1), left)  # raises: the parent names a missing row
            left = self.update(below, prefix << 1, child, lo, middle)
        if hi > middle:
            child = None if right == EMPTY else nodes.get((below, (prefix << 1) | 1))
            if child is None and right != EMPTY:
                self.plan.stored_child((below, (prefix << 1) | 1), right)  # raises, as above
            right = self.update(below, (prefix << 1) | 1, child, middle, hi)
        self.writes[(depth, prefix)] = Interior(left, right)
        return _sha256(NODE_PREFIX + left + right).digest()


def read_paths(plan: PathPlan, rows: Mapping[NodeId, StoredNode]) -> PathPlan:
    """Run every round of `plan` against rows held in memory (tests, benchmarks, a monitor's own copy)."""
    while wanted := plan.wanted():
        plan.supply({node: row for node in wanted if (row := rows.get(node)) is not None})
    return plan
