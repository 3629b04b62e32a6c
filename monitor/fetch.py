"""Downloading tiles and entry bundles from a log, and authenticating them into a TreeView.

Full tiles of level >= 1 verified before are read from the state first (they never change), but a cached
tile is used exactly like a downloaded one: it must hash into its parent in the tree being audited. If it
does not, the cache entry is dropped and the tile downloaded. A partial tile the log no longer serves is
cut from the full one (c2sp.org/tlog-tiles: clients "may fall back to the full tile").
"""

import asyncio
from collections.abc import Iterable, Sequence

from logserver.client import LogClient, LogClientError
from monitor.mirror import TileSource
from monitor.state import State
from monitor.transport import TileGetError
from tlogcore.encoding import HASH_SIZE
from tlogcore.errors import MalformedError
from tlogcore.tileauth import TreeMismatch, TreeView
from tlogcore.tiles import ENTRIES_LEVEL, Tile, decode_entry_bundle, encode_entry_bundle


class Unavailable(Exception):
    """The log did not answer, or not with what it must serve: try again later."""


class TileFetcher:
    def __init__(
        self,
        client: LogClient,
        state: State,
        origin: str,
        max_concurrent: int,
        raw: TileSource | None = None,
        mirror: str | None = None,
    ) -> None:
        self.client, self.state, self.origin, self.raw = client, state, origin, raw  # raw: http:// logs, mirrors
        self.mirror = mirror  # the name of the tile mirror `raw` reads (mirror.py); None: the log itself
        self.stored: set[str] = set()  # paths known to be in the state's tile cache
        self._max_concurrent = max_concurrent
        self._semaphore: asyncio.Semaphore | None = None

    async def get(self, tile: Tile) -> bytes:
        """A tile or bundle body as served (not yet authenticated); Unavailable if the log does not serve it."""
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self._max_concurrent)
        async with self._semaphore:
            try:
                body = await self._body(tile.path)
                if body is None and tile.is_partial:
                    full = await self._body(Tile(tile.level, tile.index).path)
                    if full is not None:
                        body = _cut(full, tile)
            except LogClientError as exc:
                raise Unavailable(str(exc)) from None
        if body is None:
            if self.mirror is not None:  # it copies behind the log: wait for it, never alert (mirror.py)
                raise Unavailable(f"{self.mirror} does not have {tile.path} yet; retrying in the next round")
            raise Unavailable(f"the log does not serve {tile.path}")
        return body

    async def _body(self, path: str) -> bytes | None:
        """The body served at `path`; None for 404. Raises LogClientError or Unavailable."""
        if self.raw is None:
            return await self.client.tile(path)
        where = f"{self.mirror}: " if self.mirror is not None else ""
        try:
            status, body = await self.raw.get(path)
        except TileGetError as exc:
            raise Unavailable(f"{where}{exc}") from None
        if status == 404:
            return None
        if status >= 400:
            raise Unavailable(f"{where}GET /{path}: {status} {body[:200].decode('utf-8', 'replace')}")
        return body

    async def fetch_all(self, tiles: Sequence[Tile]) -> dict[str, bytes]:
        bodies = await asyncio.gather(*(self.get(t) for t in tiles))
        return {t.path: b for t, b in zip(tiles, bodies, strict=True)}

    async def authenticate(self, view: TreeView, tiles: Iterable[Tile]) -> None:
        """Fetch (cache first) and authenticate `tiles` and the ancestors they need; TreeMismatch if the log's
        tiles do not hash up to the view's root."""
        need = view.missing(tiles)
        if not need and view.root_checked:
            return
        cached = self.state.cached_tiles(self.origin, [t.path for t in need if not t.is_partial])
        fetched = await self.fetch_all([t for t in need if t.path not in cached])
        try:
            view.add({**cached, **fetched})
        except TreeMismatch:
            if not cached:
                raise
            for path in cached:
                self.state.forget_tile(self.origin, path)
                self.stored.discard(path)
            fetched.update(await self.fetch_all([t for t in need if t.path in cached]))
            view.add(fetched)


def _cut(full: bytes, tile: Tile) -> bytes:
    """The partial tile `tile` from the body of its full tile."""
    if tile.level == ENTRIES_LEVEL:
        try:
            return encode_entry_bundle(decode_entry_bundle(full)[: tile.width])
        except MalformedError:
            return full  # it will fail to authenticate, with this body as evidence
    return full[: tile.width * HASH_SIZE]
