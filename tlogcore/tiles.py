"""C2SP tlog-tiles (c2sp.org/tlog-tiles@v0.1.0): tile coordinates, paths, bytes, entry bundles.

A tile at level L, index N holds the hashes of tree level 8L, nodes
N*256 .. N*256+W-1, concatenated (32 bytes each). Width W is 256 for a full
tile, 1..255 for the partial tile at the right edge of a tree. Paths:

    tile/0/x001/x234/067          full level-0 tile 1234067
    tile/1/017.p/5                partial level-1 tile 17 of width 5
    tile/entries/273.p/112        entry bundle for leaves 69888..69999

An entry bundle is the entries of one level-0 tile, each as a big-endian
uint16 length followed by the entry bytes.
"""

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tlogcore.encoding import HASH_SIZE, MAX_INT64, parse_decimal
from tlogcore.errors import MalformedError
from tlogcore.merkle import Node, node_hash, stored_hash_index

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
MAX_LEVEL = 63
ENTRIES_LEVEL = -1  # an entry bundle is addressed like a level-0 tile, in its own namespace
MAX_ENTRY_SIZE = 0xFFFF

_POPCOUNTS = [k.bit_count() for k in range(TILE_WIDTH)]
_LENGTH_PREFIXES = [n.to_bytes(2, "big") for n in range(2048)]  # an entry bundle's length prefixes (~80 KB)
_INDEX_ELEMENTS = re.compile(r"(?:x[0-9]{3}/)*[0-9]{3}")


@dataclass(frozen=True)
class Tile:
    level: int  # 0..63, or ENTRIES_LEVEL for an entry bundle
    index: int
    width: int = TILE_WIDTH

    def __post_init__(self) -> None:
        if not (self.level == ENTRIES_LEVEL or 0 <= self.level <= MAX_LEVEL):
            raise MalformedError(f"tile level {self.level} is outside 0..{MAX_LEVEL}")
        if not 0 <= self.index <= MAX_INT64:
            raise MalformedError(f"tile index {self.index} is out of range")
        if not 1 <= self.width <= TILE_WIDTH:
            raise MalformedError(f"tile width {self.width} is outside 1..{TILE_WIDTH}")

    @property
    def is_entries(self) -> bool:
        return self.level == ENTRIES_LEVEL

    @property
    def is_partial(self) -> bool:
        return self.width < TILE_WIDTH

    @functools.cached_property
    def path(self) -> str:
        """Made once per tile: a monitor's round names each tile's path many times (fetch, authenticate, cache)."""
        level = "entries" if self.is_entries else str(self.level)
        suffix = f".p/{self.width}" if self.is_partial else ""
        return f"tile/{level}/{format_index(self.index)}{suffix}"

    @property
    def nodes(self) -> list[Node]:
        """The tree nodes whose hashes this hash tile holds, left to right."""
        if self.is_entries:
            raise ValueError("an entry bundle holds entries, not hashes")
        first = self.index * TILE_WIDTH
        return [(self.level * TILE_HEIGHT, first + i) for i in range(self.width)]

    @property
    def stored_indexes(self) -> list[int]:
        """Where storage keeps `nodes`' hashes (merkle.stored_hash_index), without a call per node: a log serving a
        monitor's catch-up reads one hash tile per 256 entries. Node (8L, 256N + k) is stored at
        stored_hash_index(8L, 256N) + (k << (8L + 1)) - popcount(k): the node's last leaf is ((256N + k) << 8L)
        followed by 8L one bits, so its popcount is popcount(N) + popcount(k) + 8L."""
        if self.is_entries:
            raise ValueError("an entry bundle holds entries, not hashes")
        base = stored_hash_index(self.level * TILE_HEIGHT, self.index * TILE_WIDTH)
        shift = self.level * TILE_HEIGHT + 1
        return [base + (k << shift) - ones for k, ones in enumerate(_POPCOUNTS[: self.width])]


def format_index(index: int) -> str:
    """1234067 -> 'x001/x234/067': 3-digit groups, all but the last prefixed with 'x'."""
    text = f"{index % 1000:03d}"
    index //= 1000
    while index:
        text = f"x{index % 1000:03d}/{text}"
        index //= 1000
    return text


def parse_tile_path(path: str) -> Tile:
    """Strictly parse 'tile/<L>/<N>[.p/<W>]' or 'tile/entries/<N>[.p/<W>]'; one encoding per tile."""
    if len(path) > 64 or not path.startswith("tile/"):
        raise MalformedError(f"not a tile path: {path[:64]!r}")
    level_text, _, rest = path[len("tile/") :].partition("/")
    index_text, partial, width_text = rest.partition(".p/")
    if not _INDEX_ELEMENTS.fullmatch(index_text):
        raise MalformedError(f"tile path {path!r}: bad index elements")
    level = ENTRIES_LEVEL if level_text == "entries" else parse_decimal(level_text, "tile level", MAX_LEVEL)
    index = int(index_text.replace("x", "").replace("/", ""))
    width = parse_decimal(width_text, "tile width", TILE_WIDTH - 1) if partial else TILE_WIDTH
    tile = Tile(level, index, width)
    if tile.path != path:
        raise MalformedError(f"tile path {path!r} is not canonical (want {tile.path!r})")
    return tile


def tiles_for_size(size: int) -> list[Tile]:
    """Every hash tile a tree of `size` has: full tiles, then the partial one, level by level."""
    tiles: list[Tile] = []
    level = 0
    while level <= MAX_LEVEL and size >> (TILE_HEIGHT * level):
        count = size >> (TILE_HEIGHT * level)
        tiles.extend(Tile(level, n) for n in range(count // TILE_WIDTH))
        if count % TILE_WIDTH:
            tiles.append(Tile(level, count // TILE_WIDTH, count % TILE_WIDTH))
        level += 1
    return tiles


def tile_at(level: int, index: int, size: int) -> Tile:
    """Tile `index` of `level` as a tree of `size` has it: full, or partial at the right edge."""
    count = size >> (TILE_HEIGHT * level) if level != ENTRIES_LEVEL else size
    width = min(TILE_WIDTH, count - index * TILE_WIDTH)
    if width <= 0:
        raise MalformedError(f"a tree of size {size} has no tile {index} at level {level}")
    return Tile(level, index, width)


def entry_bundle_for(entry_index: int, size: int) -> Tile:
    """The entry bundle holding leaf `entry_index` in a tree of `size`."""
    if not 0 <= entry_index < size:
        raise MalformedError(f"entry {entry_index} is not in a tree of size {size}")
    return tile_at(ENTRIES_LEVEL, entry_index // TILE_WIDTH, size)


@dataclass(frozen=True)
class TileAddress:
    """Where a node lives: in `tile`, as the perfect subtree of 2^level_in_tile hashes at `offset`."""

    tile: Tile
    level_in_tile: int
    index_in_tile: int

    @property
    def offset(self) -> int:
        return self.index_in_tile << self.level_in_tile

    def node_hash_from(self, tile_data: bytes) -> bytes:
        """Hash the node's 2^r hashes in the tile pairwise r times (r = 0: read it)."""
        start = self.offset * HASH_SIZE
        end = start + (HASH_SIZE << self.level_in_tile)
        if end > len(tile_data):
            raise MalformedError(f"tile {self.tile.path} is too short for this node")
        hashes = [tile_data[i : i + HASH_SIZE] for i in range(start, end, HASH_SIZE)]
        while len(hashes) > 1:
            hashes = [node_hash(hashes[i], hashes[i + 1]) for i in range(0, len(hashes), 2)]
        return hashes[0]


def tile_for_node(level: int, index: int, size: int) -> TileAddress:
    """The tile (full, or partial for `size`) that holds node (level, index) of a tree of `size`."""
    if not 0 <= level <= MAX_LEVEL * TILE_HEIGHT or ((index + 1) << level) > size:
        raise MalformedError(f"node ({level}, {index}) is not in a tree of size {size}")
    tile_level, level_in_tile = divmod(level, TILE_HEIGHT)
    first = index << level_in_tile  # leftmost hash of the node in its tile row
    tile = tile_at(tile_level, first // TILE_WIDTH, size)
    return TileAddress(tile, level_in_tile, (first % TILE_WIDTH) >> level_in_tile)


def tile_bytes(tile: Tile, hashes: Sequence[bytes]) -> bytes:
    """The body of a hash tile from the hashes of `tile.nodes`."""
    body = b"".join(hashes)
    # The total length and the shortest hash together say every hash is HASH_SIZE bytes, without a loop in Python.
    if len(hashes) != tile.width or len(body) != tile.width * HASH_SIZE or min(map(len, hashes)) != HASH_SIZE:
        raise MalformedError(f"tile {tile.path} needs {tile.width} hashes of {HASH_SIZE} bytes")
    return body


def split_tile(tile: Tile, data: bytes) -> list[bytes]:
    """The hashes of a tile body, checking its length against the tile's width."""
    if len(data) != tile.width * HASH_SIZE:
        raise MalformedError(f"tile {tile.path} is {len(data)} bytes, want {tile.width * HASH_SIZE}")
    return [data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]


def encode_entry_bundle(entries: Iterable[bytes]) -> bytes:
    """Each entry as a 2-byte big-endian length then its bytes. A log encodes one bundle per 256 entries it serves:
    the lengths and entries are interleaved by slice assignment and joined once, with no Python loop body."""
    items = entries if isinstance(entries, list) else list(entries)
    longest = max(map(len, items), default=0)
    if longest > MAX_ENTRY_SIZE:
        raise MalformedError(f"entry of {longest} bytes exceeds {MAX_ENTRY_SIZE}")
    parts: list[bytes] = [b""] * (2 * len(items))
    if longest < len(_LENGTH_PREFIXES):  # statements are short: the prefix is looked up, not made (a third the CPU)
        parts[0::2] = [_LENGTH_PREFIXES[len(entry)] for entry in items]
    else:
        parts[0::2] = [len(entry).to_bytes(2, "big") for entry in items]
    parts[1::2] = items
    return b"".join(parts)


def decode_entry_bundle(data: bytes, count: int | None = None) -> list[bytes]:
    """Split an entry bundle; with `count`, insist on exactly that many entries."""
    entries: list[bytes] = []
    append, pos, size = entries.append, 0, len(data)  # a monitor splits every entry of a log: keep the loop lean
    for _ in range(TILE_WIDTH):  # the bound on the count is the loop's, not a test per entry
        if pos >= size:
            break
        start = pos + 2
        if start > size:
            raise MalformedError("entry bundle: truncated length")
        pos = start + (data[pos] << 8 | data[pos + 1])  # the 2-byte big-endian length
        if pos > size:
            raise MalformedError("entry bundle: truncated entry")
        append(data[start:pos])
    if pos < size:
        raise MalformedError(f"entry bundle holds more than {TILE_WIDTH} entries")
    if count is not None and len(entries) != count:
        raise MalformedError(f"entry bundle holds {len(entries)} entries, want {count}")
    return entries
