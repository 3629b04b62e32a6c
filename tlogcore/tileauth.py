"""Tiles authenticated against one checkpoint: nothing fetched is used before it hashes up to the signed root.
(sumdb keeps its equivalent, `TileHashReader`, in its core too: the monitor, the tools and the static-tiles
export check all need it.)

Pure (no I/O), in two phases like tlogcore's proofs: `missing(tiles)` names
the tiles to fetch (the ones asked for plus every ancestor not yet
authenticated); the caller fetches them (from the log, or a cache of tiles
verified earlier: both are treated alike); `add(bodies)` authenticates them.

How (c2sp.org/tlog-tiles, spec/FORMATS.md §f "Computing proofs from tiles"):

1. The root of a tree of size m is MTH over range_nodes(0, m). Those nodes lie
   exactly in the partial tile of each level (one per level, at the right
   edge), so `check_root` hashes the partial tiles up to the root and, if it
   matches the checkpoint, every hash in them is authenticated.
2. A full tile (L, N) is the subtree whose hash sits at position N mod 256 of
   tile (L+1, N div 256). Working top-down, a full tile is authenticated when
   its 256 hashes, folded pairwise 8 times, equal that hash in its
   (authenticated) parent.
3. An entry bundle is authenticated when each entry's leaf hash
   SHA-256(0x00 || entry) equals the hash at its position in the level-0 tile.

With every tile linked to the root, any node of the tree, hence any proof, can
be computed from tiles (`node`, `proof`): this is how the monitor checks
consistency with the checkpoint it verified before, without asking the log.
"""

import base64
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tlogcore import merkle
from tlogcore.encoding import HASH_SIZE
from tlogcore.errors import MalformedError
from tlogcore.tiles import (
    ENTRIES_LEVEL,
    TILE_HEIGHT,
    TILE_WIDTH,
    Tile,
    TileAddress,
    decode_entry_bundle,
    parse_tile_path,
    tile_at,
    tile_for_node,
)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class TreeMismatch(Exception):
    """What the log served does not match its own signed checkpoint; `evidence` lets anyone re-check it."""

    def __init__(self, rule: str, message: str, key: str, evidence: dict[str, Any]) -> None:
        super().__init__(message)
        self.rule, self.key, self.evidence = rule, key, evidence


def partial_tiles(size: int) -> list[Tile]:
    """The partial (right-edge) tile of every level of a tree of `size`, top level first."""
    tiles = []
    level = 0
    while size >> (TILE_HEIGHT * level):
        count = size >> (TILE_HEIGHT * level)
        if count % TILE_WIDTH:
            tiles.append(Tile(level, count // TILE_WIDTH, count % TILE_WIDTH))
        level += 1
    return tiles[::-1]


def fold_tile(body: bytes) -> bytes:
    """The root of a full tile: its 256 hashes hashed pairwise 8 times (RFC 9162 §2.1.1 node hashes)."""
    return merkle.perfect_root(body)


def level0_tiles(start: int, end: int, size: int) -> list[Tile]:
    """The level-0 tiles (as a tree of `size` has them) holding leaves [start, end)."""
    if not 0 <= start < end <= size:
        return []
    return [tile_at(0, n, size) for n in range(start // TILE_WIDTH, (end - 1) // TILE_WIDTH + 1)]


def bundle_of(tile: Tile) -> Tile:
    """The entry bundle matching a level-0 tile."""
    return Tile(ENTRIES_LEVEL, tile.index, tile.width)


class TreeView:
    """The authenticated tiles of the tree (size, root) a checkpoint commits to."""

    def __init__(self, size: int, root: bytes) -> None:
        self.size, self.root = size, root
        self._auth: dict[str, bytes] = {}
        self.root_checked = False

    # --- phase one: what to fetch -------------------------------------------------

    def is_authenticated(self, tile: Tile) -> bool:
        return tile.path in self._auth

    def missing(self, tiles: Iterable[Tile]) -> list[Tile]:
        """`tiles` and the ancestors they need, minus what is authenticated, top level first.
        Before `check_root`, the partial tiles are always included."""
        want: dict[str, Tile] = {}
        pending = list(tiles)
        if not self.root_checked:
            pending += partial_tiles(self.size)
        while pending:
            tile = pending.pop()
            if tile.path in want or tile.path in self._auth:
                continue
            want[tile.path] = tile
            if not tile.is_partial:
                pending.append(tile_at(tile.level + 1, tile.index // TILE_WIDTH, self.size))
        return sorted(want.values(), key=lambda t: (-t.level, t.index))

    def tiles_for_nodes(self, nodes: Iterable[merkle.Node]) -> list[Tile]:
        return list({tile_for_node(level, index, self.size).tile for level, index in nodes})

    # --- phase two: authenticate ----------------------------------------------------

    def check_root(self, bodies: Mapping[str, bytes]) -> None:
        """Hash the partial tiles up to the root; TreeMismatch unless it is the checkpoint's root."""
        if self.root_checked:
            return
        tiles = partial_tiles(self.size)
        used = {t.path: self._body(t, bodies) for t in tiles}
        hashes = []
        for level, index in merkle.range_nodes(0, self.size):
            address = tile_for_node(level, index, self.size)
            hashes.append(address.node_hash_from(used[address.tile.path]))
        computed = merkle.fold_range(hashes) if hashes else merkle.EMPTY_ROOT
        if computed != self.root:
            raise TreeMismatch(
                "log-tiles",
                f"the right-edge tiles of size {self.size} hash to another root than the checkpoint's",
                f"root {self.size} {self.root.hex()} {computed.hex()}",
                {
                    "size": self.size,
                    "checkpoint_root": b64(self.root),
                    "computed_root": b64(computed),
                    "tiles": {path: b64(body) for path, body in used.items()},
                },
            )
        self._auth.update(used)
        self.root_checked = True

    def add(self, bodies: Mapping[str, bytes]) -> list[str]:
        """Authenticate fetched tiles top-down (the root first if need be); returns the paths added.
        Raises TreeMismatch on the first tile that does not hash into its parent."""
        self.check_root(bodies)
        added = []
        for tile in self.missing(_tiles_of(bodies)):
            if tile.is_partial:
                continue  # authenticated by check_root, or not of this tree
            body = self._body(tile, bodies)
            parent = tile_at(tile.level + 1, tile.index // TILE_WIDTH, self.size)
            parent_body = self._auth.get(parent.path)
            if parent_body is None:
                raise ValueError(f"{tile.path}: its parent {parent.path} was not fetched")
            offset = (tile.index % TILE_WIDTH) * HASH_SIZE
            expected = parent_body[offset : offset + HASH_SIZE]
            computed = fold_tile(body)
            if computed != expected:
                raise TreeMismatch(
                    "log-tiles",
                    f"tile {tile.path} does not hash to its entry in {parent.path} (tree size {self.size})",
                    f"tile {self.size} {tile.path} {hashlib.sha256(body).hexdigest()}",
                    {
                        "size": self.size,
                        "checkpoint_root": b64(self.root),
                        "tile": tile.path,
                        "tile_body": b64(body),
                        "parent": parent.path,
                        "parent_body": b64(parent_body),
                        "expected_hash": b64(expected),
                        "computed_hash": b64(computed),
                    },
                )
            self._auth[tile.path] = body
            added.append(tile.path)
        return added

    def _body(self, tile: Tile, bodies: Mapping[str, bytes]) -> bytes:
        body = bodies.get(tile.path)
        if body is None:
            raise ValueError(f"tile {tile.path} was not fetched")
        if len(body) != tile.width * HASH_SIZE:
            raise TreeMismatch(
                "log-tiles",
                f"tile {tile.path} is {len(body)} bytes, want {tile.width * HASH_SIZE}",
                f"length {self.size} {tile.path} {len(body)}",
                {"size": self.size, "tile": tile.path, "tile_body": b64(body)},
            )
        return body

    # --- reading authenticated hashes ----------------------------------------------------

    def body(self, tile: Tile) -> bytes:
        return self._auth[tile.path]

    def node(self, level: int, index: int) -> bytes:
        address: TileAddress = tile_for_node(level, index, self.size)
        return address.node_hash_from(self._auth[address.tile.path])

    def assemble(self, plan: merkle.HashPlan) -> list[bytes]:
        return plan.assemble([self.node(level, index) for level, index in plan.nodes])

    def old_root(self, old_size: int) -> bytes:
        """The root this tree had at `old_size`: what a consistent log signed for that size."""
        if old_size == 0:
            return merkle.EMPTY_ROOT
        return self.assemble(merkle.root_plan(old_size))[0]

    def entries(self, tile: Tile, bundle: bytes) -> list[bytes]:
        """The entries of an entry bundle, each checked against its authenticated level-0 tile."""
        hashes = self._auth[tile.path]
        path = bundle_of(tile).path
        try:
            entries = decode_entry_bundle(bundle, tile.width)
        except MalformedError as exc:
            raise TreeMismatch(
                "log-entry-bundle",
                f"entry bundle {path} does not parse: {exc}",
                f"bundle {self.size} {path} {hashlib.sha256(bundle).hexdigest()}",
                {
                    "size": self.size,
                    "bundle": path,
                    "bundle_body": b64(bundle),
                    "tile": tile.path,
                    "tile_body": b64(hashes),
                },
            ) from None
        if merkle.leaf_hashes(entries) == hashes:  # one comparison per tile; the loop below only names the culprit
            return entries
        first = tile.index * TILE_WIDTH
        for j, entry in enumerate(entries):
            leaf = merkle.leaf_hash(entry)
            if leaf != hashes[j * HASH_SIZE : (j + 1) * HASH_SIZE]:
                expected = hashes[j * HASH_SIZE : (j + 1) * HASH_SIZE]
                raise TreeMismatch(
                    "log-entry-bundle",
                    f"entry {first + j} in bundle {path} does not hash to its leaf hash in {tile.path}",
                    f"bundle {self.size} {path} {hashlib.sha256(bundle).hexdigest()}",
                    {
                        "size": self.size,
                        "bundle": path,
                        "index": first + j,
                        "entry": b64(entry),
                        "computed_leaf_hash": b64(leaf),
                        "expected_leaf_hash": b64(expected),
                        "tile": tile.path,
                    },
                )
        return entries

    def drop(self, tiles: Sequence[Tile]) -> None:
        """Forget full level-0 tiles once their entries are audited (keeps memory flat on big logs)."""
        for tile in tiles:
            if tile.level == 0 and not tile.is_partial:
                self._auth.pop(tile.path, None)

    def full_tiles(self, min_level: int = 1) -> dict[str, bytes]:
        """Authenticated full tiles of level >= min_level: they never change, so they may be cached."""
        out = {}
        for path, body in self._auth.items():
            tile = _tile(path)
            if not tile.is_partial and tile.level >= min_level:
                out[path] = body
        return out


def _tile(path: str) -> Tile:
    return parse_tile_path(path)


def _tiles_of(bodies: Mapping[str, bytes]) -> list[Tile]:
    return [_tile(path) for path in bodies]
