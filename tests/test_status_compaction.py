"""SQLite's status index rows in the order written, and their compaction (logserver/statuscompaction.py): every
version a read may still ask for stays whole and proves; the table stays bounded; an update writes about its own
rows, not the file; a file of the layout before is converted in place, its rows kept."""

import asyncio
import contextlib
import hashlib
import random
import sqlite3
from pathlib import Path

import pytest

from loadtest.localproc import bytes_written
from logserver import statuscompaction
from logserver.statuscompaction import SPACE, Compaction
from logserver.statusindexer import read_plan
from logserver.statusstore import PAGE_BYTES, IndexVersion, SQLiteStatusStore
from logserver.statusstore_schema import SQLITE_SCHEMA, sqlite_newest_rows
from tests.test_statusstore import checkpointed, count_rows, page_ids_of, page_versions
from tlogcore.statement import ISSUE, REVOKE
from tlogcore.statusindex import verify_status
from tlogcore.statusindex_nodes import PathPlan, read_paths

GRACE = 2  # versions a read may still be behind the head (the server's is a time: statusindexer.PRUNE_GRACE)


def doc(i: int) -> bytes:
    return hashlib.sha256(b"compacted %d" % i).digest()


async def proves_at(store: SQLiteStatusStore, version: IndexVersion, keys: list[bytes]) -> None:
    plan = await read_plan(store, PathPlan(keys, version.size), version.size)
    assert plan.root_hash() == version.root, version.size
    for key in keys:
        record, proof = plan.lookup(key)
        verify_status(key, record, proof.to_bytes(), version.root)


def test_every_version_a_read_may_ask_for_proves_while_compaction_bounds_the_table(tmp_path: Path) -> None:
    """Thirty updates (issues and revocations at random keys), each committed with the prune of the version
    GRACE behind it, compaction in steps of a write's rows (64 at least): after each, every version from the due one
    to the head reads rows that hash to its root and prove present and absent documents; the table holds at most
    SPACE times its pages' rows, plus a step and an update, and compaction did take rows."""
    shuffled = random.Random(7)

    async def scenario() -> tuple[int, int, int]:
        store = await SQLiteStatusStore.open(tmp_path / "index.db")
        store._compaction = Compaction(least_step=64, step=64)
        try:
            versions: list[IndexVersion] = []
            rewritten: list[tuple[int, list[bytes]]] = []
            size, written = 0, 0
            for _ in range(30):
                head = versions[-1] if versions else None
                entries = [(size + i, ISSUE, doc(size + i)) for i in range(40)]
                entries += [(size + 40 + i, REVOKE, doc(shuffled.randrange(size + 1))) for i in range(3)]
                plan = await read_plan(store, PathPlan([d for _, _, d in entries], size), size)
                update = plan.apply_entries(entries)
                size += len(entries)
                new = IndexVersion(size, update.root, len(versions))
                due = [entry for entry in rewritten if len(versions) >= GRACE and entry[0] <= versions[-GRACE].size]
                await store.commit(head, new, update.writes, prunes=due)
                del rewritten[: len(due)]
                rewritten.append((size, page_ids_of(update.writes)))
                versions.append(new)
                written += len(page_ids_of(update.writes))
                sample = [doc(shuffled.randrange(size)) for _ in range(20)] + [doc(10**6 + size)]
                for version in versions[-GRACE:]:
                    await proves_at(store, version, sample)
            pages = len({page for page, _ in await page_versions(store)})
            rows = await count_rows(store)
            assert (store._compaction.rows, store._compaction.pages) == (rows, pages)  # its counts are exact
            return rows, pages, written
        finally:
            await store.close()

    rows, pages, written = asyncio.run(scenario())
    assert rows < written  # compaction took rows
    assert rows <= SPACE * pages + 64 + 200, (rows, pages)  # at most SPACE times, a step and an update beyond


async def grown(store: SQLiteStatusStore, head: IndexVersion | None, documents: range) -> IndexVersion:
    """`head` with one update more: an issue of each of `documents`, committed with the prune of `head`."""
    size = head.size if head else 0
    entries = [(size + i, ISSUE, doc(d)) for i, d in enumerate(documents)]
    plan = await read_plan(store, PathPlan([d for _, _, d in entries], size), size)
    update = plan.apply_entries(entries)
    new = IndexVersion(size + len(entries), update.root, size)
    await store.commit(head, new, update.writes, prunes=[(size, page_ids_of(update.writes))] if head else [])
    return new


async def counts_exact(store: SQLiteStatusStore) -> None:
    pages = len({page for page, _ in await page_versions(store)})
    assert (store._compaction.rows, store._compaction.pages) == (await count_rows(store), pages)


async def grown_file(path: Path, updates: int) -> IndexVersion | None:
    """An index file of `updates` updates of 100 documents (each with the prune of the one before); its head."""
    store = await SQLiteStatusStore.open(path)
    head = None
    try:
        for first in range(0, 100 * updates, 100):
            head = await grown(store, head, range(first, first + 100))
    finally:
        await store.close()
    return head


def append_a_row(path: Path, page: bytes) -> None:
    """Another connection's write to the table (in truth only the indexer writes it): a row of a new page."""
    with contextlib.closing(sqlite3.connect(path)) as other:
        other.execute("INSERT INTO status_page (page, version, data) VALUES (?, 1, x'')", (page,))
        other.commit()


async def counted_ahead(path: Path) -> tuple[SQLiteStatusStore, list[str]]:
    """The store opened as the indexer opens it, its counts made ahead; the statements that took."""
    store = await SQLiteStatusStore.open(path)
    statements: list[str] = []
    store._writer.set_trace_callback(statements.append)  # called on the writer's thread
    store.count_ahead()
    await asyncio.get_running_loop().run_in_executor(store._write_thread, lambda: None)  # done
    store._writer.set_trace_callback(None)
    return store, statements


def counts_made(statements: list[str]) -> int:
    return sum(sql.startswith(statuscompaction.COUNT_ROWS) for sql in statements)


@pytest.mark.parametrize("changed", [False, True])
def test_the_rows_counted_ahead_spare_the_first_write_its_count_unless_the_table_changed(
    tmp_path: Path, changed: bool
) -> None:
    """The indexer counts the table's rows and pages when it opens the index (`count_ahead`, on the writer's
    thread), not inside its first update's transaction, which waited 2.3 s for the count at 10^7 documents while
    the log went on growing (docs/status-proofs.md §11 "Forty-second round"). The first write then runs no count
    and the counts stay exact; if another connection changed the table in between, the write counts again."""

    async def scenario() -> None:
        path = tmp_path / "index.db"
        head = await grown_file(path, 4)
        store, _ = await counted_ahead(path)
        try:
            assert store._compaction.rows == await count_rows(store)
            if changed:
                append_a_row(path, b"\xff" * 5)
            statements: list[str] = []
            store._writer.set_trace_callback(statements.append)  # called on the writer's thread
            head = await grown(store, head, range(400, 450))
            store._writer.set_trace_callback(None)
            assert counts_made(statements) == (1 if changed else 0), statements
            await counts_exact(store)
        finally:
            await store.close()

    asyncio.run(scenario())


def test_the_counts_a_write_saved_are_read_at_the_next_start_unless_the_table_moved(tmp_path: Path) -> None:
    """Each write saves the counts with the table's two ends (`status_counts`, in its transaction), and the
    indexer's next start reads them instead of walking the index to count (2.5 s of CPU at 10^7, beside the shards'
    reads of their tops, docs/status-proofs.md §11 "Forty-second round"): no count, and the counts exact, before
    and after more writes. A table whose ends moved since (rows another writer appended, or the index emptied) is
    counted again."""

    async def scenario() -> None:
        path = tmp_path / "index.db"
        head = await grown_file(path, 5)
        store, statements = await counted_ahead(path)
        try:
            assert counts_made(statements) == 0, statements  # read, not counted
            await counts_exact(store)
            head = await grown(store, head, range(500, 600))
            await counts_exact(store)
        finally:
            await store.close()
        append_a_row(path, b"\xfe" * 5)  # an older release's write: rows appended, the counts not saved
        store, statements = await counted_ahead(path)
        try:
            assert counts_made(statements) == 1
            await counts_exact(store)
            await store.start_over(0)  # the rows all deleted, the saved counts left as they were
        finally:
            await store.close()
        store, statements = await counted_ahead(path)
        try:
            assert counts_made(statements) == 1
            assert (store._compaction.rows, store._compaction.pages) == (0, 0)
        finally:
            await store.close()

    asyncio.run(scenario())


def test_an_update_writes_about_its_own_rows_not_the_file(tmp_path: Path) -> None:
    """Rows keyed by (page, version) put each of an update's rows, and each pruned row, on a page of its own all
    over the file: an update of 1,000 documents in an index of 30,000 wrote the file about twice (its
    WAL, then the copy). Rows appended in the order written land together at the table's end: the update (and the
    WAL's copy) writes its rows and the pages of the (page, version) index it touches."""
    path = tmp_path / "index.db"
    docs = [doc(i) for i in range(31_000)]

    async def scenario() -> tuple[int, int, int]:
        store = await SQLiteStatusStore.open(path)
        try:
            first = read_paths(PathPlan(docs[:30_000]), {}).apply_entries(
                [(i, ISSUE, d) for i, d in enumerate(docs[:30_000])]
            )
            v1 = IndexVersion(30_000, first.root, 1)
            await store.commit(None, v1, first.writes)
            await checkpointed(store)
            plan = await read_plan(store, PathPlan(docs[30_000:], 30_000), 30_000)
            second = plan.apply_entries([(30_000 + i, ISSUE, d) for i, d in enumerate(docs[30_000:])])
            before = bytes_written()
            await store.commit(v1, IndexVersion(31_000, second.root, 2), second.writes)
            await checkpointed(store)
            rows = store._reader.execute("SELECT sum(length(data)) FROM status_page WHERE version = 31000")
            return bytes_written() - before, int(rows.fetchone()[0]), path.stat().st_size
        finally:
            await store.close()

    written, row_bytes, file_bytes = asyncio.run(scenario())
    assert written < file_bytes, (written, row_bytes, file_bytes)  # the keyed layout: about twice the file
    assert written < 4 * row_bytes + 32 * PAGE_BYTES, (written, row_bytes, file_bytes)


KEYED_SCHEMA = """
CREATE TABLE status_page (
    page BLOB NOT NULL, version INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (page, version)
) WITHOUT ROWID;
CREATE TABLE status_version (size INTEGER PRIMARY KEY, root BLOB NOT NULL, time INTEGER NOT NULL, entry INTEGER);
CREATE TABLE status_head (id INTEGER PRIMARY KEY CHECK (id = 1), size INTEGER NOT NULL);
CREATE TABLE status_layout (
    id INTEGER PRIMARY KEY CHECK (id = 1), stride INTEGER NOT NULL, log_roots_from INTEGER NOT NULL
);
"""


def test_a_file_of_rows_keyed_by_page_is_converted_in_place(tmp_path: Path) -> None:
    """A file the release before made (rows keyed by (page, version), WITHOUT ROWID) is opened: its rows move into
    the table in the order written, every version of them, in one transaction; the head, its entry and the layout
    stay, so the index is not rebuilt, and it still proves."""
    path = tmp_path / "index.db"
    docs = [doc(i) for i in range(300)]
    update = read_paths(PathPlan(docs), {}).apply_entries([(i, ISSUE, d) for i, d in enumerate(docs)])

    async def rows_of_a_new_store() -> list[tuple[bytes, int, bytes]]:
        store = await SQLiteStatusStore.open(tmp_path / "fresh.db")
        try:
            await store.commit(None, IndexVersion(300, update.root, 1), update.writes)
            return [
                (bytes(p), v, bytes(d))
                for p, v, d in store._reader.execute("SELECT page, version, data FROM status_page")
            ]
        finally:
            await store.close()

    rows = asyncio.run(rows_of_a_new_store())
    db = sqlite3.connect(path)
    db.executescript(KEYED_SCHEMA)
    db.executemany("INSERT INTO status_page VALUES (?, ?, ?)", rows)
    db.execute("INSERT INTO status_version VALUES (300, ?, 1, 301)", (update.root,))
    db.execute("INSERT INTO status_head VALUES (1, 300)")
    db.execute("INSERT INTO status_layout SELECT 1, 4, 0")
    db.commit()
    db.close()

    async def reopened() -> None:
        store = await SQLiteStatusStore.open(path)
        try:
            head = await store.head()
            assert head == IndexVersion(300, update.root, 1, 301)
            assert await count_rows(store) == len(rows)
            columns = [c[1] for c in store._reader.execute("PRAGMA table_info(status_page)")]
            assert columns == ["seq", "page", "version", "data"]
            await proves_at(store, head, docs[::10] + [doc(10**6)])
        finally:
            await store.close()

    asyncio.run(reopened())


def test_compaction_seeks_and_never_scans_the_table(tmp_path: Path) -> None:
    """Every statement a compaction step runs is planned as a seek (SQLite's EXPLAIN QUERY PLAN): the table's ends
    asked together (`min(seq), max(seq)`) scanned the whole (page, version) index at each step, two thirds of the
    writer's time at 10,000 entries/s over 10^6 documents. Only the count, made once, walks the index on purpose."""
    db = sqlite3.connect(tmp_path / "plan.db")
    for sql in filter(str.strip, SQLITE_SCHEMA.split(";")):
        db.execute(sql)
    for statement in (statuscompaction.OLDEST, statuscompaction.NEWEST, statuscompaction.STILL_READ,
                      statuscompaction.DELETE_RANGE):  # fmt: skip
        plan = [row[3] for row in db.execute("EXPLAIN QUERY PLAN " + statement, [1] * statement.count("?"))]
        assert plan and not any(step.startswith("SCAN") for step in plan), (statement, plan)
    db.close()


def test_a_read_finds_each_page_in_the_index_and_reads_one_row_of_it(tmp_path: Path) -> None:
    """A read of pages as of a version finds each page's newest row at or below it in the (page, version) index
    alone, then reads that row by `seq` (SQLite's EXPLAIN QUERY PLAN): a MAX with the data as a bare column read the
    table row of every version it passed, a random read each in a file past the memory map; at 10^7 documents the
    reads were a third of the indexing processes' time (docs/status-proofs.md §11 "Twenty-eighth round")."""
    db = sqlite3.connect(tmp_path / "plan.db")
    for sql in filter(str.strip, SQLITE_SCHEMA.split(";")):
        db.execute(sql)
    for pages, parameters in (("page IN (?, ?, ?)", [b"a", b"b", b"c", 7]), ("page < ?", [b"b", 7])):
        plan = [row[3] for row in db.execute("EXPLAIN QUERY PLAN " + sqlite_newest_rows(pages), parameters)]
        assert any(step.startswith("SEARCH status_page USING COVERING INDEX status_page_key") for step in plan), plan
        assert "SEARCH status_page USING INTEGER PRIMARY KEY (rowid=?)" in plan, plan
        assert not any(step.startswith(("SCAN status_page", "SEARCH status_page USING INDEX")) for step in plan), plan
        rows = [(b"a", 1, b"a1"), (b"a", 5, b"a5"), (b"a", 9, b"a9"), (b"b", 2, b"b2"), (b"c", 8, b"c8")]
        db.executemany("INSERT INTO status_page (page, version, data) VALUES (?, ?, ?)", rows)
        expected = {(b"a", b"a5"), (b"b", b"b2")} if pages.startswith("page IN") else {(b"a", b"a5")}
        assert set(db.execute(sqlite_newest_rows(pages), parameters).fetchall()) == expected
        db.execute("DELETE FROM status_page")
    db.close()
