"""The monitor's own status index (docs/status-proofs.md §9 "Monitor"): recomputed from the entries it audits, and
compared with every `index-root` entry the log appends.

Each `index-root` entry is audited like a statement (canonical, signed by its own signer, for this log, covering
only entries before itself: `index_root_problem`, called from audit.py). Then, in log order (`StatusAudit.chunk`,
called from entryaudit.py for each audited chunk):
- its signer must be one of the log's registry keys and its size must not go back;
- the monitor's root over entries [0, size) must equal the statement's root: else the log's index hides or invents
  entries, and every status proof checked against that root is worthless;
- a log that has logged an index root must keep doing so: more than MAX_UNINDEXED entries after the last one
  without a new one is an alert (its verifiers fall back to reading ever longer gaps, or to "not proven").
Every alert carries the statement, its inclusion proof and the checkpoint, the monitor's root, and the entry range.

The index lives in its own SQLite file beside the state database (`<state>.status-index`: statusfile.py, pages of 4
levels as the log stores them, and a journal of the documents applied since the pages were last written),
committed after the chunk's entries are applied and before the chunk itself is: a crash in between makes the
monitor audit the chunk again, and applying entries already in the index changes nothing (a record is a set of
entry indexes). What the audit found about an entry is stored (table
`findings`) before the index moves past it, and a chunk audited again gets those findings back: its alerts are
raised even if the first commit was lost (they are sent once: an alert's id is its rule, log and key).
A monitor that started at the log's end (`--start-at-end`) has not seen the early entries and keeps no index.

Rebuilt: the file is apart from the state, so it can be lost, or restored from an older backup than the state's,
while the state says entries [0, N) were audited. Left so, the index-root audit would stop without a word (no
head for a chunk starting past 0). Each round first asks `start_over_if_behind(N)`: an index covering fewer than N
entries is emptied, and entryaudit.py reads entries [0, N) again (authenticated against the round's checkpoint,
their statements checked and the registry replayed from its start) to rebuild it before auditing new entries; only
the index's alerts are raised then (the others were raised when the entries were first audited).

Where it runs: statusworker.py, in a process of its own when the monitor has workers (it is about half of the
main process's work per entry otherwise), fed the chunk's `StatusItem`s (status_items_of). Its cost per document is
of the kind of the log's own indexer's (the same tlogcore code, in batches of one chunk, split at each index-root);
loadtest/monitor_bench.py prints it.

Cost: the status process keeps one `StatusAudit` open for a whole round (one connection, not one per chunk). A chunk
with no issue or revoke statement only moves the index's size. The pages an update reads or writes stay in memory
as of the head (`_Held`); a chunk commits only its documents (one journal row) and the head, and the changed pages
are written whole, in key order, at a fold: once FOLD_DOCUMENTS documents are journaled or FOLD_PAGES pages have
changed (what the memory holds meanwhile), and when the index is closed, so a page that several chunks change (the
top of the tree above all) is written once per fold, not once per chunk. A journal left by a crash is folded in
by the next update, which first checks that it reaches the head's root. An index this process built from empty
holds every page until a fold lets the deeper ones go (KEEP_PAGES), and its updates then read nothing; otherwise,
once a chunk brings many documents, the top of the tree (the pages down to UPPER_DEPTH, whole) is read into
memory, and a key's path below it is read a page (4 levels, one row) per round.
Updates run with the cyclic collector paused (tlogcore/gcpause.py).
"""

import base64
import contextlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monitor.audit import Checked
from monitor.indexroots import is_index_root
from monitor.statusfile import (
    IndexPages,
    append_journal,
    clear_journal,
    forget_index,
    open_index,
    read_journal,
    write_pages,
)
from tlogcore.errors import TlogError
from tlogcore.gcpause import paused_gc
from tlogcore.indexroot import parse_index_root
from tlogcore.statement import DOCUMENT_KINDS, ISSUE, Statement
from tlogcore.statusindex import EMPTY
from tlogcore.statusindex_nodes import IndexStorageError, NodeId, PathPlan
from tlogcore.statusindex_pages import STRIDE, Page, first_depth_below
from tlogcore.statuspageset import PageSet
from tlogcore.statuspageupdate import PageUpdate
from tlogcore.statusrecord import StatusRecord, new_record

RULE_STATUS_INDEX = "log-status-index"  # an index-root that disagrees with the entries, or none for too long
MAX_UNINDEXED = 100_000  # entries after the last index-root without a new one
# Depths kept in memory while a round lasts: the pages starting at depth 12 or above, whole (at most 2^16 - 1
# nodes, about 20 MB), as the log's own indexer keeps them (logserver/statusindexer.py, UpperLevels).
UPPER_DEPTH = 15
CACHE_FROM = 1024  # documents in one chunk that make reading the top of the tree into memory worth it
# A fold (statusfile.py) comes once the journal holds FOLD_DOCUMENTS documents, or the pages changed since the last
# fold, held in memory meanwhile, reach FOLD_PAGES (about 1.2 KB each: ~150 MB; at 10^6 documents and more a
# document changes about 2.3 pages, so the pages come first there). Each changed page is written once per fold
# instead of once per chunk, the top of the tree above all: fewer folds, fewer writes (§11 "Forty-third round").
FOLD_DOCUMENTS = 1 << 17  # also bounds what a start after a crash applies again from the journal (a few seconds)
FOLD_PAGES = 1 << 17
KEEP_PAGES = 1 << 17  # pages held past a fold: all of them up to this many (the index to about 2·10^5), else the top


@dataclass
class Finding:
    """Something the index audit found wrong: what, about which entry (None: a range), and the evidence."""

    index: int | None
    summary: str
    evidence: dict[str, Any]


# What the index needs of one entry: (index, "issue" or "revoke", the document's SHA-256) for a statement about a
# document, (index, None, the entry) for an `index-root` entry; other entries need nothing.
StatusItem = tuple[int, str | None, bytes]


def status_items(entries: Sequence[bytes], statements: Mapping[int, Statement], start: int) -> list[StatusItem]:
    """The items of entries start, start+1, … in log order (statements: the checked ones, by index)."""
    items: list[StatusItem] = []
    for offset, data in enumerate(entries):
        statement = statements.get(start + offset)
        if statement is not None and statement.kind in DOCUMENT_KINDS and statement.document is not None:
            items.append((start + offset, statement.kind, statement.document))
        elif is_index_root(data):
            items.append((start + offset, None, data))
    return items


@dataclass
class _Head:
    size: int  # the monitor's index covers entries [0, size)
    root: bytes
    last_root_entry: int | None  # where the log last logged an index root, and the size it stated
    last_root_size: int | None


@dataclass
class _Held:
    """The pages as of the index's head, kept in memory while a round lasts: every page read or written since the
    file was opened (once a chunk brings many documents, the top of the tree, the pages starting at depth <=
    UPPER_DEPTH - 3, whole). `dirty` are the pages written since the last fold: the file holds them only as the
    journal's documents (statusfile.py). Kept in step with each commit, after it (never ahead of the file)."""

    pages: dict[NodeId, Page] = field(default_factory=dict)
    dirty: set[NodeId] = field(default_factory=set)
    journaled: int = 0  # documents in the journal, written by this object since the last fold
    upper: bool = False  # the top of the tree is held whole
    # Every stored page is held (the index was empty when this object first updated it, and nothing was let go
    # since): an update then reads nothing and skips its read walk (PageUpdate held_all).
    whole: bool | None = None

    def to_fold(self, pages: Mapping[NodeId, Page]) -> dict[NodeId, Page]:
        """What a fold writes: every page changed since the last fold, and `pages` (changed now, not held yet)."""
        return {**{page: self.pages[page] for page in self.dirty}, **pages}

    def committed(self, pages: Mapping[NodeId, Page], folded: bool) -> None:
        self.pages.update(pages)
        if folded:
            self.dirty.clear()
            if len(self.pages) > KEEP_PAGES:  # the deeper pages go; the top stays, as before folds
                self.pages = {page: nodes for page, nodes in self.pages.items() if page[0] <= UPPER_DEPTH}
                self.whole = False
        else:
            self.dirty.update(pages)


class StatusAudit:
    """One log's recomputed index in `<state>.status-index` (a file of its own: state.py stays as it is; its
    layout: statusfile.py)."""

    def __init__(self, state_path: Path, origin: str) -> None:
        self.origin = origin
        self.db = open_index(state_path)
        self._pages = IndexPages(self.db, origin)
        self._held = _Held()
        self._recovered = False  # the journal a crash may have left has been folded into the pages

    def close(self, fold: bool = True) -> None:
        """Close the file, its journal folded into the pages first (`fold`: not after an error, when the memory
        may be ahead of a write that failed; the journal is then folded when the file is next written)."""
        try:
            if fold and self._held.journaled:
                with paused_gc():  # as for an update: the pages held are many long-lived objects
                    self._fold({})
        finally:
            self.db.close()

    def _head(self, start: int) -> _Head | None:
        row = self.db.execute(
            "SELECT size, root, last_root_entry, last_root_size FROM head WHERE origin = ?", (self.origin,)
        ).fetchone()
        if row is not None:
            return _Head(*row)
        return _Head(0, EMPTY, None, None) if start == 0 else None  # entries before `start` were never seen

    def start_over_if_behind(self, audited: int) -> bool:
        """The state says entries [0, `audited`) were audited: an index that covers fewer (its file lost, or
        restored from an older backup than the state) is emptied, to be rebuilt from entry 0 ("Rebuilt" above)."""
        head = self._head(0)
        if head is not None and head.size >= audited:
            return False
        with self._transaction():
            forget_index(self.db, self.origin)
        self._held, self._recovered = _Held(), True
        return True

    def record(self, document: bytes) -> tuple[StatusRecord | None, int | None]:
        """The document's record in this monitor's index, and the index's size (None: no index kept): its record
        in the stored pages, with the journal's entries about it added (the file is only read). One read
        transaction: a fold by the running monitor between the page reads and the journal's would otherwise hide
        the entries it moved from the journal into pages already read."""
        self.db.execute("BEGIN")
        try:
            head = self._head(1)
            if head is None:
                return None, None
            plan, held = PathPlan([document], head.size), PageSet(head.size)
            while wanted := plan.wanted():
                plan.supply(self._pages.nodes(wanted, held))
            stored = plan.record(document)
            journal = [(i, kind) for i, kind, key in read_journal(self.db, self.origin) if key == document]
        finally:
            self.db.execute("COMMIT")
        issued = [index for index, kind in journal if kind == ISSUE]
        revoked = [index for index, kind in journal if kind != ISSUE]
        if issued or revoked:
            stored = stored.with_entries(issued, revoked) if stored is not None else new_record(issued, revoked)
        return stored, head.size

    def _update(
        self, entries: list[tuple[int, str, bytes]], size: int, ahead: int, held_all: bool = False
    ) -> tuple[bytes, dict[NodeId, Page]]:
        """The entries added to the pages held (those missing read from the file): the new root and changed pages."""
        # With the top held whole (the pages starting at depth <= UPPER_DEPTH - 3), the read plan starts below it.
        held_above = first_depth_below(UPPER_DEPTH) if self._held.upper else 0
        update = PageUpdate(entries, self._held.pages, held_all, held_above)
        reads = PageSet(size)
        reads.pages = self._held.pages  # the update's own page dict: what is read stays held
        while wanted := update.wanted(ahead):
            self._pages.fetch(reads, wanted)
        return update.apply()

    def _recover(self, head: _Head) -> None:
        """Once per open, before the first update: a journal left by a crash (or an error) is folded into the pages;
        the root it reaches must be the head's, or the file is damaged."""
        documents = read_journal(self.db, self.origin)
        if documents:
            root, pages = self._update(documents, head.size, head.size.bit_length() + 4)
            if root != head.root:
                raise IndexStorageError("the status index's journal does not reach the root of its head")
            self._fold(pages)
        self._recovered = True

    def _apply(self, head: _Head, entries: list[tuple[int, str, bytes]], size: int) -> None:
        """Add the entries (all below `size`): the head then covers [0, size). Committed as a journal row and the
        head; at a fold (FOLD_DOCUMENTS, FOLD_PAGES; and at close) the changed pages are written and the journal
        emptied."""
        if not entries:  # nothing for the index in these entries: only its size moves
            self._commit(head, size, head.root, entries, None)
            return
        held = self._held
        if held.whole is None:  # the first update: an index with no document has no page (a consistent one)
            held.whole = head.root == EMPTY
        if not held.upper and len(entries) >= CACHE_FROM and not held.whole:
            for page, nodes in self._pages.upper(UPPER_DEPTH - STRIDE + 1).items():
                held.pages.setdefault(page, nodes)  # a page written since the last fold is newer than the file's
            held.upper = True
        # The update page by page, as the log's indexer makes it (logserver/statusindexer.py UpperLevels): below
        # the top held, a page per path per round; with no top held, each path's pages about log2(size) + 2 deep
        # are asked in the first round.
        root, pages = self._update(entries, head.size, 0 if held.upper else head.size.bit_length() + 4, held.whole)
        # len(dirty) + len(pages) counts a page changed again twice: a bound, not the count (a union costs more)
        fold = held.journaled + len(entries) >= FOLD_DOCUMENTS or len(held.dirty) + len(pages) >= FOLD_PAGES
        self._commit(head, size, root, entries, held.to_fold(pages) if fold else None)
        held.journaled = 0 if fold else held.journaled + len(entries)
        held.committed(pages, fold)  # after the commit: the memory never runs ahead of the file

    def _commit(
        self,
        head: _Head,
        size: int,
        root: bytes,
        entries: Sequence[tuple[int, str, bytes]],
        fold: Mapping[NodeId, Page] | None,
    ) -> None:
        """The new head with either the entries' journal row, or (`fold`) every page changed since the last fold
        and an empty journal: one transaction."""
        with self._transaction():
            if fold is not None:
                write_pages(self.db, self.origin, fold)
                clear_journal(self.db, self.origin)
            elif entries:
                append_journal(self.db, self.origin, entries)
            self.db.execute(
                "INSERT OR REPLACE INTO head (origin, size, root, last_root_entry, last_root_size) "
                "VALUES (?, ?, ?, ?, ?)",
                (self.origin, size, root, head.last_root_entry, head.last_root_size),
            )
        head.size, head.root = size, root

    def _fold(self, pages: Mapping[NodeId, Page]) -> None:
        """Write every page changed since the last fold (and `pages`, not held yet) and empty the journal."""
        held = self._held
        with self._transaction():
            write_pages(self.db, self.origin, held.to_fold(pages))
            clear_journal(self.db, self.origin)
        held.journaled = 0
        held.committed(pages, True)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
            self.db.execute("COMMIT")
        except BaseException:
            if self.db.in_transaction:  # a failed COMMIT may have rolled back already
                self.db.execute("ROLLBACK")
            raise

    def chunk(
        self, entries: Sequence[bytes], statements: Mapping[int, Statement], start: int, registry_keys: frozenset[str]
    ) -> list[Finding]:
        """Audit entries start, start+1, … (with their parsed statements, by index); what is wrong with the index."""
        return self.chunk_items(status_items(entries, statements, start), start, start + len(entries), registry_keys)

    def chunk_items(
        self, items: Sequence[StatusItem], start: int, end: int, registry_keys: frozenset[str]
    ) -> list[Finding]:
        """`chunk` from what the index needs of entries [start, end) (`status_items`): small enough to send to the
        process that keeps the index (statusworker.py). The cyclic collector is paused meanwhile (tlogcore/gcpause.py:
        about 40 % of the update's CPU at 10^5 documents otherwise)."""
        with paused_gc():
            return self._audit_items(items, start, end, registry_keys)

    def _audit_items(
        self, items: Sequence[StatusItem], start: int, end: int, registry_keys: frozenset[str]
    ) -> list[Finding]:
        head = self._head(start)
        if head is None or head.size < start:  # entries [size, start) never applied here: no index over a gap
            return []
        if not self._recovered:
            self._recover(head)
        findings = self._found_before(start, min(end, head.size))  # this chunk again, after a crash
        if end <= head.size:
            return findings
        pending: list[tuple[int, str, bytes]] = []
        for index, kind, data in items:
            if index < head.size:
                continue  # applied before a crash, chunk audited again
            if kind is not None:
                pending.append((index, kind, data))
            else:
                findings += self._keep(self._index_root(head, data, index, pending, registry_keys))
                pending = [item for item in pending if item[0] >= head.size]
        self._apply(head, pending, end)
        if head.last_root_entry is not None and end - head.last_root_entry > MAX_UNINDEXED:
            findings.append(self._missing(head, end))
        return findings

    def _index_root(
        self, head: _Head, data: bytes, index: int, pending: list[tuple[int, str, bytes]], registry_keys: frozenset[str]
    ) -> list[Finding]:
        try:
            statement = parse_index_root(data, check_signature=False)  # its form: audit.py reports a bad one
        except TlogError:
            return []
        evidence = {"index": index, "entry": base64.b64encode(data).decode(), "size": statement.size}
        if statement.signer not in registry_keys:
            return [Finding(index, f"entry {index}: index-root not signed by the log's registry key", evidence)]
        if head.last_root_size is not None and statement.size < head.last_root_size:
            summary = f"entry {index}: index-root covers {statement.size} entries, fewer than the previous one"
            return [Finding(index, summary, evidence)]
        if statement.size > index or statement.size < head.size:
            return []  # audit.py reports the first; the second cannot be checked any more (it is below our index)
        self._apply(head, [item for item in pending if item[0] < statement.size], statement.size)
        head.last_root_entry, head.last_root_size = index, statement.size
        self._save_last_root(head)
        if head.root != statement.root:
            evidence |= {
                "logged_root": base64.b64encode(statement.root).decode(),
                "monitor_root": base64.b64encode(head.root).decode(),
                "entries": [0, statement.size],
            }
            summary = f"entry {index}: the log's status index root for entries 0-{statement.size - 1} is not the "
            summary += "one the monitor computes from those entries: its status proofs cannot be trusted"
            return [Finding(index, summary, evidence)]
        return []

    def _keep(self, findings: list[Finding]) -> list[Finding]:
        """Store findings about an entry before the index moves past it: if the chunk's commit in the state is lost,
        the chunk is audited again with the index already past that entry, and `_found_before` answers."""
        self.db.executemany(
            "INSERT OR REPLACE INTO findings (origin, idx, summary, evidence) VALUES (?, ?, ?, ?)",
            [(self.origin, f.index, f.summary, json.dumps(f.evidence)) for f in findings],
        )
        return findings

    def _found_before(self, start: int, end: int) -> list[Finding]:
        if start >= end:
            return []
        rows = self.db.execute(
            "SELECT idx, summary, evidence FROM findings WHERE origin = ? AND idx >= ? AND idx < ? ORDER BY idx",
            (self.origin, start, end),
        ).fetchall()
        return [Finding(index, summary, json.loads(evidence)) for index, summary, evidence in rows]

    def _save_last_root(self, head: _Head) -> None:
        self.db.execute(
            "UPDATE head SET last_root_entry = ?, last_root_size = ? WHERE origin = ?",
            (head.last_root_entry, head.last_root_size, self.origin),
        )

    def _missing(self, head: _Head, end: int) -> Finding:
        summary = f"no index-root since entry {head.last_root_entry}: {end - (head.last_root_entry or 0)} entries "
        summary += "are not covered by the log's status index"
        return Finding(
            None, summary, {"last_index_root_entry": head.last_root_entry, "entries": [head.last_root_entry, end]}
        )


def status_items_of(checked: Sequence[Checked], entries: Sequence[bytes], start: int) -> list[StatusItem]:
    """The items of an audited chunk: only statements the checks and the registry accepted name a document."""
    statements = {c.index: c.statement for c in checked if c.statement is not None and c.problem is None}
    return status_items(entries, statements, start)
