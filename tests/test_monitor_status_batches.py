"""A log that has logged no index root (monitor/statusaudit.py APPLY_EVERY): its documents wait in the index file
and go into the monitor's index APPLY_EVERY entries at a time, as they wait for each root once roots come. Each
batch reaches the root computed from scratch; a document waiting is in the file's answer for it; a first root,
above the head or below it, is checked, a lying one caught; a crash loses no waiting document; a log that never
logs a root stays quiet and the file keeps a bounded number of documents."""

import sqlite3
from pathlib import Path

import pytest
from test_monitor_late_roots import CHUNK, ORIGIN, Log, audit_range, reference_root

import monitor.statusaudit as statusaudit
from monitor.statusaudit import StatusAudit
from monitor.statusfile import index_path
from tlogcore.statement import ISSUE, REVOKE
from tlogcore.statusindex import EMPTY

EVERY = 500  # entries per batch here (APPLY_EVERY), five chunks of CHUNK


@pytest.fixture(autouse=True)
def batches_of_500(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(statusaudit, "APPLY_EVERY", EVERY)


def recent_rows(state: Path) -> int:
    db = sqlite3.connect(index_path(state))
    try:
        return int(db.execute("SELECT count(*) FROM recent").fetchone()[0])
    finally:
        db.close()


def head_of(audit: StatusAudit) -> statusaudit._Head:
    head = audit._head(0)
    assert head is not None
    return head


def test_documents_wait_until_a_batch_of_entries_then_reach_the_root_from_scratch(tmp_path: Path) -> None:
    log = Log(3)
    log.documents(1730)
    audit = StatusAudit(tmp_path / "state.db", ORIGIN)
    try:
        indexed = []
        for first in range(0, log.size, CHUNK):
            last = min(log.size, first + CHUNK)
            assert audit_range(audit, log, first, last) == []
            head = head_of(audit)
            indexed.append(head.indexed)
            assert head.size == last and last - EVERY < head.indexed <= last
            assert head.root == (reference_root(log.items, head.indexed) if head.indexed else EMPTY)
        assert sorted(set(indexed)) == [0, 500, 1000, 1500]  # applied once per batch, not per chunk
        index, kind, document = log.items[-1]  # waiting: entry 1729
        record, covered = audit.record(document)
        assert record is not None and index in (record.issued if kind == ISSUE else record.revoked)
        assert covered == log.size
    finally:
        audit.close()


@pytest.mark.parametrize("honest", [True, False])
def test_a_first_root_above_the_head_applies_the_waiting_documents_and_is_checked(tmp_path: Path, honest: bool) -> None:
    log = Log(5)
    log.documents(740)  # a batch applied at 500; 240 wait
    victim = log.seen[600]
    log.items.append((log.size, REVOKE, victim))  # a revocation among the waiting documents, hidden by the lie
    log.size += 1
    size = log.size
    lie = reference_root([item for item in log.items if item[0] != size - 1], size)
    log.documents(30)
    at = log.index_root(size, None if honest else lie)
    log.documents(20)
    audit = StatusAudit(tmp_path / "state.db", ORIGIN)
    try:
        found = audit_range(audit, log, 0, log.size)
        assert [f.index for f in found] == ([] if honest else [at]), [f.summary for f in found]
        head = head_of(audit)
        assert (head.indexed, head.root) == (size, reference_root(log.items, size))
    finally:
        audit.close()


@pytest.mark.parametrize("honest", [True, False])
def test_a_first_root_below_the_head_is_checked_against_the_index_cut_back(tmp_path: Path, honest: bool) -> None:
    log = Log(8)
    log.documents(430)
    size = log.size
    log.documents(200)  # the batch at 500 puts the head past the root's size
    wrong = reference_root(log.items, size - 1)
    at = log.index_root(size, None if honest else wrong)
    log.documents(10)
    audit = StatusAudit(tmp_path / "state.db", ORIGIN)
    try:
        found = audit_range(audit, log, 0, at)
        assert found == [] and head_of(audit).indexed == 500 > size
        found = audit_range(audit, log, at, log.size)
        assert [f.index for f in found] == ([] if honest else [at]), [f.summary for f in found]
    finally:
        audit.close()


def test_a_crash_loses_no_waiting_document(tmp_path: Path) -> None:
    log = Log(11)
    log.documents(1340)
    state = tmp_path / "state.db"
    crashed = StatusAudit(state, ORIGIN)
    assert audit_range(crashed, log, 0, 1200) == []
    assert head_of(crashed).indexed == 1000  # 200 wait in the file
    crashed.db.close()  # no close(): what a kill -9 leaves
    audit = StatusAudit(state, ORIGIN)
    try:
        assert audit_range(audit, log, 1100, log.size) == []  # a chunk audited again after the crash, then on
        log.documents(200)
        assert audit_range(audit, log, 1340, log.size) == []
        head = head_of(audit)
        assert (head.size, head.indexed) == (log.size, log.size)  # the batch at 1540: 540 had waited
        assert head.root == reference_root(log.items, log.size)
    finally:
        audit.close()


def test_a_log_that_never_logs_a_root_stays_quiet_and_keeps_a_bounded_number_of_documents(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(statusaudit, "MAX_UNINDEXED", 150)
    monkeypatch.setattr(statusaudit, "KEEP_ENTRIES", 300)
    log = Log(9)
    log.documents(3000)
    state = tmp_path / "state.db"
    audit = StatusAudit(state, ORIGIN)
    try:
        assert audit_range(audit, log, 0, log.size) == []
        head = head_of(audit)
        assert (head.size, head.indexed) == (log.size, log.size)  # 3000 entries: the sixth batch ends with them
        assert head.root == reference_root(log.items, log.size) and head.kept >= log.size - 300 - CHUNK
        assert recent_rows(state) <= 300 // CHUNK + 1
        log.documents(EVERY - 1)
        assert audit_range(audit, log, 3000, log.size) == []
        assert head_of(audit).indexed == 3000  # all but one batch wait: kept, past KEEP_ENTRIES
        assert recent_rows(state) <= (300 + EVERY) // CHUNK + 1
    finally:
        audit.close()
