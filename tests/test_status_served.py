"""Provable status end to end, in-process (docs/status-proofs.md §9): the log's document lookup carries the status
index proof bound to a logged index-root, `tlog verify` (online) checks all of it before it says "not revoked" or
"not logged", and a log or a proxy that hides a revocation is caught."""

import asyncio
import base64
import hashlib
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from log_harness import issue, post_statements, register_issuer, running_log

from logserver import api
from logserver.client import LogClient
from logserver.statusindexer import PRUNE_GRACE
from tests.api_helpers import ISSUER, LOG_KEY, REGISTRY_KEY, app_client, corrupting, statement
from tests.status_tamper import drop_stored_revocations
from tlogcore.checkpoint import parse_checkpoint
from tlogcore.indexroot import parse_index_root
from tlogcore.note import parse_note
from tlogcore.policy import parse_policy
from tlogcore.statement import ISSUE, ISSUER_ADD, REVOKE, Statement, sign_statement
from tlogcore.statusindex import verify_status
from tlogcore.statusrecord import new_record, parse_record
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
            # `quorum none`: proven by the log's own signed index, but no witness dates it (docs/trust.md "Freshness")
            assert all("no witness dates the log's checkpoint" in o.message for o in (genuine, never)), never.message

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


def test_a_tampered_index_row_is_not_served_as_a_proof(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """An operator rewrites the revoked document's leaf so that its record lists no revocation, while the rows
    above it still hash the true leaf. The server checks each proof against its root before serving it: it serves
    no status proof (the status is "not proven", never "not revoked"; the statements still say revoked) and logs
    the damage. Before, it served the lie, and only the verifier's check stood between it and the citizen."""

    async def scenario() -> None:
        async with app_client(tmp_path, indexed=True) as (client, _):
            await indexed_up_to(client, await populate(client))  # the revocation is inside the index itself
            assert (await verify(client, REVOKED_DOC)).verdict == REVOKED
        # The server keeps what it read of an index version (its proofs, its top pages: logserver/readcache.py; the
        # rows of a version never change), so the lie goes into the rows of a server that has read nothing yet:
        # while it is stopped, the revoked document's leaf is rewritten in every version to list no revocation.
        db = sqlite3.connect(tmp_path / "log.db.status")
        changed = drop_stored_revocations(db, REVOKED_DOC)
        db.commit()
        db.close()
        assert changed
        async with app_client(tmp_path, indexed=True) as (client, _):
            assert (await client.document(REVOKED_DOC)).index is None
            outcome = await verify(client, REVOKED_DOC)
            assert outcome.verdict == REVOKED and not outcome.status_proven, outcome.message

    with caplog.at_level("ERROR", logger="logserver"):
        asyncio.run(scenario())
    assert any("damaged" in r.getMessage() for r in caplog.records), [r.getMessage() for r in caplog.records]


def hide_revocation_in_record(body: bytes) -> bytes:
    """The status record as a lying server would send it: its revocations gone, the proof as it was."""
    answer = orjson.loads(body)
    record = parse_record(base64.b64decode(answer["index"]["record"]))
    answer["index"]["record"] = base64.b64encode(new_record(list(record.issued)).to_bytes()).decode()
    return orjson.dumps(answer)


def test_a_status_record_that_hides_a_revocation_is_caught(tmp_path: Path) -> None:
    """The answer's status record lists no revocation (a lying server or a proxy): its proof no longer leads to the
    logged root, and `tlog verify` says the answer is tampered."""

    async def scenario() -> None:
        path = f"/api/v1/documents/{REVOKED_DOC.hex()}"
        async with app_client(tmp_path, corrupting(path, hide_revocation_in_record), indexed=True) as (client, _):
            await indexed_up_to(client, await populate(client))
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
        db = sqlite3.connect(tmp_path / "log.db.status")  # damaged while the server is stopped (as just above)
        db.execute("UPDATE status_page SET data = substr(data, 1, 5)")
        db.commit()
        db.close()
        async with app_client(tmp_path, indexed=True) as (client, _):
            history = await client.document(KEPT)
            assert history.index is None and len(history.statements) == 1
            outcome = await verify(client, KEPT)
            assert outcome.verdict == GENUINE and not outcome.status_proven, outcome.message

    with caplog.at_level("ERROR", logger="logserver"):
        asyncio.run(scenario())
    damaged = [r.getMessage() for r in caplog.records if "status index" in r.getMessage()]
    assert damaged and "damaged" in damaged[0], [r.getMessage() for r in caplog.records]


class StalePublishedOnce:
    """The storage as a slow lookup sees it: the first latest_published() after `stale` is set answers that older
    checkpoint (read before the index moved on); everything else is the real storage."""

    def __init__(self, storage: Any) -> None:
        self.storage = storage
        self.stale: bytes | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.storage, name)

    async def latest_published(self) -> bytes | None:
        stale, self.stale = self.stale, None
        return stale if stale is not None else await self.storage.latest_published()


def test_a_lookup_whose_version_was_pruned_meanwhile_is_answered_at_the_newer_one(tmp_path: Path) -> None:
    """A slow lookup read the published checkpoint; then the index moved on and, `PRUNE_GRACE` after the newer
    version was served, the rows the old version's pages had were pruned. The lookup read what was left of its
    version (no root page: an empty tree) and served an absence proof that does not lead to the root it stated,
    cached for that version: `tlog verify` said TAMPERED for a genuine document. It is now answered again under the
    newest published checkpoint."""
    view: list[StalePublishedOnce] = []

    def reads(storage: Any) -> StalePublishedOnce:
        view.append(StalePublishedOnce(storage))
        return view[0]

    async def scenario() -> tuple[api.DocumentHistory, int, int]:
        async with app_client(tmp_path, reads=reads, indexed=True) as (client, _):
            first = await indexed_up_to(client, await populate(client))
            held = await view[0].storage.latest_published()
            for n in range(2):  # two more versions, each rewriting the root page
                later = await client.submit([statement(ISSUE, ISSUER, document=hashlib.sha256(b"%d" % n).digest())])
                await indexed_up_to(client, later.entries[0].index + 1)
            await asyncio.sleep(PRUNE_GRACE + 0.5)  # the newer versions served long enough: the old rows may go
            later = await client.submit([statement(ISSUE, ISSUER, document=hashlib.sha256(b"last").digest())])
            await indexed_up_to(client, later.entries[0].index + 1)  # its commit prunes
            db = sqlite3.connect(tmp_path / "log.db.status")
            (old_rows,) = db.execute("SELECT COUNT(*) FROM status_page WHERE version <= ?", (first,)).fetchone()
            db.close()
            view[0].stale = held  # the lookup's handler reads this checkpoint, from before the index moved on
            return await client.document(KEPT), old_rows, first

    history, old_rows, first = asyncio.run(scenario())
    assert old_rows == 0, "the old version's rows were not pruned: the race was not staged"
    found = history.index
    assert found is not None
    verify_status(KEPT, parse_record(found.record) if found.record is not None else None, found.proof, found.root)
    assert found.size > first  # the newest version's proof, under the checkpoint read again


class GrowsBeforeOneLookup:
    """The real app; the next lookup of KEPT waits while the log grows and publishes a newer index root: what a busy,
    honest log does between two requests of one verifier."""

    def __init__(self) -> None:
        self.grow: Any = None

    def __call__(self, app: Any) -> Any:
        async def growing(scope: Any, receive: Any, send: Any) -> None:
            if self.grow is not None and scope["type"] == "http" and scope["path"] == f"/api/v1/documents/{KEPT.hex()}":
                grow, self.grow = self.grow, None
                await grow()
            await app(scope, receive, send)

        return growing


def test_a_newer_index_root_published_while_the_verifier_asks_is_not_tampering(tmp_path: Path) -> None:
    """`tlog verify` fetched the checkpoint, then the lookup. A busy log published a newer checkpoint in between, and
    the lookup's index root (the newest inside a published checkpoint) lay past the verifier's checkpoint: the
    verdict was "tampered" for an honest log (found while testing freshness). The lookup now comes first."""
    hook = GrowsBeforeOneLookup()

    async def scenario() -> None:
        async with app_client(tmp_path, hook, indexed=True) as (client, _):
            size = await indexed_up_to(client, await populate(client))

            async def grow() -> None:
                await client.submit([statement(ISSUE, ISSUER, document=hashlib.sha256(b"later").digest())])
                root = await indexed_up_to(client, size + 2)  # the issue and the root before it, covered
                deadline = time.monotonic() + 20
                while parse_checkpoint(parse_note(await client.checkpoint()).text).size <= root:
                    assert time.monotonic() < deadline, "the newer root was never published"
                    await asyncio.sleep(0.05)

            hook.grow = grow
            outcome = await verify(client, KEPT)
            assert hook.grow is None  # the log did grow while the verifier asked
            assert outcome.verdict == GENUINE and outcome.status_proven, outcome.message

    asyncio.run(scenario())
