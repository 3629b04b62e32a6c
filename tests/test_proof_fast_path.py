"""GET /api/v1/proof/inclusion is answered before Starlette's middleware and router (logserver/app.py LogApp, issue
20): the same answers, headers and JSON errors as through the router, and only that route takes the short way."""

import asyncio
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

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
        f"{base}?index=1",
        f"{base}?index=1&size=2",
        f"{base}?index=2",
        f"{base}?index=01",
        base,
    ]


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


def test_only_the_proof_route_skips_the_middleware_stack(tmp_path: Path) -> None:
    """With Starlette's stack replaced by one that answers 418, the proof is still answered; every other path (and
    a HEAD of the proof route) reaches the stack."""
    both = Both()

    async def teapot(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 418, "headers": []})
            await send({"type": "http.response.body", "body": b""})

    async def scenario() -> None:
        async with app_client(tmp_path, wrap=both.wrap) as (client, raw):
            await client.submit([statement(ISSUER_ADD, REGISTRY_KEY, issuer=ISSUER.verifier().vkey, ref="Ministry")])
            both.app.middleware_stack = teapot
            assert (await raw.get("/api/v1/proof/inclusion?index=0")).status_code == 200
            assert (await raw.get("/api/v1/proof/inclusion?index=9")).status_code == 400
            assert (await raw.head("/api/v1/proof/inclusion?index=0")).status_code == 418
            assert (await raw.get("/api/v1/proof/consistency?old=1&new=1")).status_code == 418
            assert (await raw.get("/healthz")).status_code == 418

    asyncio.run(scenario())
