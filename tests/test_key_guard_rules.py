"""The key guard's rules (logserver/keyguard.py), in process on a real SQLite database: what may be signed, what a
crash between the durable record and the commit leaves, and that the record file is replaced atomically."""

import asyncio
from pathlib import Path

import pytest

from logserver.keyguard import (
    EMPTY_TREE,
    ForkRefused,
    KeyGuard,
    RecordFile,
    SignedRecord,
    TreeHead,
    check_signing,
    record_from_json,
    record_to_json,
)
from logserver.sequencer import Sequencer, SequencerConfig
from logserver.sqlite import SQLiteStorage
from tlogcore.keys import Ed25519Signer

A, B = b"\xaa" * 32, b"\xbb" * 32
KEY = Ed25519Signer("guard.example/log", bytes([5]) * 32)


def test_what_may_be_signed() -> None:
    record = SignedRecord(TreeHead(5, A))
    check_signing(record, TreeHead(5, A), TreeHead(9, B), "r")  # extends what was signed
    check_signing(record, TreeHead(4, B), TreeHead(5, A), "r")  # the same tree again: no fork
    for extends, new in [
        (TreeHead(3, A), TreeHead(4, B)),  # smaller
        (TreeHead(4, B), TreeHead(5, B)),  # same size, another root
        (TreeHead(5, B), TreeHead(9, B)),  # extends another tree of that size
        (None, TreeHead(9, B)),  # extends nothing (the database is empty)
    ]:
        with pytest.raises(ForkRefused):
            check_signing(record, extends, new, "r")
    check_signing(SignedRecord(), None, TreeHead(1, A), "r")  # nothing signed yet


def test_the_record_round_trips_and_damage_is_refused(tmp_path: Path) -> None:
    record = SignedRecord(TreeHead(7, A), TreeHead(9, B))
    assert record_from_json(record_to_json(record), "x") == record
    with pytest.raises(ForkRefused, match="damaged"):
        record_from_json(b'{"newest": {"size": -1, "root": "00"}}', "x")
    file = RecordFile(tmp_path / "log.key.signed")
    file.write(record)
    assert file.read() == record and [p.name for p in tmp_path.iterdir()] == ["log.key.signed"]  # no temp left


async def sequencer_on(path: Path, record: RecordFile) -> tuple[Sequencer, SQLiteStorage]:
    storage = await SQLiteStorage.open(path)
    guard = KeyGuard(KEY.name, KEY.verifier(), record)
    sequencer = Sequencer(storage, KEY, SequencerConfig(KEY.name, frozenset()), guard=guard)
    await sequencer.load()
    return sequencer, storage


def test_a_crash_between_record_and_commit_forgets_the_unpublished_signature(tmp_path: Path) -> None:
    async def scenario() -> None:
        record = RecordFile(tmp_path / "log.key.signed")
        sequencer, storage = await sequencer_on(tmp_path / "log.db", record)
        assert await sequencer.take_lease()  # publishes the empty tree
        assert record.read() == SignedRecord(EMPTY_TREE)
        await storage.close()
        # What a kill -9 after the durable record and before the commit leaves: a pending size-3 tree.
        record.write(SignedRecord(EMPTY_TREE, TreeHead(3, A)))
        sequencer, storage = await sequencer_on(tmp_path / "log.db", record)
        assert await sequencer.take_lease()  # the database lacks it: it never left the process
        assert record.read() == SignedRecord(EMPTY_TREE)
        await storage.close()
        # The key signed size 3 and the database holds only size 0: refused.
        record.write(SignedRecord(TreeHead(3, A)))
        sequencer, storage = await sequencer_on(tmp_path / "log.db", record)
        with pytest.raises(ForkRefused, match="has signed size 3"):
            await sequencer.take_lease()
        await storage.close()

    asyncio.run(scenario())
