"""The log's HTTP API (starlette): a table of routes over short endpoints, each reading and writing the values of
`logserver.api`. Every error maps to a status in one table (`logserver.httpkit.ERRORS`).

Static reads, exactly as c2sp.org/tlog-tiles@v0.1.0:
    GET /checkpoint                    newest published checkpoint (with cosignatures)
    GET /tile/<L>/<N>[.p/<W>]          hash tiles
    GET /tile/entries/<N>[.p/<W>]      entry bundles
Dynamic (JSON unless said otherwise; described in /openapi.json):
    POST /api/v1/entries               submit 1..1000 statements; answers once they are durable (intake.py)
    GET  /api/v1/proof/inclusion       ?index=I or ?leaf_hash=HEX, optional &size=N
    GET  /api/v1/proof/consistency     ?old=M&new=N
    GET  /api/v1/bundle/<index>        an offline proof bundle (tlog-proof text, or ?format=binary)
    GET  /api/v1/documents/<sha256>    every statement about a document, with proofs, and its status
    POST /api/v1/documents:lookup      statements (no proofs) and status of up to 1000 documents at once
    GET  /api/v1/issuers               issuer keys, their history and the entries that made it
    GET  /api/v1/log                   origin, keys, sizes
    GET  /healthz, /metrics, /openapi.json
"""

import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from logserver import api, proofs
from logserver.homepage import home_routes
from logserver.httpkit import (
    JSON,
    HTTPError,
    error_for,
    error_response,
    inclusion_proof_json,
    json_response,
    query_int,
    read_body,
    read_json,
)
from logserver.intake import submit
from logserver.logstate import Limits, LogState, state_of
from logserver.openapi import OPENAPI
from logserver.ratelimit import RateLimiter
from logserver.sequencer import NotSequencingError, PoolFullError
from logserver.statuslookup import IndexVersionGone, status_index_proof
from logserver.storage import StorageError
from logserver.tileroute import IMMUTABLE, PARTIAL, TILE_PREFIX, TileRoute
from logserver.webpage import PublicReads, web_routes
from tlogcore.bundle import to_binary
from tlogcore.checkpoint import parse_checkpoint
from tlogcore.encoding import MAX_INT64, parse_decimal, parse_hash_hex
from tlogcore.errors import TlogError
from tlogcore.logkey import is_log_key
from tlogcore.note import parse_note
from tlogcore.registry import IssuerKey, Registry
from tlogcore.statement import ISSUER_ADD, Statement, parse_statement
from tlogcore.status import continued_keys, document_status

__all__ = ["ROUTES", "ClientRateLimit", "Limits", "LogState", "RequestLog", "build_app"]

log = logging.getLogger("logserver.requests")

TEXT = "text/plain; charset=utf-8"


# --- static reads (c2sp.org/tlog-tiles) -----------------------------------------------------------------------


async def checkpoint(request: Request) -> Response:
    note = await state_of(request).storage.latest_published()
    if note is None:
        raise HTTPError(404, "no_checkpoint", "the log has not published a checkpoint yet")
    return Response(note, media_type=TEXT, headers={"Cache-Control": "no-cache"})


async def tile(request: Request) -> Response:
    """HEAD (a GET is answered before the router: logserver/tileroute.py, the same `TileRoute.body`)."""
    wanted, body = await request.app.tile_route.body("tile/" + request.path_params["path"])
    cache = PARTIAL if wanted.is_partial else IMMUTABLE
    return Response(body, media_type="application/octet-stream", headers={"Cache-Control": cache})


# --- proofs and bundles ---------------------------------------------------------------------------------------


async def _size(state: LogState) -> int:
    head = await state.storage.head()
    return head.size if head else 0


async def _published_size(state: LogState) -> int:
    published = await state.storage.latest_published()
    return parse_checkpoint(parse_note(published).text).size if published else 0


async def _size_param(request: Request, state: LogState) -> int:
    size = await _size(state)
    wanted = query_int(request, "size", size)
    if wanted > size:
        raise HTTPError(400, "bad_request", f"size {wanted} is beyond the tree of size {size}")
    return wanted


async def inclusion(request: Request) -> Response:
    state = state_of(request)
    if "leaf_hash" in request.query_params:
        return await _inclusion_by_leaf(request, state)
    size = await _size_param(request, state)
    index = query_int(request, "index")
    if index >= size:
        raise HTTPError(400, "bad_request", f"index {index} is not in a tree of size {size}")
    proof = await state.storage.inclusion_proof(index, size)
    return Response(inclusion_proof_json(index, size, proof), media_type=JSON)


async def _inclusion_by_leaf(request: Request, state: LogState) -> Response:
    asked = query_int(request, "size") if "size" in request.query_params else None
    return await _leaf_proof(state, parse_hash_hex(request.query_params["leaf_hash"], "leaf_hash"), asked)


async def _leaf_proof(state: LogState, leaf: bytes, asked: int | None) -> Response:
    """The head, the leaf and its proof in one read of storage (logserver/leafproof.py), so one snapshot: a leaf
    found is always inside the head read with it."""
    found = await state.storage.leaf_inclusion(leaf, asked, state.sequencer.tail.leaf_hint(leaf))
    if asked is not None and asked > found.head:
        raise HTTPError(400, "bad_request", f"size {asked} is beyond the tree of size {found.head}")
    if found.index is None:
        raise HTTPError(404, "not_found", "no entry with this leaf hash")
    if found.index >= found.size:
        raise HTTPError(400, "bad_request", f"index {found.index} is not in a tree of size {found.size}")
    return Response(inclusion_proof_json(found.index, found.size, found.proof), media_type=JSON)


def plain_leaf_query(query: bytes) -> bytes | None:
    """The leaf hash of a query string that is exactly `leaf_hash=` and 64 lowercase hex digits (what verifiers
    send), which every query parser reads the same way; None for any other query, read by the general parse."""
    if len(query) == 74 and query.startswith(b"leaf_hash=") and not query[10:].strip(b"0123456789abcdef"):
        return bytes.fromhex(query[10:].decode("ascii"))
    return None


async def consistency(request: Request) -> Response:
    state = state_of(request)
    new = await _size_param(request, state) if "new" not in request.query_params else query_int(request, "new")
    if new > await _size(state):
        raise HTTPError(400, "bad_request", f"new size {new} is beyond the tree")
    old = query_int(request, "old")
    if old > new:
        raise HTTPError(400, "bad_request", "old size is larger than new size")
    proof = await proofs.consistency_proof(state.storage, old, new)
    return json_response(api.ConsistencyProof(old, new, tuple(proof)))


async def _checkpoint_covering(state: LogState, index: int, published: bytes | None) -> tuple[int, bytes]:
    """The newest published checkpoint (`published`, read by the caller) if it contains `index`, else the head's
    (log-signed only)."""
    if published is not None:
        size = state.reads.published_size(published)
        if index < size:
            return size, published
    head = await state.storage.head()
    if head is None or index >= head.size:
        raise HTTPError(404, "not_found", f"entry {index} is not in the log")
    return head.size, head.checkpoint


async def bundle(request: Request) -> Response:
    state = state_of(request)
    index = parse_decimal(request.path_params["index"], "index", MAX_INT64)
    size, note = await _checkpoint_covering(state, index, await state.storage.latest_published())
    result = await proofs.bundle_for(state.storage, index, size, note)
    if request.query_params.get("format") == "binary":
        return Response(to_binary(result), media_type="application/octet-stream")
    return Response(result.to_text(), media_type=TEXT)


async def document(request: Request) -> Response:
    """Every statement about a document and the registrations of their signers, all proven under one checkpoint
    (the newest published one that holds them), and the status by the one rule (tlogcore/status.py). The parts
    that do not change (parsed statements, bundles per checkpoint, the status proof per index version) come from
    `state.reads` (logserver/readcache.py); the answer's bytes are the same either way."""
    state = state_of(request)
    digest = parse_hash_hex(request.path_params["sha256"], "document SHA-256")
    try:
        history = await _document_history(state, digest, may_retry=True)
    except IndexVersionGone:  # a slow answer: its index version's rows were pruned meanwhile (statuslookup.py)
        history = await _document_history(state, digest, may_retry=False)
    return json_response(history)


async def _document_history(state: LogState, digest: bytes, may_retry: bool) -> api.DocumentHistory:
    """`document`'s answer, every part under the newest published checkpoint, read with the document's entries
    (one read for the bundles' checkpoint and the status proof); IndexVersionGone (if `may_retry`) when the status
    index version that checkpoint names can no longer be read whole."""
    reads = state.reads
    entries, published = await state.storage.document_read(digest, state.sequencer.tail.documents_hint([digest]))
    statements = [reads.statement(e) for e in entries]
    registry = state.sequencer.registry
    registered = _registered_chain(registry, {s.signer for s in statements})
    retired = [k for k in registered if k.retired_index is not None]
    indexes = [e.index for e in entries] + [k.added_index for k in registered] + [k.retired_index or 0 for k in retired]
    size, note = await _checkpoint_covering(state, max(indexes), published) if indexes else (0, b"")
    items = []
    for entry, statement in zip(entries, statements, strict=True):
        item = await reads.bundle(entry.index, size, note, entry.data)
        key = registry.keys.get(statement.signer)
        items.append(
            api.DocumentStatement(
                entry.index,
                statement.kind,
                statement.signer_verifier.name,
                statement.signer,
                key.label if key is not None else None,
                statement.time,
                statement.ref,
                statement.reason,
                entry.data,
                item.text,
            )
        )
    registrations = []
    for key in registered:
        item = await reads.bundle(key.added_index, size, note)
        registrations.append(
            api.Registration(key.vkey, key.label, key.continues, key.added_index, item.extra or b"", item.text)
        )
    retirements = []
    for key in retired:
        item = await reads.bundle(key.retired_index or 0, size, note)
        retirements.append(
            api.Retirement(key.vkey, key.unsafe_from, key.retired_index or 0, item.extra or b"", item.text)
        )
    status = document_status(statements, registry.continuations())
    index = None
    if state.status is not None:
        signers = [s.signer for s in statements]
        index = await status_index_proof(state.storage, state.status, digest, published, reads, may_retry, signers)
    if entries:  # a serving process's registry may lag the storage the key proofs are made from: agree with them
        registrations, retirements = await _stored_registry(state, statements, (size, note), registrations, retirements)
    return api.DocumentHistory(
        digest, status, tuple(items), tuple(registrations), index=index, retirements=tuple(retirements)
    )


async def lookup_documents(request: Request) -> Response:
    """What the log holds about each of up to api.MAX_LOOKUP documents, in one round trip (an issuer's tool asks
    before it submits a batch): every statement's index, kind, signer and time, and the status by the one rule.
    No proofs: GET /api/v1/documents/<sha256> gives them, one document at a time."""
    state = state_of(request)
    if request.headers.get("content-type", "").split(";")[0].strip() != JSON:
        raise HTTPError(415, "unsupported_media_type", 'send application/json: {"documents": [hex SHA-256, ...]}')
    body = await read_body(request, state.limits.max_body, state.limits.body_timeout)
    documents = api.LookupRequest.from_json(read_json(body)).documents
    if len(documents) > api.MAX_LOOKUP:
        raise HTTPError(413, "batch_too_large", f"{len(documents)} documents; at most {api.MAX_LOOKUP} per lookup")
    continues = state.sequencer.registry.continuations()
    summaries = []
    hint = state.sequencer.tail.documents_hint(documents)  # taken just before the read (readtail.py)
    found = await state.storage.documents_entries(documents, hint)  # one read for the whole batch
    for digest in documents:
        statements = [(e.index, state.reads.statement(e)) for e in found[digest]]
        listed = tuple(
            api.LookupStatement(index, s.kind, s.signer_verifier.name, s.signer, s.time) for index, s in statements
        )
        status = document_status([s for _, s in statements], continues)
        summaries.append(api.DocumentSummary(digest, status, listed))
    return json_response(api.LookupResponse(tuple(summaries)))


async def _stored_registry(
    state: LogState,
    statements: list[Statement],
    checkpoint: tuple[int, bytes],
    registrations: list[api.Registration],
    retirements: list[api.Retirement],
) -> tuple[list[api.Registration], list[api.Retirement]]:
    """The answer's registrations and retirements, with those of the signers' keys below the bundles' checkpoint
    that the process's registry lacks added from storage: a process that follows the log replays its registry
    only as the head moves, while the key index proofs (and the verifier's read of the gap) come from storage, and
    an answer whose parts disagree reads as a report left out (docs/status-proofs.md §12)."""
    size, note = checkpoint
    shown = {r.index for r in registrations} | {r.index for r in retirements}
    for index, kind, key in await state.reads.keys.named({s.signer for s in statements}, size):
        if index in shown:
            continue
        data = (await state.storage.get_entries(index, index + 1))[0]
        statement, item = (
            parse_statement(data, check_signature=False),
            await state.reads.bundle(index, size, note, data),
        )
        if kind == ISSUER_ADD:
            registrations.append(api.Registration(key, statement.ref, statement.continues, index, data, item.text))
        else:
            retirements.append(api.Retirement(key, statement.unsafe_from, index, data, item.text))
    return sorted(registrations, key=lambda r: r.index), sorted(retirements, key=lambda r: r.index)


def _registered_chain(registry: Registry, signers: set[str]) -> list[IssuerKey]:
    """The registered keys among `signers`, and every key they continue, in log order."""
    found: dict[str, IssuerKey] = {}
    for vkey in signers:
        for key in continued_keys(vkey, registry.continuations()):
            if key in registry.keys:
                found[key] = registry.keys[key]
    return sorted(found.values(), key=lambda k: k.added_index)


# --- the registry and the log itself ---------------------------------------------------------------------------


async def issuers(request: Request) -> Response:
    state = state_of(request)
    by_name: dict[str, list[api.IssuerKey]] = {}
    for key in state.sequencer.registry.keys.values():
        retired = None
        if not key.active:
            retired = api.KeyRetired(key.retired_index or 0, key.retired_time or 0, key.retire_reason, key.unsafe_from)
        by_name.setdefault(key.vkey.split("+", 1)[0], []).append(
            api.IssuerKey(
                key.vkey, key.label, key.active, api.KeyAdded(key.added_index, key.added_time), retired, key.continues
            )
        )
    listed = tuple(api.Issuer(name, tuple(keys)) for name, keys in sorted(by_name.items()))
    return json_response(api.IssuerRegistry(tuple(state.registry_vkeys), listed))


async def info(request: Request) -> Response:
    state = state_of(request)
    not_sequencing = state.sequencer.not_sequencing
    witnesses = tuple(api.WitnessStatus.from_json(w, "witness status") for w in state.witness_status())
    return json_response(
        api.LogInfo(
            state.rules.origin,
            state.log_vkey,
            tuple(state.registry_vkeys),
            await _size(state),
            await _published_size(state),
            not_sequencing is None,
            not_sequencing,
            witnesses,
        )
    )


async def log_keys(request: Request) -> Response:
    """The log's `tlog-log-key/v1` entries below `size` (default: the head), each with its inclusion proof."""
    state = state_of(request)
    size = await _size_param(request, state)
    found = [e for e in await state.storage.registry_entries() if e.index < size and is_log_key(e.data)]
    paths = await proofs.inclusion_proofs(state.storage, [e.index for e in found], size)
    entries = (api.LogKeyEntry(e.index, e.data, tuple(p)) for e, p in zip(found, paths, strict=True))
    return json_response(api.LogKeyHistory(size, tuple(entries)))


async def healthz(request: Request) -> Response:
    state = state_of(request)
    await state.storage.head()  # the database answers
    warming = state.warmup.warming  # not ready yet: a load balancer waits (logserver/warmup.py)
    health = api.Health(not warming, state.sequencer.not_sequencing is None, warming)
    return json_response(health, status=503 if warming else 200)


async def metrics(request: Request) -> Response:
    state = state_of(request)
    text = state.metrics.render(state.sequencer.size, state.sequencer.pool_size, await _published_size(state))
    return Response(text, media_type="text/plain; version=0.0.4")


async def openapi(request: Request) -> Response:
    return Response(orjson.dumps(OPENAPI), media_type="application/json")


# The log's routes: one line each. The web verifier's routes come from webpage.py (they need the log's keys).
ROUTES = [
    Route("/checkpoint", checkpoint),
    Route("/tile/{path:path}", tile),
    Route("/api/v1/entries", submit, methods=["POST"]),
    Route("/api/v1/proof/inclusion", inclusion),
    Route("/api/v1/proof/consistency", consistency),
    Route("/api/v1/bundle/{index}", bundle),
    Route("/api/v1/documents:lookup", lookup_documents, methods=["POST"]),
    Route("/api/v1/documents/{sha256}", document),
    Route("/api/v1/issuers", issuers),
    Route("/api/v1/log", info),
    Route("/api/v1/log-keys", log_keys),
    Route("/healthz", healthz),
    Route("/metrics", metrics),
    Route("/openapi.json", openapi),
]


async def _handle_error(request: Request, exc: Exception) -> Response:
    return error_response(error_for(exc))


async def _not_found(request: Request, exc: Exception) -> Response:
    status = getattr(exc, "status_code", 404)
    code = "method_not_allowed" if status == 405 else "not_found"
    return json_response(api.ErrorBody(code, f"{request.method} {request.url.path}: {code}"), status)


# The errors a handler may raise on purpose, each answered as JSON by `httpkit.error_for`'s table.
HANDLED_ERRORS: tuple[type[Exception], ...] = (HTTPError, TlogError, PoolFullError, NotSequencingError, StorageError)
PROOF_PATH = "/api/v1/proof/inclusion"
DOCUMENT_PREFIX = "/api/v1/documents/"  # then the document's SHA-256: the route "/api/v1/documents/{sha256}"
CORS = (b"access-control-allow-origin", b"*")  # as webpage.PublicReads adds to every public GET
ShortHandler = Callable[[Scope, Receive, Send], Awaitable[Response]]  # a route LogApp answers before the stack


class LogApp(Starlette):
    """Starlette, with the two reads verifiers make most answered before the middleware stack and the router:
    `GET /api/v1/proof/inclusion` and `GET /api/v1/documents/<sha256>` (a citizen's lookup), as the witness does
    for its POST (witness/app.py WitnessApp): the same handler, the same answer and CORS header, the same JSON
    errors, without the CPU spent in layers that do nothing for them (about a tenth of a proof's; for a lookup the
    routes matched before its own too: docs/performance.md, "Proofs by leaf hash"). The request log and the rate
    limit wrap this app, so they see the request as before; the routes stay in the table (openapi, HEAD). Tile
    GETs likewise (`tile_route`, logserver/tileroute.py)."""

    tile_route: TileRoute

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            path: str = scope["path"]
            if path == PROOF_PATH:
                await self._short(scope, receive, send, self._proof)
                return
            document_hex = path[len(DOCUMENT_PREFIX) :] if path.startswith(DOCUMENT_PREFIX) else ""
            if document_hex and "/" not in document_hex:  # what the route's {sha256} matches
                scope["path_params"] = {"sha256": document_hex}
                await self._short(scope, receive, send, _document)
                return
            if path.startswith(TILE_PREFIX):
                await self.tile_route(scope, receive, send)  # a monitor's two GETs per 256 entries (tileroute.py)
                return
        await super().__call__(scope, receive, send)

    async def _short(self, scope: Scope, receive: Receive, send: Send, handler: ShortHandler) -> None:
        scope["app"] = self  # what Starlette sets first: state_of(request) reads it
        try:
            response = await handler(scope, receive, send)
        except HANDLED_ERRORS as exc:
            response = error_response(error_for(exc))
        response.raw_headers.append(CORS)
        await response(scope, receive, send)

    async def _proof(self, scope: Scope, receive: Receive, send: Send) -> Response:
        leaf = plain_leaf_query(scope["query_string"])
        if leaf is not None:  # no Request, no query parser: the same answer (tests/test_proof_fast_path.py)
            return await _leaf_proof(self.state.log, leaf, None)
        return await inclusion(Request(scope, receive, send))


async def _document(scope: Scope, receive: Receive, send: Send) -> Response:
    return await document(Request(scope, receive, send))


def build_app(state: LogState, lifespan: Any = None) -> Starlette:
    app = LogApp(
        routes=[
            *ROUTES,
            *web_routes(
                state.log_vkeys,
                state.witness_status,
                state.rules.origin,
                state.registry_vkeys,
                state.trust_rotations,
                state.log_key_rotations,
            ),
            *home_routes(),
        ],
        middleware=[Middleware(PublicReads)],
        lifespan=lifespan,
        exception_handlers={
            **{kind: _handle_error for kind in HANDLED_ERRORS},
            404: _not_found,
            405: _not_found,
        },
    )
    app.state.log = state
    app.tile_route = TileRoute(state)
    return app


class RequestLog:
    """ASGI middleware: a request id header and one JSON log line per request, through `logging`, or, with `lines`,
    straight to it (the server's batch of request lines, logserver/requestlines.py: no LogRecord, no handler chain,
    about 22 us less per request in-process, nearly a third of `/healthz`'s; BENCHMARKS.md "Thirty-seventh round")."""

    def __init__(
        self, app: ASGIApp, clock: Callable[[], float] = time.perf_counter, lines: Callable[[str], None] | None = None
    ) -> None:
        self.app, self.clock, self.lines = app, clock, lines

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = os.urandom(8).hex()
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
            if self.lines is not None or log.isEnabledFor(logging.INFO):
                line = {"request_id": request_id, "method": scope["method"], "path": scope["path"], "status": status}
                line["ms"] = round((self.clock() - started) * 1000, 2)
                text = orjson.dumps(line).decode()
                if self.lines is not None:
                    self.lines(text)
                else:  # the record made directly: `log.info` would also walk the stack for a caller no line shows
                    log.handle(log.makeRecord(log.name, logging.INFO, __file__, 0, text, (), None))


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
