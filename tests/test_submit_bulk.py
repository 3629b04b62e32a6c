"""The issuer tool's bulk path (issue 20): one lookup request per batch of documents (not one per document),
statements signed in worker processes byte for byte as in-process, only entry places read from the log's answer
(and checked against the statements sent), and the resume state written and read back."""

import asyncio
import os
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.api_helpers import ISSUER, ORIGIN, REGISTRY_KEY, app_client, corrupting, statement
from tlogcore.errors import MalformedError
from tlogcore.statement import ISSUE, ISSUER_ADD, REVOKE, Statement, sign_statement
from tools.hashing import Item
from tools.signing import BatchSigner, sign_issues
from tools.submit import Progress, SubmitState, lookup_logged, submit_items


def counting(paths: Counter[str]) -> Any:
    """The real app, counting the requests it gets by path (documents/<hash> counted as one path)."""

    def wrap(app: Any) -> Any:
        async def counted(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                path = scope["path"]
                paths["/api/v1/documents/<sha256>" if path.startswith("/api/v1/documents/") else path] += 1
            await app(scope, receive, send)

        return counted

    return wrap


def items(count: int) -> list[Item]:
    return [Item(os.urandom(32), f"doc-{i}") for i in range(count)]


def no_progress(_p: Progress) -> None:
    pass


def test_documents_are_looked_up_once_per_batch_not_once_each(tmp_path: Path) -> None:
    paths: Counter[str] = Counter()
    docs = items(2500)

    async def scenario() -> None:
        async with app_client(tmp_path, counting(paths)) as (client, _raw):
            await client.submit([statement(ISSUER_ADD, REGISTRY_KEY, issuer=ISSUER.verifier().vkey)])
            await client.submit([statement(ISSUE, ISSUER, document=docs[7].sha256)])
            await client.submit([statement(REVOKE, ISSUER, document=docs[8].sha256, reason="error")])
            state = SubmitState(ORIGIN, ISSUER.verifier().vkey)
            found = await lookup_logged(client, docs, state, ISSUER.name)
            assert state.logged == {docs[7].sha256.hex(): 1}
            assert [(item.name, at) for item, at in found.revoked] == [("doc-8", 2)]

    asyncio.run(scenario())
    assert paths["/api/v1/documents:lookup"] == 3  # 1000 + 1000 + 500
    assert paths["/api/v1/documents/<sha256>"] == 0


def test_a_run_over_several_batches_logs_every_document_once(tmp_path: Path) -> None:
    paths: Counter[str] = Counter()
    docs = items(2300)
    saved: list[bytes] = []

    async def scenario() -> None:
        async with app_client(tmp_path, counting(paths)) as (client, _raw):
            await client.submit([statement(ISSUER_ADD, REGISTRY_KEY, issuer=ISSUER.verifier().vkey)])
            state = SubmitState(ORIGIN, ISSUER.verifier().vkey)

            async def lookup(chunk: list[Item]) -> Any:
                return await lookup_logged(client, chunk, state, ISSUER.name)

            def save(s: SubmitState) -> None:
                saved.append(s.to_text().encode())

            refused = await submit_items(client, ISSUER, docs, state, save, no_progress, batch=1000, lookup=lookup)
            assert refused == []
            assert sorted(state.logged.values()) == list(range(1, 2301))
            for doc in (docs[0], docs[1500], docs[-1]):
                history = await client.document(doc.sha256)
                assert [s.index for s in history.statements] == [state.logged[doc.sha256.hex()]]
            again = SubmitState.from_text(saved[-1].decode(), ORIGIN, ISSUER.verifier().vkey)
            assert again.logged == state.logged and again.pending_time is None

    asyncio.run(scenario())
    assert paths["/api/v1/entries"] == 4 and paths["/api/v1/documents:lookup"] == 3
    assert orjson.loads(saved[-1])["version"] == 1


def test_statements_signed_in_worker_processes_are_the_in_process_bytes() -> None:
    docs = [(os.urandom(32), None if i % 2 else f"ref-{i}") for i in range(9)]
    expected = [
        sign_statement(Statement(ORIGIN, ISSUE, ISSUER.verifier().vkey, 1_790_000_000, document=d, ref=r), ISSUER)
        for d, r in docs
    ]
    assert sign_issues(ISSUER.name, ISSUER.seed, ORIGIN, 1_790_000_000, docs) == expected
    pool = BatchSigner(ISSUER, ORIGIN, workers=2)
    try:
        assert asyncio.run(pool.sign(1_790_000_000, docs)) == expected
    finally:
        pool.close()


def test_an_answer_for_other_statements_is_refused_not_recorded(tmp_path: Path) -> None:
    """A log (or a proxy) answering with another leaf hash: the tool stops, naming the document."""

    def other_leaf(body: bytes) -> bytes:
        answer = orjson.loads(body)
        for entry in answer.get("entries", []):
            entry["leaf_hash"] = "00" * 32
        return orjson.dumps(answer)

    docs = items(3)

    async def scenario() -> None:
        async with app_client(tmp_path) as (setup, _raw):
            await setup.submit([statement(ISSUER_ADD, REGISTRY_KEY, issuer=ISSUER.verifier().vkey)])
        async with app_client(tmp_path, corrupting("/api/v1/entries", other_leaf)) as (client, _raw):
            state = SubmitState(ORIGIN, ISSUER.verifier().vkey)
            with pytest.raises(MalformedError, match=r"for doc-0 is not the statement sent"):
                await submit_items(client, ISSUER, docs, state, lambda _s: None, no_progress)
            assert state.logged == {}

    asyncio.run(scenario())
