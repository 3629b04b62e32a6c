"""The status index's tables on both engines (their rows: logserver/statusstore.py), the layout check, and the
SQLite file's set-up: its tables created, the former row layout emptied, an earlier release's tables dropped from
the log's own file."""

import logging
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from logserver.sqlite import in_immediate_transaction
from logserver.storage import StorageError
from tlogcore.statusindex_pages import STRIDE

log = logging.getLogger("logserver.statusstore")
# SQLite's rows in the order written (seq), each page's versions found by the index (logserver/statuscompaction.py).
SQLITE_PAGE_TABLE = """
CREATE TABLE IF NOT EXISTS status_page (
    seq INTEGER PRIMARY KEY, page BLOB NOT NULL, version INTEGER NOT NULL, data BLOB NOT NULL
);
"""


def sqlite_newest_rows(pages: str, arms: int = 1) -> str:
    """(page, data) of the newest row at or below a version (the last parameter) of each page `pages` selects (a
    condition on `page`). The rows are found in the (page, version) index alone (it holds `seq`), then read by
    `seq`, once each and in the order written: a MAX with `data` as a bare column read the table row of every
    version it passed (a superseded row not yet compacted is one more random read), and at 10^7 documents the index
    file's reads were a third of the indexing processes' time (docs/status-proofs.md §11 "Twenty-eighth round").
    One statement, one snapshot: a compaction between two would move a row to another `seq`. With `arms`, the
    condition is taken that many times, each with its own parameters and then the version: SQLite searches each
    arm's range in the index, where one condition ORing the ranges scanned the whole index (at 10^7, the top of one
    half of the tree: 2.1-2.3 against 4.7-4.8 s)."""
    arm = f"SELECT seq FROM (SELECT MAX(version), seq FROM status_page WHERE {pages} AND version <= ? GROUP BY page)"
    return f"SELECT page, data FROM status_page WHERE seq IN ({' UNION ALL '.join([arm] * arms)})"


FEW_PAGES = 8  # a lookup's pages (3 at 10^7 documents, below the top its server keeps): read by `sqlite_newest_each`


def sqlite_newest_each(count: int) -> str:
    """(page, data) of the newest row at or below a version of each of `count` pages, the parameters (page,
    version) for each: one index seek and one table row per page, in one statement (one snapshot). For a few pages
    it costs about a third less than `sqlite_newest_rows`, whose grouping and second pass pay off for many (at 10^7
    documents, 48-51 against 65-73 us for 3 pages; docs/status-proofs.md §11 "Thirty-first round")."""
    newest = (
        "SELECT * FROM (SELECT page, data FROM status_page WHERE page = ? AND version <= ?"
        " ORDER BY version DESC LIMIT 1)"
    )
    return " UNION ALL ".join([newest] * count)


SQLITE_SCHEMA = (
    SQLITE_PAGE_TABLE
    + """
CREATE UNIQUE INDEX IF NOT EXISTS status_page_key ON status_page (page, version);
CREATE TABLE IF NOT EXISTS status_version (
    size INTEGER PRIMARY KEY, root BLOB NOT NULL, time INTEGER NOT NULL, entry INTEGER
);
CREATE TABLE IF NOT EXISTS status_head (id INTEGER PRIMARY KEY CHECK (id = 1), size INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS status_layout (
    id INTEGER PRIMARY KEY CHECK (id = 1), stride INTEGER NOT NULL, log_roots_from INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS status_counts (
    id INTEGER PRIMARY KEY CHECK (id = 1), rows INTEGER NOT NULL, pages INTEGER NOT NULL, oldest INTEGER, newest INTEGER
);
"""
)
POSTGRES_SCHEMA = """
CREATE TABLE IF NOT EXISTS status_page (
    page bytea NOT NULL, version bigint NOT NULL, data bytea NOT NULL, PRIMARY KEY (page, version)
);
CREATE TABLE IF NOT EXISTS status_version (size bigint PRIMARY KEY, root bytea NOT NULL, time bigint NOT NULL,
    entry bigint);
CREATE TABLE IF NOT EXISTS status_head (id integer PRIMARY KEY CHECK (id = 1), size bigint NOT NULL);
CREATE TABLE IF NOT EXISTS status_layout (id integer PRIMARY KEY CHECK (id = 1), stride integer NOT NULL,
    log_roots_from bigint NOT NULL);
"""
# The former layout, one row per node: its rows are dropped, its versions forgotten, the size it had logged kept.
FORMER_LAYOUT = """
DROP TABLE status_node;
DELETE FROM status_version;
DELETE FROM status_head;
"""
# The layout before the twenty-seventh round, rows keyed by (page, version): its rows are kept, appended oldest
# version first into the table of rows in the order written (one transaction with the new tables).
KEYED_LAYOUT = (
    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'status_page' AND sql LIKE '%WITHOUT ROWID%'"
)
FROM_KEYED_LAYOUT = (
    "ALTER TABLE status_page RENAME TO status_page_keyed;"
    + SQLITE_PAGE_TABLE
    + """
INSERT INTO status_page (page, version, data) SELECT page, version, data FROM status_page_keyed ORDER BY version, page;
DROP TABLE status_page_keyed;
"""
)
LOGGED_BELOW = "SELECT 1 FROM status_version WHERE entry IS NOT NULL AND size < {} LIMIT 1"
LOGGED_SIZE = "SELECT COALESCE(MAX(size), 0) FROM status_version WHERE entry IS NOT NULL"
SCHEMA_LOCK = 0x746C6F67_00000013  # "tlog", issue 19: servers starting together create the tables once
SQLITE_INSERT_PAGE = "INSERT OR REPLACE INTO status_page (page, version, data) VALUES (?, ?, ?)"
POSTGRES_PRUNE = "DELETE FROM status_page WHERE page = ANY($1::bytea[]) AND version < $2"
# The index emptied, to be rebuilt from the log (StatusStore.start_over): roots stated only from the given size on.
START_OVER = (
    "DELETE FROM status_page",
    "DELETE FROM status_version",
    "DELETE FROM status_head",
)
SET_ROOTS_FROM = "UPDATE status_layout SET log_roots_from = {} WHERE id = 1"
INDEX_TABLES = ("status_page", "status_node", "status_version", "status_head", "status_layout", "status_counts")


class IndexLayoutError(StorageError):
    """The stored index has a row layout this version does not read."""


def check_layout(row: Sequence[Any] | None) -> int:
    if row is None or int(row[0]) != STRIDE:
        raise IndexLayoutError(f"the status index's layout is {row and row[0]} levels per row, not {STRIDE}")
    return int(row[1])


def drop_index_tables(log_path: Path, busy_timeout_ms: int) -> None:
    """Drop the index's tables from the log's SQLite file, where releases before the twenty-first round kept them
    (one transaction; several processes opening at once drop them once)."""
    if not log_path.exists():
        return
    db = sqlite3.connect(log_path, isolation_level=None)
    try:
        db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        marks = ",".join("?" * len(INDEX_TABLES))
        query = f"SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ({marks})"
        if not db.execute(query, INDEX_TABLES).fetchall():
            return  # the usual case: none, and the log's write lock is not taken

        def drop(conn: sqlite3.Connection) -> None:
            for (name,) in conn.execute(query, INDEX_TABLES).fetchall():
                conn.execute(f"DROP TABLE {name}")

        in_immediate_transaction(db, drop)
        log.warning("status index: its tables moved out of %s into a file of their own; rebuilding it", log_path)
    finally:
        db.close()


def sqlite_layout(writer: sqlite3.Connection) -> None:
    """Create the tables; a file of the former layout has its index emptied (rebuilt from the log), in one
    transaction with the new tables."""

    def create(db: sqlite3.Connection) -> None:
        former = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'status_node'").fetchone()
        keyed = db.execute(KEYED_LAYOUT).fetchone()
        logged = int((db.execute(LOGGED_SIZE).fetchone() or [0])[0]) if former else 0
        steps = (FROM_KEYED_LAYOUT if keyed else "") + SQLITE_SCHEMA + (FORMER_LAYOUT if former else "")
        for sql in filter(str.strip, steps.split(";")):
            db.execute(sql)
        db.execute("INSERT OR IGNORE INTO status_layout VALUES (1, ?, ?)", (STRIDE, logged))
        if former:
            log.warning("status index: former row layout found; rebuilding it from the log (roots from %d)", logged)
        if keyed:
            log.warning("status index: its rows were keyed by page; now kept in the order written (rows moved)")

    in_immediate_transaction(writer, create)
