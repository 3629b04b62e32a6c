"""The status index's stored pages: one row per 4 levels of the tree (docs/status-proofs.md §6).

The tree, its hashes, proofs and roots are those of statusindex.py and statusindex_nodes.py, node by node; only
the storage groups them. A page holds the non-empty nodes of the 4 depths from a depth that is a multiple of 4,
under one prefix. An update that rewrites a path rewrites about a quarter as many rows as one row per node did
(SQLite and PostgreSQL spend most of an update's time per row, not per byte):

    page id     the node id of the page's root (u16 depth, a multiple of 4, || its prefix bits: §6)
    page row    u16 interior mask || u16 leaf mask || the page's nodes in position order
    position    a node `r` levels below the page's root (r = 0..3) whose `r` key bits below it are `b`: 2^r + b
                (1 the root, 2-3 its children, 4-7, 8-15); mask bit (1 << position) is set iff that node is
                interior / a leaf; bit 0 is never set and no position is in both masks
    interior    left child hash (32) || right child hash (32)
    leaf        key (32) || status record (§2, delimited by its own counts)

A full page of 15 interior nodes is 4 + 15 * 64 = 964 bytes: it stays inside one SQLite page of 4 KiB (a row
over about 1,000 bytes would spill to an overflow page).
"""

from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache

from tlogcore.encoding import HASH_SIZE
from tlogcore.errors import MalformedError
from tlogcore.statusindex import KEY_BITS
from tlogcore.statusindex_nodes import (
    IndexStorageError,
    Interior,
    Leaf,
    NodeId,
    StoredNode,
    node_id_bytes,
    node_id_from_bytes,
)
from tlogcore.statusrecord import parse_record

STRIDE = 4  # depths per page
POSITIONS = range(1, 1 << STRIDE)
RawNode = tuple[bool, bytes]  # (is a leaf, its bytes in a page row): a stored node not parsed yet
Page = dict[int, RawNode]  # position -> node
_MASKS = 4
_OFFSETS = range(_MASKS, _MASKS + 2 * HASH_SIZE * len(POSITIONS), 2 * HASH_SIZE)  # of a page's interior nodes


def first_depth_below(depth: int) -> int:
    """The depth of the first page starting below `depth`: for a reader holding every page that holds a node at
    `depth` or above (PageUpdate's `held_above`)."""
    return (depth // STRIDE + 1) * STRIDE


def page_of(node: NodeId) -> NodeId:
    """The id of the page holding `node`: its ancestor at the nearest depth above that is a multiple of STRIDE."""
    depth, prefix = node
    below = depth % STRIDE
    return depth - below, prefix >> below


def position_of(node: NodeId) -> int:
    depth, prefix = node
    below = depth % STRIDE
    return (1 << below) | (prefix & ((1 << below) - 1))


def node_at(page: NodeId, position: int) -> NodeId:
    below = position.bit_length() - 1
    return page[0] + below, (page[1] << below) | (position ^ (1 << below))


def page_id_bytes(page: NodeId) -> bytes:
    """A page's row key. Its byte order is its node id's order, depth first, then the prefix (`node_id_bytes`:
    the depth in two bytes, the prefix left-aligned in a width that depends on the depth alone), so rows are
    written sorted by node id (tests/test_statusindex_pages.py)."""
    if page[0] % STRIDE:
        raise ValueError(f"no page starts at depth {page[0]}")
    return node_id_bytes(page)


def page_id_from_bytes(data: bytes) -> NodeId:
    page = node_id_from_bytes(data)
    if page[0] % STRIDE:
        raise IndexStorageError(f"index page id {data.hex()} does not start at a multiple of {STRIDE} levels")
    return page


def raw_node(node: StoredNode) -> RawNode:
    return (False, node.left + node.right) if isinstance(node, Interior) else (True, node.key + node.record)


def stored_node(raw: RawNode) -> StoredNode:
    """The node, its record (if a leaf) parsed strictly (§2)."""
    is_leaf, body = raw
    if not is_leaf:
        return Interior(body[:HASH_SIZE], body[HASH_SIZE:])
    record = body[HASH_SIZE:]
    parse_record(record)
    return Leaf(body[:HASH_SIZE], record)


def encode_raw(page: Mapping[int, RawNode]) -> bytes:
    interior = leaf = 0
    parts = []
    for position in sorted(page):  # the positions alone sorted: cheaper than sorting (position, node) pairs
        is_leaf, body = page[position]
        if is_leaf:
            leaf |= 1 << position
        else:
            interior |= 1 << position
        parts.append(body)
    return ((interior << 16) | leaf).to_bytes(_MASKS, "big") + b"".join(parts)  # the two u16 masks


def encode_page(page: Mapping[int, StoredNode]) -> bytes:
    return encode_raw({position: raw_node(node) for position, node in page.items()})


@lru_cache(maxsize=1 << 16)
def _layout(masks: int) -> tuple[tuple[int, ...], tuple[bool, ...]]:
    """The positions a page's two masks name, in order, and which are leaves; the masks checked (module
    docstring). Pages repeat few shapes (a full page of interior nodes, most of all): each is checked once."""
    interior, leaf = masks >> 16, masks & 0xFFFF
    present = interior | leaf
    if interior & leaf or present & 1 or not present & 2:
        raise MalformedError("index page masks: a position in both, bit 0 set, or no root")
    positions = tuple(position for position in POSITIONS if present >> position & 1)
    for position in positions:
        if position > 1 and not interior >> (position >> 1) & 1:
            raise MalformedError(f"index page: node at position {position} under no interior node")
    return positions, tuple(bool(leaf >> position & 1) for position in positions)


def scan_page(depth: int, data: bytes) -> Page:
    """Split a stored page whose root is at `depth` into its nodes, checking its structure strictly (module
    docstring); a leaf's record is parsed when the node is (`stored_node`): a read needs a few nodes of a page."""
    if len(data) < _MASKS:
        raise MalformedError(f"index page of {len(data)} bytes has no masks")
    masks = int.from_bytes(data[:_MASKS], "big")
    positions, leaves = _layout(masks)
    if depth + (positions[-1].bit_length() - 1) > KEY_BITS or (depth == KEY_BITS and masks >> 16):
        raise MalformedError(f"index page at depth {depth}: a node past depth {KEY_BITS}, or interior at it")
    if True not in leaves:  # interior nodes only (most pages): fixed size, sliced at once
        if len(data) != _MASKS + 2 * HASH_SIZE * len(positions):
            raise MalformedError(f"index page of {len(positions)} interior nodes is {len(data)} bytes")
        slices = zip(positions, _OFFSETS, strict=False)  # the offsets run on past the last position
        return {position: (False, data[at : at + 2 * HASH_SIZE]) for position, at in slices}
    page: Page = {}
    offset, size = _MASKS, len(data)
    for position, is_leaf in zip(positions, leaves, strict=True):
        if is_leaf:  # key (32), then the record (§2): a version byte and two counted lists of u64 entries
            at = offset + HASH_SIZE + 1
            revokes_at = at + 2 + 8 * int.from_bytes(data[at : at + 2], "big")
            end = revokes_at + 2 + 8 * int.from_bytes(data[revokes_at : revokes_at + 2], "big")
        else:
            end = offset + 2 * HASH_SIZE
        if end > size:  # a count cut short by the end reads small, but then its own end is past the data
            raise MalformedError(
                "index page ends inside a status record" if is_leaf else "index page ends inside a node"
            )
        page[position] = (is_leaf, data[offset:end])
        offset = end
    if offset != size:
        raise MalformedError(f"index page has {size - offset} bytes after its nodes")
    return page


def decode_page(depth: int, data: bytes) -> dict[int, StoredNode]:
    """Parse a stored page whose root is at `depth`, strictly: one encoding per page (module docstring)."""
    return {position: stored_node(raw) for position, raw in scan_page(depth, data).items()}


ROOT_PAGE: NodeId = (0, 0)
ROOT_ID = node_id_bytes(ROOT_PAGE)  # b"\0\0": depth 0, no prefix bytes


def half_of(page: NodeId) -> int | None:
    """The half of the tree a page lies in (the first bit of every key below it); None for the root's page."""
    depth, prefix = page
    return prefix >> (depth - 1) if depth else None


def top_ranges(depth: int, half: int | None = None) -> list[tuple[bytes, bytes]]:
    """Stored page id ranges [low, high) holding exactly the pages starting at depth <= `depth`, or, with `half`,
    the root's page and those of that half (`half_of`): a page id is its u16 depth, then its prefix from the first
    key bit on (§6), so a half at one depth is the ids whose first prefix byte's top bit is `half`."""
    if half is None:
        return [(b"", (depth + 1).to_bytes(2, "big"))]
    if half not in (0, 1):
        raise ValueError(f"a tree has halves 0 and 1, not {half}")
    ranges = [(ROOT_ID, ROOT_ID + b"\0")]
    for start in range(STRIDE, depth + 1, STRIDE):
        head = start.to_bytes(2, "big")
        ranges.append((head + (b"\x80" if half else b""), (start + 1).to_bytes(2, "big") if half else head + b"\x80"))
    return ranges


def join_halves(base: Page, halves: Sequence[Page | None]) -> Page:
    """The root's page of one update made as two (logserver/statusshards.py), each over `base` with the documents
    of one half of the tree only (first key bit 0, then 1; None: that half had none). A key's path never leaves its
    half, so below the root each half's nodes are exactly its own update's; the root node is interior in `base`
    (else the halves are not apart yet: the caller makes the update whole), and keeps each side's hash from the
    update of that side. Positions 2, 4-5, 8-11 are the left half's, 3, 6-7, 12-15 the right's (module docstring)."""
    sides = [half if half is not None else base for half in halves]
    if len(sides) != 2 or any(side.get(1, (True, b""))[0] for side in (base, *sides)):
        raise ValueError("a root's page is joined from two halves under an interior root")
    joined: Page = {
        position: raw
        for side, page in enumerate(sides)
        for position, raw in page.items()
        if position > 1 and (position >> (position.bit_length() - 2)) & 1 == side
    }
    joined[1] = (False, sides[0][1][1][:HASH_SIZE] + sides[1][1][1][HASH_SIZE:])
    return joined  # encode_raw orders the positions


# pages_of, nodes_in and changed_pages run for every node an update reads or writes (about 10 per document):
# they compute page_of and position_of inline, as the functions above define them.


def pages_of(ids: Iterable[NodeId]) -> set[NodeId]:
    return {(depth - depth % STRIDE, prefix >> depth % STRIDE) for depth, prefix in ids}


def nodes_in(ids: Iterable[NodeId], pages: Mapping[NodeId, Page]) -> dict[NodeId, StoredNode]:
    """The rows of `ids` found in `pages` (which hold every page of them; an id absent there has no row)."""
    found: dict[NodeId, StoredNode] = {}
    for node in ids:
        depth, prefix = node
        below = depth % STRIDE
        raw = pages[depth - below, prefix >> below].get((1 << below) | (prefix & ((1 << below) - 1)))
        if raw is None:
            continue
        if raw[0]:
            found[node] = stored_node(raw)
        else:  # an interior node (most of them), as stored_node makes it
            found[node] = Interior(raw[1][:HASH_SIZE], raw[1][HASH_SIZE:])
    return found


def changed_pages(writes: Mapping[NodeId, StoredNode]) -> dict[NodeId, Page]:
    """An update's rows (statusindex_nodes.Update.writes), grouped by page: only the nodes it writes."""
    pages: dict[NodeId, Page] = {}
    for (depth, prefix), row in writes.items():
        below = depth % STRIDE
        page = pages.get((depth - below, prefix >> below))
        if page is None:
            page = pages[depth - below, prefix >> below] = {}
        position = (1 << below) | (prefix & ((1 << below) - 1))
        if isinstance(row, Interior):  # raw_node, inline
            page[position] = (False, row.left + row.right)
        else:
            page[position] = (True, row.key + row.record)
    return pages


def merge_pages(current: Mapping[NodeId, Page], changes: Mapping[NodeId, Page]) -> dict[NodeId, Page]:
    """Each changed page whole: its nodes as stored (`current`, as of the version the update read), overwritten
    by the update's. An update never removes a node (the index never forgets a document), so a page is exactly
    its stored nodes plus the written ones. `current` must hold every changed page that is stored."""
    merged = {}
    for page, change in changes.items():
        stored = current.get(page)
        if stored is None:
            raise ValueError(f"index page {page_id_bytes(page).hex()} changed but its stored nodes were not given")
        merged[page] = {**stored, **change}
    return merged


# A reader that holds the levels above a page boundary (statusindexer.UpperLevels) reads each open path a page
# per round: the page holding its next STRIDE depths, and only the nodes on the path are made (PathPlan's id
# rounds ask STRIDE ids per path and make every node found; this makes about half as many objects per document).


def path_pages(open_paths: Mapping[int, int]) -> set[NodeId]:
    """The page holding the next STRIDE depths of each open path (PathPlan.open_paths: key bits -> depth, a
    page's root depth)."""
    if any(depth % STRIDE for depth in open_paths.values()):
        raise ValueError(f"a path read by pages stops at a multiple of {STRIDE} levels")
    return {(depth, bits >> (KEY_BITS - depth)) for bits, depth in open_paths.items()}


def path_nodes(open_paths: Mapping[int, int], pages: Mapping[NodeId, Page]) -> dict[NodeId, StoredNode]:
    """The stored nodes on each open path inside its page (`pages` holds every page of `path_pages`; an absent
    node has no row), down to a leaf or a missing node: PathPlan.supply_walked takes them."""
    found: dict[NodeId, StoredNode] = {}
    for bits, depth in open_paths.items():
        page = pages[depth, bits >> (KEY_BITS - depth)]
        for below in range(min(STRIDE, KEY_BITS + 1 - depth)):
            prefix = bits >> (KEY_BITS - depth - below)
            raw = page.get((1 << below) | (prefix & ((1 << below) - 1)))  # position_of, inline
            if raw is None:
                break
            node = found.get((depth + below, prefix))  # keys sharing the page share its top: made once
            if node is None:
                node = found[depth + below, prefix] = (
                    stored_node(raw) if raw[0] else Interior(raw[1][:HASH_SIZE], raw[1][HASH_SIZE:])
                )
            if raw[0]:
                break  # a leaf ends the path
    return found
