"""The log's wire protocol (logserver/api.py): strict reading that names the field, the OpenAPI document generated
from the same values, and the real app driven in-process through httpx's ASGI transport (fast; the real-process
end-to-end tests stay beside these)."""

import asyncio
import inspect
import re
import time
from dataclasses import fields
from pathlib import Path
from typing import Any, get_type_hints

import orjson
import pytest

from logserver import api
from logserver.app import ROUTES
from logserver.client import LogClient, LogClientError
from logserver.config import WitnessConfig as LogWitnessConfig
from logserver.openapi import OPENAPI
from logserver.witnessing import WitnessState
from tests.api_helpers import ISSUER, ORIGIN, REGISTRY_KEY, app_client, corrupting, statement
from tests.log_harness import seed
from tlogcore.checkpoint import parse_checkpoint
from tlogcore.cosignature import CosignatureV1Signer
from tlogcore.errors import MalformedError
from tlogcore.merkle import leaf_hash, verify_consistency, verify_inclusion
from tlogcore.note import parse_note
from tlogcore.statement import ISSUE, ISSUER_ADD, REVOKE
from witness.client import WitnessClient

HASH = bytes(range(32))

EXAMPLES: list[api.WireValue] = [
    api.SubmitRequest((b"statement one", b"two")),
    api.SubmitRequest((b"statement one",), inclusion_proofs=False),
    api.SubmitReceipt(b"note\n", (api.EntryReceipt(3, HASH, True),)),
    api.SubmitResponse(b"note\n", (api.SubmittedEntry(3, HASH, False, (HASH, HASH)),)),
    api.InclusionProof(1, 9, (HASH,)),
    api.ConsistencyProof(0, 9, ()),
    api.DocumentHistory(
        HASH,
        "revoked",
        (api.DocumentStatement(4, "revoke", "i.example", "vkey", "Ministry", 1790000000, None, "x", b"s", b"b"),),
        (api.Registration("vkey", "Ministry", None, 1, b"s", b"b"),),
        retirements=(api.Retirement("vkey", 3, 9, b"s", b"b"), api.Retirement("vkey2", None, 10, b"s", b"b")),
    ),
    api.IssuerRegistry(
        ("registry+1+AA",),
        (
            api.Issuer(
                "i", (api.IssuerKey("vkey", None, False, api.KeyAdded(0, 1), api.KeyRetired(5, 6, None, 4), None),)
            ),
        ),
    ),
    api.LogInfo(
        ORIGIN, "v", ("r",), 9, 8, False, "standby", (api.WitnessStatus("w", "u", "k", None, 1.5, None, None),)
    ),
    api.WitnessStatus("w", "u", "k", 3, 1.5, "422", api.WitnessAlarm(4, 1.5, "422 ...", "note", None)),
    api.Health(True, True, False),
    api.ErrorBody("malformed", "what was wrong"),
]


@pytest.mark.parametrize("value", EXAMPLES, ids=lambda v: type(v).__name__)
def test_every_value_reads_back_what_it_writes_through_json(value: api.WireValue) -> None:
    wire = orjson.loads(orjson.dumps(value.to_json()))
    assert type(value).from_json(wire) == value


@pytest.mark.parametrize("value", EXAMPLES, ids=lambda v: type(v).__name__)
def test_a_missing_or_mistyped_field_is_named(value: api.WireValue) -> None:
    wire = value.to_json()
    for field in fields(value):  # type: ignore[arg-type]
        without = {k: v for k, v in wire.items() if k != field.name}
        if field.name in value.absent_means_default:  # an option: absent, it reads as its default
            assert getattr(type(value).from_json(without), field.name) == field.default
        else:
            with pytest.raises(MalformedError, match=f"^{field.name}: missing"):
                type(value).from_json(without)
        with pytest.raises(MalformedError, match=f"^{field.name}(\\[0\\]|\\.\\w+)?: (want|missing)"):
            type(value).from_json({**wire, field.name: {"not": "this"}})


@pytest.mark.parametrize(
    ("wire", "named"),
    [
        ({"checkpoint": "n", "entries": [{"index": 1, "leaf_hash": "AB" * 32, "duplicate": False}]}, "entries[0]"),
        ({"checkpoint": "n", "entries": [{"index": True, "leaf_hash": "ab" * 32}]}, "entries[0].index"),
        ({"checkpoint": "n", "entries": [{"index": -1}]}, "entries[0].index"),
        ({"checkpoint": "n", "entries": [{"index": 2**63}]}, "entries[0].index"),
        ({"checkpoint": 7, "entries": []}, "checkpoint"),
    ],
)
def test_strict_reading_names_the_nested_field(wire: dict[str, Any], named: str) -> None:
    with pytest.raises(MalformedError, match="^" + re.escape(named)):
        api.SubmitResponse.from_json(wire)


def test_hashes_have_one_encoding() -> None:
    good = api.InclusionProof(0, 1, (HASH,)).to_json()
    assert api.InclusionProof.from_json(good).proof == (HASH,)
    for bad in ["AAEC", good["proof"][0].rstrip("="), good["proof"][0][:-2] + "x="]:
        with pytest.raises(MalformedError, match=r"^proof\[0\]: want a base64 SHA-256 hash"):
            api.InclusionProof.from_json({**good, "proof": [bad]})
    with pytest.raises(MalformedError, match=r"^document: want 64 lowercase hex"):
        api.DocumentHistory.from_json(
            {"document": HASH.hex().upper(), "status": "valid", "statements": [], "registrations": []}
        )
    with pytest.raises(MalformedError, match=r"^status: want one of valid, revoked, unknown"):
        api.DocumentHistory.from_json({"document": HASH.hex(), "status": "fine", "statements": [], "registrations": []})


def test_a_submission_needs_a_statement() -> None:
    with pytest.raises(MalformedError, match="at least one"):
        api.SubmitRequest.from_json({"statements": []})
    with pytest.raises(MalformedError, match=r"^statements\[1\]: want base64"):
        api.SubmitRequest.from_json({"statements": ["AAAA", "***"]})


def test_the_openapi_document_is_generated_from_the_values() -> None:
    """Each JSON endpoint's 200 schema is its value's schema; every route of the app is described."""
    paths = OPENAPI["paths"]

    def schema(path: str, method: str = "get") -> Any:
        return paths[path][method]["responses"]["200"]["content"]["application/json"]["schema"]

    assert schema("/api/v1/entries", "post") == {
        "oneOf": [api.SubmitResponse.json_schema(), api.SubmitReceipt.json_schema()]
    }  # the receipt when the request asks for no inclusion proofs
    request = paths["/api/v1/entries"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert request == api.SubmitRequest.json_schema()
    assert schema("/api/v1/proof/inclusion") == api.InclusionProof.json_schema()
    assert schema("/api/v1/proof/consistency") == api.ConsistencyProof.json_schema()
    assert schema("/api/v1/documents/{sha256}") == api.DocumentHistory.json_schema()
    assert schema("/api/v1/issuers") == api.IssuerRegistry.json_schema()
    assert schema("/api/v1/log") == api.LogInfo.json_schema()
    assert schema("/healthz") == api.Health.json_schema()
    assert OPENAPI["components"]["schemas"]["Error"] == api.ErrorBody.json_schema()
    described = {p.replace("{path}", "{path:path}") for p in paths}
    served = {route.path for route in ROUTES} - {"/metrics", "/openapi.json"}  # not JSON bodies of the protocol
    assert served <= described, served - described


def test_the_servers_witness_status_has_exactly_the_protocols_fields() -> None:
    """/api/v1/log reads `Witnessing.status()` through api.WitnessStatus: a field added there and not here would
    be dropped from the answer without a sound, so the two must list the same names."""
    config = LogWitnessConfig("w", "http://127.0.0.1:1", CosignatureV1Signer("w", seed(9), time.time).verifier().vkey)
    status = WitnessState(config, WitnessClient("http://127.0.0.1:1", 1.0)).status()
    assert set(status) == {f.name for f in fields(api.WitnessStatus)}
    assert api.WitnessStatus.from_json(status).to_json() == status


# --- the real app, in-process ---------------------------------------------------------------------------------


def test_the_client_gets_typed_values_from_the_real_app(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with app_client(tmp_path) as (client, _raw):
            add = statement(ISSUER_ADD, REGISTRY_KEY, issuer=ISSUER.verifier().vkey, ref="Ministry")
            issued = statement(ISSUE, ISSUER, document=HASH)
            assert (await client.submit([add])).entries[0].index == 0
            first = await client.submit([issued])
            assert first.entries[0].index == 1 and not first.entries[0].duplicate
            again = await client.submit([issued])
            assert again.entries[0].index == 1 and again.entries[0].duplicate
            signed = parse_checkpoint(parse_note(first.checkpoint).text)
            proof = await client.inclusion_proof(1, signed.size)
            verify_inclusion(leaf_hash(issued), 1, signed.size, proof.proof, signed.root)

            history = await client.document(HASH)
            assert history.status == "valid" and [s.index for s in history.statements] == [1]
            assert history.statements[0].statement == issued and history.statements[0].issuer == ISSUER.name

            await client.submit([statement(REVOKE, ISSUER, document=HASH, reason="error")])
            assert (await client.document(HASH)).status == "revoked"
            info = await client.info()
            assert (info.origin, info.size, info.sequencing) == (ORIGIN, 3, True)
            old = await client.consistency_proof(2, 3)
            new = parse_checkpoint(parse_note(await client.checkpoint()).text)
            verify_consistency(2, 3, signed.root, new.root, old.proof)
            registry = await client.issuers()
            assert registry.registry_indexes() == [0]
            assert registry.issuers[0].keys[0].label == "Ministry"

    asyncio.run(scenario())


def test_refusals_come_back_as_named_json_errors(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with app_client(tmp_path) as (client, raw):
            with pytest.raises(LogClientError) as refused:
                await client.submit([statement(ISSUE, ISSUER, document=HASH)])  # not registered
            assert (refused.value.status, refused.value.code) == (403, "signer_not_allowed")
            with pytest.raises(LogClientError) as beyond:
                await client.inclusion_proof(5, 10)
            assert (beyond.value.status, beyond.value.code) == (400, "bad_request")
            answer = await raw.post("/api/v1/entries", json={"statements": ["AAAA", 5]})
            assert answer.status_code == 400
            assert api.ErrorBody.from_json(answer.json()).message.startswith("statements[1]: want base64")

    asyncio.run(scenario())


def test_a_malformed_answer_is_a_client_error_naming_the_field(tmp_path: Path) -> None:
    def mistype_registry_keys(body: bytes) -> bytes:
        return orjson.dumps({**orjson.loads(body), "registry_vkeys": "not a list"})

    async def scenario() -> None:
        async with app_client(tmp_path, corrupting("/api/v1/log", mistype_registry_keys)) as (client, _):
            with pytest.raises(LogClientError, match="malformed: registry_vkeys: want a JSON array") as bad:
                await client.info()
            assert bad.value.code == "malformed_answer"

    asyncio.run(scenario())


def test_the_client_returns_typed_values_not_dicts() -> None:
    """Every JSON endpoint's method returns a value of logserver.api; the others return bytes (notes, tiles)."""
    returns = {
        name: get_type_hints(method)["return"]
        for name, method in inspect.getmembers(LogClient, inspect.iscoroutinefunction)
        if not name.startswith("_") and name not in ("close", "__aenter__", "__aexit__")
    }
    assert returns["info"] is api.LogInfo and returns["document"] is api.DocumentHistory
    for name, kind in returns.items():
        typed = isinstance(kind, type) and issubclass(kind, api.WireValue)
        assert typed or kind in (bytes, bytes | None), f"LogClient.{name} returns {kind}"


class StaleHeadOnce:
    """The storage as a reader sees it when a commit lands between its reading the head and finding a leaf: the
    first head() answers the head from before the last commit; everything else is the real storage."""

    def __init__(self, storage: Any) -> None:
        self.storage = storage
        self.stale: Any = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.storage, name)

    async def head(self) -> Any:
        stale, self.stale = self.stale, None
        return stale if stale is not None else await self.storage.head()


def test_a_leaf_committed_while_its_proof_is_asked_for_is_proven_not_refused(tmp_path: Path) -> None:
    """A proof by leaf hash without `size` read the size, then found the leaf: an entry committed in between got
    400 "index n is not in a tree of size n" for a valid question."""
    view: list[StaleHeadOnce] = []

    def reads(storage: Any) -> StaleHeadOnce:
        view.append(StaleHeadOnce(storage))
        return view[0]

    async def scenario() -> None:
        async with app_client(tmp_path, reads=reads) as (client, raw):
            await client.submit([statement(ISSUER_ADD, REGISTRY_KEY, issuer=ISSUER.verifier().vkey, ref="Ministry")])
            before = await view[0].storage.head()
            issued = statement(ISSUE, ISSUER, document=HASH)
            await client.submit([issued])
            view[0].stale = before  # the reader saw size 1; the issue statement is entry 1
            answer = await raw.get("/api/v1/proof/inclusion", params={"leaf_hash": leaf_hash(issued).hex()})
            assert answer.status_code == 200, answer.text
            proof = api.InclusionProof.from_json(answer.json())
            assert (proof.index, proof.size) == (1, 2)
            root = (await view[0].storage.head()).root
            verify_inclusion(leaf_hash(issued), 1, 2, list(proof.proof), root)

    asyncio.run(scenario())
