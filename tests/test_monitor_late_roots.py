"""Index roots logged late (monitor/statusaudit.py): the root for size S is logged at an entry i >= S, often past a
chunk or round boundary of the monitor. Every such root is checked: against the monitor's index held at S (the
documents of the entries after the last root's size wait, kept in the index file), or, for a root below the
index's head, against the root recomputed with the later entries cut away (statuscut.py). A second root for a
size already checked is compared with the first; a crash between the index's commit and the state's neither loses
nor doubles the waiting documents; and "no index-root for too long" is kept across a crash, with the last root's
entry as evidence. (A log that never logs a root: tests/test_monitor_status_batches.py.)"""

import base64
import random
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

import monitor.statusaudit as statusaudit
from monitor.statusaudit import Finding, StatusAudit, StatusItem
from monitor.statusfile import index_path
from tlogcore.indexroot import IndexRoot, sign_index_root
from tlogcore.keys import Ed25519Signer
from tlogcore.statement import ISSUE, REVOKE
from tlogcore.statusindex import EMPTY
from tlogcore.statusindex_nodes import PathPlan, read_paths

pytestmark = pytest.mark.usefixtures("apply_each_chunk")  # each chunk applied as it ends (conftest.py)

ORIGIN = "log.example/late"
REGISTRY = Ed25519Signer("registry.example", b"\x41" * 32)
KEYS = frozenset([REGISTRY.verifier().vkey])
CHUNK = 100


def reference(items: list[StatusItem], size: int) -> PathPlan:
    """The index over entries [0, size) built from scratch, in one batch (no monitor code)."""
    entries = [(index, str(kind), data) for index, kind, data in items if kind is not None and index < size]
    keys = [data for _, _, data in entries]
    return read_paths(PathPlan(keys), read_paths(PathPlan(keys), {}).apply_entries(entries).writes)


def reference_root(items: list[StatusItem], size: int) -> bytes:
    plan = reference(items, size)
    return EMPTY if not plan.nodes else plan.root_hash()


class Log:
    """What the monitor's index needs of a log's entries, built in log order."""

    def __init__(self, seed: int = 1) -> None:
        self.rng = random.Random(seed)
        self.items: list[StatusItem] = []
        self.size = 0
        self.seen: list[bytes] = []

    def documents(self, count: int) -> None:
        for _ in range(count):
            again = self.seen and self.rng.random() < 0.2
            document = self.rng.choice(self.seen) if again else self.rng.randbytes(32)
            self.seen.append(document)
            self.items.append((self.size, REVOKE if again else ISSUE, document))
            self.size += 1

    def others(self, count: int) -> None:
        """Entries that name no document (registry statements, say)."""
        self.size += count

    def index_root(self, size: int, root: bytes | None = None) -> int:
        """An index-root for [0, size) at the next entry: the honest root unless `root` is given."""
        root = reference_root(self.items, size) if root is None else root
        statement = IndexRoot(ORIGIN, REGISTRY.verifier().vkey, 1_800_000_000 + self.size, size, root)
        self.items.append((self.size, None, sign_index_root(statement, REGISTRY)))
        self.size += 1
        return self.size - 1

    def between(self, start: int, end: int) -> list[StatusItem]:
        return [item for item in self.items if start <= item[0] < end]


def audit_range(audit: StatusAudit, log: Log, start: int, end: int, step: int = CHUNK) -> list[Finding]:
    """Entries [start, end) audited chunk by chunk, as entryaudit.py does."""
    found: list[Finding] = []
    for first in range(start, end, step):
        last = min(end, first + step)
        found += audit.chunk_items(log.between(first, last), first, last, KEYS)
    return found


@pytest.fixture
def audit(tmp_path: Path) -> Iterator[StatusAudit]:
    opened = StatusAudit(tmp_path / "state.db", ORIGIN)
    try:
        yield opened
    finally:
        opened.close()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.mark.parametrize("before", ["the log's first root", "after an honest root"])
def test_a_lying_root_logged_late_is_caught(audit: StatusAudit, before: str) -> None:
    """The review's attack: a root hiding a revocation, logged past a chunk boundary after the size it states."""
    log = Log()
    if before == "after an honest root":
        log.documents(20)
        log.index_root(15)
    log.documents(30)
    victim = log.seen[3]
    log.items.append((log.size, REVOKE, victim))
    revocation = log.size
    log.size += 1
    log.documents(10)
    size = log.size
    lie = reference_root([item for item in log.items if item[0] != revocation], size)
    log.documents(CHUNK)  # at least one chunk boundary between the size and the root's entry
    at = log.index_root(size, lie)
    log.documents(10)
    found = audit_range(audit, log, 0, log.size)
    assert [f.index for f in found] == [at], [f.summary for f in found]
    evidence = found[0].evidence
    assert evidence["logged_root"] == b64(lie) and evidence["entries"] == [0, size]
    assert evidence["monitor_root"] == b64(reference_root(log.items, size))


def honest_stream(log: Log, entries: int, lag: tuple[int, int]) -> list[tuple[int, int]]:
    """A log under load: batches of documents, each batch's root logged `lag` entries after its size (the next
    batch in between). Returns (entry, size) of every root."""
    roots = []
    while log.size < entries:
        log.documents(log.rng.randint(20, 90))
        size = log.size
        log.documents(log.rng.randint(*lag))
        roots.append((log.index_root(size), size))
    return roots


def test_honest_roots_logged_late_raise_nothing_and_are_all_checked(audit: StatusAudit) -> None:
    log = Log(7)
    roots = honest_stream(log, 1500, (0, 250))
    log.documents(40)
    assert sum(1 for entry, size in roots if entry // CHUNK > size // CHUNK) > 5  # most cross a boundary
    assert audit_range(audit, log, 0, log.size) == []
    head = audit._head(0)
    assert head is not None and (head.last_root_entry, head.last_root_size) == roots[-1]
    assert head.size == log.size and head.indexed == roots[-1][1]  # the later documents wait for the next root
    expected = reference(log.items, log.size)  # check-status: every audited entry, waiting ones too
    for document in log.rng.sample(log.seen, 30):
        assert audit.record(document) == (expected.record(document), log.size)


def test_a_second_different_root_for_a_checked_size_is_caught(audit: StatusAudit) -> None:
    log = Log(3)
    log.documents(40)
    first = log.index_root(35)
    log.documents(CHUNK + 10)
    again = log.index_root(35)  # the same root again: nothing to say
    log.documents(5)
    other = log.index_root(35, reference_root(log.items, 30))  # a different root for the same size
    log.documents(5)
    found = audit_range(audit, log, 0, log.size)
    assert [f.index for f in found] == [other], [f.summary for f in found]
    evidence = found[0].evidence
    assert evidence["first_index_root_entry"] == first and again != first
    assert evidence["first_index_root"] == b64(log.items[first][2])
    assert evidence["entry"] == b64(log.items[other][2])
    assert evidence["logged_root"] == b64(reference_root(log.items, 30))
    assert evidence["monitor_root"] == b64(reference_root(log.items, 35))


@pytest.mark.parametrize("crash", ["after the chunk's index commit", "between two commits of one chunk"])
def test_a_crash_neither_loses_nor_doubles_waiting_documents(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, crash: str
) -> None:
    """The index is committed before the state: after a crash the state says the chunk was not audited, and it
    is audited again over an index that already holds (or keeps waiting) its documents."""
    log = Log(11)
    log.documents(30)
    log.index_root(25)
    log.documents(CHUNK + 30)  # [31, 161): waiting for the next root
    inside = log.index_root(120)  # a root inside the chunk audited again: two commits in that chunk
    log.documents(CHUNK)
    lie_size = log.size - 10
    lie = reference_root([item for item in log.items if item[0] != 150], lie_size)  # entry 150's document lost
    log.index_root(lie_size, lie)
    log.documents(20)
    final = log.size - 5
    log.index_root(final)
    state = tmp_path / "state.db"
    audit = StatusAudit(state, ORIGIN)
    assert audit_range(audit, log, 0, CHUNK) == []
    if crash == "after the chunk's index commit":
        assert audit.chunk_items(log.between(CHUNK, 2 * CHUNK), CHUNK, 2 * CHUNK, KEYS) == []
    else:
        commits = []
        real = StatusAudit._commit

        def dies_at_the_second(self: StatusAudit, *args: object) -> None:
            commits.append(1)
            if len(commits) == 2:
                raise KeyboardInterrupt  # the process killed after the chunk's first commit
            real(self, *args)  # type: ignore[arg-type]

        monkeypatch.setattr(StatusAudit, "_commit", dies_at_the_second)
        with pytest.raises(KeyboardInterrupt):
            audit.chunk_items(log.between(CHUNK, 2 * CHUNK), CHUNK, 2 * CHUNK, KEYS)
        monkeypatch.setattr(StatusAudit, "_commit", real)
        head = audit._head(0)
        assert head is not None and head.size == inside + 1  # the first commit landed: up to the root
    audit.close(fold=False)
    again = StatusAudit(state, ORIGIN)
    try:
        found = audit_range(again, log, CHUNK, log.size, step=CHUNK + 50)  # other chunk ends, as a new round's
        assert [f.index for f in found] == [lie_size + 10], [f.summary for f in found]
        assert found[0].evidence["monitor_root"] == b64(reference_root(log.items, lie_size))
        head = again._head(0)
        assert head is not None and head.indexed == final == head.last_root_size
        assert head.root == reference_root(log.items, final)
        expected = reference(log.items, log.size)
        for document in log.seen:
            assert again.record(document) == (expected.record(document), log.size)  # every entry once
    finally:
        again.close()


def test_a_statement_the_registry_refuses_still_enters_the_index(tmp_path: Path) -> None:
    """The log indexes every logged issue and revoke statement (logserver/statusindexer.py document_entries): the
    monitor's index must hold the same ones, whatever its own checks say of them (those are `log-bad-entry`
    alerts), or an honest root differs from the monitor's."""
    import hashlib

    from logserver.statusindexer import document_entries
    from monitor.audit import apply_registry, check_statements
    from monitor.statusaudit import status_items_of
    from tlogcore.registry import Registry
    from tlogcore.statement import ISSUER_ADD, Statement, sign_statement

    ministry = Ed25519Signer("moeys.gov.kh", b"\x42" * 32)
    stranger = Ed25519Signer("stranger.example", b"\x43" * 32)
    docs = [hashlib.sha256(b"doc %d" % i).digest() for i in range(4)]

    def signed(signer: Ed25519Signer, kind: str, document: bytes, origin: str = ORIGIN) -> bytes:
        return sign_statement(Statement(origin, kind, signer.verifier().vkey, 1_800_000_000, document=document), signer)

    good = signed(ministry, ISSUE, docs[2])
    cut = good.rindex(b" ") + 30  # a character inside the signature's base64: it no longer verifies
    forged = good[:cut] + (b"A" if good[cut : cut + 1] != b"A" else b"B") + good[cut + 1 :]
    add = Statement(
        ORIGIN, ISSUER_ADD, REGISTRY.verifier().vkey, 1_800_000_000, issuer=ministry.verifier().vkey, ref="M"
    )
    entries = [
        sign_statement(add, REGISTRY),
        signed(ministry, ISSUE, docs[0]),
        signed(stranger, ISSUE, docs[1]),  # a signer the registry never added
        forged,  # a signature that does not verify
        signed(ministry, REVOKE, docs[3], origin="other.example/log"),  # another log's statement
        signed(ministry, REVOKE, docs[0]),
    ]
    logged, _ = document_entries(entries, 0)
    entries.append(sign_index_root(IndexRoot(ORIGIN, REGISTRY.verifier().vkey, 1_800_000_000, 6, reference_root(
        [(i, k, d) for i, k, d in logged], 6)), REGISTRY))  # fmt: skip
    checked = apply_registry(Registry(KEYS), check_statements(entries, 0, ORIGIN, "signatures"))
    assert [c.index for c in checked if c.problem is not None] == [2, 3, 4]  # each a log-bad-entry alert
    items = status_items_of(checked, entries, 0)
    assert [(i, k, d) for i, k, d in items if k in (ISSUE, REVOKE)] == logged  # registry ones: the key index
    audit = StatusAudit(tmp_path / "state.db", ORIGIN)
    try:
        assert audit.chunk_items(items, 0, len(entries), KEYS) == []
    finally:
        audit.close()


def test_no_root_for_too_long_is_kept_with_the_last_roots_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Armed from the last root seen (here one logged late, past a chunk boundary), kept in the index file (a
    chunk audited again after a crash finds it again), and about the last root's entry: entryaudit.py adds that
    entry's inclusion proof and the checkpoint."""
    monkeypatch.setattr(statusaudit, "MAX_UNINDEXED", 250)
    log = Log(5)
    log.documents(80)
    last = log.index_root(60)
    log.documents(40)
    late = log.index_root(90)  # entry 121: a chunk boundary between its size and its entry
    log.others(400)
    state = tmp_path / "state.db"
    audit = StatusAudit(state, ORIGIN)
    found = audit_range(audit, log, 0, log.size)
    audit.close(fold=False)
    assert last < late and [(f.index, f.evidence["entries"]) for f in found] == [(late, [late + 1, late + 251])]
    evidence = found[0].evidence
    assert evidence["last_index_root_entry"] == late and evidence["last_index_root_size"] == 90
    assert evidence["entry"] == b64(log.items[-1][2])
    again = StatusAudit(state, ORIGIN)
    try:  # the chunk that raised it, audited again (its state commit lost): found again, from the file
        raised = (late + 250) // CHUNK * CHUNK
        assert again.chunk_items([], raised, raised + CHUNK, KEYS) == found
        assert again.chunk_items([], log.size, log.size + 300, KEYS) == []  # raised once
    finally:
        again.close()


def test_roots_below_the_head_are_checked_against_the_index_cut_back_to_their_size(audit: StatusAudit) -> None:
    """A log's first roots, logged after the monitor's head passed their sizes (it applies documents as they
    come while a log has logged no root): each is checked against the index with the later entries cut away."""
    log = Log(21)
    log.documents(1000)
    sizes = sorted(log.rng.sample(range(1, 1000), 40))
    lie = log.rng.randrange(len(sizes))
    roots = []
    for number, size in enumerate(sizes):
        wrong = reference_root(log.items, size - 1) if number == lie else None
        if number == lie and wrong == reference_root(log.items, size):
            wrong = EMPTY
        roots.append(log.index_root(size, wrong))
    assert audit_range(audit, log, 0, 1000) == []
    found = audit_range(audit, log, 1000, log.size)
    assert [f.index for f in found] == [roots[lie]], [f.summary for f in found]
    assert found[0].evidence["monitor_root"] == b64(reference_root(log.items, sizes[lie]))


def test_the_waiting_documents_are_bounded_and_a_root_below_them_cannot_be_checked(
    audit: StatusAudit, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No root for KEEP_ENTRIES entries: the waiting documents are applied (the head moves to no stated size), so
    memory and the file stay bounded; a root for a size the head then passed cannot be checked, and says so."""
    monkeypatch.setattr(statusaudit, "MAX_UNINDEXED", 10**6)
    monkeypatch.setattr(statusaudit, "KEEP_ENTRIES", 300)
    log = Log(13)
    log.documents(20)
    log.index_root(10)
    log.documents(580)  # the head moves past 10 without a root
    honest = log.index_root(450)
    lying = log.index_root(460, reference_root(log.items, 455))
    old = log.index_root(200)  # goes back: an alert of its own
    log.documents(400)
    lost = log.index_root(650)  # the head is at 700 by then: it cannot be checked
    found = audit_range(audit, log, 0, log.size)
    assert [f.index for f in found] == [lying, old, lost], [f.summary for f in found]
    assert honest < lying and "fewer than the previous one" in found[1].summary
    assert found[0].evidence["monitor_root"] == b64(reference_root(log.items, 460))
    assert "cannot be checked" in found[2].summary


def test_an_index_file_from_before_is_converted_and_its_late_roots_are_not_checked(tmp_path: Path) -> None:
    """A file written before documents were kept: its head has none waiting and covers entries the monitor can no
    longer cut back, so a root below that head is left as the monitor left it then (not checked, no alert);
    roots for later sizes are checked."""
    log = Log(17)
    log.documents(50)
    log.index_root(40)
    log.documents(60)
    late = log.index_root(100)
    log.documents(50)
    log.index_root(150, reference_root(log.items, 140))
    state = tmp_path / "state.db"
    audit = StatusAudit(state, ORIGIN)  # the former monitor applied every document at once: no root seen here
    assert audit.chunk_items([item for item in log.between(0, 110) if item[1] is not None], 0, 110, KEYS) == []
    audit.close()
    db = sqlite3.connect(index_path(state))  # the head as the former monitor wrote it
    size, root = db.execute("SELECT size, root FROM head").fetchone()
    db.executescript(
        "DROP TABLE head; DROP TABLE IF EXISTS recent; CREATE TABLE head (origin TEXT PRIMARY KEY, "
        "size INTEGER NOT NULL, root BLOB NOT NULL, last_root_entry INTEGER, last_root_size INTEGER);"
    )
    db.execute("INSERT INTO head VALUES (?, ?, ?, 50, 40)", (ORIGIN, size, root))  # it checked the root at 50
    db.commit()
    db.close()
    again = StatusAudit(state, ORIGIN)
    try:
        found = audit_range(again, log, 110, log.size)
        assert [f.index for f in found] == [log.size - 1] and late < log.size - 1
    finally:
        again.close()


def test_the_alert_for_no_root_for_too_long_is_keyed_by_the_last_root_with_that_entrys_evidence() -> None:
    import asyncio
    from types import SimpleNamespace
    from typing import Any

    from monitor.entryaudit import status_alerts

    finding = Finding(121, "no index-root …", {"last_index_root_entry": 121, "entries": [122, 372]}, 371)
    asked: list[Finding] = []

    async def evidence_of(about: Finding) -> dict[str, Any]:
        asked.append(about)
        return {"index": about.index, "inclusion_proof": ["…"], "checkpoint": "…"}

    def alert(rule: str, category: str, key: str, summary: str, evidence: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        return key, evidence

    alerts = asyncio.run(status_alerts(SimpleNamespace(alert=alert), [finding], evidence_of))  # type: ignore[arg-type]
    assert asked == [finding]
    assert alerts == [("missing index-root after 121", finding.evidence | {"index": 121, "inclusion_proof": ["…"],
                                                                          "checkpoint": "…"})]  # fmt: skip
