"""The monitor's own status index (docs/status-proofs.md §9 "Monitor"): recomputed from the entries it audits, and
compared with every `index-root` entry the log appends.

What it indexes is what the log indexes (logserver/statusindexer.py `document_entries`, §1): every entry that
parses as an `issue` or `revoke` statement naming a document, whatever the monitor's checks say of it (a bad
signature, another log's, a signer the registry refuses: each is a `log-bad-entry` alert of its own).

Each `index-root` entry is audited like a statement (canonical, signed by its own signer, for this log, covering
only entries before itself: `index_root_problem`, called from audit.py). Then, in log order (`StatusAudit.chunk`,
called from entryaudit.py for each audited chunk):
- its signer must be one of the log's registry keys (else an alert, and the entry counts for nothing more);
- its size must not go back below the largest size a root was checked at;
- its root must equal the monitor's root over entries [0, size): else the log's index hides or invents entries,
  and every status proof checked against that root is worthless. The size is the index's head (`indexed`) or past
  it: the documents waiting below the size are applied and the head moves there. The size last checked (a second
  root for it): compared with the monitor's root for it and with the first root logged for it, and two different
  roots for one size are an alert with both statements. Below the head, down to `kept`: compared with the index
  cut back to that size (statuscut.py). Below `kept`: it cannot be checked, an alert (it was logged more than
  KEEP_ENTRIES entries after its size, and the monitor let those entries' documents go), except below
  `unchecked_below` (a file written before documents were kept: such roots were never checkable, and stay unsaid);
- a log that has logged an index root must keep doing so: more than MAX_UNINDEXED entries after the last one seen
  (whatever it said) without a new one is an alert about that root's entry (entryaudit.py adds its inclusion proof
  and the checkpoint), raised once, by the entry that crosses the bound. A log that never logged one raises none.
Every alert carries the statement, its inclusion proof and the checkpoint, the monitor's root, and the entry range.
A `tlog-index-root/v2` entry's `keys` root is checked too (keyaudit.py, §12): against the key index of the registry
statements of entries [0, size), all kept in the file; a mismatch joins the entry's finding (one alert per entry).

Where the head stands: a root for size S is logged at an entry i >= S, under load tens of thousands of entries
later, past chunk and round boundaries. While a log has logged no index root (a log with no status index never
logs one), the documents wait in the file too, and are applied once APPLY_EVERY entries wait (one update for many
documents, as a root's); the first root is checked against the documents waiting below its size, or, for a size
the head passed, by the cut back. Once a root was seen, the head moves only to sizes index roots state: the
documents of entries [indexed, size) wait in the file (table `recent`) for the next root, and are applied up to
`size - KEEP_ENTRIES` once more than that many entries wait (the file, the memory and a root's work stay bounded
when roots stop). `recent` also keeps the documents applied within the last KEEP_ENTRIES entries, for the cut back.

The index lives in its own SQLite file beside the state database (`<state>.status-index`: statusfile.py, pages of 4
levels as the log stores them, a journal of the documents applied since the pages were last written, the documents
kept). Crash: each commit (at an index-root entry that counts, and at the chunk's end) writes, in ONE transaction,
the head (its `size` past the entries it covers), their documents (in `recent`; those applied also in the journal),
and what the audit found about them (table `findings`); all of a chunk's commits come before the chunk is
committed in the state. A crash in between makes the monitor audit the chunk again: the entries below the head's
size are skipped, so no document is lost or kept twice, and the findings stored about them are returned, so their
alerts are raised even if the first commit was lost (they are sent once: an alert's id is its rule, log and key).
A monitor that started at the log's end (`--start-at-end`) has not seen the early entries and keeps no index.

Rebuilt: the file is apart from the state, so it can be lost, or restored from an older backup than the state's,
while the state says entries [0, N) were audited. Left so, the index-root audit would stop without a word (no
head for a chunk starting past 0). Each round first asks `start_over_if_behind(N)`: an index covering fewer than N
entries is emptied, and entryaudit.py reads entries [0, N) again (authenticated against the round's checkpoint,
their statements checked and the registry replayed from its start) to rebuild it before auditing new entries; only
the index's alerts are raised then (the others were raised when the entries were first audited). A file written
before the key index kept no registry statements (its head's `keys_from` > 0): it is rebuilt the same way (§12).

Where it runs: statusworker.py, in a process of its own when the monitor has workers (it is about half of the
main process's work per entry otherwise), fed the chunk's `StatusItem`s (status_items_of). Its cost per document is
of the kind of the log's own indexer's (the same tlogcore code, in batches of one chunk, split at each index-root);
loadtest/monitor_bench.py prints it.

Cost: the status process keeps one `StatusAudit` open for a whole round (one connection, not one per chunk). A chunk
with no issue or revoke statement only moves the index's size. The pages an update reads or writes stay in memory
as of the head (`_Held`); a commit writes only its documents (a journal row, a `recent` row) and the head, and the
changed pages are written whole, in key order, at a fold: once FOLD_DOCUMENTS documents are journaled or FOLD_PAGES
pages have changed (what the memory holds meanwhile), and when the index is closed, so a page that several chunks
change (the top of the tree above all) is written once per fold, not once per chunk. A journal left by a crash is
folded in by the next update, which first checks that it reaches the head's root. An index this process built from
empty holds every page until a fold lets the deeper ones go (KEEP_PAGES), and its updates then read nothing;
otherwise, once a chunk brings many documents, the top of the tree (the pages down to UPPER_DEPTH, whole) is read
into memory, and a key's path below it is read a page (4 levels, one row) per round.
Updates run with the cyclic collector paused (tlogcore/gcpause.py).
"""

import base64
import contextlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monitor.audit import Checked, parse_unsigned
from monitor.keyaudit import KeyLedger, append_keys
from monitor.statuscut import root_before
from monitor.statusfile import (
    HEAD_COLUMNS,
    Document,
    IndexPages,
    append_journal,
    append_recent,
    clear_journal,
    forget_index,
    open_index,
    read_journal,
    read_recent,
    trim_recent,
    write_pages,
)
from tlogcore.errors import TlogError
from tlogcore.gcpause import paused_gc
from tlogcore.indexroot import IndexRoot, is_index_root, parse_index_root
from tlogcore.keystatus import RegistryItem
from tlogcore.logkey import is_log_key
from tlogcore.statement import DOCUMENT_KINDS, ISSUE, REGISTRY_KINDS, Statement
from tlogcore.statusindex import EMPTY
from tlogcore.statusindex_nodes import IndexStorageError, NodeId, PathPlan
from tlogcore.statusindex_pages import STRIDE, Page, first_depth_below
from tlogcore.statuspageset import PageSet
from tlogcore.statuspageupdate import PageUpdate
from tlogcore.statusrecord import StatusRecord, new_record

RULE_STATUS_INDEX = "log-status-index"  # an index-root that disagrees with the entries, or none for too long
MAX_UNINDEXED = 100_000  # entries after the last index-root without a new one
# Entries whose documents the file keeps: waiting for a root (past them the head moves without one), and applied
# (a root for a size below the head is checked down to them). Twice MAX_UNINDEXED: a root logged late by less than
# the alert's bound is always checked. At most about 8 MB in the file (41 bytes a document).
KEEP_ENTRIES = 2 * MAX_UNINDEXED
# Depths kept in memory while a round lasts: the pages starting at depth 12 or above, whole (at most 2^16 - 1
# nodes, about 20 MB), as the log's own indexer keeps them (logserver/statusindexer.py, UpperLevels).
UPPER_DEPTH = 15
CACHE_FROM = 1024  # documents in one chunk that make reading the top of the tree into memory worth it
# A fold (statusfile.py) comes once the journal holds FOLD_DOCUMENTS documents, or the pages changed since the last
# fold, held in memory meanwhile, reach FOLD_PAGES (about 1.2 KB each: ~150 MB; at 10^6 documents and more a
# document changes about 2.3 pages, so the pages come first there). Each changed page is written once per fold
# instead of once per chunk, the top of the tree above all: fewer folds, fewer writes (§11 "Forty-third round").
# While a log has logged no index root, its documents wait in `recent` until this many entries do, then go into
# the index in one update: a path's pages above the batch's own subtrees are then walked and hashed once for many
# documents (from 8,192 to 65,536 entries per update: 26-28 to 16-18 µs per document from empty to 2·10^5; §11
# "Forty-eighth round"). A root, when one comes, applies what waits below its size, as it does once roots come.
APPLY_EVERY = 1 << 16
FOLD_DOCUMENTS = 1 << 17  # also bounds what a start after a crash applies again from the journal (a few seconds)
FOLD_PAGES = 1 << 17
KEEP_PAGES = 1 << 17  # pages held past a fold: all of them up to this many (the index to about 2·10^5), else the top


@dataclass
class Finding:
    """Something the index audit found wrong: what, about which entry (its inclusion proof is added; None: a
    range), and the evidence. `at`: the entry whose audit found it, where it is kept (None: `index`)."""

    index: int | None
    summary: str
    evidence: dict[str, Any]
    at: int | None = None


# What the index needs of one entry: (index, "issue" or "revoke", the document's SHA-256) for a statement about a
# document, (index, "issuer-add" or "issuer-retire", the issuer key's text) for a registry statement (the key
# index, §12), (index, None, the entry) for an `index-root` entry; other entries need nothing.
StatusItem = tuple[int, str | None, bytes]


def status_items(entries: Sequence[bytes], statements: Mapping[int, Statement], start: int) -> list[StatusItem]:
    """The items of entries start, start+1, … in log order (statements: those to index, by index)."""
    items: list[StatusItem] = []
    for offset, data in enumerate(entries):
        statement = statements.get(start + offset)
        if statement is not None and statement.kind in DOCUMENT_KINDS and statement.document is not None:
            items.append((start + offset, statement.kind, statement.document))
        elif statement is not None and statement.kind in REGISTRY_KINDS and statement.issuer is not None:
            items.append((start + offset, statement.kind, statement.issuer.encode()))
        elif is_index_root(data):
            items.append((start + offset, None, data))
    return items


@dataclass
class _Head:
    size: int  # entries [0, size) were audited into the file: their documents are in the index or wait in `recent`
    root: bytes  # the index's root over entries [0, indexed)
    last_root_entry: int | None  # the last index-root seen (MAX_UNINDEXED counts from it), and the size it stated
    last_root_size: int | None  # the largest size an index-root was checked at
    indexed: int
    kept: int  # `recent` holds the documents of entries [kept, size)
    unchecked_below: int  # a file from before `recent`: a root below this size was never checkable
    last_root: bytes | None = None  # the statement at last_root_entry
    checked_entry: int | None = None  # the first index-root for last_root_size, and the monitor's root for it
    checked_statement: bytes | None = None
    checked_root: bytes | None = None
    keys_from: int = 0  # the key index (keyaudit.py): registry statements kept from this entry (0: all of them)
    keys_checked: int = 0  # v2 roots whose key index root was checked
    keys_size: int | None = None  # the largest size whose logged key index root was the monitor's


@dataclass
class _Step:
    """What one commit writes beside the head: the documents of the entries it covers (`docs`, from the head's
    size on), those applied to the index (the waiting ones below `indexed`, and the new root and pages), and the
    findings about those entries."""

    docs: list[Document] = field(default_factory=list)
    keys: list[RegistryItem] = field(default_factory=list)  # the registry statements, kept (keyaudit.py)
    findings: list[Finding] = field(default_factory=list)
    indexed: int | None = None
    applied: list[Document] = field(default_factory=list)
    root: bytes = EMPTY
    pages: dict[NodeId, Page] = field(default_factory=dict)


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


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class StatusAudit:
    """One log's recomputed index in `<state>.status-index` (a file of its own: state.py stays as it is; its
    layout: statusfile.py)."""

    def __init__(self, state_path: Path, origin: str) -> None:
        self.origin = origin
        self.db = open_index(state_path)
        self._pages = IndexPages(self.db, origin)
        self._held = _Held()
        self._recovered = False  # the journal a crash may have left has been folded into the pages
        self._keys: KeyLedger | None = None  # the registry statements the file keeps, once a v2 root needs them
        self.apply_every = APPLY_EVERY  # entries a root-less log's batch waits for (a benchmark sets its own)

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
        row = self.db.execute(f"SELECT {', '.join(HEAD_COLUMNS)} FROM head WHERE origin = ?", (self.origin,)).fetchone()
        if row is not None:
            return _Head(*row)
        return _Head(0, EMPTY, None, None, 0, 0, 0) if start == 0 else None  # entries before `start` never seen

    def start_over_if_behind(self, audited: int) -> bool:
        """The state says entries [0, `audited`) were audited: an index that covers fewer (its file lost, or
        restored from an older backup than the state) is emptied, to be rebuilt from entry 0 ("Rebuilt" above)."""
        head = self._head(0)
        if head is not None and head.size >= audited and not head.keys_from:  # keys_from: a file from before §12
            return False
        with self._transaction():
            forget_index(self.db, self.origin)
        self._held, self._recovered, self._keys = _Held(), True, None
        return True

    def record(self, document: bytes) -> tuple[StatusRecord | None, int | None]:
        """The document's record over the entries audited into this index, and their count (None: no index kept):
        its record in the stored pages, with the journal's entries about it and those of the documents waiting
        for an index root added (the file is only read). One read transaction: a fold by the running monitor
        between the page reads and the journal's would otherwise hide the entries it moved from the journal into
        pages already read."""
        self.db.execute("BEGIN")
        try:
            head = self._head(1)
            if head is None:
                return None, None
            plan, held = PathPlan([document], head.indexed), PageSet(head.indexed)
            while wanted := plan.wanted():
                plan.supply(self._pages.nodes(wanted, held))
            stored = plan.record(document)
            later = read_journal(self.db, self.origin) + read_recent(self.db, self.origin, head.indexed, head.size)
            found = [(i, kind) for i, kind, key in later if key == document]
        finally:
            self.db.execute("COMMIT")
        issued = [index for index, kind in found if kind == ISSUE]
        revoked = [index for index, kind in found if kind != ISSUE]
        if issued or revoked:
            stored = stored.with_entries(issued, revoked) if stored is not None else new_record(issued, revoked)
        return stored, head.size

    def _update(
        self, entries: list[Document], size: int, ahead: int, held_all: bool = False
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
            root, pages = self._update(documents, head.indexed, head.indexed.bit_length() + 4)
            if root != head.root:
                raise IndexStorageError("the status index's journal does not reach the root of its head")
            self._fold(pages)
        elif head.root != EMPTY:  # the pages are the head: their top must say so (a chunk may apply nothing for long)
            plan, reads = PathPlan([], head.indexed), PageSet(head.indexed)
            reads.pages = self._held.pages
            while wanted := plan.wanted():
                plan.supply(self._pages.nodes(wanted, reads))
            if plan.root_hash() != head.root:
                raise IndexStorageError("the status index's pages do not reach the root of its head")
        self._recovered = True

    def _apply_below(self, head: _Head, step: _Step, size: int) -> bytes:
        """The documents waiting below `size` (in the file, and the step's own) added to the index, which then
        covers [0, size): its new root, and the step's update to commit."""
        waiting = read_recent(self.db, self.origin, head.indexed, size) if head.indexed < head.size else []
        step.applied = waiting + [document for document in step.docs if document[0] < size]
        step.indexed, step.root, step.pages = size, head.root, {}
        if not step.applied:  # nothing for the index in these entries: only its size moves
            return head.root
        held = self._held
        if held.whole is None:  # the first update: an index with no document has no page (a consistent one)
            held.whole = head.root == EMPTY
        if not held.upper and len(step.applied) >= CACHE_FROM and not held.whole:
            for page, nodes in self._pages.upper(UPPER_DEPTH - STRIDE + 1).items():
                held.pages.setdefault(page, nodes)  # a page written since the last fold is newer than the file's
            held.upper = True
        # The update page by page, as the log's indexer makes it (logserver/statusindexer.py UpperLevels): below
        # the top held, a page per path per round; with no top held, each path's pages about log2(size) + 2 deep
        # are asked in the first round.
        ahead = 0 if held.upper else head.indexed.bit_length() + 4
        step.root, step.pages = self._update(step.applied, head.indexed, ahead, held.whole)
        return step.root

    def _root_cut_to(self, head: _Head, size: int) -> bytes:
        """The index's root over [0, size), for a size below its head and at or past `kept` (statuscut.py)."""
        documents = {document for _, _, document in read_recent(self.db, self.origin, size, head.indexed)}
        reads = PageSet(head.indexed)
        reads.pages = self._held.pages  # as in `_update`: the pages held are the head's, and what is read stays
        return root_before(size, documents, lambda ids: self._pages.nodes(ids, reads))

    def _commit(self, head: _Head, size: int, step: _Step) -> None:
        """One transaction: the step's documents kept (a `recent` row) and those applied journaled, or (a fold)
        every page changed since the last fold written and the journal emptied; the documents before the window
        let go; the head at `size`; the step's findings stored."""
        held, applied, pages = self._held, step.applied, step.pages
        fold = bool(applied) and (
            held.journaled + len(applied) >= FOLD_DOCUMENTS or len(held.dirty) + len(pages) >= FOLD_PAGES
        )  # len(dirty) + len(pages) counts a page changed again twice: a bound, not the count (a union costs more)
        with self._transaction():
            if fold:
                write_pages(self.db, self.origin, held.to_fold(pages))
                clear_journal(self.db, self.origin)
            elif applied:
                append_journal(self.db, self.origin, applied)
            if step.docs:
                append_recent(self.db, self.origin, head.size, step.docs)
            append_keys(self.db, self.origin, step.keys)
            if step.indexed is not None:
                head.indexed, head.root = step.indexed, step.root
            head.size = size
            head.kept = trim_recent(self.db, self.origin, head.kept, min(head.indexed, size - KEEP_ENTRIES))
            values = [getattr(head, name) for name in HEAD_COLUMNS]
            self.db.execute(
                f"INSERT OR REPLACE INTO head (origin, {', '.join(HEAD_COLUMNS)}) "
                f"VALUES (?{', ?' * len(HEAD_COLUMNS)})",
                [self.origin, *values],
            )
            self._keep(step.findings)
        if self._keys is not None:
            self._keys.committed(step.keys)
        if applied:
            held.journaled = 0 if fold else held.journaled + len(applied)
            held.committed(pages, fold)  # after the commit: the memory never runs ahead of the file

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
        step = _Step()
        for index, kind, data in items:
            if index < head.size:
                continue  # in the file already (a chunk audited again after a crash)
            if kind in REGISTRY_KINDS:
                step.keys.append((index, str(kind), data.decode()))
            elif kind is not None:
                step.docs.append((index, kind, data))
            elif self._index_root(head, step, data, index, registry_keys):
                findings += step.findings
                self._commit(head, index + 1, step)  # what the root changed, with the entries up to it
                step = _Step()
        step.findings += self._missing(head, end)
        findings += step.findings
        if head.last_root_entry is None:  # no root yet, maybe never: the waiting documents applied in batches
            if head.indexed <= end - self.apply_every:
                self._apply_below(head, step, end)
        elif head.indexed < end - KEEP_ENTRIES:  # too many waiting: the head moves on without a root
            self._apply_below(head, step, end - KEEP_ENTRIES)
        self._commit(head, end, step)
        return findings

    def _index_root(self, head: _Head, step: _Step, data: bytes, index: int, registry_keys: frozenset[str]) -> bool:
        """Audit an index-root entry (its findings into the step); True when it counts as the log's root (the head
        then changed: commit it)."""
        try:
            statement = parse_index_root(data, check_signature=False)  # its form: audit.py reports a bad one
        except TlogError:
            return False
        evidence = {"index": index, "entry": b64(data), "size": statement.size}
        if statement.signer not in registry_keys:
            summary = f"entry {index}: index-root not signed by the log's registry key"
            step.findings.append(Finding(index, summary, evidence))
            return False
        if statement.size > index:
            return False  # audit.py reports it
        step.findings += self._missing(head, index)
        head.last_root_entry, head.last_root = index, data
        found = self._check_root(head, step, statement, evidence)
        if self._keys is None:
            self._keys = KeyLedger(self.db, self.origin)
        keys = self._keys.check(head, statement, step.keys, index)
        if keys is not None:  # one finding per entry, as one alert (its id): a key index mismatch joins it (§12)
            first = found[0] if found else Finding(index, "", evidence)
            found = [Finding(index, "; ".join(filter(None, (first.summary, keys[0]))), first.evidence | keys[1])]
        step.findings += found
        return True

    def _check_root(self, head: _Head, step: _Step, statement: IndexRoot, evidence: dict[str, Any]) -> list[Finding]:
        """The rules of the module's docstring for a root stating `statement.size`, in their order."""
        index, size = evidence["index"], statement.size
        if head.last_root_size is not None and size < head.last_root_size:
            summary = f"entry {index}: index-root covers {size} entries, fewer than the previous one"
            return [Finding(index, summary, evidence)]
        if size == head.last_root_size:
            return self._again(head, statement, evidence)
        if size >= head.indexed:
            root = self._apply_below(head, step, size)
        elif size >= head.kept:
            root = self._root_cut_to(head, size)
        elif size < head.unchecked_below:
            return []  # written by a monitor that could not check it then; nor can this one now
        else:
            summary = f"entry {index}: the index-root for entries 0-{size - 1} cannot be checked: it was logged "
            summary += f"more than {KEEP_ENTRIES} entries after them, and the monitor's index moved past them"
            return [Finding(index, summary, evidence | {"entries": [0, size], "kept_from": head.kept})]
        head.last_root_size, head.checked_entry, head.checked_root = size, index, root
        head.checked_statement = head.last_root  # this entry's statement: the first root for that size
        if root == statement.root:
            return []
        evidence |= {"logged_root": b64(statement.root), "monitor_root": b64(root), "entries": [0, size]}
        summary = f"entry {index}: the log's status index root for entries 0-{size - 1} is not the "
        summary += "one the monitor computes from those entries: its status proofs cannot be trusted"
        return [Finding(index, summary, evidence)]

    def _again(self, head: _Head, statement: IndexRoot, evidence: dict[str, Any]) -> list[Finding]:
        """A second root for the size last checked: the same as the monitor's root, and as the first one logged."""
        first = head.checked_statement
        if head.checked_root is None or first is None:
            return []  # checked by a monitor that kept neither (a file from before): nothing to compare with
        first_root = parse_index_root(first, check_signature=False).root
        if statement.root == head.checked_root == first_root:
            return []
        index, size = evidence["index"], statement.size
        evidence |= {
            "logged_root": b64(statement.root),
            "monitor_root": b64(head.checked_root),
            "entries": [0, size],
            "first_index_root_entry": head.checked_entry,
            "first_index_root": b64(first),
        }
        summary = f"entry {index}: a second index-root for entries 0-{size - 1}"
        if statement.root != first_root:
            summary += f", with another root than the one entry {head.checked_entry} logged for them"
        if statement.root != head.checked_root:
            summary += ", and not the one the monitor computes from those entries"
        return [Finding(index, summary, evidence)]

    def _keep(self, findings: list[Finding]) -> None:
        """Store findings about entries (inside the commit that moves the index past them): if the chunk's commit
        in the state is lost, the chunk is audited again with the index already past them, and `_found_before`
        answers."""
        self.db.executemany(
            "INSERT OR REPLACE INTO findings (origin, idx, summary, evidence) VALUES (?, ?, ?, ?)",
            [(self.origin, f.index if f.at is None else f.at, f.summary, json.dumps(f.evidence)) for f in findings],
        )

    def _found_before(self, start: int, end: int) -> list[Finding]:
        if start >= end:
            return []
        rows = self.db.execute(
            "SELECT idx, summary, evidence FROM findings WHERE origin = ? AND idx >= ? AND idx < ? ORDER BY idx",
            (self.origin, start, end),
        ).fetchall()
        found = []
        for at, summary, text in rows:
            evidence = json.loads(text)
            about = evidence.get("last_index_root_entry", at)  # "no index-root for too long" is about that root
            found.append(Finding(about, summary, evidence, at if about != at else None))
        return found

    def _missing(self, head: _Head, upto: int) -> list[Finding]:
        """More than MAX_UNINDEXED entries before `upto` since the last index-root seen: a finding about that root,
        kept at the entry that crosses the bound (raised once: the head's size is not past that entry yet)."""
        last = head.last_root_entry
        if last is None or not head.size <= last + MAX_UNINDEXED < upto:
            return []
        size = parse_index_root(head.last_root, check_signature=False).size if head.last_root is not None else None
        evidence: dict[str, Any] = {
            "last_index_root_entry": last,
            "last_index_root_size": size,
            "entries": [last + 1, last + MAX_UNINDEXED + 1],
        }
        if head.last_root is not None:
            evidence["entry"] = b64(head.last_root)
        summary = f"no index-root in the {MAX_UNINDEXED} entries after entry {last}: entries {last + 1}-"
        summary += f"{last + MAX_UNINDEXED} are not covered by the log's status index"
        return [Finding(last, summary, evidence, last + MAX_UNINDEXED)]


def _unsigned_statement(data: bytes) -> Statement | None:
    """A statement as the log's indexer parses it (without its signature); None for an entry that is not one."""
    if is_index_root(data) or is_log_key(data):
        return None
    try:
        return parse_unsigned(data)
    except TlogError:
        return None


def status_items_of(checked: Sequence[Checked], entries: Sequence[bytes], start: int) -> list[StatusItem]:
    """The items of an audited chunk, by the log's rule (the module's docstring): a statement the checks refused
    names its document all the same; an entry that does not parse at all names none."""
    statements = {}
    for item in checked:
        statement = item.statement
        if statement is None and item.problem is not None:  # not parsed with its signature, or not at all
            statement = _unsigned_statement(entries[item.index - start])
        if statement is not None:
            statements[item.index] = statement
    return status_items(entries, statements, start)
