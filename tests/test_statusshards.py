"""The index's update made as two halves (logserver/statusshards.py, docs/status-proofs.md §11 "Sixteenth round"):
the halves joined are the whole update byte for byte (in memory, against the node-level reference); through both
engines, in shard processes, every version's root is the log's and the stored rows are those of the whole update;
a shard killed makes the update fail and the indexer's process be replaced, the index still the log's."""

import asyncio
import hashlib
import os
import random
import signal
import time
from pathlib import Path

import pytest

from logserver.config import ServerConfig
from logserver.statusindexer import UPPER_DEPTH, IndexUpdater, document_entries
from logserver.statusshards import IndexShard, ShardPool, shard_settings
from logserver.statusstore import IndexVersion
from tests.api_helpers import ISSUER, statement
from tests.proctree import alive, children
from tests.test_indexer_process import (
    advance_all,
    covered,
    dsn_of,
    log_root_is_the_logs,
    process_driver,
    registered_and_issued,
)
from tests.test_statuspageupdate import Entries, Rows, both, reference
from tests.test_statusstore import ENGINES, Parts, doc, log, run_engine
from tlogcore.statement import ISSUE, REVOKE
from tlogcore.statusindex import NODE_PREFIX
from tlogcore.statusindex_pages import ROOT_PAGE, Page, encode_raw, half_of, join_halves, page_id_bytes
from tlogcore.statuspageupdate import PageUpdate


def half_update(rows: Rows, entries: Entries) -> tuple[Page | None, dict[bytes, bytes]]:
    """One half's update over the stored rows, as a shard makes it: its root's page, and its other pages' rows."""
    if not entries:
        return None, {}
    update = PageUpdate(entries, {})
    while wanted := update.wanted():
        update.supply(rows.pages(wanted))
    _, written = update.apply()
    root_page = written.pop(ROOT_PAGE)
    assert all(half_of(page) == entries[0][2][0] >> 7 for page in written)  # a path never leaves its half
    return root_page, {page_id_bytes(page): encode_raw(nodes) for page, nodes in written.items()}


def batch(rng: random.Random, known: list[bytes], first: int, halves: tuple[int, ...]) -> Entries:
    """New documents, documents sharing a long prefix with an indexed one (a leaf moving down), and indexed ones
    issued again or revoked (a record growing), in the given halves of the tree only."""
    entries: Entries = []
    for at in range(rng.choice((1, 5, 60, 400))):
        shape = rng.random()
        if shape < 0.5:
            document = rng.randbytes(32)
        elif shape < 0.75:
            document = rng.choice(known)[: rng.randrange(1, 31)] + rng.randbytes(32)
        else:
            document = rng.choice(known)
        document = bytes([document[0] & 0x7F | rng.choice(halves) << 7]) + document[1:32]
        entries.append((first + at, REVOKE if document in known and rng.random() < 0.5 else ISSUE, document))
    return entries


@pytest.mark.parametrize("seed", range(8))
def test_two_halves_joined_are_the_whole_update_byte_for_byte(seed: int) -> None:
    """Random batches over indexes of 2 to 3,000 documents (with 2, each child of the root is a leaf), in both
    halves or one only: the joined root's page, the halves' pages and the root are the reference's."""
    rng, rows = random.Random(seed), Rows()
    known = [bytes([half << 7]) + rng.randbytes(31) for half in (0, 1)]
    known += [rng.randbytes(32) for _ in range(rng.choice((0, 30, 3000)))]
    both(rows, [(index, ISSUE, document) for index, document in enumerate(known)])
    for round_ in range(4):
        entries = batch(rng, known, 10_000 * (round_ + 1), rng.choice(((0, 1), (0,), (1,))))
        expected_root, expected_rows = reference(rows, entries)
        base = rows.pages([ROOT_PAGE])[ROOT_PAGE]
        made = [half_update(rows, [e for e in entries if e[2][0] >> 7 == half]) for half in (0, 1)]
        joined = join_halves(base, [root_page for root_page, _ in made])
        assert hashlib.sha256(NODE_PREFIX + joined[1][1]).digest() == expected_root
        assert {page_id_bytes(ROOT_PAGE): encode_raw(joined), **made[0][1], **made[1][1]} == expected_rows
        rows.rows.update(expected_rows)
        known += [document for _, _, document in entries]


def test_halves_are_not_joined_under_a_root_that_is_a_leaf() -> None:
    rows = Rows()
    both(rows, [(0, ISSUE, bytes(32))])  # one document: the root is its leaf
    base = rows.pages([ROOT_PAGE])[ROOT_PAGE]
    with pytest.raises(ValueError, match="interior root"):
        join_halves(base, [None, None])


async def stored_rows(store: object, version: int) -> dict[bytes, bytes]:
    """Every page row as of `version`."""
    return dict(await store.read_upper_rows(256, version))  # type: ignore[attr-defined]


def whole_rows(entries: Entries) -> dict[bytes, bytes]:
    rows = Rows()
    both(rows, entries)
    return rows.rows


@pytest.mark.parametrize("engine", ENGINES)
def test_updates_made_by_shard_processes_are_the_logs_with_the_next_one_made_while_one_commits(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Shards keeping only the top of their half (3 levels here, so that paths below are read from the rows at the
    version in flight), updates of 40 entries that revoke and re-issue the batch before: each version's root is the
    log's, most were made while the one before committed, and the rows stored are the whole update's."""
    dsn = dsn_of(engine, request)
    config = ServerConfig(engine="postgresql", postgresql_dsn=dsn) if dsn else ServerConfig()

    async def body(parts: Parts) -> None:
        storage, store, sequencer, _ = parts
        updater = IndexUpdater(storage, store, keep_upper_from=1, upper_depth=7, max_entries_per_step=40, overlap=True)
        await registered_and_issued(sequencer, 30)
        versions: list[IndexVersion] = []
        await advance_all(updater, storage, versions)  # the first update is made whole: no root yet
        updater.shards = ShardPool(shard_settings(tmp_path, config, 7, 2048))
        try:
            for first in range(40, 600, 40):
                await log(sequencer, *(statement(ISSUE, ISSUER, document=doc(i)) for i in range(first, first + 30)))
                before = range(first - 25, first)
                await log(sequencer, *(statement(REVOKE, ISSUER, document=doc(i), reason="x") for i in before))
                await log(sequencer, *(statement(ISSUE, ISSUER, document=doc(i), ref="again") for i in before))
            overlapped = await advance_all(updater, storage, versions)
            assert updater.shards.updates >= 20 and overlapped >= 10
        finally:
            await updater.close()
        head = await store.head()
        log_head = await storage.head()
        assert head is not None and log_head is not None and head.size == log_head.size

        entries, _ = document_entries(await storage.get_entries(0, head.size), 0)
        assert await stored_rows(store, head.size) == whole_rows(entries)

    run_engine(engine, tmp_path, request, body)


@pytest.mark.parametrize("engine", ENGINES)
def test_after_an_update_made_whole_the_next_big_ones_are_made_by_the_shards(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The first update over an empty index is made whole (no halves yet); the next one was then made while it
    committed, over its pages in flight, which the shards do not hold: whole again, and every one after it, for as
    long as the log stayed ahead (a whole paced phase at 10,000/s ran with the shards idle). Now the update after a
    whole one is made after its commit, and the big ones go back to the shards."""
    dsn = dsn_of(engine, request)
    config = ServerConfig(engine="postgresql", postgresql_dsn=dsn) if dsn else ServerConfig()

    async def body(parts: Parts) -> None:
        storage, store, sequencer, _ = parts
        updater = IndexUpdater(storage, store, keep_upper_from=1, upper_depth=7, max_entries_per_step=40, overlap=True)
        updater.shards = ShardPool(shard_settings(tmp_path, config, 7, 2048))
        await registered_and_issued(sequencer, 30)
        await log(sequencer, *(statement(ISSUE, ISSUER, document=doc(i)) for i in range(100, 400)))
        versions: list[IndexVersion] = []
        try:
            overlapped = await advance_all(updater, storage, versions)
            assert len(versions) >= 8
            assert updater.shards.updates >= len(versions) - 2  # all but the first (and the one after it)
            assert overlapped >= len(versions) - 3  # the shards' own chain still overlaps commits
        finally:
            await updater.close()
        entries, _ = document_entries(await storage.get_entries(0, versions[-1].size), 0)
        assert await stored_rows(store, versions[-1].size) == whole_rows(entries)

    run_engine(engine, tmp_path, request, body)


@pytest.mark.parametrize("engine", ENGINES)
def test_once_the_shards_made_an_update_they_make_the_small_ones_after_it(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A batch under `keep_upper_from` was made whole in the indexer's process even right after an update the
    shards made: their tops were then behind the head, and the next big batch waited while each shard read its
    half of the top again (2-4 s at 10^7, docs/status-proofs.md §11 "Forty-second round"). Now, once the shards
    made an update, they make the small ones after it too (most while the one before commits), nothing is made
    whole in the indexer's process, and the rows stored are the whole update's."""
    dsn = dsn_of(engine, request)
    config = ServerConfig(engine="postgresql", postgresql_dsn=dsn) if dsn else ServerConfig()

    async def body(parts: Parts) -> None:
        storage, store, sequencer, _ = parts
        updater = IndexUpdater(
            storage, store, keep_upper_from=100, upper_depth=7, max_entries_per_step=400, overlap=True
        )
        await registered_and_issued(sequencer, 30)
        versions: list[IndexVersion] = []
        await advance_all(updater, storage, versions)  # made whole: no root yet
        made_whole = len(versions)
        updater.shards = ShardPool(shard_settings(tmp_path, config, 7, 2048))
        try:
            await log(sequencer, *(statement(ISSUE, ISSUER, document=doc(i)) for i in range(100, 300)))
            await advance_all(updater, storage, versions)  # one batch of 200: the shards start
            assert updater.shards.updates == 1
            updater.max_entries_per_step = 20  # small batches from here on
            for first in range(300, 420, 60):
                await log(sequencer, *(statement(ISSUE, ISSUER, document=doc(i)) for i in range(first, first + 50)))
                revoked = range(first - 10, first)  # documents of the batch before: leaves its commit writes
                await log(sequencer, *(statement(REVOKE, ISSUER, document=doc(i), reason="x") for i in revoked))
            overlapped = await advance_all(updater, storage, versions)
            assert updater.shards.updates == len(versions) - made_whole  # every update since the first big one
            assert overlapped >= 3  # small ones made while the one before committed
        finally:
            await updater.close()
        entries, _ = document_entries(await storage.get_entries(0, versions[-1].size), 0)
        assert await stored_rows(store, versions[-1].size) == whole_rows(entries)

    run_engine(engine, tmp_path, request, body)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_killed_shard_fails_the_update_and_a_new_indexer_process_makes_it(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """kill -9 of one shard: the next big update fails (never made whole from one half), the server replaces the
    indexer's process (and its shards), and the index covers the log with the log's roots."""
    dsn = dsn_of(engine, request)

    async def body(parts: Parts) -> None:
        storage, store, sequencer, _ = parts
        indexer = process_driver(parts, tmp_path, dsn)
        await registered_and_issued(sequencer, 1500)
        task = asyncio.create_task(indexer.run())
        try:
            await log_root_is_the_logs(storage, await covered(storage, store))
            first = indexer.pid
            assert first is not None
            assert not children(first)  # the first update is made whole (no root yet): no shard started
            await log(sequencer, *(statement(ISSUE, ISSUER, document=doc(i)) for i in range(1500, 3000)))
            await log_root_is_the_logs(storage, await covered(storage, store))
            shards = children(first, b"witness.workerprocess")
            assert len(shards) == 2, shards  # started for the second
            os.kill(min(shards), signal.SIGKILL)
            await log(sequencer, *(statement(ISSUE, ISSUER, document=doc(i)) for i in range(3000, 4500)))
            await log_root_is_the_logs(storage, await covered(storage, store))
            assert indexer.pid not in (None, first)  # replaced
            assert len(children(indexer.pid, b"witness.workerprocess")) == 2  # type: ignore[arg-type]
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        deadline = time.monotonic() + 10
        while any(alive(shard) for shard in shards) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert not any(alive(shard) for shard in shards)  # the other one left with its process

    run_engine(engine, tmp_path, request, body)


def test_a_shard_keeps_its_top_for_its_half_of_any_big_batch(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """The pool sends a shard only batches of KEEP_FROM documents or more, about half of one each: a shard that
    kept its top only for KEEP_FROM documents of its own read every path from the root and declined every update
    made while one commits (the wiring once passed KEEP_FROM to the shards). It keeps the root's page and its
    half's pages only."""

    async def body(parts: Parts) -> None:
        storage, store, sequencer, _ = parts
        await registered_and_issued(sequencer, 1200)
        updater = IndexUpdater(storage, store)
        await advance_all(updater, storage, [])  # the root exists: later batches may be split
        settings = shard_settings(tmp_path, ServerConfig(), UPPER_DEPTH, 2048)[1]
        shard = IndexShard(asyncio.get_running_loop(), store, settings)
        head = await store.head()
        assert head is not None
        entries = [
            (head.size + i, ISSUE, bytes([0x80 | i % 128]) + bytes(31 - 2) + i.to_bytes(2, "big")) for i in range(600)
        ]
        answer = await shard._update(head.size, head.size + 600, entries, False)
        assert answer is not None and answer.rows
        assert shard._upper.holds(head.size + 600)
        assert {half_of(page) for page in shard._upper._pages} == {None, 1}

    run_engine("sqlite", tmp_path, request, body)
