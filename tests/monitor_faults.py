"""A fault-injecting proxy in front of a real log, for the monitor's misbehaviour tests.

`FaultProxy` is a real HTTP server on 127.0.0.1 (stdlib `ThreadingHTTPServer`, in a thread) that forwards
every GET to the real `tlog-server`, unless told to lie:

* `checkpoint`: serve this signed checkpoint instead of the log's (a rollback: an older real one);
* `tree`: serve a whole other tree — its checkpoint, tiles and entry bundles — built with tlogcore from
  entries we choose and signed with the log's own key (a fork, a split view, a bad entry);
* `transform[path]`: alter the body the log served for that path (a tile or a bundle that does not match).
"""

import threading
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

from tlogcore import merkle
from tlogcore.checkpoint import Checkpoint
from tlogcore.keys import Signer
from tlogcore.note import sign_note
from tlogcore.tiles import TILE_HEIGHT, encode_entry_bundle, parse_tile_path, tile_bytes

LOCALHOST = "127.0.0.1"


class StaticTree:
    """A log held in memory: tiles, entry bundles and a checkpoint signed with the given log key."""

    def __init__(self, origin: str, log_key: Signer, entries: Sequence[bytes]) -> None:
        self.origin, self.key, self.entries = origin, log_key, list(entries)
        appended = merkle.append_leaves(0, [], [merkle.leaf_hash(e) for e in self.entries])
        self.stored = appended.new_hashes
        self.size, self.root = len(self.entries), appended.root

    def checkpoint(self) -> bytes:
        return sign_note(Checkpoint(self.origin, self.size, self.root).text, [self.key])

    def body(self, path: str) -> bytes | None:
        try:
            tile = parse_tile_path(path)
        except ValueError:
            return None
        if tile.is_entries:
            first = tile.index * 256
            if first + tile.width > self.size:
                return None
            return encode_entry_bundle(self.entries[first : first + tile.width])
        if tile.index * 256 + tile.width > self.size >> (TILE_HEIGHT * tile.level):
            return None
        return tile_bytes(tile, [self.stored[i] for i in tile.stored_indexes])


class FaultProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.checkpoint: bytes | None = None
        self.tree: StaticTree | None = None
        self.transform: dict[str, Callable[[bytes], bytes]] = {}
        self.requests: list[str] = []
        # A connection per request: a kept-alive one can be closed by the log server as idle just as the next request
        # goes out on it, and the proxy would then fail a request the monitor made honestly (tests/test_fault_proxy.py)
        no_pool = httpx.Limits(max_keepalive_connections=0)
        self._http = httpx.Client(base_url=self.upstream, timeout=30, limits=no_pool)
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, content_type, body = proxy.answer(self.path)
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer((LOCALHOST, 0), Handler)
        self.url = f"http://{LOCALHOST}:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> "FaultProxy":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._http.close()

    def reset(self) -> None:
        self.checkpoint, self.tree, self.transform = None, None, {}

    def answer(self, target: str) -> tuple[int, str, bytes]:
        path = target.split("?", 1)[0].lstrip("/")
        with self._lock:
            self.requests.append(path)
        if path == "checkpoint" and (self.checkpoint is not None or self.tree is not None):
            note = self.checkpoint if self.checkpoint is not None else self.tree.checkpoint()  # type: ignore[union-attr]
            return 200, "text/plain; charset=utf-8", note
        if path.startswith("tile/") and self.tree is not None:
            body = self.tree.body(path)
            if body is None:
                return 404, "application/json", b'{"error": "not_found", "message": "no such tile"}'
            return 200, "application/octet-stream", body
        response = self._http.get("/" + target.lstrip("/"))
        body = response.content
        if response.status_code == 200 and path in self.transform:
            body = self.transform[path](body)
        return response.status_code, response.headers.get("content-type", "application/octet-stream"), body
