"""The witness's HTTP API (c2sp.org/tlog-witness@v1.0.0, with DESIGN.md's choices from its current text).

    POST /add-checkpoint              body: see `witness.witness`; 200 → cosignature line(s)
    GET  /<hex SHA-256(origin)>/checkpoint   the latest cosigned checkpoint (404 if none)
    GET  /healthz                     "ok"
    GET  /openapi.json                this API's OpenAPI description (`witness.openapi`)

Statuses (tlog-witness §"add-checkpoint"; `STATUS` below is the only place
errors become statuses): 400 malformed or old > size, 403 bad signature, 404
unknown origin, 409 old ≠ stored size (`Content-Type: text/x.tlog.size`, body
`<size>\\n`), 422 no consistency (and, per the current text, a second root for
the stored size), 413 body over the limit.
"""

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable, Sequence

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from tlogcore.keys import Signer
from witness.config import WitnessConfig
from witness.cosigner import Cosigner, InlineCosigner, Signed, WorkersUnavailable
from witness.openapi import OPENAPI
from witness.storage import Evidence, LogState, StorageUnavailable, WitnessStorage
from witness.witness import (
    BadProof,
    BadRequest,
    BadSignature,
    Conflict,
    Cosigned,
    UnknownLog,
    WitnessError,
    parse_request,
)

MAX_BODY_SIZE = 128 * 1024  # 64 KiB of checkpoint note + 63 proof lines, with room to spare
BODY_TIMEOUT = 10.0  # seconds to receive a whole body: a client trickling it must not hold a connection for ever
RETRY_AFTER = "5"  # seconds, on 503 (the database failed: a full disk, an I/O error)

log = logging.getLogger("witness.app")
SIZE_MEDIA_TYPE = "text/x.tlog.size"  # tlog-witness: the 409 body is the known size

# Called after every check passed and before the compare-and-swap; tests use it to stall a request.
BeforeCommit = Callable[[Signed], Awaitable[None]]

STATUS: dict[type[WitnessError], int] = {
    BadRequest: 400,
    BadSignature: 403,
    UnknownLog: 404,
    Conflict: 409,
    BadProof: 422,
}


class BodyTooLarge(Exception):
    pass


async def read_body(scope: Scope, receive: Receive, limit: int, timeout: float = BODY_TIMEOUT) -> bytes:
    """The request body, refusing more than `limit` bytes before reading them all; TimeoutError after `timeout`;
    ClientDisconnect if the client goes first. Read from the ASGI messages themselves: Starlette's `Request`,
    `Headers` and `stream()` generator are layers of Python around the same messages, and reading the body was
    about 14 of the event loop's ~170 µs per cosignature (timed per phase, docs/performance.md "The witness")."""
    for name, value in scope["headers"]:  # lower-case names (ASGI)
        if name == b"content-length" and value.isdigit() and int(value) > limit:
            raise BodyTooLarge
    chunks: list[bytes] = []
    total = 0
    async with asyncio.timeout(timeout):
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnect
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > limit:
                raise BodyTooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def send_text(send: Send, text: str) -> None:
    """A 200 `text/plain; charset=utf-8` answer, the same bytes PlainTextResponse sends, without building one."""
    body = text.encode()
    headers = [(b"content-length", b"%d" % len(body)), (b"content-type", b"text/plain; charset=utf-8")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def json_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"error": code, "message": message}, status, headers)


def error_response(error: WitnessError) -> Response:
    status = STATUS[type(error)]
    if isinstance(error, Conflict):
        return Response(f"{error.known_size}\n", status, headers={"Content-Type": SIZE_MEDIA_TYPE})
    return PlainTextResponse(f"{error}\n", status)


async def add_checkpoint_body(
    body: bytes,
    cosigner: Cosigner,
    storage: WitnessStorage,
    clock: Callable[[], float],
    before_commit: BeforeCommit | None,
) -> Cosigned:
    """Steps 1-8 of FORMATS.md §e and the cosignature (witness/cosigner.py), then the durable compare-and-swap from
    the head the checks ran against; raises a WitnessError to refuse."""
    try:
        signed = await cosigner.sign(body)
    except BadProof as exc:  # validly signed, yet not consistent: keep it (tlog-witness "MAY log")
        checkpoint = parse_request(body).checkpoint  # it parsed where it was checked; once more, for the record
        seen = Evidence(checkpoint.origin, checkpoint.size, checkpoint.root, str(exc), body, int(clock()))
        await storage.record_evidence(seen)
        raise
    if before_commit is not None:
        await before_commit(signed)
    # Persist before answering (tlog-witness: "persist, then 200"); losing the race raises Conflict and the
    # cosignature is dropped unseen.
    checkpoint = signed.checkpoint
    new = LogState(checkpoint.size, checkpoint.root, signed.cosigned.note)
    await storage.compare_and_swap(checkpoint.origin, signed.head, new)
    return signed.cosigned


def create_app(
    config: WitnessConfig,
    storage: WitnessStorage,
    signer: Signer | Sequence[Signer],
    clock: Callable[[], float],
    before_commit: BeforeCommit | None = None,
    max_body_size: int = MAX_BODY_SIZE,
    cosigner: Cosigner | None = None,
) -> Starlette:
    """The witness app. `signer` makes the cosignatures (e.g. `CosignatureV1Signer`, which has its own clock), or
    several do, one line each (Ed25519 and ML-DSA-44, witness/config.py `algorithms`); `clock` dates the evidence
    kept of refused checkpoints. `cosigner` parses, verifies and cosigns (default: in the event loop with `signer`;
    `tlog-witness serve` passes worker processes with the same keys, witness/cosigner.py)."""
    signers = [signer] if isinstance(signer, Signer) else list(signer)
    trusted = config.trusted_keys()
    origin_by_hash = {hashlib.sha256(origin.encode()).hexdigest(): origin for origin in trusted}

    cosigner = cosigner if cosigner is not None else InlineCosigner(trusted, signers, storage.head)

    async def cosign_or_refuse(scope: Scope, receive: Receive) -> Response | Cosigned:
        """The cosignature, or the response that refuses the request."""
        try:
            body = await read_body(scope, receive, max_body_size)
        except BodyTooLarge:
            return PlainTextResponse(f"request body is larger than {max_body_size} bytes\n", 413)
        except TimeoutError:
            message = f"the request body did not arrive within {BODY_TIMEOUT:g} s"
            return json_error(408, "body_timeout", message, {"Connection": "close"})
        except ClientDisconnect:  # the client's doing, not ours: one line, no 5xx
            log.info("client went away before sending its whole body")
            return json_error(400, "client_disconnected", "the connection closed before the whole body arrived")
        try:
            return await add_checkpoint_body(body, cosigner, storage, clock, before_commit)
        except WitnessError as error:
            return error_response(error)
        except StorageUnavailable as exc:
            log.error("%s", exc)
            return json_error(503, "storage_unavailable", str(exc), {"Retry-After": RETRY_AFTER})
        except WorkersUnavailable as exc:
            log.error("%s", exc)
            return json_error(503, "workers_unavailable", str(exc), {"Retry-After": RETRY_AFTER})

    async def add_checkpoint(scope: Scope, receive: Receive, send: Send) -> None:
        outcome = await cosign_or_refuse(scope, receive)
        if isinstance(outcome, Cosigned):
            await send_text(send, "".join(outcome.lines))
        else:
            await outcome(scope, receive, send)

    async def latest_checkpoint(request: Request) -> Response:
        origin = origin_by_hash.get(request.path_params["origin_hash"])
        try:
            stored = await storage.latest(origin) if origin is not None else None
        except StorageUnavailable as exc:
            return json_error(503, "storage_unavailable", str(exc), {"Retry-After": RETRY_AFTER})
        if stored is None:
            return PlainTextResponse("no cosigned checkpoint for this origin\n", 404)
        return PlainTextResponse(stored.note, headers={"Cache-Control": "no-cache"})

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok\n")

    async def openapi(request: Request) -> Response:
        return JSONResponse(OPENAPI)

    return WitnessApp(
        add_checkpoint,
        routes=[
            Route("/add-checkpoint", AsgiEndpoint(add_checkpoint), methods=["POST"]),
            Route("/{origin_hash}/checkpoint", latest_checkpoint, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/openapi.json", openapi, methods=["GET"]),
        ],
    )


class AsgiEndpoint:
    """An ASGI callable as a route's endpoint: Starlette wraps plain functions as `Request` handlers, not objects."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._app(scope, receive, send)


class WitnessApp(Starlette):
    """Starlette, with `POST /add-checkpoint` (nearly every request a witness serves) answered before the
    middleware stack and the router: the same handler and response, without about a sixth of the server's CPU
    per cosignature spent passing through layers that do nothing for it (docs/performance.md, "The witness").
    The route stays in the table, so the app describes itself the same way (tests/test_operator_access.py)."""

    def __init__(self, add_checkpoint: ASGIApp, routes: list[Route]) -> None:
        super().__init__(routes=routes)
        self._add_checkpoint = add_checkpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/add-checkpoint" and scope["method"] == "POST":
            await self._add_checkpoint(scope, receive, send)
            return
        await super().__call__(scope, receive, send)
