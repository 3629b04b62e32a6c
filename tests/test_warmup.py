"""A new serving process warms the reads every proof needs before /healthz calls it ready (logserver/warmup.py,
issue 20): what it reads and keeps on both engines, that it stops at its bound, that proofs served while it runs
are the same, and what /healthz says meanwhile."""

import asyncio
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from logserver import leafproof, warmup
from logserver.app import LogState, build_app
from logserver.postgres import PREWARMED, SCANNED, PostgresStorage
from logserver.sequencer import Sequencer, SequencerConfig
from logserver.sqlite import SQLiteStorage
from logserver.submission import SubmissionRules
from tests.api_helpers import LOG_KEY, ORIGIN, REGISTRY_KEY
from tests.log_harness import running_log
from tests.pg_cluster import PgDatabase
from tests.test_leafproof import Log, check_every_leaf, entry
from tlogcore import merkle


def test_upper_ids_are_every_perfect_node_at_the_kept_level_and_above_top_first() -> None:
    for size in [0, 1, 255, 256, 257, 1000, 5000, 2**12, 70_001]:
        nodes = [(lv, i) for lv in range(20) for i in range(size >> lv) if lv >= 3]
        edge = [(lv, i) for lv, i in merkle.range_nodes(0, size) if lv < 3]  # the right edge's lower nodes first
        nodes = edge + [node for node in nodes if node not in edge]
        ids = leafproof.upper_ids(size, level=3, limit=10**6)
        assert ids[: len(edge)] == [merkle.stored_hash_index(lv, i) for lv, i in edge]
        assert sorted(ids) == sorted(merkle.stored_hash_index(lv, i) for lv, i in nodes), size
        level_of = {merkle.stored_hash_index(lv, i): lv for lv, i in nodes}
        levels = [level_of[i] for i in ids[len(edge) :]]
        assert levels == sorted(levels, reverse=True), size  # the top first: what most proofs share
    assert leafproof.upper_ids(70_001, level=3, limit=100) == leafproof.upper_ids(70_001, level=3, limit=10**6)[:100]
    assert len(leafproof.upper_ids(10**9)) == leafproof.KEPT_LIMIT * 3 // 4  # room left in KnownHashes


async def grown(storage: Any, count: int) -> Log:
    log = Log(storage)
    for first in range(0, count, 1000):
        await log.append([entry(first + i) for i in range(min(1000, count - first))])
    await storage.merge_lookups(count)
    return log


def test_sqlite_warm_up_reads_the_tables_and_keeps_the_upper_hashes_so_a_first_proof_reads_its_block(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        storage = await SQLiteStorage.open(tmp_path / "log.db")
        try:
            log = await grown(storage, 5000)
            storage.known = leafproof.KnownHashes()  # a new process: nothing kept
            report = await storage.warm_reads(30.0)
            assert report.finished and report.tables == warmup.SQLITE_TABLES
            ids = leafproof.upper_ids(5000)
            assert report.kept == len(ids) == len(storage.known.hashes) > 0
            assert [storage.known.hashes[i] for i in ids] == await storage.get_hashes(ids)
            whole_blocks = 5000 >> leafproof.KEPT_LEVEL << leafproof.KEPT_LEVEL
            assert (await storage.leaf_inclusion(bytes(32), None)).index is None  # no leaf: nothing read, nor kept
            for index in range(0, whole_blocks, 97):  # before any proof: the leaf and its block's 8 siblings
                key = int.from_bytes(log.leaves[index][:8], "big", signed=True)
                rows = storage._reader.execute(leafproof.SQLITE, (key, None, "[]", 0)).fetchall()
                assert len(rows) == 1 + 1 + leafproof.KEPT_LEVEL, index
            await check_every_leaf(log)  # and every proof is the plan's
        finally:
            await storage.close()

    asyncio.run(scenario())


def test_sqlite_warm_up_stops_at_its_bound(tmp_path: Path) -> None:
    async def scenario() -> None:
        storage = await SQLiteStorage.open(tmp_path / "log.db")
        try:
            log = await grown(storage, 600)
            report = await storage.warm_reads(0.0)
            assert not report.finished  # past its deadline at once: reported as not finished
            await check_every_leaf(log)
        finally:
            await storage.close()

    asyncio.run(scenario())


def test_the_watch_interrupts_a_running_statement_at_the_deadline_and_at_a_stop() -> None:
    endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"
    for deadline_in, stop_at in [(0.2, None), (60.0, 0.2)]:
        db = sqlite3.connect(":memory:", check_same_thread=False)
        stop, done = threading.Event(), threading.Event()
        watcher = threading.Thread(target=warmup._interrupt_at, args=(db, time.monotonic() + deadline_in, stop, done))
        watcher.start()
        if stop_at is not None:
            threading.Timer(stop_at, stop.set).start()
        started = time.monotonic()
        with pytest.raises(sqlite3.OperationalError, match="interrupt"):
            db.execute(endless).fetchall()
        done.set()
        watcher.join()
        db.close()
        assert time.monotonic() - started < 30  # stopped by the watch, not by the statement's end (it has none)


@pytest.mark.parametrize("superuser", [False, True])
def test_postgresql_warm_up_reads_what_proofs_read_with_or_without_pg_prewarm(
    superuser: bool, request: pytest.FixtureRequest
) -> None:
    """A superuser's server makes pg_prewarm (it ships with PostgreSQL) and reads with it; a role that may not
    (here the database's owner, not a superuser) reads by scans."""
    database: PgDatabase = request.getfixturevalue("pg_database")
    dsn = database.dsn
    if not superuser:
        role = f"owner_{database.name}"
        database.cluster.psql(f'CREATE ROLE "{role}" LOGIN; ALTER DATABASE "{database.name}" OWNER TO "{role}"')
        database.cluster.psql(f'ALTER SCHEMA public OWNER TO "{role}"', database.name)
        dsn = dsn.replace("postgres@", f"{role}@")

    async def scenario() -> None:
        storage = await PostgresStorage.open(dsn, pool_size=2)
        try:
            log = await grown(storage, 1200)
            report = await storage.warm_reads(30.0)
            used = PREWARMED if superuser else SCANNED
            assert report.finished and report.tables == tuple(name for name, _, _ in used)
            ids = leafproof.upper_ids(1200)
            assert report.kept == len(ids) > 0
            assert [storage.known.hashes[i] for i in ids] == await storage.get_hashes(ids)
            stopped = await storage.warm_reads(0.0)
            assert (stopped.finished, stopped.tables) == (False, ())
            async with storage._conn() as conn:  # the pooled connection's settings are back to the defaults
                assert await conn.fetchval("SHOW enable_seqscan") == "on"
                assert await conn.fetchval("SHOW statement_timeout") == "0"
            await check_every_leaf(log)
        finally:
            await storage.close()

    asyncio.run(scenario())


def test_healthz_is_503_while_warming_and_proofs_are_served_the_same_meanwhile(tmp_path: Path) -> None:
    """The real app and storage; the warm-up held at its start until the proofs were asked, so the moment is seen."""

    async def scenario() -> None:
        storage = await SQLiteStorage.open(tmp_path / "log.db")
        try:
            log = await grown(storage, 700)
            registry = REGISTRY_KEY.verifier().vkey
            sequencer = Sequencer(storage, LOG_KEY, SequencerConfig(ORIGIN, frozenset([registry])))
            await sequencer.load()
            state = LogState(storage, sequencer, SubmissionRules(ORIGIN, 300), LOG_KEY.verifier().vkey, [registry])
            transport = httpx.ASGITransport(app=build_app(state))
            async with httpx.AsyncClient(transport=transport, base_url="http://log.test") as raw:
                await answers_while_warming(state, raw, log)
        finally:
            await storage.close()

    asyncio.run(scenario())


async def answers_while_warming(state: LogState, raw: httpx.AsyncClient, log: Log) -> None:
    paths = [f"/api/v1/proof/inclusion?leaf_hash={leaf.hex()}" for leaf in log.leaves[::37]]
    before = [(await raw.get(p)).content for p in paths]
    assert all(b'"proof"' in answer for answer in before)
    sequencing = (await raw.get("/healthz")).json()["sequencing"]
    state.storage.known = leafproof.KnownHashes()  # type: ignore[attr-defined]  # SQLite's: as a new process
    release = asyncio.Event()

    async def held_warm(seconds: float) -> warmup.WarmReport:
        await release.wait()
        return await state.storage.warm_reads(seconds)

    task = state.warmup.start(held_warm, 30.0)
    health = await raw.get("/healthz")
    assert health.status_code == 503
    assert health.json() == {"ok": False, "sequencing": sequencing, "warming": True}
    assert [(await raw.get(p)).content for p in paths] == before  # served while warming: the same bytes
    release.set()
    assert task is not None
    await task
    assert state.warmup.report is not None and state.warmup.report.finished
    health = await raw.get("/healthz")
    assert (health.status_code, health.json()) == (200, {"ok": True, "sequencing": sequencing, "warming": False})
    assert [(await raw.get(p)).content for p in paths] == before


def test_a_warm_up_that_fails_leaves_the_process_serving(tmp_path: Path) -> None:
    async def scenario() -> None:
        state = warmup.Warmup()

        async def broken(seconds: float) -> warmup.WarmReport:
            raise OSError("disk gone")

        task = state.start(broken, 5.0)
        assert state.warming and task is not None
        await task
        assert not state.warming and state.report is None
        assert warmup.Warmup().start(broken, 0.0) is None  # warm_seconds = 0: off

    asyncio.run(scenario())


@pytest.mark.parametrize("warm", ["", "[server]\nwarm_seconds = 0\n"])
def test_a_real_server_reports_its_warm_up_and_is_ready_after_it(warm: str, tmp_path: Path) -> None:
    with running_log(tmp_path, config_text=warm) as server:
        answer = httpx.get(server.url + "/healthz", timeout=5)
        assert (answer.status_code, answer.json()["warming"]) == (200, False)
        deadline = time.monotonic() + 10
        while warm == "" and "warmed the reads" not in server.output() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ("warmed the reads in" in server.output()) == (warm == "")
