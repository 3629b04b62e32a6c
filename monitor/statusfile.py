"""The file holding the monitor's recomputed status index: `<state>.status-index` beside the state database
(docs/status-proofs.md §9 "Monitor"); the audit's rules are in statusaudit.py.

    pages(origin, page, data)     one row per page of the tree, 4 levels of nodes, laid out exactly as the log's
                                  own index stores them (tlogcore/statusindex_pages.py), in its newest version
                                  only: the monitor serves no proofs, it keeps one root
    head(origin, size, root, …)   the index covers entries [0, size) of the log
    findings(origin, idx, …)      what the audit found about an entry, kept across a crash (statusaudit.py)

An update writes its changed pages whole and the new head in ONE transaction, so a crash leaves the old index or
the new one. Pages, not one row per node: an update then writes about 2.5 rows per document instead of about 10,
and SQLite's cost is per row far more than per byte (§11).

A file of the former layout (table `rows`, one row per node) is converted in place when it is opened: every node
is put in its page, in one transaction, and the table dropped; nothing is read again from the log.
"""

import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from tlogcore.statusindex import KEY_BITS
from tlogcore.statusindex_nodes import NodeId, StoredNode, node_id_from_bytes, parse_node
from tlogcore.statusindex_pages import STRIDE, Page, changed_pages, encode_raw, page_id_bytes, pages_of
from tlogcore.statuspageset import PageSet, decoded

SCHEMA = """
CREATE TABLE IF NOT EXISTS pages (origin TEXT NOT NULL, page BLOB NOT NULL, data BLOB NOT NULL,
                                  PRIMARY KEY (origin, page)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS head (origin TEXT PRIMARY KEY, size INTEGER NOT NULL, root BLOB NOT NULL,
                                 last_root_entry INTEGER, last_root_size INTEGER);
CREATE TABLE IF NOT EXISTS findings (origin TEXT NOT NULL, idx INTEGER NOT NULL, summary TEXT NOT NULL,
                                     evidence TEXT NOT NULL, PRIMARY KEY (origin, idx)) WITHOUT ROWID;
"""
FORMER_TABLE = "rows"  # the layout before pages: (origin, node id, node bytes), one row per node
CHUNK = 400  # page ids per SELECT (SQLite's limit on bound parameters is far above)


def open_index(state_path: Path) -> sqlite3.Connection:
    """The index file of this state database, created or converted to pages as needed."""
    db = sqlite3.connect(state_path.with_name(state_path.name + ".status-index"), isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = FULL")
    # SQLite's default page cache (2 MB): one of 128 MiB cost the same CPU per document at 3·10^5 (it
    # trades system time for user time), and the status process opens one file per audited log.
    db.executescript(SCHEMA)
    convert_former_layout(db)
    return db


def _has_former_table(db: sqlite3.Connection) -> bool:
    query = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
    return db.execute(query, (FORMER_TABLE,)).fetchone() is not None


def convert_former_layout(db: sqlite3.Connection) -> None:
    """Put every node of a former-layout file in its page, one band of 4 depths at a time (a band's nodes are in
    memory at once, never the whole tree), and drop the former table: all in one transaction."""
    if not _has_former_table(db):
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        if _has_former_table(db):  # another process may have converted it while this one waited for the lock
            origins = [origin for (origin,) in db.execute(f"SELECT DISTINCT origin FROM {FORMER_TABLE}")]
            for origin in origins:
                for first in range(0, KEY_BITS + 1, STRIDE):  # node ids start with their u16 depth
                    band = (first.to_bytes(2, "big"), (first + STRIDE).to_bytes(2, "big"))
                    rows = db.execute(
                        f"SELECT node, data FROM {FORMER_TABLE} WHERE origin = ? AND node >= ? AND node < ?",
                        (origin, *band),
                    ).fetchall()
                    nodes = {node_id_from_bytes(node): parse_node(data) for node, data in rows}
                    write_pages(db, origin, changed_pages(nodes))
            db.execute(f"DROP TABLE {FORMER_TABLE}")
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def write_pages(db: sqlite3.Connection, origin: str, pages: Mapping[NodeId, Page]) -> None:
    """Store these pages whole, in key order (each B-tree page is visited once, not once per row)."""
    rows = sorted((origin, page_id_bytes(page), encode_raw(nodes)) for page, nodes in pages.items())
    db.executemany("INSERT OR REPLACE INTO pages (origin, page, data) VALUES (?, ?, ?)", rows)


class IndexPages:
    """One log's pages in the index file: read into a `PageSet` (each page once per update), and the top pages."""

    def __init__(self, db: sqlite3.Connection, origin: str) -> None:
        self.db, self.origin = db, origin

    def fetch(self, held: PageSet, pages: Iterable[NodeId]) -> None:
        """Read the pages among these that `held` does not hold yet."""
        missing = held.missing(pages)
        for first in range(0, len(missing), CHUNK):
            asked = missing[first : first + CHUNK]
            rows = self.db.execute(
                f"SELECT page, data FROM pages WHERE origin = ? AND page IN ({','.join('?' * len(asked))})",
                [self.origin, *(page_id_bytes(page) for page in asked)],
            ).fetchall()
            held.add(asked, rows)

    def nodes(self, ids: Sequence[NodeId], held: PageSet) -> dict[NodeId, StoredNode]:
        """The rows of these node ids (absent ids have none), their pages read into `held` first."""
        self.fetch(held, pages_of(ids))
        return held.nodes(ids)

    def upper(self, depth: int) -> dict[NodeId, Page]:
        """Every page starting at depth <= `depth` (page ids start with their u16 depth)."""
        rows = self.db.execute(
            "SELECT page, data FROM pages WHERE origin = ? AND page < ?", (self.origin, (depth + 1).to_bytes(2, "big"))
        ).fetchall()
        return decoded(rows)
