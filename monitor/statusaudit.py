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

The rows live in their own SQLite file beside the state database (`<state>.status-index`), written after the
chunk's entries are applied and before the chunk itself is committed: a crash in between makes the monitor audit the
chunk again, and applying entries already in the index changes nothing (a record is a set of entry indexes). What
the audit found about an entry is stored (table `findings`) before the index moves past it, and a chunk audited again
gets those findings back: its alerts are raised even if the first commit was lost (they are sent once: an alert's id
is its rule, log and key).
A monitor that started at the log's end (`--start-at-end`) has not seen the early entries and keeps no index.

Where it runs: statusworker.py, in a process of its own when the monitor has workers (it is about half of the
main process's work per entry otherwise), fed the chunk's `StatusItem`s (status_items_of). Its cost per document is
of the kind of the log's own indexer's (the same tlogcore code, in batches of one chunk, split at each index-root);
loadtest/monitor_bench.py prints it.

Cost: the status process keeps one `StatusAudit` open for a whole round (one connection, not one per chunk). A chunk
with no issue or revoke statement only moves the index's size. Once a chunk brings many documents, the top of the
tree (every node down to CACHED_DEPTH) is read into memory and kept in step with each commit: every big chunk
rewrites those nodes, and a key's path below them is read only where its node at CACHED_DEPTH is interior (in the
compressed tree nothing is stored below a leaf or an empty subtree, docs/status-proofs.md §6). Rows are written in
key order.
"""

import base64
import json
import sqlite3
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monitor import alerts as A
from monitor.audit import Checked
from monitor.indexroots import is_index_root
from monitor.logcontext import LogContext
from tlogcore.errors import TlogError
from tlogcore.indexroot import parse_index_root
from tlogcore.statement import DOCUMENT_KINDS, Statement
from tlogcore.statusindex import EMPTY
from tlogcore.statusindex_nodes import (
    Interior,
    NodeId,
    PathPlan,
    StoredNode,
    node_id_bytes,
    node_id_from_bytes,
    parse_node,
)
from tlogcore.statusrecord import StatusRecord

RULE_STATUS_INDEX = "log-status-index"  # an index-root that disagrees with the entries, or none for too long
MAX_UNINDEXED = 100_000  # entries after the last index-root without a new one
CACHED_DEPTH = 16  # nodes kept in memory while a round lasts: at most 2^17 rows (tens of MB)
CACHE_FROM = 1024  # documents in one chunk that make reading the top of the tree into memory worth it
SCHEMA = """
CREATE TABLE IF NOT EXISTS rows (origin TEXT NOT NULL, node BLOB NOT NULL, data BLOB NOT NULL,
                                 PRIMARY KEY (origin, node)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS head (origin TEXT PRIMARY KEY, size INTEGER NOT NULL, root BLOB NOT NULL,
                                 last_root_entry INTEGER, last_root_size INTEGER);
CREATE TABLE IF NOT EXISTS findings (origin TEXT NOT NULL, idx INTEGER NOT NULL, summary TEXT NOT NULL,
                                     evidence TEXT NOT NULL, PRIMARY KEY (origin, idx)) WITHOUT ROWID;
"""


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


class StatusAudit:
    """One log's recomputed index in `<state>.status-index` (a file of its own: state.py stays as it is)."""

    def __init__(self, state_path: Path, origin: str) -> None:
        self.origin = origin
        self.db = sqlite3.connect(state_path.with_name(state_path.name + ".status-index"), isolation_level=None)
        self.db.execute("PRAGMA journal_mode = WAL")
        self.db.execute("PRAGMA synchronous = FULL")
        self.db.executescript(SCHEMA)
        self._upper: dict[NodeId, StoredNode] | None = None  # the nodes down to CACHED_DEPTH, once read

    def close(self) -> None:
        self.db.close()

    def _head(self, start: int) -> _Head | None:
        row = self.db.execute(
            "SELECT size, root, last_root_entry, last_root_size FROM head WHERE origin = ?", (self.origin,)
        ).fetchone()
        if row is not None:
            return _Head(*row)
        return _Head(0, EMPTY, None, None) if start == 0 else None  # entries before `start` were never seen

    def _read(self, ids: Sequence[NodeId]) -> dict[NodeId, StoredNode]:
        by_bytes = {node_id_bytes(node): node for node in ids}
        found: dict[NodeId, StoredNode] = {}
        keys = list(by_bytes)
        for first in range(0, len(keys), 400):
            chunk = keys[first : first + 400]
            rows = self.db.execute(
                f"SELECT node, data FROM rows WHERE origin = ? AND node IN ({','.join('?' * len(chunk))})",
                [self.origin, *chunk],
            ).fetchall()
            found.update({by_bytes[node]: parse_node(data) for node, data in rows})
        return found

    def _read_upper(self) -> dict[NodeId, StoredNode]:
        if self._upper is None:
            rows = self.db.execute(
                "SELECT node, data FROM rows WHERE origin = ? AND node < ?",
                (self.origin, (CACHED_DEPTH + 1).to_bytes(2, "big")),  # node ids start with their u16 depth
            ).fetchall()
            self._upper = {node_id_from_bytes(node): parse_node(data) for node, data in rows}
        return self._upper

    def _read_cached(self, ids: Sequence[NodeId], upper: Mapping[NodeId, StoredNode]) -> dict[NodeId, StoredNode]:
        """`_read`, answering the top of the tree from memory and asking SQLite only below interior nodes."""
        found: dict[NodeId, StoredNode] = {}
        deep: list[NodeId] = []
        for node in ids:
            depth, prefix = node
            if depth <= CACHED_DEPTH:
                if (row := upper.get(node)) is not None:
                    found[node] = row
            elif isinstance(upper.get((CACHED_DEPTH, prefix >> (depth - CACHED_DEPTH))), Interior):
                deep.append(node)
        found.update(self._read(deep))
        return found

    def record(self, document: bytes) -> tuple[StatusRecord | None, int | None]:
        """The document's record in this monitor's index, and the index's size (None: no index kept)."""
        head = self._head(1)
        if head is None:
            return None, None
        plan = PathPlan([document], head.size)
        while wanted := plan.wanted():
            plan.supply(self._read(wanted))
        return plan.record(document), head.size

    def _apply(self, head: _Head, entries: list[tuple[int, str, bytes]], size: int) -> None:
        """Add the entries (all below `size`) and write the rows; the head then covers [0, size)."""
        if not entries:  # nothing for the index in these entries: only its size moves
            self._write(head, {}, size, head.root)
            return
        if self._upper is None and len(entries) >= CACHE_FROM:
            self._read_upper()
        upper = self._upper
        plan = PathPlan([document for _, _, document in entries], head.size)
        while wanted := plan.wanted():
            plan.supply(self._read(wanted) if upper is None else self._read_cached(wanted, upper))
        update = plan.apply_entries(entries)
        self._write(head, update.writes, size, update.root)
        if upper is not None:  # after the commit: the memory copy never runs ahead of the file
            upper.update((node, row) for node, row in update.writes.items() if node[0] <= CACHED_DEPTH)

    def _write(self, head: _Head, writes: Mapping[NodeId, StoredNode], size: int, root: bytes) -> None:
        """The rows and the new head, in one transaction."""
        self.db.execute("BEGIN IMMEDIATE")
        origin = self.origin  # rows in key order: each B-tree page is visited once, not once per row
        rows = sorted([(origin, node_id_bytes(node), row.to_bytes()) for node, row in writes.items()])
        self.db.executemany("INSERT OR REPLACE INTO rows (origin, node, data) VALUES (?, ?, ?)", rows)
        self.db.execute(
            "INSERT OR REPLACE INTO head (origin, size, root, last_root_entry, last_root_size) VALUES (?, ?, ?, ?, ?)",
            (self.origin, size, root, head.last_root_entry, head.last_root_size),
        )
        self.db.execute("COMMIT")
        head.size, head.root = size, root

    def chunk(
        self, entries: Sequence[bytes], statements: Mapping[int, Statement], start: int, registry_keys: frozenset[str]
    ) -> list[Finding]:
        """Audit entries start, start+1, … (with their parsed statements, by index); what is wrong with the index."""
        return self.chunk_items(status_items(entries, statements, start), start, start + len(entries), registry_keys)

    def chunk_items(
        self, items: Sequence[StatusItem], start: int, end: int, registry_keys: frozenset[str]
    ) -> list[Finding]:
        """`chunk` from what the index needs of entries [start, end) (`status_items`): small enough to send to the
        process that keeps the index (statusworker.py)."""
        head = self._head(start)
        if head is None:
            return []
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


async def status_alerts(
    context: LogContext, findings: Sequence[Finding], evidence_of: Callable[[int], Awaitable[dict[str, Any]]]
) -> list[A.Alert]:
    """The alerts about the log's status index from a chunk's findings, each with the entry's inclusion proof and the
    checkpoint (`evidence_of`)."""
    alerts = []
    for finding in findings:
        evidence = dict(finding.evidence)
        key = f"missing index-root after {finding.evidence.get('last_index_root_entry')}"
        if finding.index is not None:
            evidence |= await evidence_of(finding.index)
            key = f"index-root {finding.index}"
        alerts.append(context.alert(RULE_STATUS_INDEX, A.MISBEHAVIOUR, key, finding.summary, evidence))
    return alerts
