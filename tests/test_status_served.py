"""Provable status end to end, in-process (docs/status-proofs.md §9): the log's document lookup carries the status
index proof bound to a logged index-root, `tlog verify` (online) checks all of it before it says "not revoked" or
"not logged", and a log or a proxy that hides a revocation is caught."""

import asyncio
import hashlib
import sqlite3
import time
from pathlib import Path

import httpx
import orjson
import pytest
from log_harness import issue, post_statements, register_issuer, running_log

from logserver.client import LogClient
from tests.api_helpers import ISSUER, LOG_KEY, REGISTRY_KEY, app_client, corrupting, statement
from tests.status_tamper import drop_stored_revocations
from tlogcore.indexroot import parse_index_root
from tlogcore.policy import parse_policy
from tlogcore.statement import ISSUE, ISSUER_ADD, REVOKE, Statement, sign_statement
from tools.verdict import GENUINE, NOT_LOGGED, REVOKED, TAMPERED, Outcome
from tools.verify import check_online

POLICY = parse_policy(f"log {LOG_KEY.verifier().vkey}\nquorum none\n")
KEPT, REVOKED_DOC, NEVER = (hashlib.sha256(name).digest() for name in (b"kept", b"revoked", b"never"))


async def populate(client: LogClient) -> int:
    """An issuer, two documents issued, one revoked; the log's size after the revocation."""
    await client.submit([statement(ISSUER_ADD, REGISTRY_KEY, issuer=ISSUER.verifier().vkey, ref="Ministry")])
    await client.submit([statement(ISSUE, ISSUER, document=d) for d in (KEPT, REVOKED_DOC)])
    answer = await client.submit([statement(REVOKE, ISSUER, document=REVOKED_DOC, reason="error")])
    return answer.entries[0].index + 1


async def indexed_up_to(client: LogClient, size: int) -> int:
    """Wait (bounded) until lookups carry a proof for an index covering `size` entries; the index's size."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        found = (await client.document(NEVER)).index
        if found is not None and found.size >= size:
            return found.size
        await asyncio.sleep(0.05)
    raise AssertionError(f"no index proof covering {size} entries within 20 s")


async def verify(client: LogClient, document: bytes) -> Outcome:
    return await check_online(client, document, POLICY, time.time())


def test_lookup_carries_a_proof_bound_to_a_logged_index_root(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with app_client(tmp_path, indexed=True) as (client, _):
            size = await indexed_up_to(client, await populate(client))
            served = (await client.document(REVOKED_DOC)).index
            assert served is not None and served.record is not None
            logged = parse_index_root(served.index_root.statement)
            assert (logged.size, logged.root, logged.signer) == (size, served.root, REGISTRY_KEY.verifier().vkey)
            assert served.index_root.index >= size
            genuine, revoked, never = [await verify(client, d) for d in (KEPT, REVOKED_DOC, NEVER)]
            assert genuine.verdict == GENUINE and genuine.status_proven, genuine.message
            assert "not revoked: proven by the log's status index" in genuine.message
            assert revoked.verdict == REVOKED and revoked.status_proven
            assert never.verdict == NOT_LOGGED and never.status_proven and "proven" in never.message

    asyncio.run(scenario())


def test_entries_after_the_index_root_are_read_and_checked(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with app_client(tmp_path, indexed=True) as (client, _):
            await populate(client)
            await indexed_up_to(client, 4)
            late = hashlib.sha256(b"late").digest()
            await client.submit([statement(ISSUE, ISSUER, document=late)])
            outcome = await verify(client, late)  # in the gap, or already indexed: proven either way
            assert outcome.verdict == GENUINE and outcome.status_proven, outcome.message

    asyncio.run(scenario())


def drop_revocations(body: bytes) -> bytes:
    answer = orjson.loads(body)
    answer["statements"] = [s for s in answer["statements"] if s["kind"] != REVOKE]
    answer["status"] = "valid"
    return orjson.dumps(answer)


def test_a_proxy_that_drops_a_revocation_is_caught(tmp_path: Path) -> None:
    async def scenario() -> None:
        path = f"/api/v1/documents/{REVOKED_DOC.hex()}"
        async with app_client(tmp_path, corrupting(path, drop_revocations), indexed=True) as (client, _):
            await populate(client)
            await indexed_up_to(client, 4)
            outcome = await verify(client, REVOKED_DOC)
            assert outcome.verdict == TAMPERED, outcome.message
            assert "a revocation may be hidden" in outcome.message

    asyncio.run(scenario())


def test_a_tampered_index_row_is_caught(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with app_client(tmp_path, indexed=True) as (client, _):
            await indexed_up_to(client, await populate(client))  # the revocation is inside the index itself
            assert (await verify(client, REVOKED_DOC)).verdict == REVOKED
            # The server keeps each index version's proofs (rows of a version never change: logserver/readcache.py),
            # so the lie goes into the rows of a version it has not served yet: one more document, indexed.
            later = await client.submit([statement(ISSUE, ISSUER, document=hashlib.sha256(b"later").digest())])
            await indexed_up_to(client, later.entries[0].index + 1)
            # Rewrite the revoked document's leaf, in every version: its record now lists no revocation.
            db = sqlite3.connect(tmp_path / "log.db")
            changed = drop_stored_revocations(db, REVOKED_DOC)
            db.commit()
            db.close()
            assert changed
            lying = await client.document(REVOKED_DOC)
            assert lying.index is not None and lying.index.record is not None
            outcome = await verify(client, REVOKED_DOC)
            assert outcome.verdict == TAMPERED, outcome.message

    asyncio.run(scenario())


def test_a_real_server_on_both_engines_serves_proofs_tlog_verify_accepts(tmp_path: Path, log_dsn: str | None) -> None:
    """`tlog-server serve` with [status_index] on, on SQLite and on PostgreSQL, checked by `tlog verify`'s code."""
    config = "[status_index]\nindex_interval_ms = 50\n"
    with running_log(tmp_path, config_text=config, dsn=log_dsn) as server:
        with httpx.Client(base_url=server.url, timeout=20) as plain:
            info = plain.get("/api/v1/log").json()
            register_issuer(plain, server, ISSUER, "Ministry")
            origin, policy = info["origin"], parse_policy(f"log {info['log_vkey']}\nquorum none\n")
            post_statements(plain, [issue(origin, ISSUER, KEPT), issue(origin, ISSUER, REVOKED_DOC)])
            revoke = sign_statement(Statement(origin, REVOKE, ISSUER.verifier().vkey, int(time.time()),
                                              document=REVOKED_DOC), ISSUER)  # fmt: skip
            size = post_statements(plain, [revoke]).json()["entries"][0]["index"] + 1

        async def scenario() -> list[Outcome]:
            async with LogClient(server.url, 20) as client:
                await indexed_up_to(client, size)
                return [await check_online(client, d, policy, time.time()) for d in (KEPT, REVOKED_DOC, NEVER)]

        kept, revoked, never = asyncio.run(scenario())
        assert (kept.verdict, revoked.verdict, never.verdict) == (GENUINE, REVOKED, NOT_LOGGED)
        assert kept.status_proven and revoked.status_proven and never.status_proven, kept.message
        lag = httpx.get(server.url + "/metrics").text.split("\ntlog_status_index_lag_entries ")[1].split("\n")[0]
        assert 0 <= int(lag) <= 5, lag  # caught up: about the newest index-root itself is not covered


def test_a_damaged_index_page_leaves_lookups_answered_without_status_proof(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A page row that no longer parses is the server's damage, not the client's bad request: the lookup still
    answers every statement with its proofs, carries no status proof (so verifiers say the status is not proven),
    and the server logs what is wrong and what to do."""

    async def scenario() -> None:
        async with app_client(tmp_path, indexed=True) as (client, _):
            await indexed_up_to(client, await populate(client))
            later = await client.submit([statement(ISSUE, ISSUER, document=hashlib.sha256(b"later").digest())])
            await indexed_up_to(client, later.entries[0].index + 1)
            db = sqlite3.connect(tmp_path / "log.db")
            db.execute("UPDATE status_page SET data = substr(data, 1, 5)")
            db.commit()
            db.close()
            history = await client.document(KEPT)
            assert history.index is None and len(history.statements) == 1
            outcome = await verify(client, KEPT)
            assert outcome.verdict == GENUINE and not outcome.status_proven, outcome.message

    with caplog.at_level("ERROR", logger="logserver"):
        asyncio.run(scenario())
    damaged = [r.getMessage() for r in caplog.records if "status index" in r.getMessage()]
    assert damaged and "damaged" in damaged[0], [r.getMessage() for r in caplog.records]
