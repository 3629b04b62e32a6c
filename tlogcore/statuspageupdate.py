"""A batch update of the status index made page by page (docs/status-proofs.md §6, §11 "Sixth round").

The same tree, root and page rows as the node-level reference (statusindex_nodes.PathPlan.apply_entries, whose
rows statusindex_pages.merge_pages turns into pages), cross-checked against it in tests/test_statuspageupdate.py,
but with no Python object per node: the pages are kept as they are scanned (position -> (is a leaf, its bytes)),
the paths are walked inside them, and each node the update writes goes straight into its page's new row.

Reading goes in rounds, a page at a time: `wanted` walks the batch's keys (sorted once) down through the pages
held, and names the pages where a walk reached a page boundary below which nothing is held yet; the caller reads
them (its storage, as of the version the update builds on) and hands them to `supply`. Nothing of a path is
walked twice: a walk that stopped at a missing page resumes there (`_frontier`). Once `wanted` is empty,
`apply` computes the new root and every changed page whole: its stored nodes overwritten by the written ones.
An update never removes a node (the index never forgets a document), so a page under an EMPTY subtree or under a
leaf holds nothing in a consistent index, and is not read: it starts empty.
"""

import bisect
import hashlib
from collections.abc import Iterable, Mapping

from tlogcore.encoding import HASH_SIZE
from tlogcore.statement import ISSUE, REVOKE
from tlogcore.statusindex import EMPTY, KEY_BITS, LEAF_PREFIX, NODE_PREFIX
from tlogcore.statusindex_nodes import IndexStorageError, NodeId, node_id_bytes
from tlogcore.statusindex_pages import STRIDE, Page, RawNode
from tlogcore.statusrecord import check_record, parse_record, record_bytes

Task = tuple[int, int, int, int]  # (depth, prefix, lo, hi): the page rooted there, and the keys [lo, hi) below it
_sha256 = hashlib.sha256


def raw_hash(raw: RawNode | None) -> bytes:
    """The hash of a stored node as a page holds it (statusindex.py: leaf or node hash; EMPTY for none)."""
    if raw is None:
        return EMPTY
    is_leaf, body = raw
    if is_leaf:
        return _sha256(LEAF_PREFIX + body[:HASH_SIZE] + _sha256(body[HASH_SIZE:]).digest()).digest()
    return _sha256(NODE_PREFIX + body).digest()


class PageUpdate:
    """One batch of log entries added to the index, over pages read in rounds; then the new root and pages."""

    def __init__(
        self,
        entries: Iterable[tuple[int, str, bytes]],
        pages: dict[NodeId, Page],
        held_all: bool = False,
        held_above: int = 0,
    ) -> None:
        """`entries` (index, kind, document SHA-256) are issue and revoke statements; `pages` holds the pages
        read so far (page id -> page; {} for a page with no row), as of one version, and is added to. With
        `held_all`, `pages` holds every stored page (a page absent has no row): nothing is read, `wanted()` is
        empty (a page it lacked after all is found missing by `apply`, which then raises, as for a page not read).
        With `held_above` (a multiple of STRIDE), it holds every stored page starting above that depth (the top an
        indexer keeps): the walk starts there (`_frontier_below`)."""
        added: dict[bytes, tuple[list[int], list[int]]] = {}
        for index, kind, document in entries:
            if kind not in (ISSUE, REVOKE):
                raise ValueError(f"a {kind!r} statement names no document")
            if len(document) != HASH_SIZE:
                raise ValueError(f"status index keys are {HASH_SIZE} bytes")
            issued, revoked = added.setdefault(document, ([], []))
            (issued if kind == ISSUE else revoked).append(index)
        self._added = added
        self._keys = sorted(added)  # 32-byte keys: byte order is key order (statusindex.py)
        self._bits = [int.from_bytes(key, "big") for key in self._keys]
        self._records = [record_bytes(*added[key]) for key in self._keys]
        self.pages = pages
        self._frontier: list[Task] = [] if held_all else [(0, 0, 0, len(self._keys))]  # the root's page is read
        if held_above % STRIDE or not 0 <= held_above <= KEY_BITS:
            raise ValueError(f"held_above {held_above}: no page starts at that depth")
        if held_above and not held_all:
            self._frontier = self._frontier_below(held_above)
        self.written: dict[NodeId, Page] = {}
        self.hashes = 0  # SHA-256 calls made by `apply`

    def wanted(self, ahead: int = 0) -> list[NodeId]:
        """Walk on through the pages held; the pages to read next (in key order), empty once all are read. With
        `ahead`, the pages on each waiting key's path down to that many depths below are asked too (fewer rounds
        where little is held, a few pages asked that a path ends above: a consistent index has no row there)."""
        pending, waiting, pages = self._frontier, [], self.pages
        while pending:
            depth, prefix, lo, hi = task = pending.pop()
            page = pages.get((depth, prefix))
            if page is None:
                waiting.append(task)
            else:
                self._walk(page, depth, prefix, 1, lo, hi, pending)
        self._frontier = waiting
        asked = {(depth, prefix) for depth, prefix, _, _ in waiting}
        for depth, _, lo, hi in waiting if ahead else ():
            for below in range(depth + STRIDE, min(depth + ahead, KEY_BITS) + 1, STRIDE):
                asked.update((below, bits >> (KEY_BITS - below)) for bits in self._bits[lo:hi])
        return sorted(asked.difference(pages))  # not `- pages.keys()`: that copies and walks every held page

    def _frontier_below(self, depth: int) -> list[Task]:
        """The walk's tasks at `depth` when every stored page above it is held, found key by key instead of by the
        walk's ~7 nodes per document through the top (§11 "Eleventh round"): a key's path goes on below `depth`
        iff the node just above it, the held page's bottom node on the path, is interior with its side not EMPTY
        (a stored node is on a path: the index never removes one). A page with no row, a leaf or a missing node
        ends the path higher. If the rows were inconsistent, this reads a page too many or too few, and `apply`,
        which follows every node from the root, reports it. Keys sharing a path to `depth` make one task."""
        shift, mask = KEY_BITS - depth, (1 << (STRIDE - 1)) - 1
        top, pages = depth - STRIDE, self.pages
        starts: list[tuple[int, int, bool]] = []  # (prefix at depth, first key, whether the path goes on)
        for at, bits in enumerate(self._bits):
            prefix = bits >> shift
            if starts and starts[-1][0] == prefix:
                continue
            page = pages.get((top, prefix >> STRIDE))
            raw = page.get((mask + 1) | ((prefix >> 1) & mask)) if page else None  # position_of, inline
            side = (prefix & 1) * HASH_SIZE
            starts.append((prefix, at, raw is not None and not raw[0] and raw[1][side : side + HASH_SIZE] != EMPTY))
        ends = [at for _, at, _ in starts[1:]] + [len(self._bits)]
        return [(depth, prefix, lo, hi) for (prefix, lo, goes_on), hi in zip(starts, ends, strict=True) if goes_on]

    def supply(self, found: Mapping[NodeId, Page]) -> None:
        """The pages read for `wanted()` ({} for a page with no row)."""
        self.pages.update(found)

    def _walk(self, page: Page, depth: int, prefix: int, position: int, lo: int, hi: int, pending: list[Task]) -> None:
        """Follow keys [lo, hi) down from the node at `position` of `page` (at depth, prefix): an empty side or a
        leaf ends them, a page boundary queues them (PathPlan._walk, page by page)."""
        raw = page.get(position)
        if raw is None or raw[0]:
            return
        body, below = raw[1], depth + 1
        middle = bisect.bisect_left(self._bits, ((prefix << 1) | 1) << (KEY_BITS - 1 - depth), lo, hi)
        if middle > lo and body[:HASH_SIZE] != EMPTY:
            if below % STRIDE:
                self._walk(page, below, prefix << 1, position << 1, lo, middle, pending)
            else:
                pending.append((below, prefix << 1, lo, middle))
        if hi > middle and body[HASH_SIZE:] != EMPTY:
            if below % STRIDE:
                self._walk(page, below, (prefix << 1) | 1, (position << 1) | 1, middle, hi, pending)
            else:
                pending.append((below, (prefix << 1) | 1, middle, hi))

    def apply(self) -> tuple[bytes, dict[NodeId, Page]]:
        """The new root, and every page the update changed, whole (its stored nodes, then the written ones)."""
        if self._frontier:
            raise ValueError("the update has not finished reading (wanted() is not empty yet)")
        root = self.pages.get((0, 0), {}).get(1)  # read (or, with held_all, absent: no row)
        if not self._keys:
            return raw_hash(root), self.written
        return self._child(0, 0, 1, {}, {}, raw_hash(root), 0, len(self._keys)), self.written

    # Every node on a batch key's path is rewritten, so every page the update walks into is written: a page's new
    # row is made (`_enter`) where the walk crosses into it, and handed down with the position inside it (a node
    # `r` levels below the page's root with `r` key bits `b` below it is at 2^r + b: its children at 2p, 2p + 1).
    # _child, _interior and _fresh run once per node written (about 10 per document): nothing else is called.

    def _enter(self, depth: int, prefix: int, expected: bytes) -> tuple[Page, Page]:
        """The stored page rooted at (depth, prefix) and its new row (a copy, overwritten node by node)."""
        stored = self.pages.get((depth, prefix))
        if stored is None:
            if expected != EMPTY:
                raise ValueError(f"index page {node_id_bytes((depth, prefix)).hex()} was not read")
            stored = {}  # under an EMPTY subtree: no row in a consistent index (module docstring)
        new = self.written[depth, prefix] = dict(stored)
        return stored, new

    def _child(
        self, depth: int, prefix: int, position: int, stored: Page, new: Page, expected: bytes, lo: int, hi: int
    ) -> bytes:
        """The new hash of subtree (depth, prefix), at `position` of its page unless it starts a page, whose
        parent names it by `expected`, after adding keys [lo, hi) to it."""
        if not depth % STRIDE:
            stored, new = self._enter(depth, prefix, expected)
            position = 1
        if expected == EMPTY:
            return self._fresh(depth, prefix, position, new, self._bits, self._keys, self._records, lo, hi)
        raw = stored.get(position)
        if raw is None:
            raise IndexStorageError(
                f"index node {node_id_bytes((depth, prefix)).hex()} is missing, but its parent names it"
            )
        if not raw[0]:
            return self._interior(depth, prefix, position, stored, new, raw[1], lo, hi)
        return self._leaf(depth, prefix, position, new, raw[1], lo, hi)

    def _leaf(self, depth: int, prefix: int, position: int, new: Page, body: bytes, lo: int, hi: int) -> bytes:
        key, record = body[:HASH_SIZE], body[HASH_SIZE:]
        where = bisect.bisect_left(self._bits, int.from_bytes(key, "big"), lo, hi)
        if where < hi and self._keys[where] == key:  # the document is in the index already: entries added
            self._records[where] = parse_record(record).with_entries(*self._added[key]).to_bytes()
            return self._fresh(depth, prefix, position, new, self._bits, self._keys, self._records, lo, hi)
        check_record(record)  # strictly, as the reference parses every leaf it reads
        # The one key already here moves down beside the new ones: build the subtree from both.
        bits, keys, records = self._bits[lo:hi], self._keys[lo:hi], self._records[lo:hi]
        bits.insert(where - lo, int.from_bytes(key, "big"))
        keys.insert(where - lo, key)
        records.insert(where - lo, record)
        return self._fresh(depth, prefix, position, new, bits, keys, records, 0, len(bits))

    def _fresh(
        self,
        depth: int,
        prefix: int,
        position: int,
        new: Page,
        bits: list[int],
        keys: list[bytes],
        records: list[bytes],
        lo: int,
        hi: int,
    ) -> bytes:
        """Build subtree (depth, prefix) from keys[lo:hi] alone (nothing else is stored below it)."""
        if hi - lo == 1:
            key, record = keys[lo], records[lo]
            new[position] = (True, key + record)
            self.hashes += 2
            return _sha256(LEAF_PREFIX + key + _sha256(record).digest()).digest()
        middle = bisect.bisect_left(bits, ((prefix << 1) | 1) << (KEY_BITS - 1 - depth), lo, hi)
        below, left, right = depth + 1, EMPTY, EMPTY
        if middle > lo:
            left_new, at = (new, position << 1) if below % STRIDE else (self._enter(below, prefix << 1, EMPTY)[1], 1)
            left = self._fresh(below, prefix << 1, at, left_new, bits, keys, records, lo, middle)
        if hi > middle:
            right_prefix = (prefix << 1) | 1
            right_new, at = (
                (new, (position << 1) | 1) if below % STRIDE else (self._enter(below, right_prefix, EMPTY)[1], 1)
            )
            right = self._fresh(below, right_prefix, at, right_new, bits, keys, records, middle, hi)
        body = left + right
        new[position] = (False, body)
        self.hashes += 1
        return _sha256(NODE_PREFIX + body).digest()

    def _interior(
        self, depth: int, prefix: int, position: int, stored: Page, new: Page, body: bytes, lo: int, hi: int
    ) -> bytes:
        middle = bisect.bisect_left(self._bits, ((prefix << 1) | 1) << (KEY_BITS - 1 - depth), lo, hi)
        left, right, below = body[:HASH_SIZE], body[HASH_SIZE:], depth + 1
        if middle > lo:
            left = self._child(below, prefix << 1, position << 1, stored, new, left, lo, middle)
        if hi > middle:
            right = self._child(below, (prefix << 1) | 1, (position << 1) | 1, stored, new, right, middle, hi)
        body = left + right
        new[position] = (False, body)
        self.hashes += 1
        return _sha256(NODE_PREFIX + body).digest()
