"""The file holding the monitor's recomputed status index: `<state>.status-index` beside the state database
(docs/status-proofs.md §9 "Monitor"); the audit's rules are in statusaudit.py.

    pages(origin, page, data)     one row per page of the tree, 4 levels of nodes, laid out exactly as the log's
                                  own index stores them (tlogcore/statusindex_pages.py), in its newest version
                                  only: the monitor serves no proofs, it keeps one root
    head(origin, size, root, …)   entries [0, size) of the log were audited into this file; the root is the index's
                                  over entries [0, indexed), and what the audit knows of the log's index-roots
    findings(origin, idx, …)      what the audit found about an entry, kept across a crash (statusaudit.py)
    journal(origin, start, items) the documents of the entries applied since the pages were last written (a "fold"),
                                  one row per update: (u64 entry index, kind byte, 32-byte document) each
    recent(origin, start, items)  the documents of entries [kept, size), one row per commit of the audit (`start`:
                                  the first entry it covers), encoded as the journal's; those at or past `indexed`
                                  wait for an index-root (statusaudit.py), the others let a late root be checked
    keys(origin, idx, kind, vkey) the registry statements (issuer-add 0, issuer-retire 1) of entries [0, size) and
                                  the issuer key each names, whoever signed them: the key index (keyaudit.py, §12)

The pages hold the index as of the last fold; the head is that index with the journal's documents added. Each
update writes its journal row and the new head in ONE transaction; a fold writes the changed pages whole and
empties the journal in one transaction: a crash leaves the old index or the new one, and the journal is applied
to the pages again when the file is next written (statusaudit.py). Pages, not one row per node: a fold then
writes about 2.5 rows per document instead of about 10, and SQLite's cost is per row far more than per byte
(§11); folds, not a write per update: the pages an update shares with the next ones (the top of the tree, the
pages a key lands on again) are written once per fold instead of once per update.

A file of the former layout (table `rows`, one row per node) is converted in place when it is opened: every node
is put in its page, in one transaction, and the table dropped; nothing is read again from the log.
A head written before documents were kept (no column `indexed`) gains the new columns when the file is opened, in
one transaction: nothing waits (indexed = size), nothing is kept (kept = size), and the roots for sizes below
that head, which the monitor could not check then, are not checked now either (unchecked_below = size).
A head written before the key index (no column `keys_from`) gains it with keys_from = size: the registry statements
of those entries were not kept, so the next round rebuilds the file from entry 0 (statusaudit.py "Rebuilt", §12).
"""

import sqlite3
import struct
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

from tlogcore.statement import ISSUE, REVOKE
from tlogcore.statusindex import KEY_BITS
from tlogcore.statusindex_nodes import IndexStorageError, NodeId, StoredNode, node_id_from_bytes, parse_node
from tlogcore.statusindex_pages import STRIDE, Page, changed_pages, encode_raw, page_id_bytes, pages_of
from tlogcore.statuspageset import PageSet, decoded

SCHEMA = """
CREATE TABLE IF NOT EXISTS pages (origin TEXT NOT NULL, page BLOB NOT NULL, data BLOB NOT NULL,
                                  PRIMARY KEY (origin, page)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS head (origin TEXT PRIMARY KEY, size INTEGER NOT NULL, root BLOB NOT NULL,
                                 last_root_entry INTEGER, last_root_size INTEGER, indexed INTEGER, kept INTEGER,
                                 unchecked_below INTEGER, last_root BLOB, checked_entry INTEGER,
                                 checked_statement BLOB, checked_root BLOB);
CREATE TABLE IF NOT EXISTS findings (origin TEXT NOT NULL, idx INTEGER NOT NULL, summary TEXT NOT NULL,
                                     evidence TEXT NOT NULL, PRIMARY KEY (origin, idx)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS journal (origin TEXT NOT NULL, start INTEGER NOT NULL, items BLOB NOT NULL,
                                    PRIMARY KEY (origin, start));
CREATE TABLE IF NOT EXISTS recent (origin TEXT NOT NULL, start INTEGER NOT NULL, items BLOB NOT NULL,
                                   PRIMARY KEY (origin, start));
CREATE TABLE IF NOT EXISTS keys (origin TEXT NOT NULL, idx INTEGER NOT NULL, kind INTEGER NOT NULL,
                                 vkey TEXT NOT NULL, PRIMARY KEY (origin, idx)) WITHOUT ROWID;
"""
# The head's columns in the order `_Head` (statusaudit.py) takes them; those after the first five came later.
HEAD_COLUMNS = (
    "size", "root", "last_root_entry", "last_root_size", "indexed", "kept", "unchecked_below", "last_root",
    "checked_entry", "checked_statement", "checked_root", "keys_from", "keys_checked", "keys_size",
)  # fmt: skip
_ADDED_COLUMNS = {"indexed": "INTEGER", "kept": "INTEGER", "unchecked_below": "INTEGER", "last_root": "BLOB",
                  "checked_entry": "INTEGER", "checked_statement": "BLOB", "checked_root": "BLOB",
                  "keys_from": "INTEGER", "keys_checked": "INTEGER", "keys_size": "INTEGER"}  # fmt: skip
FORMER_TABLE = "rows"  # the layout before pages: (origin, node id, node bytes), one row per node
CHUNK = 400  # page ids per SELECT (SQLite's limit on bound parameters is far above)
_JOURNAL_ITEM = struct.Struct(">QB32s")  # entry index, kind (0 issue, 1 revoke), document SHA-256
_KINDS = (ISSUE, REVOKE)
Document = tuple[int, str, bytes]  # (entry index, "issue" or "revoke", the document's SHA-256)


def index_path(state_path: Path) -> Path:
    """`<state>.status-index`: the index file beside this state database."""
    return state_path.with_name(state_path.name + ".status-index")


def open_index(state_path: Path) -> sqlite3.Connection:
    """The index file of this state database, created or converted to pages as needed."""
    db = sqlite3.connect(index_path(state_path), isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = FULL")
    # SQLite's default page cache (2 MB): one of 128 MiB cost the same CPU per document at 3·10^5 (it
    # trades system time for user time), and the status process opens one file per audited log.
    db.executescript(SCHEMA)
    convert_former_layout(db)
    add_head_columns(db)
    return db


def _missing_columns(db: sqlite3.Connection) -> list[str]:
    present = {row[1] for row in db.execute("PRAGMA table_info(head)")}
    return [name for name in _ADDED_COLUMNS if name not in present]


def add_head_columns(db: sqlite3.Connection) -> None:
    """A head of a file from before `recent` gains its columns (see the module's docstring): one transaction."""
    if not _missing_columns(db):
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        for name in _missing_columns(db):  # another process may have added them while this one waited
            db.execute(f"ALTER TABLE head ADD COLUMN {name} {_ADDED_COLUMNS[name]}")
        db.execute("UPDATE head SET indexed = size, kept = size, unchecked_below = size WHERE indexed IS NULL")
        db.execute("UPDATE head SET keys_from = size, keys_checked = 0 WHERE keys_from IS NULL")  # §12: not kept
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


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
    """Store these pages whole, in key order (each B-tree page is visited once, not once per row): sorted by node
    id, the page ids' own order (tlogcore/statusindex_pages.py `page_id_bytes`), without comparing bytes."""
    rows = [(origin, page_id_bytes(page), encode_raw(pages[page])) for page in sorted(pages)]
    db.executemany("INSERT OR REPLACE INTO pages (origin, page, data) VALUES (?, ?, ?)", rows)


def _packed(documents: Sequence[Document]) -> bytes:
    pack = _JOURNAL_ITEM.pack
    return b"".join([pack(index, kind == REVOKE, document) for index, kind, document in documents])


def _unpacked(data: bytes, table: str) -> Iterator[Document]:
    """A row's documents; a row that does not decode is a damaged file."""
    if len(data) % _JOURNAL_ITEM.size:
        raise IndexStorageError(f"status index {table} row of {len(data)} bytes")
    for index, kind, document in _JOURNAL_ITEM.iter_unpack(data):
        if kind > 1:
            raise IndexStorageError(f"status index {table}: entry {index} of kind {kind}")
        yield index, _KINDS[kind], document


def append_journal(db: sqlite3.Connection, origin: str, documents: Sequence[Document]) -> None:
    """One update's documents, as one journal row (inside the caller's transaction)."""
    db.execute(
        "INSERT OR REPLACE INTO journal (origin, start, items) VALUES (?, ?, ?)",
        (origin, documents[0][0], _packed(documents)),
    )


def read_journal(db: sqlite3.Connection, origin: str) -> list[Document]:
    """Every document in the journal, in log order."""
    rows = db.execute("SELECT items FROM journal WHERE origin = ? ORDER BY start", (origin,))
    return [document for (data,) in rows for document in _unpacked(data, "journal")]


def append_recent(db: sqlite3.Connection, origin: str, start: int, documents: Sequence[Document]) -> None:
    """The documents of the entries one commit audited, from entry `start` (inside the caller's transaction)."""
    db.execute(
        "INSERT OR REPLACE INTO recent (origin, start, items) VALUES (?, ?, ?)", (origin, start, _packed(documents))
    )


def read_recent(db: sqlite3.Connection, origin: str, low: int, high: int) -> list[Document]:
    """The kept documents of entries [low, high), in log order (from the row covering `low` on)."""
    rows = db.execute(
        "SELECT items FROM recent WHERE origin = ? AND start < ? AND start >= coalesce("
        "(SELECT max(start) FROM recent WHERE origin = ? AND start <= ?), 0) ORDER BY start",
        (origin, high, origin, low),
    )
    return [d for (data,) in rows for d in _unpacked(data, "recent") if low <= d[0] < high]


def trim_recent(db: sqlite3.Connection, origin: str, kept: int, cut: int) -> int:
    """Let the documents of the entries before `cut` go, whole rows only (inside the caller's transaction): the
    new `kept`, the first entry whose documents are all still kept."""
    if cut <= kept:
        return kept
    row = db.execute("SELECT max(start) FROM recent WHERE origin = ? AND start <= ?", (origin, cut)).fetchone()
    if row[0] is None:  # no row starts at or before `cut`: the entries up to it named no document
        return cut
    db.execute("DELETE FROM recent WHERE origin = ? AND start < ?", (origin, row[0]))
    return max(kept, int(row[0]))


def clear_journal(db: sqlite3.Connection, origin: str) -> None:
    db.execute("DELETE FROM journal WHERE origin = ?", (origin,))


def forget_index(db: sqlite3.Connection, origin: str) -> None:
    """One log's index emptied (its pages, journal, kept documents and head; inside the caller's transaction), to
    be rebuilt from entry 0. Its findings stay: what the audit found about an entry stays true."""
    for table in ("pages", "journal", "recent", "keys", "head"):
        db.execute(f"DELETE FROM {table} WHERE origin = ?", (origin,))


def indexed_size(state_path: Path, origin: str) -> int:
    """How many of the log's entries the index covers, read without writing: 0 with no file, no table yet, a file
    that does not read (the status process, which opens it to rebuild it, then names the damage), or one from
    before the key index (its registry statements not kept from entry 0: rebuilt too, §12)."""
    row = read_head(state_path, origin, ("size", "keys_from"))
    return int(row[0]) if row and not row[1] else 0


def read_head(state_path: Path, origin: str, columns: Sequence[str]) -> tuple[int, ...] | None:
    """These columns of the log's head (HEAD_COLUMNS), read without writing; None with no file, no table or head
    yet, or a file that does not read."""
    path = index_path(state_path)
    if not path.exists():
        return None
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = db.execute(f"SELECT {', '.join(columns)} FROM head WHERE origin = ?", (origin,)).fetchone()
    except sqlite3.Error:
        return None
    finally:
        db.close()
    return tuple(row) if row else None


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
