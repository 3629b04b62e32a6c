"""The SQLite log's two files, their tables, and how an older layout is brought up to date at open.

`log.db` holds the log itself: leaves, stored hashes, checkpoints, the head and the identity. The lookup tables
(storage contract 6) live in a second file beside it, `log.db.lookups`, attached to each connection as `lk`.
SQLite has one writer per file, so in one file a merge held the write lock the commits need: a commit waited for
the whole merge. In their own file, merges and commits write at the same time, each on its own core (issue 20).

The lookup file is derived data: every row in it comes from `leaves`, up to its own watermark. `reconcile`, run at
every open, makes it agree with the log whatever happened to either file:
- missing (a backup copied only `log.db`, or a log from before this layout): built from the leaves;
- behind (a crash, merges not finished): the leaves above its watermark are merged at once, so the tail that
  lookups scan starts short;
- ahead (`log.db` restored from an older backup): rows past the log's end are removed, the watermark moved back.
A lookup across the two files reads each file's own snapshot. That is enough: the watermark and the tables share
a file and a snapshot, leaves are only appended, and a merge moves only committed leaves, so whichever file is
read first, every leaf committed before the lookup began is either below the watermark read or in the tail read.
"""

import sqlite3
from pathlib import Path

LOG_SCHEMA = """
CREATE TABLE IF NOT EXISTS leaves (
    idx INTEGER PRIMARY KEY,
    data BLOB NOT NULL,
    leaf_key INTEGER NOT NULL,
    document_key INTEGER,
    registry INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS leaves_registry ON leaves(idx) WHERE registry = 1;
CREATE TABLE IF NOT EXISTS hashes (id INTEGER PRIMARY KEY, hash BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS checkpoints (
    size INTEGER PRIMARY KEY,
    root BLOB NOT NULL,
    note BLOB NOT NULL,
    published BLOB
);
CREATE TABLE IF NOT EXISTS head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    size INTEGER NOT NULL,
    root BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS identity (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    origin TEXT NOT NULL,
    log_vkey TEXT NOT NULL,
    registry_vkey TEXT NOT NULL
);
"""
LOOKUP_SCHEMA = """
CREATE TABLE IF NOT EXISTS lk.leaf_lookup (key INTEGER NOT NULL, idx INTEGER NOT NULL, PRIMARY KEY (key, idx))
    WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS lk.document_lookup (key INTEGER NOT NULL, idx INTEGER NOT NULL, PRIMARY KEY (key, idx))
    WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS lk.lookup_state (id INTEGER PRIMARY KEY CHECK (id = 1), merged INTEGER NOT NULL);
INSERT INTO lk.lookup_state (id, merged) VALUES (1, 0) ON CONFLICT DO NOTHING;
"""
# Earlier layouts, removed from log.db once the lookup file holds their content: the indexes updated inside every
# commit (before issue 20), then lookup tables in log.db itself.
OLD_INDEXES = ("leaves_by_leaf_key", "leaves_by_document_key")
OLD_TABLES = ("leaf_lookup", "document_lookup", "lookup_state")
MERGE = (  # leaves [?1, ?2) into the lookup tables, in key order, and the watermark past them: one transaction
    "INSERT INTO lk.leaf_lookup (key, idx) SELECT leaf_key, idx FROM main.leaves WHERE idx >= ?1 AND idx < ?2"
    " ORDER BY 1, 2",
    "INSERT INTO lk.document_lookup (key, idx) SELECT document_key, idx FROM main.leaves"
    " WHERE idx >= ?1 AND idx < ?2 AND document_key IS NOT NULL ORDER BY 1, 2",
    "UPDATE lk.lookup_state SET merged = ?2 WHERE id = 1 AND merged = ?1",
)


def lookup_path(path: Path) -> Path:
    """The lookup file beside the log database `path`."""
    return path.with_name(path.name + ".lookups")


def attach_lookups(db: sqlite3.Connection, path: Path) -> None:
    """Attach the lookup file of the log database `path` as `lk` (created empty if missing)."""
    db.execute("ATTACH DATABASE ? AS lk", (str(lookup_path(path)),))


def create_schema(path: Path) -> None:
    """Create both files' tables and reconcile the lookup file with the log (module doc)."""
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode = WAL")
        attach_lookups(db, path)
        db.execute("PRAGMA lk.journal_mode = WAL")
        db.execute("BEGIN IMMEDIATE")  # both files: servers opening together wait for one another here
        for statement in (LOG_SCHEMA + LOOKUP_SCHEMA).split(";"):
            if statement.strip():
                db.execute(statement)
        reconcile(db)
        db.execute("COMMIT")
        # Only once the lookup file holds everything (its commit above): the old layouts' indexes and tables go.
        # A crash in between leaves them, and the next open drops them (reconcile has nothing left to do).
        db.execute("BEGIN IMMEDIATE")
        for index in OLD_INDEXES:
            db.execute(f"DROP INDEX IF EXISTS main.{index}")
        for table in OLD_TABLES:
            db.execute(f"DROP TABLE IF EXISTS main.{table}")
        db.execute("COMMIT")
    finally:
        db.close()


def reconcile(db: sqlite3.Connection) -> None:
    """Inside a write transaction on both files: trim lookup rows past the log's end, then merge every leaf above
    the watermark (all of them for a new or lost lookup file)."""
    end = db.execute("SELECT coalesce(max(idx) + 1, 0) FROM main.leaves").fetchone()[0]
    merged = db.execute("SELECT merged FROM lk.lookup_state WHERE id = 1").fetchone()[0]
    if merged > end:  # log.db is older than the lookup file: forget what the log no longer holds
        db.execute("DELETE FROM lk.leaf_lookup WHERE idx >= ?", (end,))
        db.execute("DELETE FROM lk.document_lookup WHERE idx >= ?", (end,))
        db.execute("UPDATE lk.lookup_state SET merged = ? WHERE id = 1", (end,))
        merged = end
    if end > merged:
        for statement in MERGE:
            db.execute(statement, (merged, end))
