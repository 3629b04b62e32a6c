"""Proofs, tiles and bundles read from storage: the core's two-phase plans, fetched in one query each."""

from collections import OrderedDict
from collections.abc import Sequence

from logserver.storage import Storage
from tlogcore import merkle
from tlogcore.bundle import TlogProof, make_bundle
from tlogcore.tiles import Tile, encode_entry_bundle, tile_bytes


async def fetch_plans(storage: Storage, plans: Sequence[merkle.HashPlan]) -> list[list[bytes]]:
    """Assemble several plans from one read of all the stored hashes they need."""
    indexes = [i for plan in plans for i in plan.stored_indexes]
    hashes = dict(zip(indexes, await storage.get_hashes(indexes), strict=True))
    return [plan.assemble([hashes[i] for i in plan.stored_indexes]) for plan in plans]


async def inclusion_proofs(storage: Storage, indexes: Sequence[int], size: int) -> list[list[bytes]]:
    """Several proofs in one read (a submission's answer, the log keys); one by one: `storage.inclusion_proof`."""
    return await fetch_plans(storage, [merkle.inclusion_plan(i, size) for i in indexes])


async def consistency_proof(storage: Storage, old: int, new: int) -> list[bytes]:
    return (await fetch_plans(storage, [merkle.consistency_plan(old, new)]))[0]


async def bundle_for(
    storage: Storage, index: int, size: int, checkpoint: bytes, statement: bytes | None = None
) -> TlogProof:
    """The offline bundle of entry `index` under `checkpoint` (of tree `size`); `statement`: the entry's bytes if
    the caller read them already."""
    if statement is None:
        statement = (await storage.get_entries(index, index + 1))[0]
    return make_bundle(statement, index, await storage.inclusion_proof(index, size), checkpoint)


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
