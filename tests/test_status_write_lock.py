"""The status index's SQLite writes hold the write lock the log's commits need for a bounded amount of SQL alone
(docs/status-proofs.md §11, "Seventh round").

Found under load: a real server at 10^6 documents, 5,000 entries/s submitted, refused a batch with 503 `commit
failed, nothing was stored: database is locked`: the sequencer's commit waited past its 5 s busy timeout for the
indexer's write transaction. Measured: that transaction was the first update after the indexer had caught up over
50 steps in one cycle; every superseded row of those steps had become due at once, and it deleted 1.85 million of
them, holding the lock 12.5 s. Each write now rewrites or deletes a bounded number of pages (statusindexer.py,
PAGES_PER_WRITE). And its statements were awaited one by one on the event loop, the lock held meanwhile: each
write is now one call on the writer's thread, BEGIN to COMMIT.

For the second, the event loop is made slow on purpose and boundedly: every turn takes LOOP_TURN seconds (blocked
in a call, as the server's loop is in its synchronous SQLite reads). A writer on a connection of its own (as the
sequencer's) takes the write lock over and over meanwhile, waiting at most LOCK_WAIT seconds each time (its busy
timeout), while the indexer's store commits updates, prunes and records an index-root entry on the same file.
Real SQLite, real threads. (A server now keeps the index in a file of its own, whose lock the log's commits never
need: tests/test_status_file.py. This test keeps both in one file: what it checks of the store's writes holds for
any file they share with another writer.)
"""

import asyncio
import hashlib
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from logserver.sqlite import SQLiteStorage
from logserver.statusindexer import read_plan
from logserver.statusstore import IndexVersion, SQLiteStatusStore
from tests.api_helpers import ISSUER, statement
from tests.test_statusstore import Parts, index_batches_of_ten, log, page_ids_of, run_engine
from tlogcore.statement import ISSUE
from tlogcore.statusindex import verify_status
from tlogcore.statusindex_nodes import PathPlan, Update, read_paths

LOOP_TURN = 0.4  # seconds per event-loop turn (a server's turns take tens of ms; a transaction awaited 6 of them)
LOCK_WAIT = 1.0  # the other writer's busy timeout, seconds (the sequencer's is 5 s; its refusal is this one's)
DOCUMENTS = 300  # per update: a few hundred rows, written in milliseconds when the lock is held for SQL alone
LIMIT = 120.0  # seconds the whole scenario may take (before the fix it took about 10)


def doc(i: int) -> bytes:
    return hashlib.sha256(b"document %d" % i).digest()


async def busy_loop(stop: asyncio.Event) -> int:
    """Keep every turn of the event loop busy until `stop`; how many turns it took."""
    turns = 0
    while not stop.is_set():
        time.sleep(LOOP_TURN)  # blocks the loop, as a synchronous read on it does
        turns += 1
        await asyncio.sleep(0)
    return turns


def other_writer(path: Path, stop: threading.Event, refused: list[str], waits: list[float]) -> None:
    """Take the write lock as the sequencer's commit does (BEGIN IMMEDIATE on its own connection) until `stop`."""
    db = sqlite3.connect(path, isolation_level=None, timeout=LOCK_WAIT, check_same_thread=False)
    try:
        while not stop.is_set():
            began = time.perf_counter()
            try:
                db.execute("BEGIN IMMEDIATE")
                db.execute("ROLLBACK")
            except sqlite3.OperationalError as exc:
                refused.append(f"{exc} after {time.perf_counter() - began:.2f} s")
            waits.append(time.perf_counter() - began)
            stop.wait(0.005)
    finally:
        db.close()


async def next_update(store: SQLiteStatusStore, head: IndexVersion, first: int) -> tuple[IndexVersion, Update]:
    """DOCUMENTS new documents over `head`, as the indexer makes them: the stored paths read, then updated."""
    docs = [doc(first + i) for i in range(DOCUMENTS)]
    plan = await read_plan(store, PathPlan(docs, head.size), head.size)
    update = plan.apply_entries([(head.size + i, ISSUE, d) for i, d in enumerate(docs)])
    return IndexVersion(head.size + DOCUMENTS, update.root, 1), update


def test_the_indexers_writes_never_refuse_a_log_commit_while_the_event_loop_is_busy(tmp_path: Path) -> None:
    path = tmp_path / "log.db"

    async def scenario() -> None:
        storage = await SQLiteStorage.open(path, 5000)  # the log's own file and schema (WAL), as served
        store = await SQLiteStatusStore.open(path)
        refused: list[str] = []
        waits: list[float] = []
        try:
            first = read_paths(PathPlan([doc(i) for i in range(DOCUMENTS)]), {})
            update = first.apply_entries([(i, ISSUE, doc(i)) for i in range(DOCUMENTS)])
            v1 = IndexVersion(DOCUMENTS, update.root, 1)
            await store.commit(None, v1, update.writes)
            v2, second = await next_update(store, v1, DOCUMENTS)
            stop_loop, stop_writer = asyncio.Event(), threading.Event()
            writer = threading.Thread(target=other_writer, args=(path, stop_writer, refused, waits))
            hog = asyncio.create_task(busy_loop(stop_loop))
            writer.start()
            try:
                await store.commit(v1, v2, second.writes)
                v3, third = await next_update(store, v2, 2 * DOCUMENTS)
                await store.commit(v2, v3, third.writes, None, [(v2.size, page_ids_of(second.writes))])
                await store.prune(v3.size, page_ids_of(third.writes))
                await store.set_entry(v3.size, v3.size)
            finally:
                stop_loop.set()
                turns = await hog
                stop_writer.set()
                await asyncio.to_thread(writer.join)
            assert turns >= 5, turns  # the writes really ran beside a busy loop
            assert len(waits) >= 5, waits  # and the other writer really took the lock meanwhile
            assert refused == [], (refused, max(waits))
            head = await store.head()
            assert head is not None and (head.size, head.root, head.entry) == (v3.size, v3.root, v3.size)
            plan = await read_plan(store, PathPlan([doc(0), doc(DOCUMENTS), doc(3 * DOCUMENTS - 1)], v3.size), v3.size)
            for key in (doc(0), doc(DOCUMENTS), doc(3 * DOCUMENTS - 1)):  # the rows the writes left verify
                record, proof = plan.lookup(key)
                verify_status(key, record, proof.to_bytes(), v3.root)
        finally:
            await store.close()
            await storage.close()

    async def bounded() -> None:
        async with asyncio.timeout(LIMIT):
            await scenario()

    asyncio.run(bounded())


def test_a_catch_up_leaves_each_write_a_bounded_number_of_rows_to_prune(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Versions made in one cycle (a catch-up) all become due together: each later write prunes at most
    `pages_per_write` pages beside its own (whole versions; the oldest due one alone if it is bigger), never all the
    due rows at once."""

    async def body(parts: Parts) -> None:
        _, store, sequencer, indexer = parts
        indexer.pages_per_write = 0  # the smallest budget: a commit or a cycle's end prunes one version
        await index_batches_of_ten(sequencer, indexer, 6)  # 6 versions in one cycle, as a catch-up makes them
        await indexer.measure_lag()
        await indexer.measure_lag()  # all 6 are due now
        carried: list[int] = []
        pruned: list[int] = []
        real_commit, real_prune = store.commit, store.prune

        async def commit(*args: Any) -> None:
            carried.append(len(args[4]))  # (old, new, writes, pages, prunes): versions its transaction prunes
            await real_commit(*args)

        async def prune(version: int, nodes: Any) -> None:
            pruned.append(version)
            await real_prune(version, nodes)

        store.commit, store.prune = commit, prune

        async def log_and_index(batch: int) -> None:
            late = [hashlib.sha256(b"late %d %d" % (batch, i)).digest() for i in range(10)]
            await log(sequencer, *(statement(ISSUE, ISSUER, document=d) for d in late))
            assert await indexer.step()

        await log_and_index(0)
        assert carried == [1]  # not 6: the oldest due version alone, its own pages already exceed the budget
        await indexer.prune()  # the end of the cycle: one version alone
        for _ in range(3):
            await indexer.prune()
        assert len(pruned) == 4
        indexer.pages_per_write = 10**6  # room for every due version
        await log_and_index(1)
        assert carried == [1, 1]  # the last due version, in the update's own transaction
        assert len(pruned) == 4 and len(indexer._rewritten) == 2  # the two newest versions, not due yet

    run_engine("sqlite", tmp_path, request, body)
