"""HTTP plumbing the log's endpoints share: the one error→status table, JSON responses, bounded request bodies and
strict query parameters (STYLE.md §5: named errors, mapped to HTTP in exactly one place)."""

import asyncio
import binascii
from collections.abc import Sequence
from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from logserver import api
from logserver.sequencer import NotSequencingError, PoolFullError
from logserver.storage import StorageError
from logserver.submission import ClockError, WrongLogError
from tlogcore.encoding import MAX_INT64, parse_decimal
from tlogcore.errors import MalformedError, NotAllowedError, ProofError, SignatureError, TlogError

JSON = "application/json"


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


def json_response(body: api.WireValue, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body.to_json()), status, headers, media_type=JSON)


def inclusion_proof_json(index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """`api.InclusionProof(index, size, proof)` as `json_response` writes it, byte for byte, without the generic
    codec: a quarter of its cost, on the read a verifier makes most (issue 20). Base64 needs no JSON escaping."""
    hashes = b'","'.join([binascii.b2a_base64(h, newline=False) for h in proof])
    return b'{"index":%d,"size":%d,"proof":[%s]}' % (index, size, b'"' + hashes + b'"' if proof else b"")


def error_response(error: HTTPError) -> Response:
    return json_response(api.ErrorBody(error.code, str(error)), error.status, error.headers)


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
    except ClientDisconnect:  # the client's doing: one log line (RequestLog), no 5xx, no traceback (issue 18)
        raise HTTPError(400, "client_disconnected", "the connection closed before the whole body arrived") from None
    return bytes(body)


def read_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise HTTPError(400, "malformed", f"body is not JSON: {exc}") from exc


def query_int(request: Request, name: str, default: int | None = None) -> int:
    text = request.query_params.get(name)
    if text is None:
        if default is None:
            raise HTTPError(400, "bad_request", f"query parameter {name!r} is required")
        return default
    return parse_decimal(text, name, MAX_INT64)
