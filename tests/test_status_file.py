"""Where the status index lives beside its log, and what happens when the two do not match (logserver/statusstore.py,
statusindexer.reconcile_index; docs/status-proofs.md §9 "Storage").

SQLite keeps the index in a file of its own (`log.db.status`): an update's write transaction in `log.db` held the
sequencer's commits for its whole length (docs/status-proofs.md §11 "Twenty-first round"). The index is derived from
the log, so a lost file is rebuilt, and an index ahead of its log (a file from another time) is started over; in
both cases the rebuilt index states no root for a size below one already in the log (the monitor's rule)."""

import asyncio
import contextlib
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from loadtest.localproc import bytes_written
from logserver import statusstore, statuswal
from logserver.config import ServerConfig
from logserver.opening import DATABASE, STATUS_DATABASE, open_status_store, open_storage
from logserver.sequencer import Sequencer, SequencerConfig
from logserver.statusindexer import StatusIndexer, logged_by, reconcile_index
from logserver.statusstore import PAGE_BYTES, IndexVersion, PostgresStatusStore, SQLiteStatusStore
from tests.api_helpers import ISSUER, LOG_KEY, ORIGIN, REGISTRY_KEY, statement
from tests.test_statusstore import ENGINES, Parts, checkpointed, count_rows, doc, expected_rows, log, run_engine
from tlogcore.indexroot import parse_index_root
from tlogcore.statement import ISSUE, ISSUER_ADD
from tlogcore.statusindex_nodes import PathPlan, read_paths

TABLES = "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'status_%' ORDER BY name"


async def sequencing(data: Path, config: ServerConfig) -> tuple[Any, Any, Sequencer]:
    """The log and its index opened as `tlog-server serve` opens them, the sequencer running."""
    storage = await open_storage(data, config)
    store = await open_status_store(data, config)
    registry = REGISTRY_KEY.verifier().vkey
    settings = SequencerConfig(ORIGIN, frozenset([registry]), flush_interval=0.02, publish_without_witnesses=True)
    sequencer = Sequencer(storage, LOG_KEY, settings)
    await sequencer.load()
    assert await sequencer.take_lease()
    return storage, store, sequencer


def test_an_index_write_never_holds_the_logs_write_lock(tmp_path: Path) -> None:
    """An update of the index holds its file's write lock for its whole transaction (tens of thousands of rows). The
    log's commits do not wait for it: here an index write transaction is held open while the log commits a batch,
    with a busy timeout far shorter than the hold. Before, both lived in `log.db`, and the batch failed."""
    config = ServerConfig(sqlite_busy_timeout_ms=200)

    async def scenario() -> list[int]:
        storage, store, sequencer = await sequencing(tmp_path, config)
        task = asyncio.create_task(sequencer.run())
        holder = store._writer  # the index's own writer, idle between updates
        try:
            holder.execute("BEGIN IMMEDIATE")  # what the indexer's commit holds
            holder.execute("DELETE FROM status_head")
            add = statement(ISSUER_ADD, REGISTRY_KEY, issuer=ISSUER.verifier().vkey, ref="Ministry")
            indexes = await asyncio.wait_for(log(sequencer, add), 30)
            indexes += await asyncio.wait_for(log(sequencer, statement(ISSUE, ISSUER, document=doc(1))), 30)
            return indexes
        finally:
            if holder.in_transaction:
                holder.execute("ROLLBACK")
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await store.close()
            await storage.close()

    assert asyncio.run(scenario()) == [0, 1]
    with sqlite3.connect(tmp_path / DATABASE) as db:
        assert db.execute(TABLES).fetchall() == []  # the log's file holds none of the index's tables


def test_the_index_tables_of_an_earlier_release_leave_the_logs_file(tmp_path: Path) -> None:
    """A data directory from before: the index's tables in `log.db`. At open they are dropped from it (in one
    transaction) and the index starts in its own file, empty: the server rebuilds it from the log."""

    async def scenario() -> tuple[Any, Any]:
        former = await SQLiteStatusStore.open(tmp_path / DATABASE)  # the earlier layout: the log's own file
        await former.close()
        with sqlite3.connect(tmp_path / DATABASE) as db:
            assert [name for (name,) in db.execute(TABLES)] == [
                "status_counts", "status_head", "status_layout", "status_page", "status_version"
            ]  # fmt: skip
        store = await open_status_store(tmp_path, ServerConfig())
        try:
            return await store.head(), await store.log_roots_from()
        finally:
            await store.close()

    assert asyncio.run(scenario()) == (None, 0)
    with sqlite3.connect(tmp_path / DATABASE) as db:
        assert db.execute(TABLES).fetchall() == []
    with sqlite3.connect(tmp_path / STATUS_DATABASE) as db:
        assert len(db.execute(TABLES).fetchall()) == 5


async def log_size(storage: Any) -> int:
    head = await storage.head()
    return int(head.size) if head is not None else 0


async def logged_sizes(storage: Any, start: int) -> list[int]:
    head = await storage.head()
    return [parse_index_root(data).size for data in await storage.get_entries(start, head.size)]


async def index_all(indexer: StatusIndexer) -> None:
    while await indexer.step():
        pass


@pytest.mark.parametrize("engine", ENGINES)
def test_a_lost_index_is_rebuilt_and_states_no_size_below_the_log(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The index's rows are lost (its file deleted, its tables emptied) while the log holds index-root statements.
    At the server's start `reconcile_index` finds the last of them and has the rebuilt index state roots only from
    the size it covers on: every index-root the rebuild logs covers at least as much, and the roots are the log's.
    Before, a new index stated roots from 0 again, and the monitor alerted on sizes going back."""

    async def body(parts: Parts) -> None:
        storage, store, sequencer, indexer = parts
        await log(sequencer, statement(ISSUER_ADD, REGISTRY_KEY, issuer=ISSUER.verifier().vkey, ref="Ministry"))
        indexes = await log(sequencer, *(statement(ISSUE, ISSUER, document=doc(i)) for i in range(6)))
        await index_all(indexer)
        stated = (await store.head()).size
        await store.start_over(0)  # as if the file were lost: no rows, roots from 0 (a new file's layout)
        assert await store.head() is None and await store.log_roots_from() == 0
        more = await log(sequencer, *(statement(ISSUE, ISSUER, document=doc(i)) for i in range(6, 9)))
        size = await log_size(storage)
        assert "none stored" in (await reconcile_index(storage, store) or "")
        assert await store.log_roots_from() == stated
        assert await reconcile_index(storage, store) is None  # done once: nothing more to do
        rebuilder = StatusIndexer(storage, store, REGISTRY_KEY, ORIGIN, logged_by(sequencer), clock=time.time)
        rebuilder.max_entries_per_step = 3  # the rebuild takes several steps, the first ones below `stated`
        await index_all(rebuilder)
        sizes = await logged_sizes(storage, size)
        assert sizes and min(sizes) >= stated, sizes
        assert await log_size(storage) > size + 1  # more than one step was stated: the steps above `stated`
        head = await store.head()
        entries = [(index, ISSUE, doc(n)) for n, index in enumerate(indexes + more)]
        assert head is not None and head.root == expected_rows(entries)

    run_engine(engine, tmp_path, request, body)


@pytest.mark.parametrize("engine", ENGINES)
def test_an_index_ahead_of_its_log_is_started_over(engine: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """An index covering entries its log does not hold (an index file copied from a log that had grown further,
    beside a log restored from before that) would serve proofs of documents this log never logged. At the server's
    start it is emptied and rebuilt from the log, its roots stated from what the log's last index-root covers."""

    async def body(parts: Parts) -> None:
        storage, store, sequencer, indexer = parts
        await log(sequencer, statement(ISSUER_ADD, REGISTRY_KEY, issuer=ISSUER.verifier().vkey, ref="Ministry"))
        await log(sequencer, *(statement(ISSUE, ISSUER, document=doc(i)) for i in range(4)))
        await index_all(indexer)
        size = await log_size(storage)
        assert await reconcile_index(storage, store) is None  # in step with its log: kept as it is
        head = await store.head()
        ahead = type(head)(size + 10, head.root, head.time)  # the same index, claiming entries the log lacks
        await store.commit(head, ahead, {})
        done = await reconcile_index(storage, store)
        assert done is not None and f"covers {size + 10} entries but the log holds {size}" in done
        assert await store.head() is None and await store.newest_logged(10**9) is None
        assert await store.log_roots_from() == head.size  # the log's last index-root: this version's
        await index_all(indexer.__class__(storage, store, REGISTRY_KEY, ORIGIN, logged_by(sequencer)))
        rebuilt = await store.head()
        assert rebuilt is not None and rebuilt.size >= size and rebuilt.entry is not None

    run_engine(engine, tmp_path, request, body)


def test_a_fresh_index_beside_an_empty_log_is_left_alone(tmp_path: Path) -> None:
    async def scenario() -> tuple[str | None, int]:
        storage = await open_storage(tmp_path, ServerConfig())
        store = await open_status_store(tmp_path, ServerConfig())
        try:
            return await reconcile_index(storage, store), await store.log_roots_from()
        finally:
            await store.close()
            await storage.close()

    assert asyncio.run(scenario()) == (None, 0)


def test_postgres_start_over_sets_where_roots_start(request: pytest.FixtureRequest) -> None:
    """PostgreSQL keeps the index in the log's database; `start_over` empties it and sets where roots start;
    `state_roots_from` only sets it."""
    dsn = request.getfixturevalue("pg_database").dsn

    async def scenario() -> list[int]:
        store = await PostgresStatusStore.open(dsn)
        try:
            seen = []
            for size in (7, 3):
                await store.start_over(size)
                seen.append(await store.log_roots_from())
            await store.state_roots_from(9)  # the index kept: only where its roots start moves
            return [*seen, await store.log_roots_from()]
        finally:
            await store.close()

    assert asyncio.run(scenario()) == [7, 3, 9]


@pytest.mark.parametrize("engine", ENGINES)
def test_a_log_never_indexed_gets_roots_from_the_start(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A log that has no index-root yet (the index switched on late) keeps stating roots from 0: its catch-up
    states each step. The log is read back at most `scan` entries: with none found there, roots start where the
    reading stopped (an older index-root covers less than its own position)."""

    async def body(parts: Parts) -> None:
        storage, store, sequencer, _ = parts
        await log(sequencer, statement(ISSUER_ADD, REGISTRY_KEY, issuer=ISSUER.verifier().vkey, ref="Ministry"))
        await log(sequencer, *(statement(ISSUE, ISSUER, document=doc(i)) for i in range(5)))
        assert await reconcile_index(storage, store) is None
        assert await store.log_roots_from() == 0
        done = await reconcile_index(storage, store, scan=2)
        assert done is not None and await store.log_roots_from() == await log_size(storage) - 2

    run_engine(engine, tmp_path, request, body)


def test_a_malformed_index_root_in_the_log_does_not_stop_the_start(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """An `index-root` entry that does not parse (a log that accepted one, or a damaged row: a monitor alerts on
    it) is passed over when the start looks for the last stated size: the one before it counts, and the server
    starts. Before, its parse error ended the start."""

    async def body(parts: Parts) -> None:
        storage, store, sequencer, indexer = parts
        await log(sequencer, statement(ISSUER_ADD, REGISTRY_KEY, issuer=ISSUER.verifier().vkey, ref="Ministry"))
        await log(sequencer, *(statement(ISSUE, ISSUER, document=doc(i)) for i in range(3)))
        await index_all(indexer)
        first = (await store.head()).size
        await log(sequencer, *(statement(ISSUE, ISSUER, document=doc(i)) for i in range(3, 6)))
        await index_all(indexer)
        last = await log_size(storage) - 1  # the second index-root
        assert parse_index_root((await storage.get_entries(last, last + 1))[0]).size > first
        with sqlite3.connect(tmp_path / DATABASE) as db:
            db.execute("UPDATE leaves SET data = CAST(substr(data, 1, 40) AS BLOB) WHERE idx = ?", (last,))
        await store.start_over(0)
        assert await reconcile_index(storage, store) is not None
        assert await store.log_roots_from() == first

    run_engine("sqlite", tmp_path, request, body)


def test_an_older_index_file_states_no_size_below_the_log(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """`log.db.status` restored from an older copy (or its last commits lost in a power cut) beside a log that has
    since logged index roots for larger sizes: the index is behind, not ahead, and goes on from its own head; at the
    start `reconcile_index` has it state roots only from the size the log's last index-root covers. Before, it
    stated each step of its catch-up again, sizes going back, and the monitor alerted."""
    status = tmp_path / STATUS_DATABASE
    kept = tmp_path / "older"

    async def body(parts: Parts) -> None:
        storage, store, sequencer, indexer = parts
        await log(sequencer, statement(ISSUER_ADD, REGISTRY_KEY, issuer=ISSUER.verifier().vkey, ref="Ministry"))
        await log(sequencer, *(statement(ISSUE, ISSUER, document=doc(i)) for i in range(3)))
        await index_all(indexer)
        copy_database(status, kept)  # the older file: a consistent copy of the index as of now
        await log(sequencer, *(statement(ISSUE, ISSUER, document=doc(i)) for i in range(3, 9)))
        await index_all(indexer)
        stated = (await store.head()).size
        copy_database(kept, status)  # restored over the newer one
        assert (await store.head()).size < stated
        size = await log_size(storage)
        done = await reconcile_index(storage, store)
        assert done is not None and await store.log_roots_from() == stated
        catching_up = StatusIndexer(storage, store, REGISTRY_KEY, ORIGIN, logged_by(sequencer), clock=time.time)
        catching_up.max_entries_per_step = 2  # its first steps end below `stated`
        await index_all(catching_up)
        sizes = await logged_sizes(storage, size)
        assert sizes and min(sizes) >= stated, sizes

    run_engine("sqlite", tmp_path, request, body)


def copy_database(source: Path, target: Path) -> None:
    with contextlib.closing(sqlite3.connect(source)) as db, contextlib.closing(sqlite3.connect(target)) as copy:
        db.backup(copy)


def test_recording_where_a_root_was_logged_waits_for_a_long_index_update(tmp_path: Path) -> None:
    """The index file has two writers: the indexer's process (each update one transaction, several seconds at big
    steps on a loaded machine) and the sequencing process, which records where each root's statement landed. That
    record waits for the update instead of failing: a failed one left the version without its entry, and logged its
    statement a second time. Here an update's write lock is held for longer than the busy timeout."""
    hold = 1.0

    async def scenario() -> tuple[float, Any]:
        store = await SQLiteStatusStore.open(tmp_path / STATUS_DATABASE, busy_timeout_ms=200)
        holder = sqlite3.connect(tmp_path / STATUS_DATABASE, isolation_level=None)
        try:
            await store.commit(None, IndexVersion(4, b"\x01" * 32, 0), {})
            holder.execute("BEGIN IMMEDIATE")  # what an update's commit holds
            asyncio.get_running_loop().call_later(hold, holder.rollback)
            started = time.monotonic()
            await store.set_entry(4, 9)
            return time.monotonic() - started, await store.newest_logged(10)
        finally:
            holder.close()
            await store.close()

    waited, logged = asyncio.run(scenario())
    assert waited >= hold * 0.9 and logged is not None and (logged.size, logged.entry) == (4, 9)


def wal_bytes(path: Path) -> int:
    wal = path.with_name(path.name + "-wal")
    return wal.stat().st_size if wal.exists() else 0


def test_the_index_files_wal_holds_one_write_while_lookups_read(tmp_path: Path) -> None:
    """Lookups and shards read the index file all the time, so some reader is always inside its WAL. SQLite's
    automatic checkpoint (PASSIVE) then never starts the WAL over, and every update was appended to it: 1.46 GB
    beside a file of 769 MB at 10^6 documents (docs/status-proofs.md §11 "Twenty-third round"), and growing with
    the run. Here two readers overlap all through eight updates, each rewriting every page; the WAL after each holds
    no more than one update can write (every page of the file once), and the rows all read back."""
    path = tmp_path / STATUS_DATABASE
    stop = threading.Event()

    def read_all_the_time() -> None:
        with contextlib.closing(sqlite3.connect(path)) as db:
            while not stop.is_set():
                db.execute("SELECT count(*), sum(length(data)) FROM status_page").fetchall()  # as lookups: whole

    async def scenario() -> tuple[list[int], list[tuple[int, int]], int]:
        store = await SQLiteStatusStore.open(path)
        readers = [threading.Thread(target=read_all_the_time) for _ in range(2)]
        written, after, old = [], [], None
        try:
            for reader in readers:
                reader.start()
            for update in range(8):
                docs = [doc(i) for i in range(300 * (update + 1))]  # the tree whole again: every page rewritten
                writes = read_paths(PathPlan(docs), {}).apply_entries([(0, ISSUE, d) for d in docs])
                new = IndexVersion(300 * (update + 1), writes.root, 1)
                before = wal_bytes(path)
                await store.commit(old, new, writes.writes)
                written.append(wal_bytes(path) - before)  # a WAL started over in place grows only past its size
                old = new
                await checkpointed(store)
                after.append((wal_bytes(path), path.stat().st_size))
            return written, after, await count_rows(store)
        finally:
            stop.set()
            for reader in readers:
                reader.join()
            await store.close()

    written, after, rows = asyncio.run(scenario())
    assert written[0] > 0, written  # the updates do go through the WAL
    # One update writes each page of the file once at most (and a 24-byte header per page); before: the sum of them
    # all. The first WAL also holds the tables' creation, and a WAL started over in place keeps its size.
    bound = [max(after[0][0], 1.01 * file + PAGE_BYTES) for _, file in after[1:]]
    assert all(wal <= most for (wal, _), most in zip(after[1:], bound, strict=True)), (written, after)
    assert after[-1][0] <= 1.01 * after[-1][1] + PAGE_BYTES, after  # the file outgrew the first WAL: one update
    assert rows > 8 * 100, rows


def file_with_pages(path: Path, page_bytes: int) -> None:
    """An empty SQLite file whose pages are `page_bytes` long (the size is fixed once the header is written)."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute(f"PRAGMA page_size = {page_bytes}")
        db.execute("PRAGMA journal_mode = WAL")


def test_a_new_index_file_takes_large_pages_and_an_existing_one_keeps_its_own(tmp_path: Path) -> None:
    """An update rewrites nearly every page of the index file: in pages of 64 KiB, 16 times fewer pages, WAL frames
    and system calls than in SQLite's default 4 KiB (docs/status-proofs.md §11 "Twenty-fourth round"). A file made
    before keeps its pages (SQLite fixes them with the first table) and still opens and serves."""
    older = tmp_path / "older" / STATUS_DATABASE
    older.parent.mkdir()
    file_with_pages(older, 4096)

    async def scenario(path: Path) -> IndexVersion | None:
        store = await SQLiteStatusStore.open(path)
        try:
            await store.commit(None, IndexVersion(4, b"\x01" * 32, 0), {})
            return await store.head()
        finally:
            await store.close()

    for path, pages in ((tmp_path / STATUS_DATABASE, PAGE_BYTES), (older, 4096)):
        assert asyncio.run(scenario(path)) == IndexVersion(4, b"\x01" * 32, 0)
        with contextlib.closing(sqlite3.connect(path)) as db:
            assert db.execute("PRAGMA page_size").fetchone()[0] == pages


def test_a_reader_held_open_holds_the_index_back_for_a_moment_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Starting the WAL over after a write waits for the readers inside it. One held open (a backup, a forgotten
    shell) made it wait the writer's busy timeout, two minutes, and every update and root record behind it; now it
    waits WAL_WAIT_MS (made short here), leaves the WAL for a later write, and the next write starts it over: the
    write after that lands at its beginning, and the WAL does not grow."""
    monkeypatch.setattr(statuswal, "WAL_WAIT_MS", 200)
    path = tmp_path / STATUS_DATABASE
    first, second, third = (IndexVersion(size, bytes([size]) * 32, 0) for size in (4, 8, 12))

    async def scenario() -> tuple[float, int, int, IndexVersion | None]:
        store = await SQLiteStatusStore.open(path)
        holder = sqlite3.connect(path, isolation_level=None)
        try:
            await store.commit(None, first, {})
            await store.set_entry(4, 9)  # a row in the WAL, not emptied: the reader's snapshot is inside it
            holder.execute("BEGIN")
            holder.execute("SELECT count(*) FROM status_version").fetchall()
            started = time.monotonic()
            await store.commit(first, second, {})
            await asyncio.wait_for(checkpointed(store), 30)
            waited, kept = time.monotonic() - started, wal_bytes(path)
            holder.execute("COMMIT")
            await store.commit(second, third, {})
            await checkpointed(store)
            started_over = wal_bytes(path)
            await store.set_entry(8, 10)  # a write after: at the WAL's beginning, if it was started over
            return waited, kept, (started_over, wal_bytes(path)), await store.head()
        finally:
            holder.close()
            await store.close()

    waited, kept, (started_over, after), head = asyncio.run(scenario())
    assert 0.15 < waited < 10, waited  # it did wait for the reader, and gave up
    assert kept > 0 and after == started_over > 0, (kept, started_over, after)  # a WAL not started over grows
    assert head == third


def test_a_versions_entry_is_recorded_before_the_wal_starts_over_and_the_next_write_after_it(tmp_path: Path) -> None:
    """Lookups serve a version once its `index-root` entry is recorded (`set_entry`). The WAL was started over right
    after each of the indexer's writes, and the record waited behind that (0.25-0.45 s at 10^7, docs/status-proofs.md
    §11 "Forty-fourth round"). Now the record comes first, then the WAL is started over; with no record between
    two writes, the second starts it over first: the WAL still holds one write at most."""
    versions = [IndexVersion(size, bytes([size]) * 32, 0) for size in (4, 8, 12)]

    async def scenario() -> list[str]:
        store = await SQLiteStatusStore.open(tmp_path / STATUS_DATABASE)
        statements: list[str] = []
        try:
            store._writer.set_trace_callback(statements.append)
            await store.commit(None, versions[0], {})
            await store.set_entry(4, 5)
            await store.commit(versions[0], versions[1], {})
            await store.commit(versions[1], versions[2], {})
            await checkpointed(store)
        finally:
            await store.close()
        return [s.split(" (")[0] for s in statements if s.startswith(("BEGIN", "UPDATE status_version", "PRAGMA wal"))]

    steps = asyncio.run(scenario())
    assert steps == [
        "BEGIN IMMEDIATE",  # the first version
        "BEGIN IMMEDIATE",  # its entry recorded (before: after the WAL started over)
        "UPDATE status_version SET entry = 5 WHERE size = 4",
        "PRAGMA wal_checkpoint(RESTART)",
        "BEGIN IMMEDIATE",  # the second version
        "PRAGMA wal_checkpoint(RESTART)",  # no record since: started over before the third
        "BEGIN IMMEDIATE",
        "PRAGMA wal_checkpoint(RESTART)",  # after the last (the test's `checkpointed`, as a record would)
    ], steps


def test_an_update_larger_than_the_cache_writes_each_page_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An update dirties pages all over the index file. When they outgrew the writer's page cache (the readers'
    256 MiB), SQLite spilled them into the WAL in the middle of the transaction, and wrote a page again each time
    the update dirtied it anew: one update of 150,000 documents at 10^6 wrote 1,134 MB for a file of 172 MB
    (docs/status-proofs.md §11 "Twenty-sixth round"). The readers' cache is made 16 pages here, the file about ten
    times that: the writer's own cache holds the update that rewrites every page and prunes the rows it superseded,
    which writes the file once into the WAL and once back, and all reads back."""
    monkeypatch.setattr(statusstore, "CACHE_BYTES", 16 * PAGE_BYTES)
    path = tmp_path / STATUS_DATABASE
    docs = [doc(i) for i in range(30_000)]

    async def scenario() -> tuple[int, int, int]:
        store = await SQLiteStatusStore.open(path)
        try:
            assert store._reader.execute("PRAGMA cache_size").fetchone()[0] == -16 * PAGE_BYTES // 1024  # made small
            writes = read_paths(PathPlan(docs), {}).apply_entries([(0, ISSUE, d) for d in docs])
            first = IndexVersion(30_000, writes.root, 1)
            await store.commit(None, first, writes.writes)
            await checkpointed(store)
            again = read_paths(PathPlan(docs), {}).apply_entries([(0, ISSUE, d) for d in docs])
            pages = sorted({page for page, _, _ in await store._pages.to_write(None, 60_000, again.writes, None)})
            before = bytes_written()
            await store.commit(first, IndexVersion(60_000, again.root, 2), again.writes, prunes=[(60_000, pages)])
            await checkpointed(store)
            written = bytes_written() - before
            return written, path.stat().st_size, await count_rows(store) - len(pages)
        finally:
            await store.close()

    written, file_bytes, rows_left_over = asyncio.run(scenario())
    assert file_bytes > 8 * 16 * PAGE_BYTES, file_bytes  # the update's pages do outgrow the cache
    # The commit writes each page once into the WAL (and a 24-byte header), then the checkpoint copies it once.
    assert written <= 2 * (1.01 * file_bytes + PAGE_BYTES), (written, file_bytes)
    assert rows_left_over == 0  # the new version's rows, and none of the pruned ones


def test_a_serving_process_reads_the_index_through_a_larger_cache_than_the_indexer_s(tmp_path: Path) -> None:
    """Past the reader's 2 GiB memory map a lookup copies a 64 KiB file page per row it reads unless SQLite caches it;
    a serving process's reader caches LOOKUP_CACHE_BYTES (docs/status-proofs.md §11 "Thirty-second round"), the
    indexer's and its shards' CACHE_BYTES (they keep their own pages in memory, and are several processes)."""

    async def reader_cache_kib(indexer: bool) -> int:
        store = await open_status_store(tmp_path, ServerConfig(), indexer=indexer)
        try:
            assert isinstance(store, SQLiteStatusStore)
            return int(store._reader.execute("PRAGMA cache_size").fetchone()[0])
        finally:
            await store.close()

    assert statusstore.LOOKUP_CACHE_BYTES > statusstore.CACHE_BYTES
    assert asyncio.run(reader_cache_kib(indexer=False)) == -statusstore.LOOKUP_CACHE_BYTES // 1024
    assert asyncio.run(reader_cache_kib(indexer=True)) == -statusstore.CACHE_BYTES // 1024
