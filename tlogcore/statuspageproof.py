"""One document's status proof read straight from the stored pages on its path (docs/status-proofs.md §6, §9).

A server's lookup asks for one key. `PathPlan.lookup` (statusindex_nodes.py) gives the same record and proof, but
through node ids asked and found, a node object for each, and a walk over them: at 10^7 documents that was about
a third of a lookup's CPU (§11 "Thirty-first round"). Here the path is walked inside the page rows as stored
(statusindex_pages.py: a page holds 4 depths, its nodes at positions 2^r + the r key bits below its root), and
the proof is taken from the interior nodes' hash halves as they lie in the row.

A page's id follows from the key alone, so every page a path can cross down to a depth is known before anything
is read: the caller reads them in one query, and reads on only in the rare case that the path goes deeper.
Nothing here trusts the rows: a node its parent names but no row holds is IndexStorageError, a leaf's record is
parsed strictly, and, given the version's root, the walk checks the path against it as it goes down (`root`): each
node must hash to what its parent names, from the root to the end of the path, and the proof must be the one
`statusindex.verify_status` accepts for that root (its shortest form, an other leaf under the key's prefix). So a
server checks the proof it serves with one SHA-256 per node it reads, on the bytes it holds, instead of walking it
again from the proof's bytes (docs/status-proofs.md §9 "Serving").

Every path of a version crosses the same few nodes at the top: a reader that keeps `Prefixes` for one version and
root hands them in, and a walk from the root that reaches depth PREFIX_DEPTH leaves there what it found above
(the proof's part so far, and the hash the node at that depth must have), every node of it checked against the
root; a later walk under that prefix starts there. Its proof is the same, and its check is the same chain from the
root, made once (at 10^7 documents, twelve of a path's ~24 nodes and their SHA-256s per lookup).
"""

import hashlib
from collections.abc import Mapping

from tlogcore.encoding import HASH_SIZE
from tlogcore.errors import ProofError
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
)
from tlogcore.statusindex_nodes import IndexStorageError, NodeId, node_id_bytes
from tlogcore.statusindex_pages import STRIDE, Page
from tlogcore.statusrecord import StatusRecord, parse_record

Found = tuple[StatusRecord | None, StatusProof]
PREFIX_DEPTH = 12  # where a walk's checked top is kept (a page's root depth: statusindex_pages.STRIDE divides it)
PathTop = tuple[int, tuple[bytes, ...], bytes]  # the proof's bitmap and siblings above PREFIX_DEPTH, the hash named
Prefixes = dict[int, PathTop]  # by the key's first PREFIX_DEPTH bits: of one version, checked against its root


def path_page_ids(key: bytes, start: int, end: int) -> list[NodeId]:
    """The ids of the pages on `key`'s path whose roots are at depths start, start + STRIDE, … below `end`
    (`start` a multiple of STRIDE)."""
    bits = key_int(key)
    return [(depth, bits >> (KEY_BITS - depth)) for depth in range(start, min(end, KEY_BITS + 1), STRIDE)]


def path_proof(
    key: bytes, pages: Mapping[NodeId, Page], root: bytes | None = None, prefixes: Prefixes | None = None
) -> Found | int:
    """The key's record (None: absent) and proof, as PathPlan.lookup makes them, from the pages on its path
    (a page with no row: {}); or, if the path reaches a page not in `pages`, that page's depth (read on from it).
    With `root`, ProofError unless the proof is one that verify_status accepts for `root` (module docstring); with
    `prefixes` too (of the version whose root that is), the walk starts below its prefix's kept top if there is
    one, and keeps its own there if not."""
    bits = key_int(key)
    prefix = bits >> (KEY_BITS - PREFIX_DEPTH)
    top = prefixes.get(prefix) if prefixes is not None and root is not None else None
    if top is not None:
        page = pages.get((PREFIX_DEPTH, prefix))
        if page is None:
            return PREFIX_DEPTH
        depth, bitmap, siblings = PREFIX_DEPTH, top[0], list(top[1])
        named: bytes | None = top[2]
        raw = page.get(1)
        if raw is None:
            raise _missing(PREFIX_DEPTH, prefix)
    else:
        page = pages.get((0, 0))
        if page is None:
            return 0
        raw = page.get(1)
        if raw is None:  # no document at all
            if root is not None and root != EMPTY:
                raise _not_named(0)
            return None, StatusProof(ABSENT_EMPTY, 0, ())
        depth, bitmap, siblings, named = 0, 0, [], root
    sha256 = hashlib.sha256
    while not raw[0]:  # an interior node: left child hash (32) || right child hash (32)
        body, shift = raw[1], KEY_BITS - 1 - depth
        if named is not None and sha256(NODE_PREFIX + body).digest() != named:
            raise _not_named(depth)
        if (bits >> shift) & 1:
            named, sibling = body[HASH_SIZE:], body[:HASH_SIZE]
        else:
            named, sibling = body[:HASH_SIZE], body[HASH_SIZE:]
        if sibling != EMPTY:
            bitmap |= 1 << shift
            siblings.append(sibling)
        depth += 1
        if named == EMPTY:
            _shortest(root, bitmap, depth)
            siblings.reverse()  # deepest first (statusindex.py)
            return None, StatusProof(ABSENT_EMPTY, bitmap, tuple(siblings))
        if depth == PREFIX_DEPTH and prefixes is not None and root is not None:  # checked from the root to here
            prefixes[prefix] = (bitmap, tuple(siblings), named)
        below, node_prefix = depth % STRIDE, bits >> (KEY_BITS - depth)
        if not below:
            page = pages.get((depth, node_prefix))
            if page is None:
                return depth
        raw = page.get((1 << below) | (node_prefix & ((1 << below) - 1)))  # statusindex_pages.position_of, inline
        if raw is None:
            raise _missing(depth, node_prefix)
    siblings.reverse()
    leaf_key, record = raw[1][:HASH_SIZE], raw[1][HASH_SIZE:]
    parsed = parse_record(record)  # strictly, as statusindex_pages.stored_node does: to_bytes gives `record` back
    if root is not None:
        if leaf_hash(leaf_key, record) != named:
            raise _not_named(depth)
        _shortest(root, bitmap, depth)
        if (key_int(leaf_key) ^ bits) >> (KEY_BITS - depth):
            raise ProofError(f"status index leaf at depth {depth} holds a key off the path to it")
    if leaf_key == key:
        return parsed, StatusProof(PRESENT, bitmap, tuple(siblings))
    return None, StatusProof(ABSENT_OTHER_LEAF, bitmap, tuple(siblings), leaf_key, hashlib.sha256(record).digest())


def _missing(depth: int, prefix: int) -> IndexStorageError:
    return IndexStorageError(f"index node {node_id_bytes((depth, prefix)).hex()} is missing, but its parent names it")


def _not_named(depth: int) -> ProofError:
    return ProofError(f"status index node at depth {depth} does not hash to what its parent (or the root) names")


def _shortest(root: bytes | None, bitmap: int, depth: int) -> None:
    """A proof ends where its deepest non-empty sibling is (statusindex.StatusProof.depth): a path that goes on
    below an EMPTY sibling is not the compressed tree's, and no verifier would reach the root from it."""
    if root is not None and depth and not (bitmap >> (KEY_BITS - depth)) & 1:
        raise ProofError(f"status index path ends at depth {depth} below an empty sibling")
