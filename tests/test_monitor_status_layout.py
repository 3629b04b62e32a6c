"""The monitor's status index file stores pages of 4 levels, as the log does (monitor/statusfile.py), a file of the
former layout (one row per node) is converted when it is opened, and an update runs with the cyclic collector
paused (tlogcore/gcpause.py)."""

import gc
import random
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import monitor.statusaudit as statusaudit
from monitor.statusaudit import StatusAudit
from tlogcore.statement import ISSUE, REVOKE
from tlogcore.statusindex_nodes import PathPlan, node_id_bytes, read_paths
from tlogcore.statusindex_pages import pages_of

pytestmark = pytest.mark.usefixtures("apply_each_chunk")  # each chunk applied as it ends (conftest.py)

ORIGIN = "log.example/a"
FORMER_SCHEMA = """
CREATE TABLE rows (origin TEXT NOT NULL, node BLOB NOT NULL, data BLOB NOT NULL,
                   PRIMARY KEY (origin, node)) WITHOUT ROWID;
CREATE TABLE head (origin TEXT PRIMARY KEY, size INTEGER NOT NULL, root BLOB NOT NULL,
                   last_root_entry INTEGER, last_root_size INTEGER);
CREATE TABLE findings (origin TEXT NOT NULL, idx INTEGER NOT NULL, summary TEXT NOT NULL,
                       evidence TEXT NOT NULL, PRIMARY KEY (origin, idx)) WITHOUT ROWID;
"""


def entries(start: int, count: int, rng: random.Random, seen: list[bytes]) -> list[tuple[int, str, bytes]]:
    out = []
    for index in range(start, start + count):
        document = rng.choice(seen) if seen and rng.random() < 0.2 else rng.randbytes(32)
        seen.append(document)
        out.append((index, REVOKE if rng.random() < 0.1 else ISSUE, document))
    return out


def from_scratch(all_entries: list[tuple[int, str, bytes]]) -> PathPlan:
    plan = read_paths(PathPlan([d for _, _, d in all_entries]), {})
    update = plan.apply_entries(all_entries)
    return read_paths(PathPlan([d for _, _, d in all_entries]), update.writes)


def former_file(state: Path, logged: list[tuple[int, str, bytes]], size: int) -> int:
    """A status index file as the monitor wrote it before pages: one row per node. Returns its row count."""
    writes = read_paths(PathPlan([d for _, _, d in logged]), {}).apply_entries(logged)
    db = sqlite3.connect(state.with_name(state.name + ".status-index"))
    db.executescript(FORMER_SCHEMA)
    db.executemany(
        "INSERT INTO rows VALUES (?, ?, ?)",
        [(ORIGIN, node_id_bytes(node), row.to_bytes()) for node, row in writes.writes.items()],
    )
    db.execute("INSERT INTO head VALUES (?, ?, ?, NULL, NULL)", (ORIGIN, size, writes.root))
    db.execute("INSERT INTO findings VALUES (?, 3, 'kept', '{}')", (ORIGIN,))
    db.commit()
    db.close()
    return len(writes.writes)


def statements_of(chunk: list[tuple[int, str, bytes]]) -> dict[int, Any]:
    return {index: SimpleNamespace(kind=kind, document=document) for index, kind, document in chunk}


def test_a_former_layout_file_is_converted_to_pages_and_goes_on_with_the_same_root(tmp_path: Path) -> None:
    rng, seen = random.Random(5), []
    state = tmp_path / "state.db"
    first = entries(0, 3000, rng, seen)
    nodes = former_file(state, first, 3000)
    audit = StatusAudit(state, ORIGIN)
    try:
        tables = {name for (name,) in audit.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert "rows" not in tables and "pages" in tables
        stored = audit.db.execute("SELECT count(*) FROM pages").fetchone()[0]
        writes = read_paths(PathPlan([d for _, _, d in first]), {}).apply_entries(first).writes
        assert stored == len(pages_of(writes)) and stored * 3 < nodes  # about 2.5 rows per document, not ~10
        expected = from_scratch(first)
        for document in rng.sample(seen, 40):
            assert audit.record(document) == (expected.record(document), 3000)
        assert audit._found_before(0, 3000)[0].summary == "kept"  # the findings table is kept as it was
        more = entries(3000, 2000, rng, seen)
        assert audit.chunk([b"x"] * 2000, statements_of(more), 3000, frozenset()) == []
        head = audit._head(0)
        assert head is not None and head.root == from_scratch(first + more).root_hash()
    finally:
        audit.close()


def test_a_conversion_that_fails_leaves_the_former_file_whole(tmp_path: Path) -> None:
    rng, seen = random.Random(6), []
    state = tmp_path / "state.db"
    former_file(state, entries(0, 200, rng, seen), 200)
    db = sqlite3.connect(state.with_name(state.name + ".status-index"))
    db.execute("INSERT INTO rows VALUES (?, ?, ?)", (ORIGIN, node_id_bytes((40, 7)), b"\x07not a node"))
    db.commit()
    db.close()
    with pytest.raises(ValueError, match="index row of"):
        StatusAudit(state, ORIGIN)
    db = sqlite3.connect(state.with_name(state.name + ".status-index"))
    try:
        assert db.execute("SELECT count(*) FROM rows").fetchone()[0] > 200  # nothing dropped
        assert db.execute("SELECT count(*) FROM pages").fetchone()[0] == 0  # nothing half written
    finally:
        db.close()


@pytest.fixture
def restore_gc() -> Iterator[None]:
    enabled = gc.isenabled()
    yield
    (gc.enable if enabled else gc.disable)()


def test_an_update_runs_with_the_collector_paused_and_enabled_again_after(
    tmp_path: Path, restore_gc: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng, seen = random.Random(7), []
    audit = StatusAudit(tmp_path / "state.db", ORIGIN)
    real_write, during = statusaudit.append_journal, []  # an update's write (the pages are written at a fold)

    def write_then_maybe_fail(*args: Any) -> None:
        during.append(gc.isenabled())
        real_write(*args)
        if len(during) == 2:
            raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(statusaudit, "append_journal", write_then_maybe_fail)
    gc.enable()
    try:
        chunk = entries(0, 50, rng, seen)
        assert audit.chunk([b"x"] * 50, statements_of(chunk), 0, frozenset()) == []
        assert gc.isenabled()
        with pytest.raises(sqlite3.OperationalError):
            audit.chunk([b"x"] * 50, statements_of(entries(50, 50, rng, seen)), 50, frozenset())
        assert gc.isenabled() and during == [False, False]
        head = audit._head(0)
        assert head is not None and (head.size, head.root) == (50, from_scratch(chunk).root_hash())  # rolled back
    finally:
        audit.close()
