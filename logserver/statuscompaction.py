"""SQLite's status index in the order its rows were written, and the compaction that takes its superseded rows away
(docs/status-proofs.md §6 "Appended rows", §11 "Twenty-seventh round").

An update writes tens of thousands of rows at random page ids. In a table keyed by (page, version) each lands on its
own B-tree page, and so did each prune of a superseded row: one update dirtied nearly every page of the file, and
wrote about the file twice (its WAL, then the copy): 59-62 KB per entry at 10,000 entries/s and 10^6 documents.
Here a row's key is `seq`, the order it was written in: an update appends its rows at the table's end, and only the
index on (page, version), a small fraction of the bytes, takes them all over (loadtest/sqlite_layout_bench.py: 151
against 609 MB per update of 20,000 rows at 10^6).

A prune then deletes nothing where it lies. It counts what became superseded, and the table is compacted from its
oldest end: the oldest `step` rows are taken, those a read at the due version or later may still take (no newer row
of their page at or below it) are appended again, and the range is deleted, in the same transaction as the rest of
the write. The table holds at most about SPACE times its live rows; a small table (at most `step` rows) is
compacted whole at every prune that has something to take, so it holds no superseded row once due.
"""

import sqlite3
from dataclasses import dataclass

SPACE = 1.5  # the table's rows at most about this many times the live ones: the rest awaits compaction
LEAST_STEP = 4096  # rows one compaction step takes at least (the write's own rows if more)
STEPS_PER_WRITE = 4  # compaction steps one write makes at most: its transaction stays bounded
# (rows, pages) in one walk of the index in page order (count(DISTINCT page) sorted them again in a temporary B-tree)
COUNT_ROWS = "SELECT COALESCE(sum(n), 0), count(*) FROM (SELECT count(*) AS n FROM status_page GROUP BY page)"
# Each a seek at one end of the table: SQLite's min()/max() optimization takes a query with one of them alone (the
# two together scanned the whole (page, version) index: two thirds of the writer's time at 10^6, §11).
OLDEST = "SELECT min(seq) FROM status_page"
NEWEST = "SELECT max(seq) FROM status_page"
STILL_READ = (  # rows of the oldest range that a read at the due version or later may take
    "SELECT page, version, data FROM status_page r WHERE r.seq < ? AND NOT EXISTS (SELECT 1 FROM status_page n "
    "WHERE n.page = r.page AND n.version > r.version AND n.version <= ?) ORDER BY r.seq"
)
DELETE_RANGE = "DELETE FROM status_page WHERE seq < ?"
APPEND = "INSERT INTO status_page (page, version, data) VALUES (?, ?, ?)"


@dataclass
class Compaction:
    """The writer's count of the table's rows and of those superseded (an estimate: counted at the first write
    since open, then kept up by each write; counted again when a step finds nothing to take). Used on the writer's
    thread only, inside its transactions; a failed transaction forgets the counts (`forget`)."""

    space: float = SPACE
    least_step: int = LEAST_STEP
    step: int = LEAST_STEP
    rows: int | None = None
    superseded: int = 0

    def forget(self) -> None:
        self.rows = None

    def _count(self, db: sqlite3.Connection) -> int:
        rows, pages = db.execute(COUNT_ROWS).fetchone()
        self.rows, self.superseded = int(rows), int(rows) - int(pages)
        return self.rows

    def appended(self, db: sqlite3.Connection, rows: int) -> None:
        """`rows` are about to be appended by this transaction (counted before them, the first time)."""
        self.rows = (self.rows if self.rows is not None else self._count(db)) + rows
        self.step = max(self.least_step, rows)  # this write's, not the largest (a catch-up's step of 150,000)

    def _due(self) -> bool:
        rows = self.rows or 0
        live = rows - self.superseded
        return self.superseded > 0 and (rows <= self.step or self.superseded > (self.space - 1) * live)

    def run(self, db: sqlite3.Connection, due: int, superseded: int) -> None:
        """`superseded` more rows became superseded at or below version `due`, which no read goes below any
        more: compact while the table holds too many of them (`_due`), STEPS_PER_WRITE steps at most."""
        if self.rows is None:
            self._count(db)
        else:
            self.superseded += superseded
        for _ in range(STEPS_PER_WRITE):
            if not self._due() or not self._compact_oldest(db, due):
                return

    def _compact_oldest(self, db: sqlite3.Connection, due: int) -> bool:
        """One step; False when it took nothing (the counts were then counted again)."""
        (low,) = db.execute(OLDEST).fetchone()
        if low is None:
            return False
        whole = (self.rows or 0) <= self.step  # a small table
        end = db.execute(NEWEST).fetchone()[0] + 1 if whole else low + self.step
        kept = db.execute(STILL_READ, (end, due)).fetchall()
        deleted = db.execute(DELETE_RANGE, (end,)).rowcount
        db.executemany(APPEND, kept)
        taken = deleted - len(kept)
        if taken <= 0:
            self._count(db)  # the estimate ran ahead (new pages, rows not due yet): the oldest were all read
            return False
        self.rows = (self.rows or 0) - taken
        self.superseded = max(0, self.superseded - taken)
        return True
