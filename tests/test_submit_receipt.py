"""POST /api/v1/entries with `"inclusion_proofs": false`: the answer without per-entry proofs (issue 20).

A bulk submitter that does not check proofs on the spot (`tlog submit`) asks for the places only, so the server
builds no proofs it would throw away; every other client gets the answer it always got."""

import asyncio
import base64
from pathlib import Path
from typing import Any

import orjson
import pytest

from logserver import api
from logserver.openapi import OPENAPI
from tests.api_helpers import ISSUER, REGISTRY_KEY, app_client, statement
from tlogcore.checkpoint import parse_checkpoint
from tlogcore.errors import MalformedError
from tlogcore.merkle import leaf_hash, verify_inclusion
from tlogcore.note import parse_note
from tlogcore.statement import ISSUE, ISSUER_ADD

ENTRIES = "/api/v1/entries"


def documents(count: int, salt: int) -> list[bytes]:
    return [bytes([salt, i % 256, i // 256]) + bytes(29) for i in range(count)]


def body(datas: list[bytes], **extra: Any) -> dict[str, Any]:
    return {"statements": [base64.b64encode(d).decode() for d in datas], **extra}


def test_without_the_option_every_entry_still_carries_its_inclusion_proof(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with app_client(tmp_path) as (_client, raw):
            add = statement(ISSUER_ADD, REGISTRY_KEY, issuer=ISSUER.verifier().vkey, ref="Ministry")
            issued = [statement(ISSUE, ISSUER, document=d) for d in documents(5, 1)]
            assert (await raw.post(ENTRIES, json=body([add]))).status_code == 200
            answer = await raw.post(ENTRIES, json=body(issued))
            assert answer.status_code == 200, answer.text
            wire = answer.json()
            assert all(set(e) == {"index", "leaf_hash", "duplicate", "inclusion_proof"} for e in wire["entries"])
            full = api.SubmitResponse.from_json(wire)
            head = parse_checkpoint(parse_note(full.checkpoint).text)
            assert [e.index for e in full.entries] == [1, 2, 3, 4, 5]
            for data, entry in zip(issued, full.entries, strict=True):
                verify_inclusion(leaf_hash(data), entry.index, head.size, entry.inclusion_proof, head.root)

    asyncio.run(scenario())


def test_asked_without_proofs_the_answer_has_the_places_and_a_checkpoint_covering_them(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with app_client(tmp_path) as (_client, raw):
            add = statement(ISSUER_ADD, REGISTRY_KEY, issuer=ISSUER.verifier().vkey, ref="Ministry")
            issued = [statement(ISSUE, ISSUER, document=d) for d in documents(7, 2)]
            assert (await raw.post(ENTRIES, json=body([add], inclusion_proofs=False))).status_code == 200
            first = await raw.post(ENTRIES, json=body(issued[:3], inclusion_proofs=False))
            assert first.status_code == 200, first.text
            wire = first.json()
            assert set(wire) == {"checkpoint", "entries"}
            assert all(set(e) == {"index", "leaf_hash", "duplicate"} for e in wire["entries"])  # no proof built
            receipt = api.SubmitReceipt.from_json(wire)
            assert [e.index for e in receipt.entries] == [1, 2, 3]
            assert [e.leaf_hash for e in receipt.entries] == [leaf_hash(d) for d in issued[:3]]
            assert not any(e.duplicate for e in receipt.entries)
            # one request repeating two logged statements beside new ones: the first entries, marked duplicate
            again = await raw.post(ENTRIES, json=body([issued[1], *issued[3:], issued[2]], inclusion_proofs=False))
            repeated = api.SubmitReceipt.from_json(again.json())
            assert [(e.index, e.duplicate) for e in repeated.entries] == [
                (2, True), (4, False), (5, False), (6, False), (7, False), (3, True)
            ]  # fmt: skip
            head = parse_checkpoint(parse_note(repeated.checkpoint).text)
            assert head.size >= 8  # the checkpoint the entries are in, as with proofs

    asyncio.run(scenario())


def test_the_option_is_a_json_boolean_and_a_wrong_one_is_named(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with app_client(tmp_path) as (_client, raw):
            add = statement(ISSUER_ADD, REGISTRY_KEY, issuer=ISSUER.verifier().vkey)
            for wrong in ("false", 0, None):
                answer = await raw.post(ENTRIES, json=body([add], inclusion_proofs=wrong))
                assert answer.status_code == 400
                error = api.ErrorBody.from_json(answer.json())
                assert (error.error, error.message) == ("malformed", "inclusion_proofs: want a JSON boolean")
            assert (await raw.get("/api/v1/log")).json()["size"] == 0  # nothing logged by a refused request

    asyncio.run(scenario())


def test_the_client_asks_for_a_receipt_without_proofs(tmp_path: Path) -> None:
    """`LogClient.submit_receipt` (what `tlog submit` uses) sends the option; `submit` does not."""
    seen: list[dict[str, Any]] = []

    def recording(app: Any) -> Any:
        async def wrapped(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] != "http" or scope["path"] != ENTRIES:
                await app(scope, receive, send)
                return
            messages = [await receive()]
            while messages[-1].get("more_body", False):
                messages.append(await receive())
            seen.append(orjson.loads(b"".join(m.get("body", b"") for m in messages)))

            async def replay() -> Any:
                return messages.pop(0) if messages else await receive()

            await app(scope, replay, send)

        return wrapped

    async def scenario() -> None:
        async with app_client(tmp_path, recording) as (client, _raw):
            add = statement(ISSUER_ADD, REGISTRY_KEY, issuer=ISSUER.verifier().vkey)
            issued = statement(ISSUE, ISSUER, document=documents(1, 3)[0])
            full = await client.submit([add])
            receipt = await client.submit_receipt([issued])
            assert full.entries[0].index == 0 and receipt.entries[0].index == 1
            assert parse_checkpoint(parse_note(receipt.checkpoint).text).size == 2

    asyncio.run(scenario())
    assert seen[0].get("inclusion_proofs", True) is True and seen[1]["inclusion_proofs"] is False


def test_an_absent_option_reads_as_its_default_and_the_schema_says_it_is_optional() -> None:
    wire = {"statements": ["AAAA"]}
    assert api.SubmitRequest.from_json(wire).inclusion_proofs is True
    assert api.SubmitRequest.from_json({**wire, "inclusion_proofs": False}).inclusion_proofs is False
    with pytest.raises(MalformedError, match=r"^statements: missing"):
        api.SubmitRequest.from_json({"inclusion_proofs": False})  # only the named field may be absent
    schema = api.SubmitRequest.json_schema()
    assert schema["required"] == ["statements"] and schema["properties"]["inclusion_proofs"] == {"type": "boolean"}
    answers = OPENAPI["paths"][ENTRIES]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert answers == {"oneOf": [api.SubmitResponse.json_schema(), api.SubmitReceipt.json_schema()]}
