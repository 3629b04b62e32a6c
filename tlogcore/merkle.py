"""RFC 9162 §2.1 Merkle trees: hashing, stored-hash layout, proofs in two phases, verification.

Storage layout (after Go's golang.org/x/mod/sumdb/tlog): every perfect subtree
hash of an append-only tree is stored once, at a dense index. Leaf n's hash is
written at `stored_hash_index(0, n)`, followed by the hashes of the subtrees it
completes, level by level, so appending only ever writes at the end. A tree of
size n holds `2n - popcount(n)` stored hashes, about two per leaf.

Every hash a proof needs is MTH(D[a:b]) for some range [a, b). A range splits
into maximal aligned power-of-two blocks, each a stored node (level h, index i).
Proof building is therefore two phases (STYLE.md §1): a `HashPlan` names the
nodes to fetch; the caller reads them however it likes (SQL, tiles, memory);
`HashPlan.assemble` folds them into the proof. No I/O happens here.
"""

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from tlogcore.encoding import HASH_SIZE, MAX_INT64
from tlogcore.errors import MalformedError, ProofError

EMPTY_ROOT = hashlib.sha256(b"").digest()
# Sizes stay below 2^63 for interoperability with Go's int64 sizes (DESIGN.md).
MAX_TREE_SIZE = MAX_INT64

Node = tuple[int, int]  # (level, index): the perfect subtree over leaves [index*2^level, (index+1)*2^level)


def leaf_hash(entry: bytes) -> bytes:
    """MTH({d}) = SHA-256(0x00 || d)  (RFC 9162 §2.1.1)."""
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right)  (RFC 9162 §2.1.1)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def leaf_hashes(entries: Sequence[bytes]) -> bytes:
    """The leaf hashes of `entries`, concatenated (a level-0 tile's body): one C call per entry, no function call
    per entry in Python (the monitor's Merkle audit hashes every entry of a log)."""
    sha256 = hashlib.sha256
    return b"".join([sha256(b"\x00" + entry).digest() for entry in entries])


def perfect_root(hashes: bytes) -> bytes:
    """MTH of 2^k hashes given concatenated (a full tile's body, k = 8): each level's pairs are adjacent, so a
    node hashes one slice, SHA-256(0x01 || left || right), with no per-node split or call (RFC 9162 §2.1.1)."""
    count = len(hashes) // HASH_SIZE
    if count == 0 or count & (count - 1) or len(hashes) % HASH_SIZE:
        raise MalformedError(f"{len(hashes)} bytes are not a power of two of {HASH_SIZE}-byte hashes")
    sha256, pair = hashlib.sha256, 2 * HASH_SIZE
    while len(hashes) > HASH_SIZE:
        hashes = b"".join([sha256(b"\x01" + hashes[i : i + pair]).digest() for i in range(0, len(hashes), pair)])
    return hashes


def _check_size(size: int, what: str = "tree size") -> None:
    if not 0 <= size <= MAX_TREE_SIZE:
        raise MalformedError(f"{what} {size} is outside 0..2^63-1")


def _split_point(n: int) -> int:
    """The largest power of two strictly less than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


# --- stored-hash layout -------------------------------------------------------


def stored_hash_index(level: int, index: int) -> int:
    """Where node (level, index) is stored.

    Level L's node n is written right after level L-1's node 2n+1, so map it down
    to the last leaf it covers, m = (n+1)*2^L - 1; leaf m is stored after all
    nodes completed by leaves 0..m-1, of which there are 2m - popcount(m).
    """
    last_leaf = ((index + 1) << level) - 1
    return 2 * last_leaf - last_leaf.bit_count() + level


def stored_hash_count(size: int) -> int:
    """How many stored hashes a tree of `size` leaves has."""
    return 2 * size - size.bit_count()


def range_nodes(start: int, end: int) -> list[Node]:
    """Split leaves [start, end) into maximal aligned perfect subtrees, left to right."""
    width = end - start
    if width > 0 and not width & (width - 1) and not start & (width - 1):  # one perfect subtree: most proof ranges
        level = width.bit_length() - 1
        return [(level, start >> level)]
    nodes: list[Node] = []
    while start < end:
        level = (start & -start).bit_length() - 1 if start else (end - start).bit_length() - 1
        while start + (1 << level) > end:
            level -= 1
        nodes.append((level, start >> level))
        start += 1 << level
    return nodes


def fold_range(hashes: Sequence[bytes]) -> bytes:
    """MTH of a range from its `range_nodes` hashes: combine right to left."""
    acc = hashes[-1]
    for left in reversed(hashes[:-1]):
        acc = node_hash(left, acc)
    return acc


def right_edge(size: int) -> list[Node]:
    """The nodes whose hashes an append to a tree of `size` leaves needs to read."""
    return range_nodes(0, size)


@dataclass(frozen=True)
class Appended:
    """The result of appending leaves: hashes to store from `stored_hash_count(old)` on, the new root,
    and the hashes of `right_edge(new size)` for the next append."""

    new_hashes: list[bytes]
    root: bytes
    edge: list[bytes]


def append_leaves(size: int, edge_hashes: Sequence[bytes], leaf_hashes: Sequence[bytes]) -> Appended:
    """Append leaves to a tree of `size`, given the hashes of `right_edge(size)`.

    Costs one node hash per completed subtree (fewer than one per leaf) and reads
    nothing but the right edge.
    """
    _check_size(size + len(leaf_hashes))
    levels = [level for level, _ in right_edge(size)]
    if len(edge_hashes) != len(levels):
        raise MalformedError(f"right edge of size {size} has {len(levels)} hashes, got {len(edge_hashes)}")
    stack_levels, stack_hashes = levels, list(edge_hashes)
    out: list[bytes] = []
    append, sha256 = out.append, hashlib.sha256  # this loop is the sequencer's hot path
    for leaf in leaf_hashes:
        level, acc = 0, leaf
        append(acc)
        while stack_levels and stack_levels[-1] == level:
            stack_levels.pop()
            acc = sha256(b"\x01" + stack_hashes.pop() + acc).digest()
            level += 1
            append(acc)
        stack_levels.append(level)
        stack_hashes.append(acc)
    root = fold_range(stack_hashes) if stack_hashes else EMPTY_ROOT
    return Appended(out, root, stack_hashes)


# --- proofs, phase one: which nodes ------------------------------------------


@dataclass(frozen=True)
class HashPlan:
    """The ranges a proof (or root) is made of, and the stored nodes they need."""

    ranges: tuple[tuple[int, int], ...]
    # Made once, with the plan: the log answers a batch of 1,000 submissions with 1,000 proofs, and a lookup reads
    # each twice (issue 20). Not cached properties: on Python 3.11 each of their reads takes a lock.
    range_counts: tuple[int, ...] = field(init=False, repr=False, compare=False)
    nodes: tuple[Node, ...] = field(init=False, repr=False, compare=False)
    stored_indexes: tuple[int, ...] = field(init=False, repr=False, compare=False)  # where `nodes` are stored

    def __post_init__(self) -> None:
        per_range = [range_nodes(start, end) for start, end in self.ranges]
        nodes = tuple(node for nodes in per_range for node in nodes)
        object.__setattr__(self, "range_counts", tuple(map(len, per_range)))
        object.__setattr__(self, "nodes", nodes)
        object.__setattr__(self, "stored_indexes", tuple(stored_hash_index(level, index) for level, index in nodes))

    def assemble(self, node_hashes: Sequence[bytes]) -> list[bytes]:
        """Phase two: turn the hashes of `self.nodes` (in that order) into one hash per range."""
        counts = self.range_counts
        if len(node_hashes) != sum(counts):
            raise MalformedError(f"plan needs {sum(counts)} hashes, got {len(node_hashes)}")
        out, pos = [], 0
        for count in counts:
            out.append(fold_range(node_hashes[pos : pos + count]) if count > 1 else node_hashes[pos])
            pos += count
        return out


def inclusion_plan(index: int, size: int) -> HashPlan:
    """The ranges of PATH(index, D[0:size]), leaf side first (RFC 9162 §2.1.3.1)."""
    _check_size(size)
    if not 0 <= index < size:
        raise MalformedError(f"index {index} is not in a tree of size {size}")
    ranges = []
    start, end = 0, size
    while end - start > 1:
        k = _split_point(end - start)
        if index < start + k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
    return HashPlan(tuple(reversed(ranges)))


def consistency_plan(old_size: int, new_size: int) -> HashPlan:
    """The ranges of PROOF(old, D[0:new]) (RFC 9162 §2.1.4.1); empty for old 0 or old == new."""
    _check_size(new_size)
    if not 0 <= old_size <= new_size:
        raise MalformedError(f"old size {old_size} is not in 0..{new_size}")
    ranges = []
    if 0 < old_size < new_size:
        start, end, m, complete = 0, new_size, old_size, True
        while m != end - start:
            k = _split_point(end - start)
            if m <= k:
                ranges.append((start + k, end))
                end = start + k
            else:
                ranges.append((start, start + k))
                start, m, complete = start + k, m - k, False
        if not complete:
            ranges.append((start, end))
    return HashPlan(tuple(reversed(ranges)))


def root_plan(size: int) -> HashPlan:
    _check_size(size)
    return HashPlan(((0, size),) if size else ())


# --- verification -------------------------------------------------------------


def _check_proof_hashes(proof: Sequence[bytes], leaf_or_root: Sequence[bytes]) -> None:
    for item in (*proof, *leaf_or_root):
        if len(item) != HASH_SIZE:
            raise ProofError(f"proof hash of {len(item)} bytes, want {HASH_SIZE}")


def inclusion_proof_length(index: int, size: int) -> int:
    """The length of the proof for (index, size), derived from the two numbers alone."""
    inner = (index ^ (size - 1)).bit_length()
    return inner + (index >> inner).bit_count()


def root_from_inclusion_proof(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """RFC 9162 §2.1.3.2, with the proof's shape checked before any hashing (STYLE.md §2)."""
    if not 0 < size <= MAX_TREE_SIZE or not 0 <= index < size:
        raise ProofError(f"index {index} is not in a tree of size {size}")
    _check_proof_hashes(proof, [leaf])
    want = inclusion_proof_length(index, size)
    if len(proof) != want:
        raise ProofError(f"inclusion proof has {len(proof)} hashes, want {want}")
    fn, sn, acc = index, size - 1, leaf
    for sibling in proof:
        if sn == 0:
            raise ProofError("inclusion proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            acc = node_hash(sibling, acc)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            acc = node_hash(acc, sibling)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion proof does not reach the root")
    return acc


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> None:
    """Raise ProofError unless `proof` shows leaf hash `leaf` at `index` in the tree (size, root)."""
    if root_from_inclusion_proof(leaf, index, size, proof) != root:
        raise ProofError(f"inclusion proof for index {index} does not lead to the root of size {size}")


def consistency_proof_length(old_size: int, new_size: int) -> int:
    if old_size == 0 or old_size == new_size:
        return 0
    inner = ((old_size - 1) ^ (new_size - 1)).bit_length()
    border = ((old_size - 1) >> inner).bit_count()
    shift = (old_size & -old_size).bit_length() - 1
    start = 0 if old_size == 1 << shift else 1
    return start + inner - shift + border


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> None:
    """RFC 9162 §2.1.4.2, with the tlog-witness rules for the cases it leaves out.

    old == new: the proof is empty and the roots are equal. old == 0: the proof is
    empty and the old root is the empty tree's (DESIGN.md, "Decisions on the formats").
    """
    if not 0 <= old_size <= new_size <= MAX_TREE_SIZE:
        raise ProofError(f"no consistency proof from size {old_size} to size {new_size}")
    want = consistency_proof_length(old_size, new_size)
    if len(proof) != want:
        raise ProofError(f"consistency proof has {len(proof)} hashes, want {want}")
    if 0 < old_size == new_size:
        if old_root != new_root:
            raise ProofError(f"two different roots for size {old_size}")
        return
    _check_proof_hashes(proof, [old_root, new_root])
    if old_size == 0:
        if old_root != EMPTY_ROOT:
            raise ProofError("a tree of size 0 must have the empty root")
        return
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    old_acc = new_acc = path[0]
    for sibling in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            old_acc = node_hash(sibling, old_acc)
            new_acc = node_hash(sibling, new_acc)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            new_acc = node_hash(new_acc, sibling)
        fn >>= 1
        sn >>= 1
    if sn != 0 or old_acc != old_root or new_acc != new_root:
        raise ProofError(f"consistency proof from size {old_size} to size {new_size} does not verify")
