"""GET /api/v1/proof/inclusion and GET /api/v1/documents/<sha256> are answered before Starlette's middleware and
router (logserver/app.py LogApp, issues 19 and 20): the same answers, headers and JSON errors as through the router,
and only those routes take the short way."""

import asyncio
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

from logserver import api
from logserver.app import plain_leaf_query
from logserver.httpkit import inclusion_proof_json
from tests.api_helpers import ISSUER, REGISTRY_KEY, app_client, statement
from tlogcore.merkle import leaf_hash
from tlogcore.statement import ISSUE, ISSUER_ADD


class Both:
    """Records the app it wraps, and answers either through it or through Starlette's own stack (the router)."""

    def __init__(self) -> None:
        self.app: Any = None
        self.router_only = False

    def wrap(self, app: Any) -> Any:
        self.app = app
        return self

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.router_only:
            await Starlette.__call__(self.app, scope, receive, send)
        else:
            await self.app(scope, receive, send)


def questions(leaf: bytes) -> list[str]:
    base = "/api/v1/proof/inclusion"
    return [
        f"{base}?leaf_hash={leaf.hex()}",
        f"{base}?leaf_hash={leaf.hex()}&size=2",
        f"{base}?leaf_hash={leaf.hex()}&size=1",  # the leaf is entry 1: not in a tree of size 1
        f"{base}?leaf_hash={leaf.hex()}&size=9",  # beyond the tree
        f"{base}?leaf_hash={'00' * 32}",  # no such entry
        f"{base}?leaf_hash=zz",
        f"{base}?leaf_hash={leaf.hex().upper()}",  # the plain form is lowercase: refused, by the general parse too
        f"{base}?leaf_hash=%{ord(leaf.hex()[0]):02x}{leaf.hex()[1:]}",  # percent-encoded: the general parse decodes it
        f"{base}?leaf_hash={leaf.hex()}&leaf_hash={'00' * 32}",
        f"{base}?leaf_hash={leaf.hex()}&size=",
        f"{base}?leaf_hasX={leaf.hex()}",  # as long as the plain form, another name
        f"{base}?leaf_hash={leaf.hex()[:63]}",
        f"{base}?index=1",
        f"{base}?index=1&size=2",
        f"{base}?index=2",
        f"{base}?index=01",
        base,
    ]


async def teapot(scope: Scope, receive: Receive, send: Send) -> None:
    """A stand-in for Starlette's middleware stack: whatever reaches it is answered 418."""
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 418, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def answer(response: httpx.Response) -> tuple[int, bytes, list[tuple[str, str]]]:
    headers = sorted((k, v) for k, v in response.headers.items() if k != "x-request-id")
    return response.status_code, response.content, headers


def test_the_proof_route_answers_exactly_as_through_the_router(tmp_path: Path) -> None:
    both = Both()

    async def scenario() -> None:
        async with app_client(tmp_path, wrap=both.wrap) as (client, raw):
            await client.submit([statement(ISSUER_ADD, REGISTRY_KEY, issuer=ISSUER.verifier().vkey, ref="Ministry")])
            issued = statement(ISSUE, ISSUER, document=bytes(range(32)))
            await client.submit([issued])
            for path in questions(leaf_hash(issued)):
                both.router_only = False
                short = await raw.get(path)
                both.router_only = True
                routed = await raw.get(path)
                assert answer(short) == answer(routed), path
                assert short.headers["access-control-allow-origin"] == "*", path
                assert short.headers["content-type"] == "application/json", path
            statuses = {(await raw.get(path)).status_code for path in questions(leaf_hash(issued))}
            assert statuses == {200, 400, 404}

    asyncio.run(scenario())


def document_questions(document: bytes) -> list[str]:
    base = "/api/v1/documents/"
    return [
        base + document.hex(),  # logged
        base + "11" * 32,  # never logged
        base + document.hex().upper(),
        base + "%" + f"{ord(document.hex()[0]):02x}" + document.hex()[1:],  # percent-encoded: the path is decoded
        base + document.hex()[:63],
        base + "zz",
        base + document.hex() + "/",  # another segment: no route
        base + document.hex() + "/x",
        base,
        base + document.hex() + "?x=1",
    ]


def test_the_document_route_answers_exactly_as_through_the_router(tmp_path: Path) -> None:
    both = Both()
    document = bytes(range(32))

    async def scenario() -> None:
        async with app_client(tmp_path, wrap=both.wrap) as (client, raw):
            await client.submit([statement(ISSUER_ADD, REGISTRY_KEY, issuer=ISSUER.verifier().vkey, ref="Ministry")])
            await client.submit([statement(ISSUE, ISSUER, document=document)])
            statuses = set()
            for path in document_questions(document):
                both.router_only = False
                short = await raw.get(path)
                both.router_only = True
                routed = await raw.get(path)
                assert answer(short) == answer(routed), path
                statuses.add(short.status_code)
            both.router_only = False
            logged = await raw.get("/api/v1/documents/" + document.hex())
            assert logged.headers["access-control-allow-origin"] == "*"
            assert logged.json()["statements"][0]["kind"] == "issue"
            assert statuses == {200, 307, 400, 404}  # 307: the trailing slash, redirected by the router

    asyncio.run(scenario())


def test_only_the_proof_and_document_routes_skip_the_middleware_stack(tmp_path: Path) -> None:
    """With Starlette's stack replaced by one that answers 418, the proof and a document's lookup are still
    answered; every other path (a HEAD of those routes, the batch lookup, the documents path with no hash or another
    segment) reaches the stack."""
    both = Both()

    async def scenario() -> None:
        async with app_client(tmp_path, wrap=both.wrap) as (client, raw):
            await client.submit([statement(ISSUER_ADD, REGISTRY_KEY, issuer=ISSUER.verifier().vkey, ref="Ministry")])
            both.app.middleware_stack = teapot
            assert (await raw.get("/api/v1/proof/inclusion?index=0")).status_code == 200
            assert (await raw.get("/api/v1/proof/inclusion?index=9")).status_code == 400
            assert (await raw.head("/api/v1/proof/inclusion?index=0")).status_code == 418
            assert (await raw.get("/api/v1/proof/consistency?old=1&new=1")).status_code == 418
            assert (await raw.get("/healthz")).status_code == 418
            assert (await raw.get("/api/v1/documents/" + "11" * 32)).status_code == 200
            assert (await raw.get("/api/v1/documents/zz")).status_code == 400
            assert (await raw.head("/api/v1/documents/" + "11" * 32)).status_code == 418
            assert (await raw.post("/api/v1/documents:lookup", json={"documents": []})).status_code == 418
            for other in ["/api/v1/documents/", "/api/v1/documents/" + "11" * 32 + "/x", "/api/v1/documentsX"]:
                assert (await raw.get(other)).status_code == 418, other

    asyncio.run(scenario())


@pytest.mark.parametrize("count", [0, 1, 2, 20, 63])
def test_the_proof_body_is_the_codecs_byte_for_byte(count: int) -> None:
    hashes = tuple(bytes([i]) * 32 for i in range(count))
    for index, size in [(0, 1), (count, count + 1), (2**63 - 2, 2**63 - 1)]:
        assert inclusion_proof_json(index, size, hashes) == orjson.dumps(
            api.InclusionProof(index, size, hashes).to_json()
        )


def test_only_the_plain_leaf_hash_query_is_read_without_the_query_parser() -> None:
    digest = bytes(range(32))
    assert plain_leaf_query(b"leaf_hash=" + digest.hex().encode()) == digest
    for other in [
        b"leaf_hash=" + digest.hex().upper().encode(),
        b"leaf_hash=%30" + digest.hex().encode()[1:],
        b"leaf_hash=" + digest.hex().encode() + b"&size=3",
        b"leaf_hasX=" + digest.hex().encode(),
        b"leaf_hash=" + digest.hex().encode()[:-1],
        b"",
    ]:
        assert plain_leaf_query(other) is None, other
