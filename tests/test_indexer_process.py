"""The status index updated in a process of its own (logserver/indexerprocess.py, docs/status-proofs.md §9): the
server's sequencer states each root, the child commits the versions; a killed child is replaced and the index stays
the log's; the child never outlives the server; an `index-root` the sequencer refuses does not stop the indexer."""

import asyncio
import dataclasses
import os
import signal
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from log_harness import issue, post_statements, register_issuer, running_log

from logserver.config import ServerConfig
from logserver.indexerprocess import IndexerProcess, IndexerSettings
from logserver.keyindex import KeyIndex
from logserver.statusindexer import IndexRootLogger, IndexUpdater, document_entries, logged_by
from logserver.statusstore import IndexVersion
from logserver.storage import Storage
from tests.api_helpers import ISSUER, ORIGIN, REGISTRY_KEY, statement
from tests.proctree import alive, children
from tests.test_statusstore import ENGINES, Parts, doc, expected_rows, log, run_engine
from tlogcore.statement import ISSUE, ISSUER_ADD, REVOKE

Driver = Any  # StatusIndexer (one process) or IndexerProcess (its own)


def process_driver(parts: Parts, data: Path, dsn: str | None) -> IndexerProcess:
    """The server's wiring (logserver/cli.py status_indexer), on the test's storage, store and sequencer."""
    storage, store, sequencer, _ = parts
    config = ServerConfig(engine="postgresql", postgresql_dsn=dsn) if dsn else ServerConfig()
    roots = IndexRootLogger(store, REGISTRY_KEY, ORIGIN, logged_by(sequencer), KeyIndex(storage))
    return IndexerProcess(IndexerSettings(data, config, os.getpid()), storage, store, roots, interval=0.02)


async def covered(storage: Storage, store: Any, limit: float = 60.0) -> IndexVersion:
    """Wait (bounded) until a logged index root covers the log: every entry past it is an `index-root` statement
    (several may follow the last document: a root is logged while the next version is made); its version."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        head = await storage.head()
        logged = await store.newest_logged(head.size if head else 0)
        if head is not None and logged is not None:
            _, others = document_entries(await storage.get_entries(logged.size, head.size), logged.size)
            if not others:
                return logged  # type: ignore[no-any-return]
        await asyncio.sleep(0.05)
    raise AssertionError(f"the index did not cover the log within {limit} s")


async def log_root_is_the_logs(storage: Storage, version: IndexVersion) -> None:
    """The root logged for `version` is the one computed from the log's entries alone, in memory."""
    entries, _ = document_entries(await storage.get_entries(0, version.size), 0)
    assert version.root == expected_rows(entries)


async def registered_and_issued(sequencer: Any, documents: int) -> None:
    """The issuer registered, then `documents` issued (doc(0), doc(1), ...)."""
    await log(sequencer, statement(ISSUER_ADD, REGISTRY_KEY, issuer=ISSUER.verifier().vkey, ref="Ministry"))
    await log(sequencer, *(statement(ISSUE, ISSUER, document=doc(i)) for i in range(documents)))


def dsn_of(engine: str, request: pytest.FixtureRequest) -> str | None:
    return request.getfixturevalue("pg_database").dsn if engine == "postgresql" else None  # run_engine's database


@pytest.mark.parametrize("engine", ENGINES)
def test_a_killed_indexer_process_is_replaced_and_the_index_stays_the_logs(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    dsn = dsn_of(engine, request)

    async def body(parts: Parts) -> None:
        storage, store, sequencer, _ = parts
        indexer = process_driver(parts, tmp_path, dsn)
        await registered_and_issued(sequencer, 400)
        task = asyncio.create_task(indexer.run())
        try:
            while indexer.pid is None:
                await asyncio.sleep(0.01)
            first = indexer.pid
            assert first != os.getpid()
            os.kill(first, signal.SIGKILL)  # during its first update (or just after it)
            deadline = time.monotonic() + 30
            while indexer.pid in (None, first) and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            assert indexer.pid not in (None, first)  # replaced
            await log_root_is_the_logs(storage, await covered(storage, store))
            await log(sequencer, statement(REVOKE, ISSUER, document=doc(7), reason="error"))
            await log(sequencer, *(statement(ISSUE, ISSUER, document=doc(i)) for i in range(400, 450)))
            await log_root_is_the_logs(storage, await covered(storage, store))
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        assert indexer.pid is None  # stopped with its task

    run_engine(engine, tmp_path, request, body)


@pytest.mark.parametrize("driver", ["one process", "own process"])
def test_an_index_root_the_sequencer_refuses_does_not_stop_the_indexer(
    driver: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The sequencer refuses the `index-root` statement (its pool is full: PoolFullError). Before, StatusIndexer.run
    caught storage errors only, and its task ended for good: the index stood still until the server restarted."""

    async def body(parts: Parts) -> None:
        storage, store, sequencer, in_process = parts
        indexer: Driver = process_driver(parts, tmp_path, None) if driver == "own process" else in_process
        indexer.interval = 0.02
        await registered_and_issued(sequencer, 20)
        taking = sequencer.config
        sequencer.config = dataclasses.replace(taking, max_pool=0)  # every new statement refused: pool full
        task = asyncio.create_task(indexer.run())
        try:
            deadline = time.monotonic() + 30
            while (await store.head()) is None and time.monotonic() < deadline:
                await asyncio.sleep(0.02)  # a version committed, its root refused
            await asyncio.sleep(0.2)  # several cycles refused
            assert not task.done(), task
            assert (await store.newest_logged(10**9)) is None  # nothing stated while refused
            sequencer.config = taking
            await log_root_is_the_logs(storage, await covered(storage, store, 30))
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    run_engine("sqlite", tmp_path, request, body)


def test_no_indexer_process_outlives_a_server_killed_with_kill_9(tmp_path: Path) -> None:
    """kill -9 of `tlog-server serve` leaves no process behind: the indexer's child, its shards and the signature
    workers exit by themselves, even mid-update (witness/processes.exit_with_parent)."""
    config = "[server]\nverify_workers = 1\n[status_index]\nindex_interval_ms = 1000\n"
    with running_log(tmp_path, config_text=config) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        register_issuer(client, server, ISSUER)
        origin = client.get("/api/v1/log").json()["origin"]
        post_statements(client, [issue(origin, ISSUER, doc(i)) for i in range(200)]).raise_for_status()
        deadline = time.monotonic() + 30
        while len(found := children(server.process.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)  # the signature worker, and the indexer's child once it has work
        assert len(found) == 2, found
        first, deadline = 200, time.monotonic() + 30
        with ThreadPoolExecutor(4) as posts:
            while len(shards := grandchildren(found)) < 2 and time.monotonic() < deadline:
                if first >= 20_200:
                    time.sleep(0.05)  # the shards start one after the other, each importing the server's code
                    continue
                # Four requests at once (1,000 statements per request at most): an update of 1,024 or more starts
                # the shards. One at a time, each could be indexed before the next landed, the cycle never resting.
                batches = [
                    [issue(origin, ISSUER, doc(i)) for i in range(at, at + 1000)]
                    for at in range(first, first + 4000, 1000)
                ]
                for answer in posts.map(lambda batch: post_statements(client, batch), batches):
                    answer.raise_for_status()
                first += 4000
        assert len(shards) == 2, shards  # the indexer's shards (statusshards.py)
        found |= shards
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(10)
        deadline = time.monotonic() + 10
        while any(alive(child) for child in found) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(alive(child) for child in found), [c for c in found if alive(c)]


def grandchildren(parents: set[int]) -> set[int]:
    return set().union(*(children(parent) for parent in parents))


class WatchedStore:
    """The real store, its commits landing `delay` s late (staging the race the overlap must survive). Counts the
    reads made at the version whose commit is in flight (so a test fails if the race was not staged) and the loads
    of the kept top."""

    def __init__(self, store: Any, delay: float = 0.0) -> None:
        self._store, self._delay, self._committing = store, delay, -1
        self.read_in_flight = self.top_loads = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def commit(self, old: Any, new: IndexVersion, *rest: Any) -> None:
        self._committing = new.size
        try:
            await asyncio.sleep(self._delay)
            await self._store.commit(old, new, *rest)
        finally:
            self._committing = -1

    async def read_pages(self, wanted: Any, version: int, pages: Any) -> Any:
        self.read_in_flight += version == self._committing
        return await self._store.read_pages(wanted, version, pages)

    async def read_upper_rows(self, depth: int, version: int, half: int | None = None) -> Any:
        self.top_loads += 1
        return await self._store.read_upper_rows(depth, version, half)


async def advance_all(updater: IndexUpdater, storage: Storage, versions: list[IndexVersion]) -> int:
    """Advance until the index covers the log, each version's root held to the log's; advances that left the
    next update prepared (made while the commit ran)."""
    overlapped = 0
    while (advanced := await updater.advance()) is not None:
        await log_root_is_the_logs(storage, advanced.version)
        versions.append(advanced.version)
        following = updater._following  # the next update, being made while this root is checked
        overlapped += following is not None and await following is not None
    return overlapped


@pytest.mark.parametrize("engine", ENGINES)
def test_the_next_update_made_while_one_commits_gives_the_logs_roots(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """`overlap` (the indexer's process): update k + 1 is read and applied while update k commits, from the rows
    before k's and k's own pages. Documents revoked or issued again in the step right after the one that added
    them (their leaf is in a page the commit in flight writes); then another writer moves the head, and the update
    prepared over the old head is dropped, not committed over it."""

    async def body(parts: Parts) -> None:
        storage, real_store, sequencer, _ = parts
        store = WatchedStore(real_store, 0.05)  # the next update's reads land while the commit is in flight
        updater = IndexUpdater(
            storage, store, keep_upper_from=1, upper_depth=3, max_entries_per_step=40, overlap=True
        )  # only the root's page kept: the paths below are read from the rows, at the version in flight
        await log(sequencer, statement(ISSUER_ADD, REGISTRY_KEY, issuer=ISSUER.verifier().vkey, ref="Ministry"))
        for first in range(0, 400, 40):  # each batch revokes and re-issues documents of the batch before
            await log(sequencer, *(statement(ISSUE, ISSUER, document=doc(i)) for i in range(first, first + 30)))
            before = range(max(0, first - 25), first)
            await log(sequencer, *(statement(REVOKE, ISSUER, document=doc(i), reason="error") for i in before))
            await log(sequencer, *(statement(ISSUE, ISSUER, document=doc(i), ref="again") for i in before))
        versions: list[IndexVersion] = []
        assert await advance_all(updater, storage, versions) >= 5  # the overlap ran, more than once
        assert len(versions) >= 10
        assert store.read_in_flight >= 5  # pages read at the version being committed, before it landed
        await log(sequencer, *(statement(ISSUE, ISSUER, document=doc(i)) for i in range(400, 500)))
        assert await updater.advance() is not None and updater._following is not None  # one being made
        assert await updater._following is not None
        other = IndexUpdater(storage, store)  # another writer (a restarted indexer) moves the head
        assert (await other.advance()) is not None
        await advance_all(updater, storage, versions)  # the prepared one dropped; the roots still the log's
        head = await store.head()
        assert head is not None and head.size == (await storage.head()).size  # type: ignore[union-attr]

    run_engine(engine, tmp_path, request, body)


class GatedStorage:
    """The real log storage, its entries from `gated` on held back until `gate` is set: the next update cannot
    be made until the test lets it."""

    def __init__(self, storage: Storage, gated: int) -> None:
        self._storage, self._gated, self.gate = storage, gated, asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._storage, name)

    async def get_entries(self, start: int, end: int) -> Any:
        if start >= self._gated:
            await self.gate.wait()
        return await self._storage.get_entries(start, end)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_version_is_answered_once_committed_while_the_next_one_is_still_being_made(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """With `overlap`, `advance` answers version k as soon as it is committed, so that its root is stated while
    version k + 1 is made (the answer once waited for k + 1 to be made: each root stated an update late, §11
    "Twelfth round"). Here k + 1 cannot be made until the test lets it; version k's root is logged meanwhile."""

    async def body(parts: Parts) -> None:
        storage, store, sequencer, _ = parts
        await registered_and_issued(sequencer, 80)
        gated = GatedStorage(storage, 41)  # the first step is [0, 41): the registry statement and 40 documents
        updater = IndexUpdater(gated, store, keep_upper_from=1, max_entries_per_step=41, overlap=True)
        first = await asyncio.wait_for(updater.advance(), 10)  # before: waited for the gated update, timed out
        assert first is not None and first.version.size == 41
        assert updater._following is not None and not updater._following.done()  # k + 1 still being made
        await IndexRootLogger(store, REGISTRY_KEY, ORIGIN, logged_by(sequencer), KeyIndex(storage)).log(first.version)
        await log_root_is_the_logs(storage, first.version)
        gated.gate.set()
        second = await asyncio.wait_for(updater.advance(), 10)
        assert second is not None and second.version.size == 81
        await log_root_is_the_logs(storage, second.version)
        await updater.close()

    run_engine(engine, tmp_path, request, body)


@pytest.mark.parametrize("overlap", [False, True])
def test_the_kept_top_is_loaded_once_while_the_indexer_writes_alone(
    overlap: bool, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Its own commits keep the top current: one load for many updates, with or without the overlap (a
    version of the overlap forgot it before every update, in one process: a load per update)."""

    async def body(parts: Parts) -> None:
        storage, real_store, sequencer, _ = parts
        store = WatchedStore(real_store)
        updater = IndexUpdater(storage, store, keep_upper_from=1, max_entries_per_step=20, overlap=overlap)
        await registered_and_issued(sequencer, 200)
        versions: list[IndexVersion] = []
        await advance_all(updater, storage, versions)
        assert len(versions) >= 10 and store.top_loads == 1, (len(versions), store.top_loads)

    run_engine("sqlite", tmp_path, request, body)


def test_a_standby_stops_its_indexer_process_and_starts_one_when_it_sequences(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """`may_write` false (another process holds the lease): no child, its memory given back; true again: a new
    child, and the index catches up."""

    async def body(parts: Parts) -> None:
        storage, store, sequencer, _ = parts
        sequencing = [True]
        indexer = process_driver(parts, tmp_path, None)
        indexer.may_write = lambda: sequencing[0]
        await log(sequencer, statement(ISSUER_ADD, REGISTRY_KEY, issuer=ISSUER.verifier().vkey, ref="Ministry"))
        task = asyncio.create_task(indexer.run())
        try:
            await covered(storage, store, 30)
            first = indexer.pid
            assert first is not None
            sequencing[0] = False
            deadline = time.monotonic() + 10
            while indexer.pid is not None and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            assert indexer.pid is None and not alive(first)
            await log(sequencer, *(statement(ISSUE, ISSUER, document=doc(i)) for i in range(30)))
            sequencing[0] = True
            await log_root_is_the_logs(storage, await covered(storage, store, 30))
            assert indexer.pid not in (None, first)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    run_engine("sqlite", tmp_path, request, body)


# Each time an index-root entry is recorded, the head then (a trigger in the test's copy of the index file).
ENTRY_HEADS = (
    "CREATE TABLE test_entry_heads (size INTEGER, head INTEGER)",
    "CREATE TRIGGER test_entry_head AFTER UPDATE OF entry ON status_version BEGIN INSERT INTO test_entry_heads "
    "VALUES (NEW.size, (SELECT size FROM status_head WHERE id = 1)); END",
)


def test_each_roots_entry_is_recorded_before_the_next_version_commits(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A version is served once its `index-root` entry is recorded (statusindexer.published_and_served). On SQLite
    the server recorded it through the index file's write lock, which the child took again at once for the next
    version: a version waited a whole update more to be served (1.1-2.0 s at 10^7 and 10,000 entries/s,
    docs/status-proofs.md §11 "Forty-fourth round"). Now the child records it on its writer's thread, before the
    next version's commit. Documents arrive while the index runs, so that the next version is ready at once."""

    async def body(parts: Parts) -> None:
        storage, store, sequencer, _ = parts
        with sqlite3.connect(tmp_path / "log.db.status") as db:
            for sql in ENTRY_HEADS:
                db.execute(sql)
        indexer = process_driver(parts, tmp_path, None)
        await registered_and_issued(sequencer, 50)
        task = asyncio.create_task(indexer.run())
        try:
            for first in range(50, 1250, 50):
                await log(sequencer, *(statement(ISSUE, ISSUER, document=doc(i)) for i in range(first, first + 50)))
                await asyncio.sleep(0.01)
            await log_root_is_the_logs(storage, await covered(storage, store))
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        with sqlite3.connect(tmp_path / "log.db.status") as db:
            recorded = db.execute("SELECT size, head FROM test_entry_heads ORDER BY size").fetchall()
        assert len(recorded) >= 5  # versions made one after another, the next one ready at once
        assert [size for size, head in recorded if head != size] == []  # each before the next version committed

    run_engine("sqlite", tmp_path, request, body)
