"""An async client for the log's HTTP API (httpx; the transport is injectable, so tests can drive the app in-process).

It returns what the server says and verifies nothing by itself: callers check
proofs and signatures with tlogcore against keys they trust.
"""

import base64
from dataclasses import dataclass
from typing import Any

import httpx

from tlogcore.encoding import parse_hash_b64


class LogClientError(Exception):
    """The log answered with an error (status and the server's message), or not at all."""

    def __init__(self, message: str, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code = status, code


@dataclass(frozen=True)
class SubmittedEntry:
    index: int
    leaf_hash: bytes
    duplicate: bool
    inclusion_proof: list[bytes]


@dataclass(frozen=True)
class SubmitResult:
    checkpoint: bytes
    entries: list[SubmittedEntry]


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

    async def submit(self, statements: list[bytes]) -> SubmitResult:
        body = {"statements": [base64.b64encode(s).decode() for s in statements]}
        try:
            response = await self._http.post("/api/v1/entries", json=body)
        except httpx.HTTPError as exc:
            raise LogClientError(f"POST /api/v1/entries: {exc!r}") from exc
        _raise_for(response)
        data = response.json()
        return SubmitResult(
            data["checkpoint"].encode(),
            [
                SubmittedEntry(
                    e["index"],
                    bytes.fromhex(e["leaf_hash"]),
                    e["duplicate"],
                    [parse_hash_b64(h, "proof hash") for h in e["inclusion_proof"]],
                )
                for e in data["entries"]
            ],
        )

    async def checkpoint(self) -> bytes:
        response = await self._get("/checkpoint")
        return response.content

    async def tile(self, path: str) -> bytes | None:
        response = await self._send("/" + path)
        if response.status_code == 404:
            return None
        _raise_for(response)
        return response.content

    async def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        response = await self._get("/api/v1/proof/inclusion", {"index": index, "size": size})
        return [parse_hash_b64(h, "proof hash") for h in response.json()["proof"]]

    async def consistency_proof(self, old: int, new: int) -> list[bytes]:
        response = await self._get("/api/v1/proof/consistency", {"old": old, "new": new})
        return [parse_hash_b64(h, "proof hash") for h in response.json()["proof"]]

    async def bundle(self, index: int, binary: bool = False) -> bytes:
        response = await self._get(f"/api/v1/bundle/{index}", {"format": "binary"} if binary else None)
        return response.content

    async def document(self, sha256: bytes) -> dict[str, Any]:
        response = await self._get(f"/api/v1/documents/{sha256.hex()}")
        result: dict[str, Any] = response.json()
        return result

    async def issuers(self) -> dict[str, Any]:
        response = await self._get("/api/v1/issuers")
        result: dict[str, Any] = response.json()
        return result

    async def info(self) -> dict[str, Any]:
        response = await self._get("/api/v1/log")
        result: dict[str, Any] = response.json()
        return result


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
