"""The server's key index (logserver/keyindex.py, docs/status-proofs.md §12): the map at an index version from the
registry entries below it, made again only when they change, and no key proof served under a logged root the
entries do not give (damage: every verifier would call the proofs tampered)."""

import asyncio
import logging

import pytest

from logserver.keyindex import KeyIndex
from logserver.storage import StoredEntry
from tests.api_helpers import ISSUER, ORIGIN, REGISTRY_KEY, statement
from tlogcore.indexroot import IndexRoot, sign_index_root
from tlogcore.keystatus import verify_key_status
from tlogcore.statement import ISSUER_ADD, ISSUER_RETIRE
from tlogcore.statusindex import EMPTY
from tlogcore.statusrecord import parse_record


class RegistryEntries:
    """The one storage read KeyIndex makes (`registry_entries`), counted."""

    def __init__(self, entries: list[StoredEntry]) -> None:
        self.entries, self.reads = entries, 0

    async def registry_entries(self) -> list[StoredEntry]:
        self.reads += 1
        return self.entries


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
            (proof,) = await index.proofs(_index_root(size, keymap.root), [key, key])
            record = parse_record(proof.record) if proof.record is not None else None
            assert record is not None and (record.issued, record.revoked) == listed
            verify_key_status(key, record, proof.proof, keymap.root)
        reads = storage.reads
        await index.at(8)
        assert storage.reads == reads  # a size asked again is not read again
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
