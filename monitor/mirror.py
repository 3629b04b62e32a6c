"""Where a monitor reads a log's tiles: the log itself, or a static mirror of its tiles (c2sp.org/tlog-tiles).

A log's `[static] tiles_dir` (and `tlog-server export-tiles`) holds byte for byte the tiles and entry bundles the
log serves, so any static HTTP server or CDN can serve them (`[[log]] tiles_url`), or a copy can be read as files
(`[[log]] tiles_dir`). Reading them there takes the work of serving tiles off the log's machine.

Trust does not change with the source: every tile is authenticated against the log's own signed, cosigned
checkpoint (fetch.py, tlogcore.tileauth), so a mirror that serves a wrong tile or bundle raises the same
misbehaviour alert, with the same evidence, as the log doing it. A tile the mirror does not have yet (it copies
behind the log) reads as missing: the round stops as "unavailable" and is retried, never alerted.
"""

import os
from pathlib import Path
from typing import Protocol

from logserver.client import LogClient, LogClientError
from monitor.transport import MAX_BODY_BYTES, RawTiles, StreamTransport, TileGetError


class TileSource(Protocol):
    async def get(self, path: str) -> tuple[int, bytes]:
        """(HTTP-like status, body) of one tile path; raises TileGetError when the source gives no answer."""
        ...


class DirTiles:
    """A local copy of a log's tiles directory, read as files (a missing file is a 404)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    async def get(self, path: str) -> tuple[int, bytes]:
        # Read in the event loop, not in a thread: a tile (8 KiB) or bundle comes from the page cache in tens of
        # microseconds, less than a thread hand-off costs. `path` is built by tlogcore.tiles, never taken from input.
        file = self.root / path
        try:
            with open(file, "rb") as handle:
                # Not read(MAX_BODY_BYTES + 1) on every file: that allocates 64 MiB per call (measured: most of
                # the read's cost). A longer file than any bundle is cut, and then fails to authenticate.
                too_long = os.fstat(handle.fileno()).st_size > MAX_BODY_BYTES
                return 200, handle.read(MAX_BODY_BYTES + 1) if too_long else handle.read()
        except (FileNotFoundError, NotADirectoryError):
            if not self.root.is_dir():
                raise TileGetError(f"the tiles directory {self.root} does not exist") from None
            return 404, b""
        except OSError as exc:
            raise TileGetError(f"cannot read {file}: {exc.strerror}") from None


class ClientTiles:
    """Tiles under an https:// mirror URL, through httpx (RawTiles speaks only plain http)."""

    def __init__(self, client: LogClient) -> None:
        self.client = client

    async def get(self, path: str) -> tuple[int, bytes]:
        try:
            body = await self.client.tile(path)
        except LogClientError as exc:
            raise TileGetError(f"GET /{path}: {exc}") from None
        return (404, b"") if body is None else (200, body)


def mirror_source(
    tiles_url: str | None, tiles_dir: Path | None, transport: StreamTransport, timeout: float
) -> tuple[TileSource | None, LogClient | None]:
    """The configured mirror (None: read tiles from the log), and the httpx client to close with it, if any."""
    if tiles_dir is not None:
        return DirTiles(tiles_dir), None
    if tiles_url is None:
        return None, None
    raw = RawTiles.for_url(transport, tiles_url)
    if raw is not None:
        return raw, None
    client = LogClient(tiles_url, timeout)
    return ClientTiles(client), client


def mirror_name(tiles_url: str | None, tiles_dir: Path | None) -> str | None:
    """How messages and evidence name the mirror; None when tiles come from the log."""
    if tiles_dir is not None:
        return f"the tiles directory {tiles_dir}"
    if tiles_url is not None:
        return f"the tile mirror {tiles_url}"
    return None
