"""What one update of SQLite's status index writes under two layouts of its page rows: rows keyed by page (until the
twenty-seventh round) and rows appended in the order written, the one in use (docs/status-proofs.md §11,
"Twenty-sixth round" and "Twenty-seventh round").

    .venv/bin/python -m loadtest.sqlite_layout_bench [--documents 1000000] [--updates 40] [--batch 10000] [--rounds 1]

Why: at 10,000 entries/s the indexer's processes passed about 55-60 KB per entry to write(), each update about the
index file twice (its WAL, then the copy into the file): the keys are random, so an update of a few tens of
thousands of rows dirties nearly every page of the file (§11 "Twenty-sixth round"). This measured the prize of
another layout on the same rows before it was built, and measures what it keeps.

The rows are real: page_layout_bench.build_workload (tlogcore's PageUpdate, not timed). Each layout gets a new file
made as the server makes it (64 KiB pages, WAL, synchronous FULL, the store writer's cache), the index's
pages loaded at version 0 (not timed); then each update runs in one transaction, followed by the WAL started over
(RESTART, as `IndexWal.restart`), then the read an update makes of the next update's pages at the version before:

- keyed by page (until the twenty-seventh round): `status_page(page, version, data)` WITHOUT ROWID; an update
  inserts its rows and deletes the rows that GRACE updates earlier superseded (`page = ? AND version < v`).
- appended (in use): the store's own table, statements and compaction (logserver/statuscompaction.py): rows keyed
  by the order written, an index on (page, version); an update appends its rows at the table's end; superseded
  rows go by compaction of the table's oldest end, in the update's transaction.

Printed per layout and round: bytes passed to write() per update (/proc/self/io `wchar`: the WAL and its copy
into the file) and their ratio to the update's rows, CPU per update, the file at the end, a read's time per page.
Both layouts must read the same rows (checked); asserts nothing else.
"""

import argparse
import contextlib
import os
import sqlite3
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from loadtest.localproc import bytes_written
from loadtest.page_layout_bench import GRACE, Row, Workload, add_workload_arguments, built_workload
from logserver.statuscompaction import NEWEST, Compaction
from logserver.statusstore import PAGE_BYTES, WRITER_CACHE_BYTES
from logserver.statusstore_schema import SQLITE_INSERT_PAGE, SQLITE_SCHEMA, sqlite_newest_rows

CHUNK = 400  # page ids per read statement (as SQLiteStatusStore)


def open_file(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    for pragma in (f"page_size = {PAGE_BYTES}", "journal_mode = WAL", "synchronous = FULL",
                   f"cache_size = {-WRITER_CACHE_BYTES // 1024}",
                   "wal_autocheckpoint = 0"):  # fmt: skip
        db.execute(f"PRAGMA {pragma}")
    return db


class Versioned:
    name = "keyed by page (until the 27th round)"
    # each page's newest row at or below a version: the bare column of the MAX row, in the same B-tree
    SELECT = "SELECT page, data, MAX(version) FROM status_page WHERE {} AND version <= ? GROUP BY page"

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db, self.written = db, dict[int, list[bytes]]()
        db.execute(
            "CREATE TABLE status_page (page BLOB NOT NULL, version INTEGER NOT NULL, data BLOB NOT NULL, "
            "PRIMARY KEY (page, version)) WITHOUT ROWID"
        )

    def load(self, rows: Sequence[Row]) -> None:
        self.db.executemany("INSERT INTO status_page VALUES (?, 0, ?)", rows)

    def update(self, version: int, rows: Sequence[Row], due: int | None) -> None:
        self.written[version] = [page for page, _ in rows]
        self.db.executemany("INSERT INTO status_page VALUES (?, ?, ?)", [(p, version, d) for p, d in rows])
        if due is not None:
            self.db.executemany(
                "DELETE FROM status_page WHERE page = ? AND version < ?", [(p, due) for p in self.written.pop(due)]
            )


class Appended:
    name = "appended, compacted (in use)"
    SELECT = sqlite_newest_rows("{}")  # the store's own read

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db, self.compaction = db, Compaction()
        for sql in filter(str.strip, SQLITE_SCHEMA.split(";")):
            if "status_page" in sql or "status_counts" in sql:  # the rows, and where each write saves their counts
                db.execute(sql)

    def load(self, rows: Sequence[Row]) -> None:
        self.db.executemany("INSERT INTO status_page (page, version, data) VALUES (?, 0, ?)", rows)

    def update(self, version: int, rows: Sequence[Row], due: int | None) -> None:
        """As the store's commit (logserver/statusstore.py, `_sqlite_commit`): rows appended, then compaction of
        what the prune of version `due` superseded."""
        (first,) = self.db.execute(NEWEST).fetchone()
        self.db.executemany(SQLITE_INSERT_PAGE, [(p, version, d) for p, d in rows])
        self.compaction.wrote(self.db, (first or 0) + 1, len(rows), due)


def read(db: sqlite3.Connection, select: str, ids: list[bytes], version: int) -> dict[bytes, bytes]:
    """The rows of these ids as of `version`, with the layout's statement (`select`, its condition on `page` left
    as {})."""
    found = {}
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        sql = select.format(f"page IN ({','.join('?' * len(chunk))})")
        found.update({bytes(row[0]): bytes(row[1]) for row in db.execute(sql, [*chunk, version])})
    return found


@dataclass
class Figures:
    written: int = 0  # bytes passed to write() over the updates (their WALs and checkpoints)
    cpu: float = 0.0
    read_seconds: float = 0.0
    pages_read: int = 0
    file_bytes: int = 0
    row_bytes: int = 0

    def line(self, layout: str, number: int, updates: int) -> str:
        return (
            f"| {layout} | {number} | {self.written / updates / 1e6:,.1f} | {self.written / self.row_bytes:.1f} "
            f"| {self.cpu / updates * 1e3:,.0f} | {self.file_bytes / 1e6:,.0f} "
            f"| {self.read_seconds / max(self.pages_read, 1) * 1e6:.1f} |"
        )


def run_layout(
    kind: type[Versioned] | type[Appended], work: Workload, batch: int
) -> tuple[Figures, dict[bytes, bytes]]:
    with tempfile.TemporaryDirectory(prefix="sqlite-layout-") as scratch:
        path = Path(scratch) / "index.db"
        db = open_file(path)
        layout = kind(db)
        db.execute("BEGIN")
        layout.load(work.preload)
        db.execute("COMMIT")
        db.execute("PRAGMA wal_checkpoint(RESTART)")
        figures, reads, versions = Figures(), dict[bytes, bytes](), list[int]()
        for number, rows in enumerate(work.updates):
            version = (number + 1) * batch
            versions.append(version)
            due = versions[-1 - GRACE] if len(versions) > GRACE else None
            written, cpu = bytes_written(), time.process_time()
            db.execute("BEGIN")
            layout.update(version, rows, due)
            db.execute("COMMIT")
            db.execute("PRAGMA wal_checkpoint(RESTART)")
            figures.written += bytes_written() - written
            figures.cpu += time.process_time() - cpu
            figures.row_bytes += sum(len(page) + len(data) for page, data in rows)
            following = work.updates[number + 1] if number + 1 < len(work.updates) else rows
            started = time.perf_counter()
            reads = read(db, layout.SELECT, [page for page, _ in following], version - batch)
            figures.read_seconds += time.perf_counter() - started
            figures.pages_read += len(following)
        figures.file_bytes = path.stat().st_size
        with contextlib.suppress(sqlite3.Error):
            db.close()
        return figures, reads


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_workload_arguments(parser, updates=40, rounds=1)
    args = parser.parse_args(argv)
    work, built = built_workload(args)
    print(f"SQLite page layouts: {built}; SQLite {sqlite3.sqlite_version}")
    print(
        "\n| layout | round | MB passed to write() per update | times its rows | CPU ms per update | file MB at the "
        "end | a read's µs per page |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for number in range(args.rounds):
        answers = []
        for kind in (Versioned, Appended):
            figures, reads = run_layout(kind, work, args.batch)
            answers.append(reads)
            print(figures.line(kind.name, number, args.updates), flush=True)
        if answers[0] != answers[1]:
            raise SystemExit("the layouts read different rows: the appended layout is wrong")
    print(f"\nload average now {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
