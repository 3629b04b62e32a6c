"""GET /tile/... (c2sp.org/tlog-tiles@v0.1.0: hash tiles and entry bundles), answered before Starlette's middleware
and router, as `LogApp` answers inclusion proofs.

Why: a monitor catching up makes two of these GETs per 256 entries, and the log's CPU per pair was most of the
Merkle audit's cost on a shared machine (docs/performance.md, "The monitor"). What a tile GET needs is small: parse
the path, check it is inside the tree, read the body (`TileReader`: full tiles are immutable and cached), answer.

Kept exactly: the bytes (the same `TileReader` the static directory uses), the status and JSON error of every
refusal, `Cache-Control` (immutable for full tiles, 5 s for partial ones), the CORS header `PublicReads` adds to
public reads, the request log and the rate limit (they wrap the app). Saved: Starlette's route walk, middleware and
`Response` object, and the head read for a tile inside a tree size this process already read (the log only grows,
so a tile inside a size once read is inside every later one).
"""

from starlette.types import Receive, Scope, Send

from logserver.httpkit import HTTPError, error_for, error_response
from logserver.logstate import LogState
from logserver.storage import StorageError
from tlogcore.errors import MalformedError, TlogError
from tlogcore.tiles import TILE_HEIGHT, TILE_WIDTH, Tile, parse_tile_path

__all__ = ["IMMUTABLE", "PARTIAL", "TILE_PREFIX", "TileRoute"]

TILE_PREFIX = "/tile/"
IMMUTABLE = "public, max-age=604800, immutable"  # DESIGN.md: full tiles and bundles
PARTIAL = "public, max-age=5"
_OCTETS = (b"content-type", b"application/octet-stream")
_CORS = (b"access-control-allow-origin", b"*")  # as webpage.PublicReads adds to every public GET
_CACHE = {False: (b"cache-control", IMMUTABLE.encode()), True: (b"cache-control", PARTIAL.encode())}


def _extent(tile: Tile, size: int) -> int:
    """How many hashes (entries, for a bundle) a tree of `size` has at the tile's level."""
    return size if tile.is_entries else size >> (TILE_HEIGHT * tile.level)


class TileRoute:
    """The tile reads of one app; `seen_size` is the largest tree size this process has read."""

    def __init__(self, state: LogState) -> None:
        self.state = state
        self.seen_size = 0

    async def body(self, path: str) -> tuple[Tile, bytes]:
        """The tile at `path` ("tile/..."), and its body; HTTPError 404 for a path that is not a tile of the tree."""
        try:
            wanted = parse_tile_path(path)
        except MalformedError as exc:
            raise HTTPError(404, "not_found", f"no such tile: {exc}") from exc
        end = wanted.index * TILE_WIDTH + wanted.width
        if end > _extent(wanted, self.seen_size):
            head = await self.state.storage.head()
            size = head.size if head else 0
            self.seen_size = max(self.seen_size, size)
            if end > _extent(wanted, size):
                raise HTTPError(404, "not_found", f"{path} is beyond the tree of size {size}")
        return wanted, await self.state.tiles.read(wanted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer `GET <scope path>`, which starts with TILE_PREFIX."""
        try:
            tile, body = await self.body(scope["path"][1:])
        except (HTTPError, TlogError, StorageError) as exc:
            response = error_response(error_for(exc))
            response.raw_headers.append(_CORS)
            await response(scope, receive, send)
            return
        length = (b"content-length", str(len(body)).encode())
        headers = [_CACHE[tile.is_partial], length, _OCTETS, _CORS]  # a new list: RequestLog appends its id to it
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
