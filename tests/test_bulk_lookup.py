"""POST /api/v1/documents:lookup: what the log holds about a batch of documents, in one round trip (issue 20: the
issuer tool asked one document at a time). Typed values, the OpenAPI entry, the real app in-process, bad input."""

import asyncio
import os
from pathlib import Path

import orjson
import pytest

from logserver import api
from logserver.app import ClientRateLimit
from logserver.openapi import OPENAPI
from logserver.ratelimit import RateLimiter
from tests.api_helpers import ISSUER, REGISTRY_KEY, app_client, statement
from tests.log_harness import seed
from tlogcore.errors import MalformedError
from tlogcore.keys import Ed25519Signer
from tlogcore.statement import ISSUE, ISSUER_ADD, REVOKE

OTHER = Ed25519Signer("other.api.example", seed(204))
LOOKUP = "/api/v1/documents:lookup"


def test_lookup_values_read_back_what_they_write() -> None:
    request = api.LookupRequest((bytes(32), bytes(range(32))))
    response = api.LookupResponse(
        (api.DocumentSummary(bytes(32), "revoked", (api.LookupStatement(4, "revoke", "i", "vkey", 17),)),)
    )
    for value in (request, response):
        assert type(value).from_json(orjson.loads(orjson.dumps(value.to_json()))) == value


def test_a_lookup_needs_a_document_and_names_a_bad_one() -> None:
    with pytest.raises(MalformedError, match="at least one"):
        api.LookupRequest.from_json({"documents": []})
    with pytest.raises(MalformedError, match=r"^documents\[1\]: want 64 lowercase hex"):
        api.LookupRequest.from_json({"documents": ["00" * 32, "AB" * 32]})


def test_the_openapi_document_describes_the_lookup() -> None:
    post = OPENAPI["paths"][LOOKUP]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"] == api.LookupRequest.json_schema()
    assert post["responses"]["200"]["content"]["application/json"]["schema"] == api.LookupResponse.json_schema()
    assert api.LookupRequest.json_schema()["properties"]["documents"]["maxItems"] == api.MAX_LOOKUP
    assert {"400", "413", "415", "429"} <= set(post["responses"])


def test_one_lookup_answers_for_every_document_in_request_order(tmp_path: Path) -> None:
    issued, revoked, other, never = (os.urandom(32) for _ in range(4))

    async def scenario() -> None:
        async with app_client(tmp_path) as (client, _raw):
            adds = [statement(ISSUER_ADD, REGISTRY_KEY, issuer=k.verifier().vkey, ref=k.name) for k in (ISSUER, OTHER)]
            await client.submit(adds)
            await client.submit(
                [
                    statement(ISSUE, ISSUER, document=issued),
                    statement(ISSUE, ISSUER, document=revoked),
                    statement(ISSUE, OTHER, document=other),
                ]
            )
            await client.submit([statement(REVOKE, ISSUER, document=revoked, reason="error")])
            answer = await client.lookup([never, revoked, issued, other])
            assert [d.document for d in answer.documents] == [never, revoked, issued, other]
            by_doc = {d.document: d for d in answer.documents}
            assert by_doc[never].status == "unknown" and by_doc[never].statements == ()
            assert [(s.index, s.kind) for s in by_doc[revoked].statements] == [(3, ISSUE), (5, REVOKE)]
            assert by_doc[revoked].status == "revoked"
            first = by_doc[issued].statements[0]
            assert (by_doc[issued].status, first.index, first.issuer, first.signer) == (
                "valid",
                2,
                ISSUER.name,
                ISSUER.verifier().vkey,
            )
            assert by_doc[other].statements[0].issuer == OTHER.name
            # the same answer, document by document, as GET /api/v1/documents/<sha256> gives with proofs
            history = await client.document(revoked)
            assert [(s.index, s.kind, s.time) for s in history.statements] == [
                (s.index, s.kind, s.time) for s in by_doc[revoked].statements
            ]

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("body", "headers", "status", "code", "says"),
    [
        (b'{"documents": []}', {}, 400, "malformed", "at least one"),
        (b'{"documents": ["xyz"]}', {}, 400, "malformed", "documents[0]: want 64 lowercase hex"),
        (b'{"hashes": []}', {}, 400, "malformed", "documents: missing"),
        (b"not json", {}, 400, "malformed", "not JSON"),
        (b'{"documents": ["' + b"00" * 32 + b'"]}', {"content-type": "text/plain"}, 415, "unsupported_media_type", ""),
        (orjson.dumps({"documents": ["00" * 32] * (api.MAX_LOOKUP + 1)}), {}, 413, "batch_too_large", "at most 1000"),
    ],
    ids=["empty", "not-hex", "wrong-field", "not-json", "media-type", "too-many"],
)
def test_bad_lookups_are_named_4xx(
    tmp_path: Path, body: bytes, headers: dict[str, str], status: int, code: str, says: str
) -> None:
    async def scenario() -> None:
        async with app_client(tmp_path) as (_client, raw):
            answer = await raw.post(LOOKUP, content=body, headers={"content-type": "application/json", **headers})
            assert answer.status_code == status, answer.text
            error = api.ErrorBody.from_json(answer.json())
            assert error.error == code and says in error.message

    asyncio.run(scenario())


def test_a_lookup_is_rate_limited_like_every_read(tmp_path: Path) -> None:
    limiter = RateLimiter(rate=0.001, burst=2, clock=lambda: 0.0)

    async def scenario() -> None:
        async with app_client(tmp_path, wrap=lambda app: ClientRateLimit(app, limiter)) as (_client, raw):
            body = {"documents": ["00" * 32]}
            assert (await raw.post(LOOKUP, json=body)).status_code == 200
            assert (await raw.post(LOOKUP, json=body)).status_code == 200
            refused = await raw.post(LOOKUP, json=body)
            assert refused.status_code == 429 and refused.headers["Retry-After"]
            assert api.ErrorBody.from_json(refused.json()).error == "client_rate_limited"

    asyncio.run(scenario())
