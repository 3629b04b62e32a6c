"""The server's key index (logserver/keyindex.py, docs/status-proofs.md §12): the map at an index version from the
registry entries below it, made again only when they change, and no key proof served under a logged root the
entries do not give (damage: every verifier would call the proofs tampered)."""

import asyncio
import hashlib
import logging
import time
from pathlib import Path
from typing import Any

import pytest

from logserver.keyindex import KeyIndex
from logserver.storage import StoredEntry
from tests.api_helpers import ISSUER, LOG_KEY, ORIGIN, REGISTRY_KEY, app_client, statement
from tlogcore.indexroot import IndexRoot, sign_index_root
from tlogcore.keystatus import verify_key_status
from tlogcore.policy import parse_policy
from tlogcore.registry import Registry
from tlogcore.statement import ISSUE, ISSUER_ADD, ISSUER_RETIRE, parse_statement
from tlogcore.statusindex import EMPTY
from tlogcore.statusrecord import parse_record
from tools.verdict import STOLEN_KEY
from tools.verify import check_online

DOCUMENT = hashlib.sha256(b"a licence").digest()
POLICY = parse_policy(f"log {LOG_KEY.verifier().vkey}\nquorum none\n")


class RegistryEntries:
    """The one storage read KeyIndex makes (`registry_entries`), counted."""

    def __init__(self, entries: list[StoredEntry]) -> None:
        self.entries, self.reads, self.starts = entries, 0, list[int]()

    async def registry_entries(self, start: int = 0) -> list[StoredEntry]:
        self.reads += 1
        self.starts.append(start)
        return [entry for entry in self.entries if entry.index >= start]


def _entries() -> list[StoredEntry]:
    key = ISSUER.verifier().vkey
    add = statement(ISSUER_ADD, REGISTRY_KEY, issuer=key, ref="Ministry")
    retire = statement(ISSUER_RETIRE, REGISTRY_KEY, issuer=key, unsafe_from=3)
    return [StoredEntry(0, add), StoredEntry(7, retire)]


def _index_root(size: int, keys: bytes) -> bytes:
    return sign_index_root(IndexRoot(ORIGIN, REGISTRY_KEY.verifier().vkey, 1, size, EMPTY, keys), REGISTRY_KEY)


def test_proofs_under_the_logged_root_and_the_map_made_once_per_registry_change() -> None:
    async def scenario() -> None:
        storage = RegistryEntries(_entries())
        index = KeyIndex(storage)  # type: ignore[arg-type]
        key = ISSUER.verifier().vkey
        before, after = await index.at(5), await index.at(8)
        assert before.root != after.root and await index.at(6) is before  # 0 and 6: the same registry entries
        for size, keymap, listed in ((5, before, ((0,), ())), (8, after, ((0,), (7,)))):
            proofs = await index.proofs(_index_root(size, keymap.root), [key, key])
            assert proofs is not None
            (proof,) = proofs
            record = parse_record(proof.record) if proof.record is not None else None
            assert record is not None and (record.issued, record.revoked) == listed
            verify_key_status(key, record, proof.proof, keymap.root)
        reads = storage.reads
        await index.at(8)
        assert storage.reads == reads  # a size asked again is not read again
        assert storage.starts == [0, 8]  # each read only the rows after the last one read (at 10^4 keys, 10-27 ms)
        v1 = sign_index_root(IndexRoot(ORIGIN, REGISTRY_KEY.verifier().vkey, 1, 8, EMPTY), REGISTRY_KEY)
        assert await index.proofs(v1, [key]) == ()

    asyncio.run(scenario())


def test_no_proofs_under_a_root_the_entries_do_not_give(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        index = KeyIndex(RegistryEntries(_entries()))  # type: ignore[arg-type]
        wrong = (await index.at(5)).root  # the root before the retirement, stated for size 8
        with caplog.at_level(logging.ERROR, logger="logserver.keyindex"):
            assert await index.proofs(_index_root(8, wrong), [ISSUER.verifier().vkey]) is None
            assert await index.proofs(_index_root(8, wrong), [ISSUER.verifier().vkey]) is None
        assert [r.getMessage() for r in caplog.records] == [
            "key index at size 8 differs from its logged root: no status proofs served"
        ]

    asyncio.run(scenario())


def test_a_process_whose_registry_lags_answers_with_the_stored_retirements(tmp_path: Path) -> None:
    """A serving process that follows the log replays its registry only as the head moves, while the key index
    proofs come from storage: with `workers = 2` and 10^4 keys an answer listed a retirement in the key proof but
    not among its retirements, and every verifier called the honest log tampered (found by an adversarial review).
    Here the process's registry is set back to before the retirement, as a lagging follower's is."""
    keeper: list[Any] = []

    def keep(app: Any) -> Any:
        keeper.append(app)
        return app

    async def scenario() -> None:
        async with app_client(tmp_path, keep, indexed=True) as (client, _):
            key = ISSUER.verifier().vkey
            await client.submit([statement(ISSUER_ADD, REGISTRY_KEY, issuer=key, ref="Ministry")])
            at = (await client.submit([statement(ISSUE, ISSUER, document=DOCUMENT)])).entries[0].index
            sequencer = keeper[0].state.log.sequencer
            before = sequencer.registry
            added = parse_statement(statement(ISSUER_ADD, REGISTRY_KEY, issuer=key, ref="Ministry"))
            stale = Registry.replay(before.registry_keys, [(0, added)])
            retire = statement(ISSUER_RETIRE, REGISTRY_KEY, issuer=key, unsafe_from=at)
            retired_at = (await client.submit([retire])).entries[0].index
            deadline = time.monotonic() + 20
            while (index := (await client.document(DOCUMENT)).index) is None or index.size <= retired_at:
                assert time.monotonic() < deadline, "the index never covered the retirement"
                await asyncio.sleep(0.05)
            sequencer.registry = stale  # what a follower still holds
            answer = await client.document(DOCUMENT)
            assert [r.index for r in answer.retirements] == [retired_at]
            outcome = await check_online(client, DOCUMENT, POLICY, time.time())
            assert outcome.verdict == STOLEN_KEY, outcome.message

    asyncio.run(scenario())
