"""An inclusion proof by leaf hash in one read of storage (issue 20: "proofs with one round trip to storage").

`GET /api/v1/proof/inclusion?leaf_hash=H` used to read storage three times: the head (the tree size), the leaf's
index, then the proof's hashes, whose stored ids depend on both. Here one SQL statement does all three: it reads the
head, finds the candidate leaves by the 8-byte key of H (the lookup table below the watermark, and in the unmerged
tail the indexes this process holds in memory and a scan only past them: storage contract 6, readtail.py), and
reads, for each candidate, its own stored leaf hash and the stored hashes its proof needs. One statement is one
snapshot, so the head and the leaf always agree (the old three reads needed a second look at the head when a commit
landed between them).

The stored ids of PATH(index, size) (RFC 9162 §2.1.3.1) in the layout of `tlogcore.merkle.stored_hash_index`:
walking up from the leaf, level l holds the node `index >> l`; its sibling is part of the path when it exists in the
tree. A left sibling, or a right one that lies wholly inside the tree, is one perfect subtree: one stored hash. A
right sibling cut by the tree's right edge is the one range of the path that is not stored whole: the nodes
`range_nodes(start, size)` of the right edge, folded right to left. `inclusion_ids` is that rule, written once:
SQLite calls it from the statement (a function on the read connection), and PostgreSQL's statement computes a
superset of the same ids in SQL (the same walk, per level, plus every right-edge node), which
`tests/test_leafproof.py` checks against `tlogcore.merkle.inclusion_plan` on both engines.

The hashes above the leaf's block of 2^8 leaves, and the right edge's, are kept in memory once read
(`KnownHashes`: stored hashes never change), so the statement reads the leaf and its 8 block siblings: at 10^6
leaves 9 rows instead of about 27 (docs/performance.md, "Proofs by leaf hash"). SQLite's statement asks the
function which ids are not kept; PostgreSQL's reads only the ids below the block level and the ones above that are
not kept yet are read by key after it (`unread`); a new process keeps them all at start (logserver/warmup.py).

Trees are bounded by what storage can hold: stored ids are below 2·size, so sizes stay below 2^62 here.
"""

import functools
from collections.abc import Awaitable, Callable, Container, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from logserver.storage import StorageError
from tlogcore.merkle import fold_range, range_nodes, stored_hash_index


@dataclass(frozen=True)
class LeafProof:
    """What one read found: the head's size, the size proven against, the leaf's index (None: not in the log) and
    its inclusion proof (empty when the leaf is not in a tree of `size`)."""

    head: int
    size: int
    index: int | None
    proof: tuple[bytes, ...]


SPLIT_LEVEL = 8  # a path's ids from this level up depend on `index >> SPLIT_LEVEL` alone: computed once per block


@functools.lru_cache(maxsize=64)  # asked twice per request: by the statement (SQLite), then to assemble its rows
def inclusion_ids(index: int, size: int) -> tuple[tuple[int, ...], ...]:
    """The stored ids of PATH(index, D[0:size]), leaf side first: one tuple per proof hash (several ids: fold them
    with `fold_range`, the right edge's range that is not one perfect subtree)."""
    block = index >> SPLIT_LEVEL
    if (block + 1) << SPLIT_LEVEL > size:  # the last block, cut by the right edge
        return _path_ids(index, size, 0, min((size - 1).bit_length(), SPLIT_LEVEL)) + _upper_ids(block, size)
    base = leaf_id(block << SPLIT_LEVEL)
    return tuple([(base + i,) for i in _block_ids()[index & _BLOCK_MASK]]) + _upper_ids(block, size)


_BLOCK_MASK = (1 << SPLIT_LEVEL) - 1


@functools.cache
def _block_ids() -> tuple[tuple[int, ...], ...]:
    """For each leaf of a whole block: the ids of its path inside the block, less its first leaf's id. Inside an
    aligned block that difference is the same for every block (the popcount of the last leaf a node covers is the
    block's bits' plus the leaf's own), so the per-leaf walk below the block is done once, here."""
    width = 1 << SPLIT_LEVEL
    return tuple(tuple(g[0] for g in _path_ids(i, width, 0, SPLIT_LEVEL)) for i in range(width))


@functools.lru_cache(maxsize=4096)  # proofs of leaves in one block of 2^SPLIT_LEVEL share these
def _upper_ids(block: int, size: int) -> tuple[tuple[int, ...], ...]:
    return _path_ids(block << SPLIT_LEVEL, size, SPLIT_LEVEL, (size - 1).bit_length())


def _path_ids(index: int, size: int, first: int, last: int) -> tuple[tuple[int, ...], ...]:
    """The groups of `inclusion_ids` for levels first..last-1. At 10^7 leaves most blocks' upper ids are not in
    `_upper_ids`' cache, so this runs for most bundles of a status lookup: the stored id is computed inline and the
    right edge's group (the same for most blocks) kept: `inclusion_ids` of a random leaf at 10^7 in 9 us, not 18-24."""
    groups: list[tuple[int, ...]] = []
    for level in range(first, last):
        node = index >> level
        sibling = node ^ 1
        start = sibling << level
        end = start + (1 << level)
        if sibling < node or end <= size:  # a whole perfect subtree: stored_hash_index(level, sibling), inline
            covered = end - 1  # the last leaf it covers
            groups.append((2 * covered - covered.bit_count() + level,))
        elif start < size:  # cut by the right edge
            groups.append(_edge_ids(start, size))
    return tuple(groups)


@functools.lru_cache(maxsize=256)  # a tree of one size has one right edge: most cut siblings start at a few places
def _edge_ids(start: int, size: int) -> tuple[int, ...]:
    return tuple(stored_hash_index(lv, i) for lv, i in range_nodes(start, size))


def leaf_id(index: int) -> int:
    return stored_hash_index(0, index)


KEPT_LEVEL = 8
KEPT_LIMIT = 1 << 17  # entries: ~20 MB; a log of up to ~1.6·10^7 leaves keeps every node at level 8 and above


def upper_ids(size: int, level: int = KEPT_LEVEL, limit: int = KEPT_LIMIT * 3 // 4) -> list[int]:
    """What a warm-up keeps (logserver/warmup.py): the stored ids of the right edge's nodes below `level` (the
    subtrees of the cut range of most proofs), then of every perfect node at `level` and above, the top first; at
    most `limit` of them (a quarter of KnownHashes' room left for what proofs add)."""
    ids = [stored_hash_index(lv, i) for lv, i in range_nodes(0, size) if lv < level][:limit]
    for at in range(max(size, 1).bit_length() - 1, level - 1, -1):
        count = min(size >> at, limit - len(ids))
        ids += [stored_hash_index(at, i) for i in range(count)]
    return ids


class KnownHashes:
    """Stored hashes kept in memory, so a proof's statement reads only its leaf's own block from storage.

    A proof of leaf i reads its leaf, the siblings inside i's block of 2^level leaves (different for every leaf),
    and the nodes above the block and on the right edge, which every proof of the block, of its neighbours and of
    most of the tree read again: about 8,000 nodes at level 8 and above in a tree of 10^6 leaves, 78,000 at 10^7.
    Those are kept once read. A stored hash never changes once written (storage contract 3), so a kept hash is the
    stored one in every later snapshot, whatever its tree size. Bounded: beyond `limit` entries the whole set is
    dropped (before a statement decides what to skip) and fills again from the next proofs."""

    def __init__(self, level: int = KEPT_LEVEL, limit: int = KEPT_LIMIT) -> None:
        self.level, self.limit = level, limit
        self.hashes: dict[int, bytes] = {}

    def bound(self) -> None:
        """Drop the whole set once it holds more than `limit` (called before a statement decides what to skip)."""
        if len(self.hashes) > self.limit:
            self.hashes.clear()

    def missing(self, index: int, size: int, read: Container[int] = ()) -> list[int]:
        """The ids the proof of `index` in the tree of `size` needs that neither this set nor `read` holds."""
        known = self.hashes
        return [i for group in inclusion_ids(index, size) for i in group if i not in known and i not in read]

    def ids_to_read(self, index: int, size: int) -> str:
        """For SQLite's statement: the leaf's own id, then the ids its proof needs (if it is in the tree) that are
        not kept, comma-separated."""
        self.bound()
        ids = [leaf_id(index), *(self.missing(index, size) if index < size else ())]
        return ",".join(map(str, ids))

    def keep(self, index: int, read: dict[int, bytes | None]) -> None:
        """Keep what a proof of `index` read outside the leaf's block (ids in post order: the block's nodes below
        its root are the ids from its first leaf's up to its root's)."""
        block = index >> self.level
        first, root = leaf_id(block << self.level), stored_hash_index(self.level, block)
        self.hashes.update((i, h) for i, h in read.items() if h is not None and not first <= i < root)


def assemble(rows: Iterable[Sequence[Any]], leaf_hash: bytes, known: KnownHashes | None = None) -> LeafProof:
    """Rows of either statement, (head, size, None, None, None) once and (None, None, index, id, hash) per node
    read, into the proof of the first candidate whose stored leaf hash is `leaf_hash` (8-byte keys may collide).
    Ids the statement skipped because `known` keeps them are taken from it; what it read outside the leaf's block
    is kept there."""
    head, size, found = _by_candidate(rows)
    for index in sorted(found):  # almost always one
        hashes = found[index]
        if hashes.get(leaf_id(index)) != leaf_hash:
            continue
        if index >= size:
            return LeafProof(head, size, index, ())
        if known is not None:
            known.keep(index, hashes)
        return LeafProof(head, size, index, _proof(index, size, hashes, known.hashes if known is not None else {}))
    return LeafProof(head, size, None, ())


def _by_candidate(rows: Iterable[Sequence[Any]]) -> tuple[int, int, dict[int, dict[int, bytes | None]]]:
    head = size = 0
    found: dict[int, dict[int, bytes | None]] = {}
    for row in rows:
        if row[2] is None:
            head, size = row[0], row[1]
        else:
            found.setdefault(row[2], {})[row[3]] = row[4]
    return head, size, found


def unread(rows: Sequence[Sequence[Any]], leaf_hash: bytes, known: KnownHashes) -> tuple[int, list[int]] | None:
    """PostgreSQL's statement reads no hash above the leaf's block (POSTGRES): for the candidate whose stored leaf
    hash is `leaf_hash`, its index and the ids its proof needs that neither the rows nor `known` hold (None: no
    such candidate, or nothing missing). Those are read by key, then kept: a second round trip only until the
    upper hashes are kept (at once after a warm-up, logserver/warmup.py)."""
    _, size, found = _by_candidate(rows)
    for index in sorted(found):
        hashes = found[index]
        if hashes.get(leaf_id(index)) != leaf_hash:
            continue
        if index >= size:
            return None
        missing = known.missing(index, size, hashes)
        return (index, missing) if missing else None
    return None


async def kept_inclusion_proof(
    index: int, size: int, known: KnownHashes, get_hashes: Callable[[list[int]], Awaitable[list[bytes]]]
) -> tuple[bytes, ...]:
    """PATH(index, D[0:size]) by index (the bundles, `GET /api/v1/proof/inclusion?index=`), both engines: only
    the ids `known` does not keep are read (`get_hashes`), so once the tree's upper hashes are kept a proof reads
    its 8 siblings inside the leaf's block; what it read above the block is kept."""
    if not 0 <= index < size:
        raise ValueError(f"index {index} is not in a tree of size {size}")
    known.bound()
    missing = known.missing(index, size)
    read: dict[int, bytes | None] = dict(zip(missing, await get_hashes(missing), strict=True)) if missing else {}
    known.keep(index, read)
    return _proof(index, size, read, known.hashes)


def _proof(index: int, size: int, read: dict[int, bytes | None], kept: dict[int, bytes]) -> tuple[bytes, ...]:
    proof: list[bytes | None] = []
    for group in inclusion_ids(index, size):
        if len(group) == 1:
            proof.append(read.get(group[0]) or kept.get(group[0]))
        else:
            parts = [read.get(i) or kept.get(i) for i in group]
            proof.append(None if None in parts else _fold(tuple(parts)))
    if None in proof:
        missing = [list(g) for g, part in zip(inclusion_ids(index, size), proof, strict=True) if part is None]
        raise StorageError(f"stored hashes {missing[0]} of the proof for entry {index} are missing")
    return tuple(proof)  # type: ignore[arg-type]


@functools.lru_cache(maxsize=256)  # the right edge's range is the same for most proofs in a tree of one size
def _fold(parts: tuple[bytes, ...]) -> bytes:
    return fold_range(parts)


# The head, and the size asked for (never above the head: the handler refuses that, and no arithmetic runs past it).
_TREE = """tree(head, n) AS (
    SELECT h, CASE WHEN {size} IS NULL OR {size} > h THEN h ELSE {size} END
    FROM (SELECT coalesce((SELECT size FROM head WHERE id = 1), 0) AS h) AS x
)"""
# Every committed leaf whose key matches (storage contract 6): the lookup table below the watermark, the indexes the
# process holds of the tail (readtail.py) from the watermark on, and a scan of the rows from the end of what it holds
# on (storage.TailHint; with no hint, the whole tail). Disjoint ranges, so a leaf is never found twice.
_CANDIDATE = """candidate(idx) AS (
    SELECT idx FROM leaf_lookup WHERE key = {key}
    UNION ALL
    SELECT value FROM {held} WHERE value >= (SELECT merged FROM lookup_state WHERE id = 1)
    UNION ALL
    SELECT idx FROM leaves WHERE idx >= {greatest}((SELECT merged FROM lookup_state WHERE id = 1), {scan_from})
        AND leaf_key = {key}
)"""

SQLITE_FUNCTION = "tlog_inclusion_ids"
# The ids are joined, one rowid seek each, not matched with `h.id IN (SELECT value FROM json_each(...))`: SQLite
# builds that list into an ephemeral index for each candidate before seeking, about 40 of the statement's 150 µs at
# 10^6 leaves (docs/performance.md, "Proofs by leaf hash in one statement"). An id listed twice gives two rows
# with the same hash, which `assemble` keeps once.
SQLITE = f"""WITH {_TREE.format(size="?2")},
{_CANDIDATE.format(key="?1", held="json_each(?3)", greatest="max", scan_from="?4")}
SELECT head, n, NULL, NULL, NULL FROM tree
UNION ALL
SELECT NULL, NULL, c.idx, h.id, h.hash FROM candidate c CROSS JOIN tree t
    CROSS JOIN json_each('[' || {SQLITE_FUNCTION}(c.idx, t.n) || ']') AS ids CROSS JOIN hashes h ON h.id = ids.value
"""


def _pg_id(m: str, level: str) -> str:
    """stored_hash_index in SQL, from m, the last leaf the node covers: 2m - popcount(m) + level."""
    return f"(2 * ({m}) - length(replace((({m})::bit(64))::text, '0', '')) + {level})"


_NODE = "(c.idx >> l)"
POSTGRES = f"""WITH {_TREE.format(size="$2::bigint")},
{_CANDIDATE.format(key="$1::bigint", held="unnest($3::bigint[]) AS value", greatest="greatest", scan_from="$4")},
ids(idx, id) AS (
    SELECT c.idx, {_pg_id("c.idx", "0")} FROM candidate c
    UNION ALL
    SELECT c.idx, CASE WHEN {_NODE} & 1 = 1 THEN {_pg_id(f"({_NODE} << l) - 1", "l")}
                       ELSE {_pg_id(f"(({_NODE} + 2) << l) - 1", "l")} END
    FROM candidate c CROSS JOIN tree t CROSS JOIN generate_series(0, {KEPT_LEVEL - 1}) AS l
    WHERE c.idx < t.n AND ((t.n - 1) >> l) > 0 AND ({_NODE} & 1 = 1 OR (({_NODE} + 2) << l) <= t.n)
    UNION ALL
    SELECT c.idx, {_pg_id("((t.n >> l) << l) - 1", "l")}
    FROM candidate c CROSS JOIN tree t CROSS JOIN generate_series(0, {KEPT_LEVEL - 1}) AS l
    WHERE c.idx < t.n AND (t.n >> l) & 1 = 1
)
SELECT head, n, NULL, NULL, NULL FROM tree
UNION ALL
SELECT NULL, NULL, ids.idx, ids.id, (SELECT hash FROM hashes WHERE id = ids.id) FROM ids
"""
# Only the ids below KEPT_LEVEL (the leaf's block, and the right edge's lower nodes): the ones above come from
# KnownHashes, or by key when not kept yet (`unread`). At 1.2*10^7 leaves 27 random hashes by key cost ~1.4 ms
# against ~0.4 ms for 10 (the hashes table is 14 times shared_buffers there); a block's ids lie side by side.
# Each hash by its own primary-key probe (a subquery per id), never a join: asyncpg prepares the statement, and
# PostgreSQL's generic plan for a join (used after five runs) hashed the whole hashes table (21 ms at 2·10^4 entries).
