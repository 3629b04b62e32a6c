"""The status index served from storage (docs/status-proofs.md §9): both engines, versioned rows, the
compare-and-swap of the index head, and the indexer that keeps it up with the log and logs its index-root."""

import asyncio
import gc
import hashlib
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from logserver import statusindexer
from logserver.metrics import Metrics
from logserver.postgres import PostgresStorage
from logserver.readcache import STATUS_TOP_DEPTH, StatusTop
from logserver.sequencer import Sequencer, SequencerConfig
from logserver.sqlite import SQLiteStorage
from logserver.statusindexer import UPPER_DEPTH, StatusIndexer, logged_by, read_plan
from logserver.statuslookup import read_proof
from logserver.statusstore import (
    IndexMovedError,
    IndexVersion,
    PostgresStatusStore,
    SQLiteStatusStore,
)
from logserver.statusstore_schema import FEW_PAGES, IndexLayoutError, sqlite_newest_each, sqlite_newest_rows
from logserver.storage import Storage, StorageError
from tests.api_helpers import ISSUER, LOG_KEY, ORIGIN, REGISTRY_KEY, statement
from tlogcore.checkpoint import parse_checkpoint
from tlogcore.indexroot import parse_index_root
from tlogcore.note import parse_note
from tlogcore.statement import ISSUE, ISSUER_ADD, REVOKE
from tlogcore.statusindex import KEY_BITS, key_int, verify_status
from tlogcore.statusindex_nodes import NodeId, PathPlan, read_paths
from tlogcore.statusindex_pages import ROOT_PAGE, page_id_bytes, pages_of
from tlogcore.statuspageproof import PREFIX_DEPTH
from tlogcore.statuspageset import decoded

Parts = tuple[Storage, Any, Sequencer, StatusIndexer]


def page_ids_of(nodes: Iterable[NodeId]) -> list[bytes]:
    """The stored ids of the pages holding these nodes: what a prune names (StatusStore.prune)."""
    return [page_id_bytes(page) for page in pages_of(nodes)]


def doc(i: int) -> bytes:
    return hashlib.sha256(b"document %d" % i).digest()


async def open_parts(engine: str, tmp_path: Path, dsn: str | None) -> Parts:
    storage: Storage
    if engine == "sqlite":
        storage = await SQLiteStorage.open(tmp_path / "log.db", 5000)
        store: Any = await SQLiteStatusStore.open(tmp_path / "log.db.status", log_path=tmp_path / "log.db")
    else:
        assert dsn is not None
        storage = await PostgresStorage.open(dsn, pool_size=3)
        store = await PostgresStatusStore.open(dsn, pool_size=2)
    registry = REGISTRY_KEY.verifier().vkey
    config = SequencerConfig(ORIGIN, frozenset([registry]), flush_interval=0.02, publish_without_witnesses=True)
    sequencer = Sequencer(storage, LOG_KEY, config)
    await sequencer.load()
    assert await sequencer.take_lease()
    indexer = StatusIndexer(storage, store, REGISTRY_KEY, ORIGIN, logged_by(sequencer), clock=lambda: 1_790_000_000)
    indexer.prune_grace = 0.0  # the tests' two notes in a row stand for the grace (test_pruning_waits_for_the_grace)
    return storage, store, sequencer, indexer


def run_engine(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest, body: Callable[[Parts], Awaitable[None]]
) -> None:
    dsn = request.getfixturevalue("pg_database").dsn if engine == "postgresql" else None

    async def scenario() -> None:
        parts = await open_parts(engine, tmp_path, dsn)
        task = asyncio.create_task(parts[2].run())
        try:
            await body(parts)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await parts[1].close()
            await parts[0].close()

    asyncio.run(scenario())


async def log(sequencer: Sequencer, *datas: bytes) -> list[int]:
    from logserver.submission import SubmissionRules, check_submission
    from tlogcore.statement import parse_statement

    rules = SubmissionRules(ORIGIN, 300)
    subs = [check_submission(d, parse_statement(d), rules, sequencer.registry, time.time()) for d in datas]
    return [s.index for s in await sequencer.submit(subs)]


def expected_rows(entries: list[tuple[int, str, bytes]]) -> bytes:
    """The root from the same entries, computed in memory (the rows never touch storage)."""
    plan = read_paths(PathPlan([d for _, _, d in entries]), {})
    return plan.apply_entries(entries).root


ENGINES = ["sqlite", "postgresql"]


@pytest.mark.parametrize("engine", ENGINES)
def test_indexer_follows_the_log_and_logs_its_signed_root(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    async def body(parts: Parts) -> None:
        storage, store, sequencer, indexer = parts
        add = statement(ISSUER_ADD, REGISTRY_KEY, issuer=ISSUER.verifier().vkey, ref="Ministry")
        await log(sequencer, add)
        first = await log(sequencer, *(statement(ISSUE, ISSUER, document=doc(i)) for i in range(5)))
        assert await indexer.step()
        head = await store.head()
        assert head is not None and head.size == 6 and head.entry == 6
        logged = parse_index_root((await storage.get_entries(6, 7))[0])
        assert (logged.size, logged.root, logged.origin) == (6, head.root, ORIGIN)
        assert logged.signer == REGISTRY_KEY.verifier().vkey
        assert head.root == expected_rows([(i, ISSUE, doc(i - first[0])) for i in first])
        assert not await indexer.step()  # only its own index-root since: no new version
        revoked = await log(sequencer, statement(REVOKE, ISSUER, document=doc(2), reason="error"))
        assert await indexer.step()
        newer = await store.head()
        assert newer is not None and newer.size == revoked[0] + 1
        # The old version is still served whole, beside the new one (a proof for the cosigned root).
        for version, root in ((6, head.root), (newer.size, newer.root)):
            plan = await read_plan(store, PathPlan([doc(2), doc(99)], version), version)
            record, proof = plan.lookup(doc(2))
            verify_status(doc(2), record, proof.to_bytes(), root)
            assert record is not None and record.revoked == (() if version == 6 else (revoked[0],))
            absent, absence = plan.lookup(doc(99))
            assert absent is None
            verify_status(doc(99), None, absence.to_bytes(), root)

    run_engine(engine, tmp_path, request, body)


@pytest.mark.parametrize("engine", ENGINES)
def test_the_index_head_moves_only_by_compare_and_swap(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    async def body(parts: Parts) -> None:
        store = parts[1]
        first = IndexVersion(3, b"\x01" * 32, 1)
        await store.commit(None, first, {})
        with pytest.raises(IndexMovedError):
            await store.commit(None, IndexVersion(4, b"\x02" * 32, 1), {})
        with pytest.raises(IndexMovedError):
            await store.commit(IndexVersion(2, b"\x01" * 32, 1), IndexVersion(5, b"\x03" * 32, 1), {})
        assert await store.head() == first

    run_engine(engine, tmp_path, request, body)


async def index_batches_of_ten(sequencer: Sequencer, indexer: StatusIndexer, batches: int) -> None:
    """The issuer registered, then `batches` batches of 10 issued documents (doc(100 * batch + i)), each indexed."""
    await log(sequencer, statement(ISSUER_ADD, REGISTRY_KEY, issuer=ISSUER.verifier().vkey, ref="Ministry"))
    for batch in range(batches):
        await log(sequencer, *(statement(ISSUE, ISSUER, document=doc(100 * batch + i)) for i in range(10)))
        assert await indexer.step()


@pytest.mark.parametrize("engine", ENGINES)
def test_superseded_rows_are_pruned_once_no_lookup_reads_them(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    async def body(parts: Parts) -> None:
        _, store, sequencer, indexer = parts
        await index_batches_of_ten(sequencer, indexer, 4)
        head = await store.head()
        before = await count_rows(store)
        await indexer.measure_lag()  # notes the version served now ...
        await indexer.measure_lag()  # ... and, a cycle later, may prune below it
        assert await count_rows(store) == before  # nothing is deleted until an update, or the end of the cycle
        await indexer.prune()  # the end of a cycle that committed no update
        after = await count_rows(store)
        assert after < before
        # What remains is exactly one row per page holding a non-empty subtree, and every proof at the served
        # version verifies.
        rows = read_paths(PathPlan([doc(100 * b + i) for b in range(4) for i in range(10)]), {})
        everything = rows.apply_entries([(1 + i, ISSUE, doc(100 * b + i)) for b in range(4) for i in range(10)])
        assert after == len(pages_of(everything.writes)) < len(everything.writes)
        await proofs_verify_at(store, head, [doc(0), doc(301), doc(999)])

    run_engine(engine, tmp_path, request, body)


def test_pruning_waits_for_the_grace_after_the_served_version_is_noted() -> None:
    """Rows superseded at a served version go only once `prune_grace` seconds have passed since it was noted, so a
    lookup that began before the note has finished; a note is needed after that time, as each step makes one."""
    now = [100.0]
    updater = StatusIndexer(None, None, REGISTRY_KEY, ORIGIN, logged_by(None), monotonic=lambda: now[0])  # type: ignore[arg-type]
    assert updater.prune_grace == statusindexer.PRUNE_GRACE == 2.0
    for at, served in ((100.0, 10), (101.0, 20), (101.9, 25)):
        now[0] = at
        updater.note_served(served)
        assert updater._prunable == 0  # no note is 2 s old yet
    now[0] = 102.5
    updater.note_served(30)
    assert updater._prunable == 10  # noted at 100.0; the one at 101.0 is 1.5 s old
    now[0] = 103.95
    updater.note_served(40)
    assert updater._prunable == 25  # the newest note at least 2 s old (101.9)
    now[0] = 200.0
    updater.note_served(50)
    assert updater._prunable == 40  # not 50: noted just now


async def proofs_verify_at(store: Any, version: IndexVersion, keys: list[bytes]) -> None:
    """Every key's record and proof at `version`, read from the store, verify against its root."""
    plan = await read_plan(store, PathPlan(keys, version.size), version.size)
    for key in keys:
        record, proof = plan.lookup(key)
        verify_status(key, record, proof.to_bytes(), version.root)


async def steps_of_ten(sequencer: Sequencer, indexer: StatusIndexer, first: int, batches: int) -> None:
    """`batches` batches of 10 issued documents from batch `first` on, each indexed, the served version noted after
    each step (as the server's cycle does) and 1.5 s passing between them."""
    now = [0.0]
    indexer.monotonic, indexer.prune_grace = (lambda: now[0]), statusindexer.PRUNE_GRACE
    for batch in range(first, first + batches):
        await log(sequencer, *(statement(ISSUE, ISSUER, document=doc(100 * batch + i)) for i in range(10)))
        assert await indexer.step()
        await indexer.measure_lag()
        now[0] += 1.5


async def root_page_versions(store: Any) -> list[int]:
    return sorted(version for page, version in await page_versions(store) if page == page_id_bytes(ROOT_PAGE))


@pytest.mark.parametrize("engine", ENGINES)
def test_pruning_keeps_pace_while_the_index_never_catches_up(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A log growing faster than the index keeps the indexer in one cycle: each step still notes the served version
    (as the server's cycle does), and each commit prunes at least the oldest due version even when its own pages
    exceed the budget (a full step at 10^6 rewrites more than PAGES_PER_WRITE). Before, the served version was
    noted once per cycle and such a commit pruned nothing: every step left the root's page one more row, and the
    table only grew until the load stopped."""

    async def body(parts: Parts) -> None:
        _, store, sequencer, indexer = parts
        indexer.pages_per_write = 0  # every step's own pages exceed the budget, as at 10^6
        await log(sequencer, statement(ISSUER_ADD, REGISTRY_KEY, issuer=ISSUER.verifier().vkey, ref="Ministry"))
        await steps_of_ten(sequencer, indexer, 0, 10)  # one cycle: StatusIndexer.run's inner loop, no prune() call
        root_rows = await root_page_versions(store)
        assert len(root_rows) <= 4, root_rows  # the served version and the few noted within the grace
        head = await store.head()
        await proofs_verify_at(store, head, [doc(0), doc(905), doc(7)])

    run_engine(engine, tmp_path, request, body)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_catch_up_below_the_first_stated_root_prunes_as_it_goes(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """An index rebuilt from the log states roots only from the size the log's last `index-root` covers
    (reconcile_index): the versions below it are never read by a lookup, and no version is served until the index
    gets there. Their superseded rows go as the index catches up. Before, pruning waited for a served version:
    at 10^7 the catch-up left SQLite's table 3.2 rows per page, which the first minutes of load then compacted
    (docs/status-proofs.md §11 "Thirty-third round")."""

    async def body(parts: Parts) -> None:
        _, store, sequencer, indexer = parts
        await store.state_roots_from(10**6)  # as reconcile_index does for a log whose last root covers 10^6
        indexer.pages_per_write = 0  # a version pruned per write, as at 10^7
        await log(sequencer, statement(ISSUER_ADD, REGISTRY_KEY, issuer=ISSUER.verifier().vkey, ref="Ministry"))
        await steps_of_ten(sequencer, indexer, 0, 8)
        assert await store.newest_logged(10**6) is None  # nothing stated, nothing served
        head = await store.head()
        assert (await root_page_versions(store))[:-1] == [head.size - 10]  # one version pruned per write
        await proofs_verify_at(store, head, [doc(0), doc(705), doc(9)])

    run_engine(engine, tmp_path, request, body)


@pytest.mark.parametrize("engine", ENGINES)
def test_rows_a_stated_version_below_the_roots_start_reads_stay_until_it_is_no_longer_served(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The catch-up's pruning (above) only where no version below the roots' start was stated: an index whose
    roots were stated and is told later to state them only from further on (an index behind its log's last root,
    reconcile_index) keeps what its stated versions read until the served version moves past them."""

    async def body(parts: Parts) -> None:
        _, store, sequencer, indexer = parts
        await index_batches_of_ten(sequencer, indexer, 2)  # stated and logged, from 0 on
        stated = await store.newest_logged(10**6)
        assert stated is not None
        await store.state_roots_from(10**6)
        indexer.pages_per_write = 0
        await steps_of_ten(sequencer, indexer, 2, 6)
        # The served version stays the last stated one: rows at it are kept, and none stated after is pruned.
        assert stated.size in await root_page_versions(store)
        await proofs_verify_at(store, stated, [doc(105)])

    run_engine(engine, tmp_path, request, body)


@pytest.mark.parametrize("engine", ENGINES)
def test_the_next_update_prunes_superseded_rows_in_its_own_transaction(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The deletes share the commit's transaction (one sync, and the B-tree pages the commit dirties anyway):
    after it only the pages the update itself rewrote keep an older row, and nothing is left to prune apart."""

    async def body(parts: Parts) -> None:
        _, store, sequencer, indexer = parts
        await index_batches_of_ten(sequencer, indexer, 3)
        await indexer.measure_lag()
        await indexer.measure_lag()  # every version so far is now prunable
        calls: list[tuple[Any, ...]] = []
        real_prune = store.prune

        async def prune(*args: Any) -> None:
            calls.append(args)
            await real_prune(*args)

        store.prune = prune
        await log(sequencer, *(statement(ISSUE, ISSUER, document=doc(300 + i)) for i in range(10)))
        assert await indexer.step()
        head = await store.head()
        docs = [doc(100 * b + i) for b in range(4) for i in range(10)]
        everything = read_paths(PathPlan(docs), {}).apply_entries([(1 + i, ISSUE, d) for i, d in enumerate(docs)])
        # One row per page of the tree, plus one older row of a page the last update rewrote (still served).
        versions: dict[bytes, list[int]] = {}
        for page, version in await page_versions(store):
            versions.setdefault(page, []).append(version)
        assert len(versions) == len(pages_of(everything.writes))
        kept = [sorted(found) for found in versions.values() if len(found) > 1]
        assert kept and all(len(found) == 2 and found[1] == head.size for found in kept), kept
        await indexer.prune()
        assert calls == []  # the update's commit deleted them: no prune of its own
        await proofs_verify_at(store, head, [doc(0), doc(305)])

    run_engine(engine, tmp_path, request, body)


async def page_versions(store: Any) -> list[tuple[bytes, int]]:
    sql = "SELECT page, version FROM status_page"
    if isinstance(store, SQLiteStatusStore):
        return [(bytes(page), int(version)) for page, version in store._reader.execute(sql).fetchall()]
    async with store._pool.acquire() as conn:
        return [(bytes(page), int(version)) for page, version in await conn.fetch(sql)]


async def checkpointed(store: SQLiteStatusStore) -> None:
    """Once the writer's thread has done what was handed to it, and the WAL started over after the last write, as
    the small write after it does (the version's `set_entry`, statuswal.IndexWal)."""
    await asyncio.get_running_loop().run_in_executor(store._write_thread, store._wal.restart_if_due)


async def count_rows(store: Any) -> int:
    if isinstance(store, SQLiteStatusStore):
        return int(store._reader.execute("SELECT count(*) FROM status_page").fetchone()[0])
    async with store._pool.acquire() as conn:
        return int(await conn.fetchval("SELECT count(*) FROM status_page"))


def test_pruning_an_update_is_one_sqlite_transaction(tmp_path: Path) -> None:
    """One fsync for all the superseded rows of an update: in autocommit each DELETE was its own transaction, and
    with synchronous = FULL its own fsync (an update of 10^4 documents rewrites about 10^5 rows: minutes). The
    superseded rows go (a table this small is compacted whole), the rows still read stay and still prove."""

    async def scenario() -> None:
        store = await SQLiteStatusStore.open(tmp_path / "index.db")
        try:
            docs = [doc(i) for i in range(100)]
            first = read_paths(PathPlan(docs[:50]), {}).apply_entries([(i, ISSUE, d) for i, d in enumerate(docs[:50])])
            v50 = IndexVersion(50, first.root, 1)
            await store.commit(None, v50, first.writes)
            plan = await read_plan(store, PathPlan(docs[50:], 50), 50)
            second = plan.apply_entries([(50 + i, ISSUE, d) for i, d in enumerate(docs[50:])])
            await store.commit(v50, IndexVersion(100, second.root, 2), second.writes)
            rows_before = await count_rows(store)
            statements: list[str] = []
            store._writer.set_trace_callback(statements.append)
            await store.prune(100, page_ids_of(second.writes))
            await checkpointed(store)
            statements = [s for s in statements if not s.startswith("PRAGMA")]  # the WAL emptied after the commit
            assert statements[0].startswith("BEGIN") and statements[-1] == "COMMIT", statements[:2]
            assert sum(s.startswith("BEGIN") for s in statements) == 1
            pages = {page for page, _ in await page_versions(store)}
            assert rows_before > await count_rows(store) == len(pages)  # one row per page: the newest
            plan = await read_plan(store, PathPlan(docs, 100), 100)
            for key in docs:
                record, proof = plan.lookup(key)
                verify_status(key, record, proof.to_bytes(), second.root)
        finally:
            await store.close()

    asyncio.run(scenario())


def deep_doc(i: int) -> bytes:
    """Documents sharing their first 24 bits: their paths run past the depths the indexer keeps in memory."""
    return bytes(3) + hashlib.sha256(b"deep %d" % i).digest()[3:]


@pytest.mark.parametrize("engine", ENGINES)
def test_the_indexers_kept_top_levels_equal_the_stored_rows(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """UpperLevels (statusindexer.py) holds the pages of depth <= UPPER_DEPTH as of the head, updated from its own
    commits; a commit that raised (here: after it landed) makes it read them again; roots match the in-memory index."""

    async def body(parts: Parts) -> None:
        _, store, sequencer, indexer = parts
        await log(sequencer, statement(ISSUER_ADD, REGISTRY_KEY, issuer=ISSUER.verifier().vkey, ref="Ministry"))
        entries: list[tuple[int, str, bytes]] = []
        first = 0
        real_commit, calls = store.commit, [0]

        async def commit_then_fail(*args: Any) -> None:
            await real_commit(*args)
            calls[0] += 1
            if calls[0] == 3:
                raise StorageError("the connection broke after COMMIT")

        store.commit = commit_then_fail
        indexer.keep_upper_from = 1  # from 1,024 documents in the server: these batches are small
        for batch in range(5):
            docs = [deep_doc(40 * batch + i) for i in range(40)] + [doc(40 * batch + i) for i in range(40)]
            kind = REVOKE if batch == 4 else ISSUE
            if batch == 4:
                docs = [deep_doc(i) for i in range(0, 80, 3)]  # documents indexed before: their records grow
            extra = {"reason": "error"} if kind == REVOKE else {}
            indexes = await log(sequencer, *(statement(kind, ISSUER, document=d, **extra) for d in docs))
            entries += [(i, kind, d) for i, d in zip(indexes, docs, strict=True)]
            try:
                assert await indexer.step(), batch
            except StorageError:
                assert batch == 2  # the third commit landed, then raised
            head = await store.head()
            assert head is not None and head.root == expected_rows(entries)
            first = first or head.size
            kept = indexer._upper
            assert kept is not None
            if batch == 2:
                assert kept._version is None  # forgotten: read again on the next step
            else:
                assert kept._version == head.size
                stored = decoded(await store.read_upper_rows(UPPER_DEPTH, head.size))
                held = decoded(list(kept._unparsed.items())) | kept._pages  # a page parsed is the newer
                assert held == stored  # the pages its commit wrote whole are the stored ones
                deeper = (await read_plan(store, PathPlan(docs), head.size)).nodes
                assert any(depth > UPPER_DEPTH for depth, _ in deeper)
        older = decoded(await store.read_upper_rows(UPPER_DEPTH, first))  # an older version's, beside newer rows
        assert indexer._upper is not None and older and older != indexer._upper._pages

    run_engine(engine, tmp_path, request, body)


@pytest.mark.parametrize("engine", ENGINES)
def test_lookups_at_one_version_read_its_top_pages_from_storage_once(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """StatusTop (readcache.py) keeps the pages starting at depth <= STATUS_TOP_DEPTH that the lookups at the newest
    version read: a second lookup there reads only the pages below them, with the same proof as a lookup that holds
    nothing; a newer version starts again, and an older version's pages never replace the newer's. The paths' tops
    kept with them (`prefixes_for`) go with their version likewise."""

    async def body(parts: Parts) -> None:
        _, store, sequencer, indexer = parts
        await log(sequencer, statement(ISSUER_ADD, REGISTRY_KEY, issuer=ISSUER.verifier().vkey, ref="Ministry"))
        await log(sequencer, *(statement(ISSUE, ISSUER, document=d) for d in [*map(deep_doc, range(40)), doc(1)]))
        assert await indexer.step()
        first = await store.head()
        read: list[NodeId] = []
        real_read = store.read_pages

        async def counted(ids: list[NodeId], version: int, pages: Any = None) -> Any:
            read.extend(set(ids) - (pages.pages.keys() if pages is not None else set()))
            return await real_read(ids, version, pages)

        store.read_pages = counted  # the pages the server's lookups read (read_proof); read_plan reads by node ids
        top = StatusTop()

        async def lookup(key: bytes, at: IndexVersion) -> bytes:
            version = at.size
            alone = (await read_plan(store, PathPlan([key], version), version)).lookup(key)
            read.clear()
            pages = top.pages_for(key, version)
            record, proof = await read_proof(store, key, version, pages, at.root, top.prefixes_for(version))
            assert (record, proof.to_bytes()) == (alone[0], alone[1].to_bytes())
            top.keep(pages)
            return proof.to_bytes()

        keys = [deep_doc(3), deep_doc(77), doc(1), doc(2)]  # logged deep, never logged deep, logged, never logged
        assert first is not None
        for key in keys:
            await lookup(key, first)
        for key in keys:
            await lookup(key, first)
            assert all(depth > STATUS_TOP_DEPTH for depth, _ in read), read  # the top came from memory
            assert bool(read) == (key in keys[:2])  # the deep paths go on below the top
        deep_prefix = key_int(deep_doc(3)) >> (KEY_BITS - PREFIX_DEPTH)
        assert deep_prefix in (top.prefixes_for(first.size) or {})  # its path's top, kept from a checked walk
        await log(sequencer, statement(REVOKE, ISSUER, document=deep_doc(3), reason="error"))
        assert await indexer.step()
        second = await store.head()
        assert second is not None and second.size > first.size
        assert not top.pages_for(deep_doc(3), second.size).pages  # nothing held of the newer version yet
        assert top.prefixes_for(second.size) is None
        await lookup(deep_doc(3), second)
        assert (0, 0) in read  # its root page read from storage
        assert top.prefixes_for(first.size) is None and top.prefixes_for(second.size) == {}  # started again
        await lookup(deep_doc(3), second)
        assert list(top.prefixes_for(second.size) or {}) == [deep_prefix]
        older = top.pages_for(doc(2), first.size)
        await read_proof(store, doc(2), first.size, older, first.root)
        top.keep(older)  # a slow lookup at the older version: the newer version's pages stay
        assert top.pages_for(doc(2), second.size).pages and not top.pages_for(doc(2), first.size).pages

    run_engine(engine, tmp_path, request, body)


def test_a_few_pages_read_as_many_are_at_every_version(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """SQLite reads a lookup's few pages with one seek each (sqlite_newest_each) and an update's many with one
    grouped pass (sqlite_newest_rows): at every version stored, both find the same row of each page, superseded
    rows and pages with no row at that version included."""

    async def body(parts: Parts) -> None:
        _, store, sequencer, indexer = parts
        await log(sequencer, statement(ISSUER_ADD, REGISTRY_KEY, issuer=ISSUER.verifier().vkey, ref="Ministry"))
        for batch in range(4):
            await log(sequencer, *(statement(ISSUE, ISSUER, document=deep_doc(50 * batch + i)) for i in range(9)))
            assert await indexer.step()
        rows = store._read("SELECT page, count(*) FROM status_page GROUP BY page", ())
        assert max(count for _, count in rows) > 1  # superseded rows not pruned yet
        pages = sorted(bytes(page) for page, _ in rows) + [page_id_bytes((40, 12345))]  # and a page never written
        versions = [size for (size,) in store._read("SELECT size FROM status_version", ())]
        for version in [0, *versions]:
            for start in range(0, len(pages), FEW_PAGES):
                chunk = pages[start : start + FEW_PAGES]
                few = store._read(sqlite_newest_each(len(chunk)), [x for page in chunk for x in (page, version)])
                many = store._read(sqlite_newest_rows(f"page IN ({','.join('?' * len(chunk))})"), [*chunk, version])
                assert sorted(map(tuple, few)) == sorted(map(tuple, many))

    run_engine("sqlite", tmp_path, request, body)


async def execute(store: Any, sql: str) -> None:
    if isinstance(store, SQLiteStatusStore):
        # On the writer's own thread, after what it still runs (the WAL's restart it is handed after each write):
        # run from here, on the same connection, a DROP TABLE raced it and failed "database table is locked" under
        # load, about one run in ten with the cores taken by other processes.
        await asyncio.get_running_loop().run_in_executor(store._write_thread, store._writer.executescript, sql)
    else:
        async with store._pool.acquire() as conn:
            await conn.execute(sql)


@pytest.mark.parametrize("engine", ENGINES)
def test_an_index_of_the_former_layout_is_rebuilt_from_the_log(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An index stored one row per node (status_node, before pages) is never read as pages: at open its tables are
    emptied, the indexer rebuilds it from the log, and logs no index root for a size below one already logged (the
    monitor alerts on a size that goes back); the rebuilt index gives the same roots and proofs."""
    monkeypatch.setattr(statusindexer, "MAX_ENTRIES_PER_STEP", 4)  # the rebuild takes several steps

    async def body(parts: Parts) -> None:
        storage, store, sequencer, indexer = parts
        await log(sequencer, statement(ISSUER_ADD, REGISTRY_KEY, issuer=ISSUER.verifier().vkey, ref="Ministry"))
        indexes = await log(sequencer, *(statement(ISSUE, ISSUER, document=doc(i)) for i in range(12)))
        while await indexer.step():
            pass
        logged = await store.head()
        assert logged is not None and logged.entry is not None and logged.size > 8
        await execute(store, "ALTER TABLE status_page RENAME TO status_node; DROP TABLE status_layout")
        reopened: Any = await (
            SQLiteStatusStore.open(tmp_path / "log.db.status", log_path=tmp_path / "log.db")
            if engine == "sqlite"
            else PostgresStatusStore.open(request.getfixturevalue("pg_database").dsn)
        )
        try:
            assert await reopened.head() is None and await reopened.newest_logged(10**9) is None
            assert await reopened.log_roots_from() == logged.size
            before = (await storage.head()).size  # type: ignore[union-attr]
            rebuilder = StatusIndexer(storage, reopened, REGISTRY_KEY, ORIGIN, logged_by(sequencer), clock=time.time)
            while await rebuilder.step():
                pass
            after = await storage.get_entries(before, (await storage.head()).size)  # type: ignore[union-attr]
            sizes = [parse_index_root(data).size for data in after]
            assert sizes and min(sizes) >= logged.size, sizes  # none below what was already stated
            head = await reopened.head()
            assert head is not None and head.size >= logged.size and head.entry is not None
            entries = [(i, ISSUE, doc(i - indexes[0])) for i in indexes]
            assert head.root == expected_rows(entries)
            plan = await read_plan(reopened, PathPlan([doc(3), doc(99)], head.size), head.size)
            for key in (doc(3), doc(99)):
                record, proof = plan.lookup(key)
                verify_status(key, record, proof.to_bytes(), head.root)
        finally:
            await reopened.close()

    run_engine(engine, tmp_path, request, body)


def test_a_layout_this_version_does_not_read_is_refused(tmp_path: Path) -> None:
    """A store whose recorded layout is not 4 levels per row (a later release's) is refused, never misread."""

    async def scenario() -> None:
        store = await SQLiteStatusStore.open(tmp_path / "index.db")
        try:
            assert await store.log_roots_from() == 0
            await execute(store, "UPDATE status_layout SET stride = 8")
            with pytest.raises(IndexLayoutError, match="8 levels per row, not 4"):
                await store.log_roots_from()
        finally:
            await store.close()

    asyncio.run(scenario())


def test_an_update_runs_with_the_cyclic_collector_paused(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """gcpause.py: the read, apply and commit of one update run with the collector paused (a fifth of an update's
    CPU at 10^6 otherwise), and it is enabled again after the step, also when the commit raised."""

    async def body(parts: Parts) -> None:
        _, store, sequencer, indexer = parts
        await log(sequencer, statement(ISSUER_ADD, REGISTRY_KEY, issuer=ISSUER.verifier().vkey, ref="Ministry"))
        real_commit, seen = store.commit, []

        async def commit_then_maybe_fail(*args: Any) -> None:
            seen.append(gc.isenabled())
            await real_commit(*args)
            if len(seen) == 2:
                raise StorageError("the connection broke after COMMIT")

        store.commit = commit_then_maybe_fail
        gc.enable()
        for batch in range(2):
            await log(sequencer, *(statement(ISSUE, ISSUER, document=doc(10 * batch + i)) for i in range(10)))
            try:
                assert await indexer.step()
            except StorageError:
                assert batch == 1
            assert gc.isenabled()
        assert seen == [False, False]

    run_engine("sqlite", tmp_path, request, body)


async def true_lag(storage: Storage, store: Any) -> int:
    """§9's lag read straight from storage: published entries that no logged index root inside them covers."""
    published = await storage.latest_published()
    size = parse_checkpoint(parse_note(published).text).size if published else 0
    logged = await store.newest_logged(size)
    return size - (logged.size if logged else 0)


@pytest.mark.parametrize("engine", ENGINES)
def test_the_lag_gauge_moves_while_the_indexer_catches_up(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An indexer behind the log stays in one cycle's catch-up loop for as long as the log outruns it: the gauge
    must say the lag at every step, not the lag of the cycle's start (it once stood still, under-reporting)."""
    monkeypatch.setattr(statusindexer, "MAX_ENTRIES_PER_STEP", 10)

    async def body(parts: Parts) -> None:
        storage, store, sequencer, indexer = parts
        indexer.metrics, indexer.interval = Metrics(), 0.01
        await log(sequencer, statement(ISSUER_ADD, REGISTRY_KEY, issuer=ISSUER.verifier().vkey, ref="Ministry"))
        await log(sequencer, *(statement(ISSUE, ISSUER, document=doc(i)) for i in range(60)))
        seen: list[tuple[int | None, int]] = []
        real_step = indexer.step

        async def step() -> bool:
            seen.append((indexer.metrics.status_index_lag if indexer.metrics else None, await true_lag(storage, store)))
            return await real_step()

        indexer.step = step  # type: ignore[method-assign]
        task = asyncio.create_task(indexer.run())
        try:
            for _ in range(500):
                if len(seen) >= 7 and seen[-1][1] <= 1:
                    break
                await asyncio.sleep(0.02)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        # It started 61 behind and caught up: to 1, its own newest index-root statement (which no root covers).
        assert seen[0][1] == 61 and seen[-1][1] == 1, seen
        assert len({lag for _, lag in seen}) >= 6, seen  # in steps of 10 (index roots aside)
        assert all(gauge == lag for gauge, lag in seen), seen

    run_engine(engine, tmp_path, request, body)
