"""loadtest/sqlite_layout_bench.py: the appended layout (the store's, in use) must read what rows keyed by page read,
at every version an update's read asks for, while compaction keeps its table bounded; and the bench prints a row per
layout."""

import sqlite3
from pathlib import Path

import pytest

from loadtest import sqlite_layout_bench
from loadtest.page_layout_bench import GRACE, build_workload
from loadtest.sqlite_layout_bench import Appended, Versioned, open_file, read
from logserver.statuscompaction import SPACE, Compaction


def test_the_appended_layout_reads_what_rows_keyed_by_page_read_and_stays_bounded(tmp_path: Path) -> None:
    batch, step = 500, 256  # compaction in steps of a write's rows (256 at least)
    work = build_workload(3_000, 12, batch)
    layouts = [kind(open_file(tmp_path / f"{kind.__name__}.db")) for kind in (Versioned, Appended)]
    appended = layouts[1]
    assert isinstance(appended, Appended)
    appended.compaction = Compaction(least_step=step, step=step)
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
            assert read(layouts[1].db, Appended.SELECT, ids, asked) == read(layouts[0].db, Versioned.SELECT, ids, asked)
        stored, pages = appended.db.execute("SELECT count(*), count(DISTINCT page) FROM status_page").fetchone()
        assert stored == appended.compaction.rows  # the count it keeps is the table's
        compacted |= stored < len(work.preload) + sum(len(r) for r in work.updates[: number + 1])
        if due is not None:  # SPACE times the live rows, beyond it what is not due yet and a step
            assert stored <= SPACE * pages + (GRACE + 1) * max(map(len, work.updates)), stored
    assert compacted  # rows were removed, not only appended
    for layout in layouts:
        layout.db.close()


def test_the_bench_prints_a_row_per_layout(capsys: pytest.CaptureFixture[str]) -> None:
    sqlite_layout_bench.main(["--documents", "5000", "--updates", "4", "--batch", "500"])
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| keyed") or line.startswith("| appended")]
    assert len(rows) == 2, out
    assert f"SQLite {sqlite3.sqlite_version}" in out
