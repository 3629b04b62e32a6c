"""An async client for the log's HTTP API (httpx; the transport is injectable, so tests can drive the app in-process).

It returns what the server says, as the typed values of `logserver.api` (an answer that does not parse is a
`LogClientError`, like a refusal), and verifies nothing by itself: callers check proofs and signatures with tlogcore
against keys they trust.
"""

from typing import Any, TypeVar

import httpx
import orjson

from logserver import api

W = TypeVar("W", bound=api.WireValue)


class LogClientError(Exception):
    """The log answered with an error (status and the server's message), or not at all."""

    def __init__(self, message: str, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code = status, code


class LogClient:
    def __init__(self, base_url: str, timeout: float = 30.0, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._http = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout, transport=transport)

    async def close(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> "LogClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _send(self, path: str, params: dict[str, Any] | None = None) -> httpx.Response:
        try:
            return await self._http.get(path, params=params)
        except httpx.HTTPError as exc:
            raise LogClientError(f"GET {path}: {exc!r}") from exc

    async def _get(self, path: str, params: dict[str, Any] | None = None) -> httpx.Response:
        response = await self._send(path, params)
        _raise_for(response)
        return response

    async def _get_json(self, path: str, kind: type[W], params: dict[str, Any] | None = None) -> W:
        return _parse(await self._get(path, params), kind)

    async def _post_json(self, path: str, body: bytes, kind: type[W]) -> W:
        try:
            response = await self._http.post(path, content=body, headers={"content-type": "application/json"})
        except httpx.HTTPError as exc:
            raise LogClientError(f"POST {path}: {exc!r}") from exc
        _raise_for(response)
        return _parse(response, kind)

    async def submit(self, statements: list[bytes]) -> api.SubmitResponse:
        body = orjson.dumps(api.SubmitRequest(tuple(statements)).to_json())
        return await self._post_json("/api/v1/entries", body, api.SubmitResponse)

    async def submit_receipt(self, statements: list[bytes]) -> api.SubmitReceipt:
        """`submit` asking for no inclusion proofs: the checkpoint and each entry's index, leaf hash and duplicate
        flag (a server from before the option answers with proofs, which are then not read)."""
        body = orjson.dumps(api.SubmitRequest(tuple(statements), inclusion_proofs=False).to_json())
        return await self._post_json("/api/v1/entries", body, api.SubmitReceipt)

    async def checkpoint(self) -> bytes:
        response = await self._get("/checkpoint")
        return response.content

    async def tile(self, path: str) -> bytes | None:
        response = await self._send("/" + path)
        if response.status_code == 404:
            return None
        _raise_for(response)
        return response.content

    async def inclusion_proof(self, index: int, size: int) -> api.InclusionProof:
        return await self._get_json("/api/v1/proof/inclusion", api.InclusionProof, {"index": index, "size": size})

    async def consistency_proof(self, old: int, new: int) -> api.ConsistencyProof:
        return await self._get_json("/api/v1/proof/consistency", api.ConsistencyProof, {"old": old, "new": new})

    async def bundle(self, index: int, binary: bool = False) -> bytes:
        response = await self._get(f"/api/v1/bundle/{index}", {"format": "binary"} if binary else None)
        return response.content

    async def document(self, sha256: bytes) -> api.DocumentHistory:
        return await self._get_json(f"/api/v1/documents/{sha256.hex()}", api.DocumentHistory)

    async def lookup(self, documents: list[bytes]) -> api.LookupResponse:
        """Statements and status of up to api.MAX_LOOKUP documents, in one request."""
        body = orjson.dumps(api.LookupRequest(tuple(documents)).to_json())
        return await self._post_json("/api/v1/documents:lookup", body, api.LookupResponse)

    async def issuers(self) -> api.IssuerRegistry:
        return await self._get_json("/api/v1/issuers", api.IssuerRegistry)

    async def log_keys(self, size: int) -> api.LogKeyHistory:
        return await self._get_json("/api/v1/log-keys", api.LogKeyHistory, {"size": size})

    async def info(self) -> api.LogInfo:
        return await self._get_json("/api/v1/log", api.LogInfo)


def _parse(response: httpx.Response, kind: type[W]) -> W:
    """The answer as `kind`; a body that is not one is the server's fault, reported like a refusal."""
    try:
        return kind.from_json(orjson.loads(response.content))
    except ValueError as exc:  # JSON syntax, or api's MalformedError naming the field
        raise LogClientError(
            f"{response.request.method} {response.request.url.path}: the log's answer is malformed: {exc}",
            response.status_code,
            "malformed_answer",
        ) from None


def _raise_for(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    try:
        body = response.json()
        message, code = body.get("message", response.text), body.get("error")
    except ValueError:
        message, code = response.text[:200], None
    raise LogClientError(
        f"{response.request.method} {response.request.url.path}: {response.status_code} {message}",
        response.status_code,
        code,
    )
