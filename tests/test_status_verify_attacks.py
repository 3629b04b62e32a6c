"""`tlog verify` online against a proxy that lies about a document's status with genuine, logged material: an old
index root, a dropped registration, a dropped stolen-key report (found by an adversarial review in the
forty-fifth round; docs/status-proofs.md §9, §10). The log is the real app with its indexer (tests/api_helpers.py),
the lie a rewrite of its lookup answer."""

import asyncio
import base64
import hashlib
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from log_harness import seed

from logserver.client import LogClient
from logserver.statusindexer import StatusIndexer
from logserver.statusstore import IndexVersion
from tests.api_helpers import ISSUER, LOG_KEY, REGISTRY_KEY, app_client, corrupting, statement
from tlogcore.indexroot import IndexRoot, parse_index_root, sign_index_root
from tlogcore.keys import Ed25519Signer
from tlogcore.policy import parse_policy
from tlogcore.statement import ISSUE, ISSUER_ADD, ISSUER_RETIRE, REVOKE
from tools.statusproof import MAX_GAP
from tools.verdict import GENUINE, REVOKED, STOLEN_KEY, TAMPERED, Outcome
from tools.verify import check_online

POLICY = parse_policy(f"log {LOG_KEY.verifier().vkey}\nquorum none\n")
DOCUMENT = hashlib.sha256(b"a diploma").digest()
PATH = f"/api/v1/documents/{DOCUMENT.hex()}"
NEW_KEY = Ed25519Signer("issuer.api.example", seed(250))  # the issuer's next key: same name, continues ISSUER
OTHER_ISSUER = Ed25519Signer("other.api.example", seed(251))


class Proxy:
    """Passes the lookup answer through until `change` is set, then rewrites it (parsed JSON in, JSON out)."""

    def __init__(self) -> None:
        self.change: Any = None

    def __call__(self, body: bytes) -> bytes:
        return body if self.change is None else orjson.dumps(self.change(orjson.loads(body)))


async def proven(client: LogClient, document: bytes) -> Outcome:
    """The honest verdict once the index covers every entry about the document (bounded wait)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        outcome = await check_online(client, document, POLICY, time.time())
        if outcome.status_proven and (await client.document(document)).index is not None:
            return outcome
        await asyncio.sleep(0.05)
    raise AssertionError("the index never covered the document within 20 s")


async def registered_issuer(client: LogClient) -> None:
    await client.submit([statement(ISSUER_ADD, REGISTRY_KEY, issuer=ISSUER.verifier().vkey, ref="Ministry")])


def test_an_old_index_root_with_more_entries_after_it_than_are_read_proves_nothing(tmp_path: Path) -> None:
    """A proxy replays the genuine answer of an early index root (any index root can be recomputed from public
    entries) and leaves the later revocation out. The entries between that root and the checkpoint are more than
    `tlog verify` reads, so "not revoked" is not proven: before, it said "proven by the log's status index"."""
    proxy = Proxy()

    async def scenario() -> None:
        async with app_client(tmp_path, corrupting(PATH, proxy), indexed=True) as (client, raw):
            await registered_issuer(client)
            await client.submit([statement(ISSUE, ISSUER, document=DOCUMENT)])
            await proven(client, DOCUMENT)
            early = (await raw.get(PATH)).json()  # the answer as served: the proxy passes it through until told
            others = [hashlib.sha256(b"other %d" % i).digest() for i in range(MAX_GAP + 100)]
            for start in range(0, len(others), 1000):
                await client.submit([statement(ISSUE, ISSUER, document=d) for d in others[start : start + 1000]])
            await client.submit([statement(REVOKE, ISSUER, document=DOCUMENT, reason="fraud")])
            assert (await proven(client, DOCUMENT)).verdict == REVOKED
            proxy.change = lambda answer: {
                **answer,
                "statements": [s for s in answer["statements"] if s["kind"] != REVOKE],
                "index": early["index"],
            }
            lie = await check_online(client, DOCUMENT, POLICY, time.time())
            assert not lie.status_proven, lie.message
            assert "proven by the log's status index" not in lie.message
            assert "not proven" in lie.message and f"more than the {MAX_GAP:,}" in lie.message

    asyncio.run(scenario())


def test_a_revocation_by_a_rotated_key_whose_registration_is_dropped_is_tampering(tmp_path: Path) -> None:
    """The issuer rotated to NEW_KEY (its registration says it continues the old key) and revoked with it. Which key
    continues which is read from the answer's registrations: a proxy that drops NEW_KEY's made the revocation not
    count, and the verdict was "genuine, not revoked: proven"."""
    proxy = Proxy()

    async def scenario() -> None:
        async with app_client(tmp_path, corrupting(PATH, proxy), indexed=True) as (client, _):
            await registered_issuer(client)
            await client.submit([statement(ISSUE, ISSUER, document=DOCUMENT)])
            old = ISSUER.verifier().vkey
            new = NEW_KEY.verifier().vkey
            await client.submit([statement(ISSUER_ADD, REGISTRY_KEY, issuer=new, ref="Ministry", continues=old)])
            await client.submit([statement(REVOKE, NEW_KEY, document=DOCUMENT, reason="fraud")])
            assert (await proven(client, DOCUMENT)).verdict == REVOKED
            proxy.change = lambda answer: {
                **answer,
                "registrations": [r for r in answer["registrations"] if r["key"] != new],
            }
            lie = await check_online(client, DOCUMENT, POLICY, time.time())
            assert lie.verdict == TAMPERED, lie.message
            assert new in lie.message and "registration" in lie.message

    asyncio.run(scenario())


async def index_past(client: LogClient, entry: int) -> dict[str, Any]:
    """The honest lookup answer once its index covers `entry` (bounded wait), as JSON."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        answer = (await client.document(DOCUMENT)).to_json()
        if answer["index"] is not None and answer["index"]["size"] > entry:
            return answer
        await asyncio.sleep(0.05)
    raise AssertionError(f"the index never covered entry {entry} within 20 s")


STOLEN_KEY_LIES = {
    # the report dropped from the answer, the key index covering it: before the key index, "genuine"
    "retirement dropped": lambda answer, early: {**answer, "retirements": []},
    "retirement and the key's proof dropped": lambda answer, early: {
        **answer,
        "retirements": [],
        "index": {**answer["index"], "keys": []},
    },
    "the key's record and proof from before the report": lambda answer, early: {
        **answer,
        "retirements": [],
        "index": {**answer["index"], "keys": early["index"]["keys"]},
    },
    "an index root from before the report, the report in the gap dropped": lambda answer, early: {
        **answer,
        "retirements": [],
        "index": early["index"],
    },
}


@pytest.mark.parametrize("lie", STOLEN_KEY_LIES, ids=str)
def test_a_dropped_stolen_key_report_is_tampering(tmp_path: Path, lie: str) -> None:
    """A proxy that drops a stolen-key report (issuer-retire with unsafe-from) turned "signed with a stolen key"
    into "genuine" while the key's retirements were not in any index: the verdict said "the log's word". Now the
    log's key index lists them (docs/status-proofs.md §12), so each way of hiding one is "tampered"."""
    proxy = Proxy()

    async def scenario() -> None:
        async with app_client(tmp_path, corrupting(PATH, proxy), indexed=True) as (client, _):
            await registered_issuer(client)
            at = (await client.submit([statement(ISSUE, ISSUER, document=DOCUMENT)])).entries[0].index
            early = await index_past(client, at)
            key = ISSUER.verifier().vkey
            retire = statement(ISSUER_RETIRE, REGISTRY_KEY, issuer=key, unsafe_from=at)
            retired_at = (await client.submit([retire])).entries[0].index
            answer = await index_past(client, retired_at)
            assert [k["key"] for k in answer["index"]["keys"]] == [key]
            assert (await proven(client, DOCUMENT)).verdict == STOLEN_KEY
            proxy.change = lambda served: STOLEN_KEY_LIES[lie](answer, early)
            outcome = await check_online(client, DOCUMENT, POLICY, time.time())
            assert outcome.verdict == TAMPERED, outcome.message
            assert key in outcome.message or "key index" in outcome.message, outcome.message

    asyncio.run(scenario())


def test_a_genuine_verdict_proves_the_key_was_not_reported_stolen(tmp_path: Path) -> None:
    """Honest answers: a key never retired, and one retired without a stolen-key report (its documents stay
    genuine), each "not reported stolen: proven by the log's key index"."""

    async def scenario() -> None:
        async with app_client(tmp_path, indexed=True) as (client, _):
            await registered_issuer(client)
            at = (await client.submit([statement(ISSUE, ISSUER, document=DOCUMENT)])).entries[0].index
            await index_past(client, at)
            outcome = await proven(client, DOCUMENT)
            assert outcome.verdict == GENUINE and outcome.key_status_proven, outcome.message
            assert "key not reported stolen: proven by the log's key index" in outcome.message
            assert outcome.to_json()["key_status_proven"] is True
            key = ISSUER.verifier().vkey
            retired_at = (await client.submit([statement(ISSUER_RETIRE, REGISTRY_KEY, issuer=key)])).entries[0].index
            await index_past(client, retired_at)
            outcome = await proven(client, DOCUMENT)
            assert outcome.verdict == GENUINE and outcome.key_status_proven, outcome.message

    asyncio.run(scenario())


def test_a_report_left_out_of_a_proven_key_record_is_tampering_even_past_the_gap(tmp_path: Path) -> None:
    """A proxy answers with an index root that lists the stolen-key report, more entries than `tlog verify` reads
    after it, and drops the report from the retirements. Nothing after the root is proven, but the record up to it
    is: before, the key check was skipped whenever the gap was unread, and the verdict was "genuine"."""
    proxy = Proxy()

    async def scenario() -> None:
        async with app_client(tmp_path, corrupting(PATH, proxy), indexed=True) as (client, _):
            await registered_issuer(client)
            at = (await client.submit([statement(ISSUE, ISSUER, document=DOCUMENT)])).entries[0].index
            retire = statement(ISSUER_RETIRE, REGISTRY_KEY, issuer=ISSUER.verifier().vkey, unsafe_from=at)
            listed = await index_past(client, (await client.submit([retire])).entries[0].index)
            other = OTHER_ISSUER.verifier().vkey  # another issuer's key: the retired one may no longer write
            await client.submit([statement(ISSUER_ADD, REGISTRY_KEY, issuer=other, ref="Other ministry")])
            others = [hashlib.sha256(b"other %d" % i).digest() for i in range(MAX_GAP + 100)]
            for start in range(0, len(others), 1000):
                await client.submit([statement(ISSUE, OTHER_ISSUER, document=d) for d in others[start : start + 1000]])
            assert (await proven(client, DOCUMENT)).verdict == STOLEN_KEY
            proxy.change = lambda answer: {**answer, "retirements": [], "index": listed["index"]}
            lie = await check_online(client, DOCUMENT, POLICY, time.time())
            assert lie.verdict == TAMPERED and "retiring key" in lie.message, lie.message

    asyncio.run(scenario())


class V1Indexer(StatusIndexer):
    """States each root as a log from before the key index did: `tlog-index-root/v1`, no key index root."""

    async def _log_root(self, version: IndexVersion) -> None:
        statement = IndexRoot(self.origin, self.registry_key.verifier().vkey, version.time, version.size, version.root)
        await self.store.set_entry(
            version.size, await self.log_statement(sign_index_root(statement, self.registry_key))
        )


def test_under_a_v1_index_root_a_report_read_in_the_gap_is_not_ignored(tmp_path: Path) -> None:
    """A log upgraded from before the key index keeps its v1 roots. A proxy answers with an early one and drops the
    stolen-key report, which lies in the gap `tlog verify` reads itself: the report was read, authenticated, and
    ignored, and the verdict was "genuine" (found by an adversarial review)."""
    proxy = Proxy()

    async def scenario() -> None:
        async with app_client(tmp_path, corrupting(PATH, proxy), indexed=True, indexer_class=V1Indexer) as (client, _):
            await registered_issuer(client)
            at = (await client.submit([statement(ISSUE, ISSUER, document=DOCUMENT)])).entries[0].index
            early = await index_past(client, at)
            assert parse_index_root(base64.b64decode(early["index"]["index_root"]["statement"])).keys is None
            retire = statement(ISSUER_RETIRE, REGISTRY_KEY, issuer=ISSUER.verifier().vkey, unsafe_from=at)
            await index_past(client, (await client.submit([retire])).entries[0].index)
            assert (await proven(client, DOCUMENT)).verdict == STOLEN_KEY
            proxy.change = lambda answer: {**answer, "retirements": [], "index": early["index"]}
            lie = await check_online(client, DOCUMENT, POLICY, time.time())
            assert lie.verdict == TAMPERED and "retires key" in lie.message, lie.message

    asyncio.run(scenario())


def test_an_entry_logged_between_the_answer_and_the_checkpoint_is_not_tampering(tmp_path: Path) -> None:
    """A busy, honest log: the answer is made, then a key's retirement (no stolen-key report) is logged, then the
    verifier fetches the newest checkpoint, whose gap holds the retirement the answer could not list. Served here
    as the answer from before the retirement, once: it read as "tampered" (found by an adversarial review); now
    `tlog verify` asks once more. A proxy that always answers so is still caught (the first test above)."""
    proxy = Proxy()

    async def scenario() -> None:
        async with app_client(tmp_path, corrupting(PATH, proxy), indexed=True) as (client, _):
            await registered_issuer(client)
            at = (await client.submit([statement(ISSUE, ISSUER, document=DOCUMENT)])).entries[0].index
            before = await index_past(client, at)
            retire = statement(ISSUER_RETIRE, REGISTRY_KEY, issuer=ISSUER.verifier().vkey)
            await index_past(client, (await client.submit([retire])).entries[0].index)
            served = [before]
            proxy.change = lambda answer: served.pop() if served else answer
            outcome = await check_online(client, DOCUMENT, POLICY, time.time())
            assert not served  # the stale answer was served, once
            assert outcome.verdict == GENUINE and outcome.key_status_proven, outcome.message

    asyncio.run(scenario())
