"""Proofs, tiles and bundles read from storage: the core's two-phase plans, fetched in one query each."""

from collections import OrderedDict
from collections.abc import Sequence

from logserver.lru import Lru
from logserver.storage import Storage
from tlogcore import merkle
from tlogcore.bundle import TlogProof, make_bundle
from tlogcore.tiles import Tile, encode_entry_bundle, tile_bytes

UPPER_LEVEL = 10  # stored hashes of subtrees of 1,024 leaves and more: the ones proofs share (UpperHashes)


class UpperHashes:
    """The stored hashes of complete subtrees of 2^UPPER_LEVEL leaves and more that proofs read. Such a hash never
    changes (its leaves never do, RFC 9162 §2.1.1), and every inclusion proof in a tree crosses the same few near
    its top: at 10^7 entries 22 of a proof's 32 stored hashes. The lower ones, a few per entry, are not kept: they
    would push out the shared ones. Bounded in hashes (0: off)."""

    def __init__(self, limit: int) -> None:
        self._held: Lru[int, bytes] = Lru(limit)

    async def read(self, storage: Storage, nodes: Sequence[merkle.Node]) -> dict[int, bytes]:
        """The stored hashes of these nodes by stored index, the upper ones from memory where held."""
        indexes = [merkle.stored_hash_index(level, index) for level, index in nodes]
        upper = {i for (level, _), i in zip(nodes, indexes, strict=True) if level >= UPPER_LEVEL}
        found = {i: hash_ for i in upper if (hash_ := self._held.get(i)) is not None}
        missing = [i for i in indexes if i not in found]
        if missing:
            found.update(zip(missing, await storage.get_hashes(missing), strict=True))
        for i in upper:
            self._held.put(i, found[i])
        return found


async def fetch_plans(
    storage: Storage, plans: Sequence[merkle.HashPlan], upper: UpperHashes | None = None
) -> list[list[bytes]]:
    """Assemble several plans from one read of all the stored hashes they need (those `upper` holds excepted)."""
    if upper is None:
        indexes = [i for plan in plans for i in plan.stored_indexes]
        hashes = dict(zip(indexes, await storage.get_hashes(indexes), strict=True))
    else:
        hashes = await upper.read(storage, [node for plan in plans for node in plan.nodes])
    return [plan.assemble([hashes[i] for i in plan.stored_indexes]) for plan in plans]


async def inclusion_proofs(
    storage: Storage, indexes: Sequence[int], size: int, upper: UpperHashes | None = None
) -> list[list[bytes]]:
    return await fetch_plans(storage, [merkle.inclusion_plan(i, size) for i in indexes], upper)


async def consistency_proof(storage: Storage, old: int, new: int) -> list[bytes]:
    return (await fetch_plans(storage, [merkle.consistency_plan(old, new)]))[0]


async def bundle_for(
    storage: Storage,
    index: int,
    size: int,
    checkpoint: bytes,
    statement: bytes | None = None,
    upper: UpperHashes | None = None,
) -> TlogProof:
    """The offline bundle of entry `index` under `checkpoint` (of tree `size`); `statement`: the entry's bytes if
    the caller read them already."""
    if statement is None:
        statement = (await storage.get_entries(index, index + 1))[0]
    proof = (await inclusion_proofs(storage, [index], size, upper))[0]
    return make_bundle(statement, index, proof, checkpoint)


class TileReader:
    """Tile and entry-bundle bodies; full ones never change, so they are kept in an LRU bounded in bytes.

    The bound is in bytes, not tiles: a level-0 hash tile is 8 KiB, a full entry bundle 256 statements (about
    100 KiB here), so a count bound would let a monitor reading bundles hold ten times the memory of one reading
    hash tiles. 0 turns the cache off."""

    def __init__(self, storage: Storage, cache_bytes: int) -> None:
        self._storage = storage
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._limit = cache_bytes
        self.cached_bytes = 0

    @property
    def cached_paths(self) -> list[str]:
        """What the cache holds, least recently used first."""
        return list(self._cache)

    async def read(self, tile: Tile) -> bytes:
        cached = self._cache.get(tile.path)
        if cached is not None:
            self._cache.move_to_end(tile.path)
            return cached
        if tile.is_entries:
            first = tile.index * 256
            body = encode_entry_bundle(await self._storage.get_entries(first, first + tile.width))
        else:
            body = tile_bytes(tile, await self._storage.get_hashes(tile.stored_indexes))
        if not tile.is_partial:
            self._remember(tile.path, body)
        return body

    def _remember(self, path: str, body: bytes) -> None:
        # Another request may have cached the same tile while this one awaited storage.
        if path in self._cache or len(body) > self._limit:
            return
        self._cache[path] = body
        self.cached_bytes += len(body)
        while self.cached_bytes > self._limit:
            _, evicted = self._cache.popitem(last=False)
            self.cached_bytes -= len(evicted)
