"""The log's HTTP API (starlette). Every error maps to a status in one table, `ERRORS`.

Static reads, exactly as c2sp.org/tlog-tiles@v0.1.0:
    GET /checkpoint                    newest published checkpoint (with cosignatures)
    GET /tile/<L>/<N>[.p/<W>]          hash tiles
    GET /tile/entries/<N>[.p/<W>]      entry bundles
Dynamic (JSON unless said otherwise; described in /openapi.json):
    POST /api/v1/entries               submit 1..1000 statements; answers once they are durable
    GET  /api/v1/proof/inclusion       ?index=I or ?leaf_hash=HEX, optional &size=N
    GET  /api/v1/proof/consistency     ?old=M&new=N
    GET  /api/v1/bundle/<index>        an offline proof bundle (tlog-proof text, or ?format=binary)
    GET  /api/v1/documents/<sha256>    every statement about a document, with proofs, and its status
    GET  /api/v1/issuers               issuer keys, their history and the entries that made it
    GET  /api/v1/log                   origin, keys, sizes
    GET  /healthz, /metrics, /openapi.json
"""

import asyncio
import base64
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from logserver import proofs
from logserver.config import DEFAULT_TILE_CACHE_BYTES
from logserver.documents import document_status
from logserver.homepage import home_routes
from logserver.metrics import Metrics
from logserver.openapi import OPENAPI
from logserver.ratelimit import RateLimiter
from logserver.sequencer import NotSequencingError, PoolFullError, Sequencer, Submission
from logserver.storage import Storage, StorageError
from logserver.submission import (
    ClockError,
    PositionedError,
    SubmissionRules,
    WrongLogError,
    check_submission,
    parse_statements,
)
from logserver.webpage import web_routes
from tlogcore.bundle import to_binary
from tlogcore.checkpoint import parse_checkpoint
from tlogcore.encoding import MAX_INT64, b64encode, parse_decimal, parse_hash_hex
from tlogcore.errors import MalformedError, NotAllowedError, ProofError, SignatureError, TlogError
from tlogcore.note import parse_note
from tlogcore.statement import Statement, parse_statement
from tlogcore.tiles import TILE_HEIGHT, parse_tile_path

log = logging.getLogger("logserver.requests")

IMMUTABLE = "public, max-age=604800, immutable"  # DESIGN.md: full tiles and bundles
PARTIAL = "public, max-age=5"
JSON = "application/json"
PARALLEL_FROM = 64  # batches at least this big are verified in the worker processes


class HTTPError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.headers = status, code, headers or {}


# The one place errors become statuses: (exception type, status, machine-readable code).
ERRORS: list[tuple[type[BaseException], int, str]] = [
    (WrongLogError, 422, "wrong_log"),
    (ClockError, 422, "time_in_future"),
    (SignatureError, 422, "bad_signature"),
    (NotAllowedError, 403, "signer_not_allowed"),
    (MalformedError, 400, "malformed"),
    (ProofError, 400, "bad_request"),
    (TlogError, 400, "bad_request"),
    (PoolFullError, 503, "pool_full"),
    (NotSequencingError, 503, "not_sequencing"),
    (StorageError, 503, "storage_unavailable"),
]


def error_for(exc: BaseException) -> HTTPError:
    if isinstance(exc, HTTPError):
        return exc
    for kind, status, code in ERRORS:
        if isinstance(exc, kind):
            headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, PoolFullError) else {}
            if status == 503 and not headers:
                headers = {"Retry-After": "1"}
            return HTTPError(status, code, str(exc), headers)
    raise exc


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status, headers, media_type=JSON)


def error_response(error: HTTPError) -> Response:
    return json_response({"error": error.code, "message": str(error)}, error.status, error.headers)


@dataclass
class Limits:
    max_body: int = 4 * 1024 * 1024
    max_batch: int = 1000
    body_timeout: float = 30.0  # seconds to receive a whole request body (slow clients, RELIABILITY.md)
    issuer_limiter: RateLimiter | None = None  # statements per issuer key (logserver/ratelimit.py); None = off


@dataclass
class LogState:
    storage: Storage
    sequencer: Sequencer
    rules: SubmissionRules
    log_vkey: str
    registry_vkeys: list[str]
    metrics: Metrics = field(default_factory=Metrics)
    limits: Limits = field(default_factory=Limits)
    clock: Callable[[], float] = time.time
    witness_status: Callable[[], list[dict[str, Any]]] = list
    parse_pool: Executor | None = None  # worker processes for signature checks of big batches
    parse_workers: int = 1
    tile_cache_bytes: int = DEFAULT_TILE_CACHE_BYTES

    def __post_init__(self) -> None:
        self.tiles = proofs.TileReader(self.storage, self.tile_cache_bytes)


async def read_body(request: Request, limit: int, timeout: float = 30.0) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise HTTPError(413, "too_large", f"request body is larger than {limit} bytes")
    body = bytearray()
    try:
        async with asyncio.timeout(timeout):  # a client trickling its body must not hold a worker for ever
            async for chunk in request.stream():
                body += chunk
                if len(body) > limit:  # chunked bodies have no Content-Length: counted as they arrive
                    raise HTTPError(413, "too_large", f"request body is larger than {limit} bytes")
    except TimeoutError:
        raise HTTPError(
            408, "body_timeout", f"the request body did not arrive within {timeout:g} s", {"Connection": "close"}
        ) from None
    return bytes(body)


def query_int(request: Request, name: str, default: int | None = None) -> int:
    text = request.query_params.get(name)
    if text is None:
        if default is None:
            raise HTTPError(400, "bad_request", f"query parameter {name!r} is required")
        return default
    return parse_decimal(text, name, MAX_INT64)


def build_app(state: LogState, lifespan: Any = None) -> Starlette:
    async def checkpoint(request: Request) -> Response:
        note = await state.storage.latest_published()
        if note is None:
            raise HTTPError(404, "no_checkpoint", "the log has not published a checkpoint yet")
        return Response(note, media_type="text/plain; charset=utf-8", headers={"Cache-Control": "no-cache"})

    async def tile(request: Request) -> Response:
        path = "tile/" + request.path_params["path"]
        try:
            tile = parse_tile_path(path)
        except MalformedError as exc:
            raise HTTPError(404, "not_found", f"no such tile: {exc}") from exc
        head = await state.storage.head()
        size = head.size if head else 0
        available = size if tile.is_entries else size >> (TILE_HEIGHT * tile.level)
        if tile.index * 256 + tile.width > available:
            raise HTTPError(404, "not_found", f"{path} is beyond the tree of size {size}")
        body = await state.tiles.read(tile)
        cache = PARTIAL if tile.is_partial else IMMUTABLE
        return Response(body, media_type="application/octet-stream", headers={"Cache-Control": cache})

    async def submit(request: Request) -> Response:
        if request.headers.get("content-type", "").split(";")[0].strip() != JSON:
            raise HTTPError(415, "unsupported_media_type", 'send application/json: {"statements": [base64, ...]}')
        body = await read_body(request, state.limits.max_body, state.limits.body_timeout)
        datas = parse_batch(body, state.limits.max_batch)
        started = time.perf_counter()
        try:
            if not state.sequencer.accepts_submissions:  # a standby on PostgreSQL accepts (sequencer.py)
                raise NotSequencingError(state.sequencer.not_sequencing or "not sequencing")
            statements = await parse_all(datas)
            submissions = check_all(datas, statements)
            limit_issuers(statements)  # after the signature and registry checks: only real issuers have budgets
            sequenced = await state.sequencer.submit(submissions)
        except Exception as exc:
            state.metrics.refused[error_for(exc).code] += len(datas)
            raise
        state.metrics.accepted += len(sequenced)
        state.metrics.sequencing_latency.observe(time.perf_counter() - started)
        head = state.sequencer.head
        if head is None:
            raise HTTPError(503, "not_sequencing", "no checkpoint yet")
        proofs_for = await proofs.inclusion_proofs(state.storage, [s.index for s in sequenced], head.size)
        return json_response(
            {
                "checkpoint": head.checkpoint.decode(),
                "entries": [
                    {
                        "index": s.index,
                        "leaf_hash": s.leaf_hash.hex(),
                        "duplicate": s.duplicate,
                        "inclusion_proof": [b64encode(h) for h in proof],
                    }
                    for s, proof in zip(sequenced, proofs_for, strict=True)
                ],
            }
        )

    async def parse_all(datas: Sequence[bytes]) -> list[Statement]:
        """Signatures checked in the worker processes (all cores) for big batches, inline for small ones."""
        pool = state.parse_pool
        if pool is None or len(datas) < PARALLEL_FROM:
            try:
                return parse_statements(datas)
            except PositionedError as exc:
                raise positioned(exc, len(datas), 0) from None
        loop = asyncio.get_running_loop()
        step = -(-len(datas) // state.parse_workers)
        starts = range(0, len(datas), step)
        parts = await asyncio.gather(
            *(loop.run_in_executor(pool, parse_statements, datas[i : i + step]) for i in starts),
            return_exceptions=True,
        )
        statements: list[Statement] = []
        for start, part in zip(starts, parts, strict=True):
            if isinstance(part, PositionedError):
                raise positioned(part, len(datas), start)
            if isinstance(part, BaseException):
                raise part
            statements += part
        return statements

    def limit_issuers(statements: Sequence[Statement]) -> None:
        limiter = state.limits.issuer_limiter
        if limiter is None:
            return
        costs: dict[str, float] = {}
        for statement in statements:
            costs[statement.signer] = costs.get(statement.signer, 0) + 1
        refusal = limiter.take_many(costs)
        if refusal is None:
            return
        if refusal.impossible:
            message = f"{int(costs[refusal.key])} statements from {refusal.key} in one request: at most "
            message += f"{limiter.burst:g} per request for one issuer (limits.issuer_burst); split the batch"
        else:
            message = f"issuer {refusal.key} is over its rate limit (limits.issuer_statements_per_second = "
            message += f"{limiter.rate:g}); retry after {refusal.retry_after} s"
        raise HTTPError(429, "issuer_rate_limited", message, {"Retry-After": str(refusal.retry_after)})

    def check_all(datas: Sequence[bytes], statements: Sequence[Statement]) -> list[Submission]:
        now = state.clock()
        registry = state.sequencer.registry
        out = []
        for position, (data, statement) in enumerate(zip(datas, statements, strict=True)):
            try:
                out.append(check_submission(data, statement, state.rules, registry, now))
            except TlogError as exc:
                raise positioned(PositionedError(position, exc), len(datas), 0) from None
        return out

    async def current_size(request: Request) -> int:
        head = await state.storage.head()
        size = head.size if head else 0
        wanted = query_int(request, "size", size)
        if wanted > size:
            raise HTTPError(400, "bad_request", f"size {wanted} is beyond the tree of size {size}")
        return wanted

    async def inclusion(request: Request) -> Response:
        size = await current_size(request)
        if "leaf_hash" in request.query_params:
            leaf = parse_hash_hex(request.query_params["leaf_hash"], "leaf_hash")
            found = await state.storage.find_leaves([leaf])
            if leaf not in found:
                raise HTTPError(404, "not_found", "no entry with this leaf hash")
            index = found[leaf]
        else:
            index = query_int(request, "index")
        if index >= size:
            raise HTTPError(400, "bad_request", f"index {index} is not in a tree of size {size}")
        proof = (await proofs.inclusion_proofs(state.storage, [index], size))[0]
        return json_response({"index": index, "size": size, "proof": [b64encode(h) for h in proof]})

    async def consistency(request: Request) -> Response:
        new = await current_size(request) if "new" not in request.query_params else query_int(request, "new")
        head = await state.storage.head()
        if new > (head.size if head else 0):
            raise HTTPError(400, "bad_request", f"new size {new} is beyond the tree")
        old = query_int(request, "old")
        if old > new:
            raise HTTPError(400, "bad_request", "old size is larger than new size")
        proof = await proofs.consistency_proof(state.storage, old, new)
        return json_response({"old": old, "new": new, "proof": [b64encode(h) for h in proof]})

    async def checkpoint_covering(index: int) -> tuple[int, bytes]:
        """The newest published checkpoint that contains `index`, else the head's (log-signed only)."""
        published = await state.storage.latest_published()
        if published is not None:
            size = parse_checkpoint(parse_note(published).text).size
            if index < size:
                return size, published
        head = await state.storage.head()
        if head is None or index >= head.size:
            raise HTTPError(404, "not_found", f"entry {index} is not in the log")
        return head.size, head.checkpoint

    async def bundle(request: Request) -> Response:
        index = parse_decimal(request.path_params["index"], "index", MAX_INT64)
        size, note = await checkpoint_covering(index)
        result = await proofs.bundle_for(state.storage, index, size, note)
        if request.query_params.get("format") == "binary":
            return Response(to_binary(result), media_type="application/octet-stream")
        return Response(result.to_text(), media_type="text/plain; charset=utf-8")

    async def document(request: Request) -> Response:
        digest = parse_hash_hex(request.path_params["sha256"], "document SHA-256")
        entries = await state.storage.document_entries(digest)
        statements = [parse_statement(e.data) for e in entries]
        items = []
        for entry, statement in zip(entries, statements, strict=True):
            size, note = await checkpoint_covering(entry.index)
            item = await proofs.bundle_for(state.storage, entry.index, size, note)
            items.append(
                {
                    "index": entry.index,
                    "kind": statement.kind,
                    "issuer": statement.signer_verifier.name,
                    "signer": statement.signer,
                    "time": statement.time,
                    "ref": statement.ref,
                    "reason": statement.reason,
                    "statement": b64encode(entry.data),
                    "bundle": item.to_text().decode(),
                }
            )
        return json_response({"document": digest.hex(), "status": document_status(statements), "statements": items})

    async def issuers(request: Request) -> Response:
        registry = state.sequencer.registry
        by_name: dict[str, list[dict[str, Any]]] = {}
        for key in registry.keys.values():
            name = key.vkey.split("+", 1)[0]
            by_name.setdefault(name, []).append(
                {
                    "vkey": key.vkey,
                    "label": key.label,
                    "active": key.active,
                    "added": {"index": key.added_index, "time": key.added_time},
                    "retired": None
                    if key.active
                    else {
                        "index": key.retired_index,
                        "time": key.retired_time,
                        "reason": key.retire_reason,
                    },
                }
            )
        return json_response(
            {
                "registry_keys": state.registry_vkeys,
                "issuers": [{"name": n, "keys": keys} for n, keys in sorted(by_name.items())],
            }
        )

    async def info(request: Request) -> Response:
        head = await state.storage.head()
        published = await state.storage.latest_published()
        return json_response(
            {
                "origin": state.rules.origin,
                "log_vkey": state.log_vkey,
                "registry_vkeys": state.registry_vkeys,
                "size": head.size if head else 0,
                "published_size": parse_checkpoint(parse_note(published).text).size if published else 0,
                "sequencing": state.sequencer.not_sequencing is None,
                "not_sequencing_reason": state.sequencer.not_sequencing,
                "witnesses": state.witness_status(),
            }
        )

    async def healthz(request: Request) -> Response:
        await state.storage.head()  # the database answers
        return json_response({"ok": True, "sequencing": state.sequencer.not_sequencing is None})

    async def metrics(request: Request) -> Response:
        published = await state.storage.latest_published()
        published_size = parse_checkpoint(parse_note(published).text).size if published else 0
        text = state.metrics.render(state.sequencer.size, state.sequencer.pool_size, published_size)
        return Response(text, media_type="text/plain; version=0.0.4")

    async def openapi(request: Request) -> Response:
        return json_response(OPENAPI)

    routes = [
        Route("/checkpoint", checkpoint),
        Route("/tile/{path:path}", tile),
        Route("/api/v1/entries", submit, methods=["POST"]),
        Route("/api/v1/proof/inclusion", inclusion),
        Route("/api/v1/proof/consistency", consistency),
        Route("/api/v1/bundle/{index}", bundle),
        Route("/api/v1/documents/{sha256}", document),
        Route("/api/v1/issuers", issuers),
        Route("/api/v1/log", info),
        Route("/healthz", healthz),
        Route("/metrics", metrics),
        Route("/openapi.json", openapi),
        *web_routes(state.log_vkey, state.witness_status),
        *home_routes(),
    ]

    async def handle_error(request: Request, exc: Exception) -> Response:
        return error_response(error_for(exc))

    async def not_found(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        code = "method_not_allowed" if status == 405 else "not_found"
        return json_response({"error": code, "message": f"{request.method} {request.url.path}: {code}"}, status)

    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            HTTPError: handle_error,
            TlogError: handle_error,
            PoolFullError: handle_error,
            NotSequencingError: handle_error,
            StorageError: handle_error,
            404: not_found,
            405: not_found,
        },
    )
    return app


def positioned(exc: PositionedError, count: int, offset: int) -> TlogError:
    """The error, its message naming the statement's position when the batch has more than one."""
    prefix = f"statement {offset + exc.position}: " if count > 1 else ""
    return type(exc.error)(prefix + str(exc.error))


def parse_batch(body: bytes, max_batch: int) -> list[bytes]:
    """`{"statements": ["<base64 signed statement>", ...]}` with 1..max_batch items."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise HTTPError(400, "malformed", f"body is not JSON: {exc}") from exc
    items = document.get("statements") if isinstance(document, dict) else None
    if not isinstance(items, list) or not items or not all(isinstance(i, str) for i in items):
        raise HTTPError(400, "malformed", 'want {"statements": ["<base64>", ...]} with at least one statement')
    if len(items) > max_batch:
        raise HTTPError(413, "batch_too_large", f"{len(items)} statements; at most {max_batch} per request")
    out = []
    for position, item in enumerate(items):
        try:
            out.append(base64.b64decode(item, validate=True))
        except ValueError as exc:
            raise HTTPError(400, "malformed", f"statement {position} is not base64") from exc
    return out


class RequestLog:
    """ASGI middleware: a request id header and one JSON log line per request."""

    def __init__(self, app: ASGIApp, clock: Callable[[], float] = time.perf_counter) -> None:
        self.app, self.clock = app, clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex[:16]
        started, status = self.clock(), 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            log.info(
                orjson.dumps(
                    {
                        "request_id": request_id,
                        "method": scope["method"],
                        "path": scope["path"],
                        "status": status,
                        "ms": round((self.clock() - started) * 1000, 2),
                    }
                ).decode()
            )


class ClientRateLimit:
    """ASGI middleware: requests per client address (token bucket), 429 with Retry-After beyond it.

    The address is the TCP peer's, or, when `trusted_proxy_header` is set (only behind a proxy that sets it on
    every request), the last address in that header: the one the proxy itself saw. /healthz is never limited
    (load balancers poll it).
    """

    def __init__(self, app: ASGIApp, limiter: RateLimiter, trusted_proxy_header: str = "") -> None:
        self.app, self.limiter = app, limiter
        self.header = trusted_proxy_header.lower().encode()

    def client_of(self, scope: Scope) -> str:
        if self.header:
            for name, value in scope["headers"]:
                if name == self.header:
                    last: str = value.decode("latin-1").split(",")[-1].strip()
                    if last:
                        return last
        client = scope.get("client")
        return str(client[0]) if client else "unknown"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == "/healthz":
            await self.app(scope, receive, send)
            return
        refusal = self.limiter.take(self.client_of(scope))
        if refusal is None:
            await self.app(scope, receive, send)
            return
        message = f"client {refusal.key} is over its rate limit (limits.client_requests_per_second = "
        message += f"{self.limiter.rate:g}); retry after {refusal.retry_after} s"
        error = HTTPError(429, "client_rate_limited", message, {"Retry-After": str(refusal.retry_after)})
        await error_response(error)(scope, receive, send)
