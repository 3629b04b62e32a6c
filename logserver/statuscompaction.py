"""SQLite's status index in the order its rows were written, and the compaction that takes its superseded rows away
(docs/status-proofs.md §9 "Pruning", §11 "Twenty-seventh round").

An update writes tens of thousands of rows at random page ids. In a table keyed by (page, version) each lands on its
own B-tree page, and so did each prune of a superseded row: one update dirtied nearly every page of the file, and
wrote about the file twice (its WAL, then the copy): 59-62 KB per entry at 10,000 entries/s and 10^6 documents.
Here a row's key is `seq`, the order it was written in: an update appends its rows at the table's end, and only the
index on (page, version), a small fraction of the bytes, takes them all over (loadtest/sqlite_layout_bench.py: 151
against 609 MB per update of 20,000 rows at 10^6).

A prune then deletes nothing where it lies. It counts what became superseded, and the table is compacted from its
oldest end: the oldest `step` rows are taken, those a read at the due version or later may still take (no newer row
of their page at or below it) are appended again, and the range is deleted, in the same transaction as the rest of
the write, once the table holds more than SPACE times as many rows as pages, STEPS_PER_WRITE steps per write at
most: under a steady load the table settles where those steps take what the writes supersede, and superseded rows
are mostly the big pages near the top, so in bytes the file is several times its live rows (§11). A small table
(at most `step` rows) is compacted whole at every prune that has something to take.
"""

import sqlite3
from dataclasses import dataclass

from logserver.statusstore_schema import SQLITE_INSERT_PAGE

SPACE = 1.5  # compaction starts once the table holds more rows than this many times its pages (live rows)
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
# The rows appended from a seq on whose page had a row already: each supersedes one (the rest are new pages).
COUNT_SUPERSEDING = (
    "SELECT count(*) FROM status_page n WHERE n.seq >= ? AND EXISTS (SELECT 1 FROM status_page o "
    "WHERE o.page = n.page AND o.version < n.version)"
)


# The counts as of each write's end, with the table's ends then (statusstore_schema.py, `status_counts`): read when
# the indexer opens the file, they hold if the ends are still those (a write of another release, or a start over,
# moves them).
SAVE_COUNTS = "INSERT OR REPLACE INTO status_counts (id, rows, pages, oldest, newest) VALUES (1, ?, ?, ?, ?)"
SAVED_COUNTS = "SELECT rows, pages, oldest, newest FROM status_counts WHERE id = 1"


def _ends(db: sqlite3.Connection) -> tuple[int | None, int | None]:
    return db.execute(OLDEST).fetchone()[0], db.execute(NEWEST).fetchone()[0]


@dataclass
class Compaction:
    """The table's rows and its pages (a live row each), exact: read from what the last write saved, or counted, at
    the indexer's start (`count_ahead`) or else at the first write since open; then kept by each write (`appended`:
    its rows, less those whose page had a row already) and each step (what it took), and saved at each write's end
    (`save`). Used on the writer's thread only; a failed transaction forgets them (`forget`)."""

    space: float = SPACE
    least_step: int = LEAST_STEP
    step: int = LEAST_STEP
    rows: int | None = None
    pages: int = 0
    ends: tuple[int | None, int | None] | None = None  # the table's (oldest, newest) seq when counted ahead

    def count_ahead(self, db: sqlite3.Connection) -> None:
        """The counts the last write saved, if the table's ends are still those it saved; else counted now. Before
        the first write, in a read transaction of its own: at 10^7 documents the count walks the whole (page,
        version) index (2.3 s), and the indexer's first update after a start waited for it, then shared the cores
        with it (docs/status-proofs.md §11 "Forty-second round"). The ends are kept with the counts, and the first
        write counts again if another connection changed them meanwhile (only the indexer writes the table)."""
        if self.rows is not None:
            return
        db.execute("BEGIN")
        try:
            ends = _ends(db)
            saved = db.execute(SAVED_COUNTS).fetchone()
            if saved is not None and (saved[2], saved[3]) == ends:
                self.rows, self.pages = int(saved[0]), int(saved[1])
            else:
                self._count(db)
            db.execute("COMMIT")  # a read: nothing to commit, the snapshot let go
        except BaseException:
            self.forget()
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        self.ends = ends

    def forget(self) -> None:
        self.rows, self.ends = None, None

    def _count(self, db: sqlite3.Connection) -> None:
        rows, pages = db.execute(COUNT_ROWS).fetchone()
        self.rows, self.pages = int(rows), int(pages)

    def appended(self, db: sqlite3.Connection, first: int, rows: int) -> None:
        """This transaction appended `rows` rows from seq `first` on."""
        self.step = max(self.least_step, rows)  # this write's, not the largest (a catch-up's step of 150,000)
        if self.rows is None:
            self._count(db)
            return
        (superseding,) = db.execute(COUNT_SUPERSEDING, (first,)).fetchone()
        self.rows += rows
        self.pages += rows - int(superseding)

    def wrote(self, db: sqlite3.Connection, first: int, rows: int, due: int | None) -> None:
        """A commit's end, in its transaction: `rows` rows appended from seq `first`, compaction of what versions up
        to `due` superseded (None: nothing pruned), the counts saved."""
        self.appended(db, first, rows)
        if due is not None:
            self.run(db, due)  # saves them
        else:
            self.save(db)

    def save(self, db: sqlite3.Connection) -> None:
        """At a write's end, in its transaction: the counts and the table's ends, for the next start."""
        if self.rows is not None:
            db.execute(SAVE_COUNTS, (self.rows, self.pages, *_ends(db)))

    def counted(self, db: sqlite3.Connection) -> None:
        """At a write's start, before its rows: counts made ahead hold only if nobody changed the table since
        (`count_ahead`); else they are made again by the write (`appended`, `run`)."""
        if self.ends is not None:
            if _ends(db) != self.ends:
                self.rows = None
            self.ends = None

    def _due(self) -> bool:
        rows = self.rows or 0
        return rows > self.pages and (rows <= self.step or rows > self.space * self.pages)

    def run(self, db: sqlite3.Connection, due: int) -> None:
        """Rows superseded at or below version `due` are read no more: compact while the table holds too many
        superseded rows (`_due`), STEPS_PER_WRITE steps at most, and no further once a step takes none."""
        self.counted(db)
        if self.rows is None:
            self._count(db)
        for _ in range(STEPS_PER_WRITE):
            if not self._due() or not self._compact_oldest(db, due):
                break
        self.save(db)

    def _compact_oldest(self, db: sqlite3.Connection, due: int) -> bool:
        """One step; False if it took nothing (the oldest rows are all still read, or superseded after `due`)."""
        (low,) = db.execute(OLDEST).fetchone()
        if low is None:
            return False
        whole = (self.rows or 0) <= self.step  # a small table
        end = db.execute(NEWEST).fetchone()[0] + 1 if whole else low + self.step
        kept = db.execute(STILL_READ, (end, due)).fetchall()
        deleted = db.execute(DELETE_RANGE, (end,)).rowcount
        db.executemany(SQLITE_INSERT_PAGE, kept)  # their own rows were deleted: nothing to replace
        taken = deleted - len(kept)
        self.rows = (self.rows or 0) - taken
        return taken > 0
