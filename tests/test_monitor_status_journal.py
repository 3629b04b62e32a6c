"""The monitor's status index between folds (monitor/statusaudit.py, statusfile.py): each update commits a journal
row and the head, the pages are written once FOLD_DOCUMENTS documents or FOLD_PAGES changed pages wait and when
the index is closed, and a journal left by a crash is folded in by the next writer. At every point the file's
head, its records and its root are those of the index computed from scratch."""

import hashlib
import random
import sqlite3
from pathlib import Path

import pytest

import monitor.statusaudit as statusaudit
from monitor.state import StateError
from monitor.statusaudit import StatusAudit, StatusItem
from monitor.statusworker import audit_chunk, close_index
from tlogcore.statement import ISSUE, REVOKE
from tlogcore.statusindex_nodes import PathPlan, read_paths

pytestmark = pytest.mark.usefixtures("apply_each_chunk")  # each chunk applied as it ends (conftest.py)

ORIGIN = "log.example/journal"


def documents(start: int, count: int, rng: random.Random, seen: list[bytes]) -> list[StatusItem]:
    """Issue and revoke items from entry `start`: new documents and some seen before."""
    out: list[StatusItem] = []
    for index in range(start, start + count):
        document = rng.choice(seen) if seen and rng.random() < 0.2 else rng.randbytes(32)
        seen.append(document)
        out.append((index, REVOKE if rng.random() < 0.1 else ISSUE, document))
    return out


def from_scratch(items: list[StatusItem]) -> PathPlan:
    entries = [(index, str(kind), data) for index, kind, data in items]
    plan = read_paths(PathPlan([d for _, _, d in entries]), {})
    update = plan.apply_entries(entries)
    return read_paths(PathPlan([d for _, _, d in entries]), update.writes)


def rows(state: Path, table: str) -> int:
    db = sqlite3.connect(state.with_name(state.name + ".status-index"))
    try:
        return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    finally:
        db.close()


def test_updates_between_folds_write_a_journal_row_and_the_file_still_answers_as_of_its_head(tmp_path: Path) -> None:
    rng, seen, state = random.Random(3), [], tmp_path / "state.db"
    audit = StatusAudit(state, ORIGIN)
    logged: list[StatusItem] = []
    try:
        for start in (0, 700, 1400):
            chunk = documents(start, 700, rng, seen)
            logged += chunk
            assert audit.chunk_items(chunk, start, start + 700, frozenset()) == []
        # No fold yet: the pages table has not been written, the three updates are journal rows.
        assert (rows(state, "pages"), rows(state, "journal")) == (0, 3)
        expected = from_scratch(logged)
        reader = StatusAudit(state, ORIGIN)  # another connection (tlog-monitor check-status) reads the file
        try:
            head = reader._head(0)
            assert head is not None and (head.size, head.root) == (2100, expected.root_hash())
            for document in rng.sample(seen, 40) + [hashlib.sha256(b"never logged").digest()]:
                assert reader.record(document) == (expected.record(document), 2100)
        finally:
            reader.close()
        assert rows(state, "journal") == 3  # a reader never folds
    finally:
        audit.close()
    assert (rows(state, "pages") > 0, rows(state, "journal")) == (True, 0)  # folded when closed
    again = StatusAudit(state, ORIGIN)
    try:
        assert again.record(seen[5]) == (expected.record(seen[5]), 2100)
    finally:
        again.close()


def test_the_pages_are_written_every_fold_documents_and_hold_the_head_then(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(statusaudit, "FOLD_DOCUMENTS", 1000)
    rng, seen, state = random.Random(5), [], tmp_path / "state.db"
    audit = StatusAudit(state, ORIGIN)
    logged: list[StatusItem] = []
    try:
        journal_rows = []
        for start in range(0, 3000, 600):
            chunk = documents(start, 600, rng, seen)
            logged += chunk
            assert audit.chunk_items(chunk, start, start + 600, frozenset()) == []
            journal_rows.append(rows(state, "journal"))
        assert journal_rows == [1, 0, 1, 0, 1]  # a fold once 1,000 documents are journaled, with the update's own
        expected = from_scratch(logged)
        head = audit._head(0)
        assert head is not None and head.root == expected.root_hash()
    finally:
        audit.close()


def test_the_pages_are_written_once_the_pages_changed_since_the_last_fold_reach_fold_pages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The memory the changed pages hold between folds is bounded by their count, whatever the documents: a fold
    comes once the pages changed since the last one (counted chunk by chunk) reach FOLD_PAGES."""
    monkeypatch.setattr(statusaudit, "FOLD_DOCUMENTS", 10**6)
    monkeypatch.setattr(statusaudit, "FOLD_PAGES", 400)
    rng, seen, state = random.Random(7), [], tmp_path / "state.db"
    audit = StatusAudit(state, ORIGIN)
    logged: list[StatusItem] = []
    try:
        journal_rows, dirty = [], []
        for start in range(0, 1200, 200):
            chunk = documents(start, 200, rng, seen)
            logged += chunk
            assert audit.chunk_items(chunk, start, start + 200, frozenset()) == []
            journal_rows.append(rows(state, "journal"))
            dirty.append(len(audit._held.dirty))
        assert 0 in journal_rows and journal_rows[-1] < len(journal_rows)  # folded before the documents' bound
        assert max(dirty) < 400  # never held past the bound
        expected = from_scratch(logged)
        head = audit._head(0)
        assert head is not None and head.root == expected.root_hash()
    finally:
        audit.close()
    again = StatusAudit(state, ORIGIN)
    try:
        document = logged[0][2]
        assert again.record(document) == (expected.record(document), 1200)
    finally:
        again.close()


def test_a_journal_left_by_a_crash_is_folded_in_by_the_next_writer(tmp_path: Path) -> None:
    rng, seen, state = random.Random(11), [], tmp_path / "state.db"
    first = documents(0, 1500, rng, seen)
    audit = StatusAudit(state, ORIGIN)
    assert audit.chunk_items(first[:800], 0, 800, frozenset()) == []
    assert audit.chunk_items(first[800:], 800, 1500, frozenset()) == []
    audit.close(fold=False)  # the crash: the journal is never folded
    assert (rows(state, "pages"), rows(state, "journal")) == (0, 2)
    second = documents(1500, 900, rng, seen)
    again = StatusAudit(state, ORIGIN)
    try:
        assert again.chunk_items(first[800:] + second, 800, 2400, frozenset()) == []  # audited again, then on
        head = again._head(0)
        expected = from_scratch(first + second)
        assert head is not None and (head.size, head.root) == (2400, expected.root_hash())
        assert rows(state, "journal") == 1  # the crash's journal folded into the pages, then this update's row
        for document in rng.sample(seen, 30):
            assert again.record(document) == (expected.record(document), 2400)
    finally:
        again.close()


def test_a_journal_that_does_not_reach_the_head_is_a_damaged_file(tmp_path: Path) -> None:
    rng, seen, state = random.Random(13), [], tmp_path / "state.db"
    audit = StatusAudit(state, ORIGIN)
    assert audit.chunk_items(documents(0, 500, rng, seen), 0, 500, frozenset()) == []
    audit.close(fold=False)
    db = sqlite3.connect(state.with_name(state.name + ".status-index"))
    with db:
        db.execute("UPDATE journal SET items = substr(items, 42)")  # the first document dropped
    db.close()
    with pytest.raises(StateError, match="status-index is damaged"):
        audit_chunk(str(state), ORIGIN, documents(500, 10, rng, seen), (500, 510), frozenset())
    close_index(str(state), ORIGIN)
    assert rows(state, "journal") == 1  # left as it was: nothing folded over the damage


def test_an_index_built_from_empty_reads_no_page_until_pages_are_let_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every page of an index this object built from empty is in memory: its updates read nothing from the file.
    Once a fold lets the deeper pages go (KEEP_PAGES), they are read again, and the root stays the reference's."""
    reads: list[int] = []
    real_fetch = statusaudit.IndexPages.fetch

    def counted(self: statusaudit.IndexPages, held: object, pages: object) -> None:
        reads.append(1)
        real_fetch(self, held, pages)  # type: ignore[arg-type]

    monkeypatch.setattr(statusaudit.IndexPages, "fetch", counted)
    monkeypatch.setattr(statusaudit, "FOLD_DOCUMENTS", 1500)
    rng, seen, state = random.Random(17), [], tmp_path / "state.db"
    audit = StatusAudit(state, ORIGIN)
    logged: list[StatusItem] = []
    try:
        for start in range(0, 3000, 1000):
            chunk = documents(start, 1000, rng, seen)
            logged += chunk
            assert audit.chunk_items(chunk, start, start + 1000, frozenset()) == []
        assert reads == []  # two folds, nothing read
        monkeypatch.setattr(statusaudit, "KEEP_PAGES", 10)
        for start in range(3000, 6000, 1000):
            chunk = documents(start, 1000, rng, seen)
            logged += chunk
            assert audit.chunk_items(chunk, start, start + 1000, frozenset()) == []
        assert reads  # the pages let go at the fold are read again
        head = audit._head(0)
        assert head is not None and head.root == from_scratch(logged).root_hash()
    finally:
        audit.close()


def test_a_record_read_while_the_monitor_folds_still_has_every_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """check-status reads the pages, then the journal; the running monitor may fold the journal into the pages
    in between. The reader's one read transaction keeps both reads at one point: the entries are not lost."""
    rng, seen, state = random.Random(23), [], tmp_path / "state.db"
    writer = StatusAudit(state, ORIGIN)
    chunk = documents(0, 400, rng, seen)
    assert writer.chunk_items(chunk, 0, 400, frozenset()) == []  # journaled, not folded yet
    real_read_journal = statusaudit.read_journal

    def fold_first(db: sqlite3.Connection, origin: str) -> list[StatusItem]:
        writer.close()  # the monitor's fold lands between the reader's page reads and its journal read
        return real_read_journal(db, origin)  # type: ignore[return-value]

    monkeypatch.setattr(statusaudit, "read_journal", fold_first)
    reader = StatusAudit(state, ORIGIN)
    try:
        assert reader.record(seen[0]) == (from_scratch(chunk).record(seen[0]), 400)
    finally:
        reader.close()
    assert rows(state, "journal") == 0  # the fold did land
