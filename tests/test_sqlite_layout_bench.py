"""loadtest/sqlite_layout_bench.py: the appended layout must read what the layout in use reads, at every version an
update's read asks for, while compaction keeps its table bounded; and the bench prints a row per layout."""

import sqlite3
from pathlib import Path

import pytest

from loadtest import sqlite_layout_bench
from loadtest.page_layout_bench import GRACE, build_workload
from loadtest.sqlite_layout_bench import SPACE, Appended, Versioned, open_file, read


def test_the_appended_layout_reads_what_the_layout_in_use_reads_and_stays_bounded(tmp_path: Path) -> None:
    batch = 500
    work = build_workload(3_000, 12, batch)
    layouts = [kind(open_file(tmp_path / f"{kind.__name__}.db")) for kind in (Versioned, Appended)]
    for layout in layouts:
        layout.db.execute("BEGIN")
        layout.load(work.preload)
        layout.db.execute("COMMIT")
    versions: list[int] = []
    compacted = False
    for number, rows in enumerate(work.updates):
        version = (number + 1) * batch
        versions.append(version)
        due = versions[-1 - GRACE] if len(versions) > GRACE else None
        for layout in layouts:
            layout.db.execute("BEGIN")
            layout.update(version, rows, due)
            layout.db.execute("COMMIT")
        ids = [page for page, _ in work.preload] + [page for page, _ in rows]
        for asked in {max(version - batch, 0), version, due or 0}:  # every version a read may still ask for
            assert read(layouts[1].db, Appended.TABLE, ids, asked) == read(layouts[0].db, Versioned.TABLE, ids, asked)
        appended = layouts[1]
        assert isinstance(appended, Appended)
        stored = appended.db.execute("SELECT count(*) FROM status_row").fetchone()[0]
        assert stored == appended.rows  # the count it keeps is the table's
        compacted |= stored < len(work.preload) + sum(len(r) for r in work.updates[: number + 1])
        if due is not None:
            assert stored <= SPACE * len(appended.pages) + 2 * batch * 3, stored
    assert compacted  # rows were removed, not only appended
    for layout in layouts:
        layout.db.close()


def test_the_bench_prints_a_row_per_layout(capsys: pytest.CaptureFixture[str]) -> None:
    sqlite_layout_bench.main(["--documents", "5000", "--updates", "4", "--batch", "500"])
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| versioned") or line.startswith("| appended")]
    assert len(rows) == 2, out
    assert f"SQLite {sqlite3.sqlite_version}" in out
