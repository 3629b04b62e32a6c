"""The keep-up harness of loadtest/status_http_bench.py (--preload, loadtest/status_keepup.py): it paces what it
submits, every entry it reports is in the log, and the lag it reports is the one a client sees. No figure is
asserted (figures come from the script beside their ceiling, docs/status-proofs.md §11)."""

import hashlib
import math
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from loadtest import status_keepup
from loadtest.log_bench import document_of
from loadtest.schedwait import RunQueueWait
from loadtest.status_http_bench import lookups_on_main
from loadtest.status_keepup import BATCH, growth, keep_up
from loadtest.status_keepup_inprocess import keep_up_on, served_in_process
from loadtest.status_lookups import lookup_targets


def test_growth_is_the_lags_slope_over_the_second_half() -> None:
    steady = [(t / 10, 1000) for t in range(0, 101)]
    rising = [(t / 10, 500 * t // 10) for t in range(0, 101)]  # 500 entries/s more behind every second
    assert growth(steady, 10.0) == 0.0
    assert math.isclose(growth(rising, 10.0), 500.0, rel_tol=0.02)
    early_burst = [(t / 10, 5000 if t < 50 else 100) for t in range(0, 101)]  # caught up by the second half
    assert growth(early_burst, 10.0) == 0.0
    assert math.isnan(growth([(1.0, 3)], 10.0))


def test_a_small_keep_up_run_sequences_all_it_reports_and_the_index_covers_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes: list[int] = []
    covered: list[tuple[int, int]] = []  # (served index root's size, one past the last accepted entry) per wait
    real_wait = status_keepup.wait_indexed

    def wait_and_note(client: httpx.Client, limit: float, target: int) -> float:
        seconds = real_wait(client, limit, target)
        sizes.append(status_keepup.log_size(client))
        covered.append((status_keepup.served_index(client), target))
        return seconds

    monkeypatch.setattr(status_keepup, "wait_indexed", wait_and_note)
    # The slow phase's first request is one the server refuses (400 malformed): counted apart, the run goes on.
    bodies: list[bytes] = []
    real_body = status_keepup.entries_body

    def one_refused(submissions: Any, inclusion_proofs: bool) -> bytes:
        bodies.append(b"{" if len(bodies) == 4 else real_body(submissions, inclusion_proofs))
        return bodies[-1]

    monkeypatch.setattr(status_keepup, "entries_body", one_refused)
    fast, slow = keep_up("sqlite", tmp_path, 3000, [2000.0, 1000.0], 2.0)
    assert (fast.done.accepted, slow.done.accepted) == (4 * BATCH, BATCH)  # accepted entries only
    assert (fast.done.refused, slow.done.refused) == ([], ["400 malformed"])
    assert any(line.endswith("refused requests (not counted as submitted): 1; 400 malformed x1") for line in
               slow.report("sqlite"))  # fmt: skip
    figures = fast
    assert figures.done.seconds >= 1.5  # paced: 4 requests scheduled 0.5 s apart, not sent at once
    assert not math.isnan(figures.settle_seconds)  #: the index covered the last entry
    # every paced entry is in the log: the preload, the 4,000, and the index-root statements the indexer logged
    assert slow.done.seconds >= 0.9  # 2 requests, 1 s apart
    assert sizes[-1] >= 3000 + 5 * BATCH
    # each wait ended with the served root covering every entry accepted so far (the preload: its 3,000)
    assert covered[0][1] == 3000 and slow.done.end > fast.done.end >= 3000 + 4 * BATCH
    assert all(served >= target for served, target in covered)
    assert figures.samples.direct and all(lag >= 0 for _, lag in figures.samples.direct)
    lines = figures.report("sqlite")
    assert any("achieved" in line for line in lines) and any("lag, direct" in line for line in lines)
    assert_answers_timed(fast, 4)
    assert_answers_timed(slow, 1)  # the refused request has no answer time


def assert_answers_timed(figures: status_keepup.Paced, requests: int) -> None:
    """Each accepted request's answer time, from its send and from its scheduled send (which a late request was
    sent after; a timer may wake a little early), and the report's line of their percentiles."""
    answers = figures.done.answers
    assert len(answers) == requests and all(0 < sent <= scheduled + 0.005 for sent, scheduled in answers)
    line = f"answers, ms from the send / from the scheduled send ({requests:,} requests): p50 "
    assert sum(line in text for text in figures.report("sqlite")) == 1


def test_the_in_process_intake_sequences_all_it_reports_and_the_index_covers_it(tmp_path: Path) -> None:
    """--intake sequencer: the server's own parts (its sequencer, storage and indexer) fed in this process."""
    fast, slow = keep_up("sqlite", tmp_path, 3000, [2000.0, 1000.0], 2.0, served_in_process)
    assert (fast.done.accepted, slow.done.accepted) == (4 * BATCH, 2 * BATCH)
    assert fast.done.refused == slow.done.refused == []
    assert fast.done.seconds >= 1.5 and slow.done.seconds >= 1.0  # paced: 0.5 s and 1 s apart
    assert slow.done.end > fast.done.end >= 3000 + 4 * BATCH  # the numbering went on from the preload
    assert not math.isnan(fast.settle_seconds) and not math.isnan(slow.settle_seconds)
    assert fast.samples.direct and all(lag >= 0 for _, lag in fast.samples.direct)
    assert any("no HTTP, no signature checks" in line for line in fast.report("sqlite"))
    assert_answers_timed(fast, 4)  # the sequencer's answers: each batch once durable
    assert_answers_timed(slow, 2)
    assert fast.pauses is not None and fast.pauses.longest > 0  # the loop the sequencer answers on, watched
    assert sum("the event loop's pauses" in line for line in fast.report("sqlite")) == 1
    # the sequencer's steps, each call timed: a key-guard record before and after every commit; then unwatched
    steps = fast.steps.seconds if fast.steps is not None else {}
    assert [len(calls) > 0 for calls in steps.values()] == [True, True, True]
    assert len(set(map(len, steps.values()))) == 1  # as many records as commits
    assert sum("the sequencer's steps, ms: key guard" in line for line in fast.report("sqlite")) == 1
    # the CPU split: the indexer's process did the indexing (its own CPU, beside this process's)
    assert fast.cpu_parts is not None and fast.cpu_parts[0] > 0 and fast.cpu_parts[2] > 0
    assert any("the indexer's process" in line for line in fast.report("sqlite"))
    # each party's ready work that waited for a core: three parties, SQLite's in this process (no server's)
    assert len(fast.waits) == 3 and fast.waits[1] == RunQueueWait() and fast.waits[2].waited >= 0
    assert any("ready but waiting for a core" in line for line in fast.report("sqlite"))
    assert fast.machine["user"] > 0 and any("the machine's cores" in line for line in fast.report("sqlite"))
    # what each SQLite writer passed to write(): the index's rows (a page row is tens of bytes at least, per entry)
    # and the log's entries (each entry's bytes are written at least once into the log's WAL)
    written = fast.database_writes
    assert written["the indexer's processes"] > 4 * BATCH * 32 and written["this process"] > 4 * BATCH * 100
    assert sum(line.startswith("    SQLite's writes per entry") for line in fast.report("sqlite")) == 1


def test_on_postgresql_the_in_process_intake_reports_what_the_database_wrote_after_a_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--engine postgresql --checkpoint --pg-settings: the cluster starts with the settings given, checkpoints
    between the preload and the phases, and each phase reports the bytes PostgreSQL wrote per entry; with
    pg_stat_statements loaded, the statements that took its time over the phase (the index's COPY among them)."""
    settings = {"shared_buffers": "64MB", "shared_preload_libraries": "pg_stat_statements"}
    (figures,) = keep_up("postgresql", tmp_path, 3000, [2000.0], 2.0, served_in_process, settings, checkpoint=True)
    assert figures.done.accepted == 4 * BATCH and not math.isnan(figures.settle_seconds)
    written = figures.database_writes
    assert written["wal"] > 4 * BATCH * 100 and written["wal records"] >= 4 * BATCH  # each entry is logged
    assert written["status_page"] > 0 and written["database"] > 0  # the index's pages grew with the entries
    assert any(line.startswith("    PostgreSQL's writes per entry: WAL") for line in figures.report("postgresql"))
    copies = [cost for cost in figures.statements if cost.query.startswith('COPY "status_page"')]
    assert len(copies) == 1 and copies[0].counts["rows"] > 0 and copies[0].seconds > 0
    assert any(line.startswith("    PostgreSQL's statements by time") for line in figures.report("postgresql"))
    # three parties read, PostgreSQL's processes among them: with three busy parties on the machine's cores,
    # running threads were taken off a core for another
    assert len(figures.waits) == 3 and sum(wait.preempted for wait in figures.waits) > 0
    assert "CHECKPOINT before the paced phases" in capsys.readouterr().out


def test_lookups_after_a_run_ask_logged_and_never_logged_documents_of_a_server_started_anew(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--lookups: wrk on status lookups, half of documents spread over the preload and half never logged, each answer
    with its status proof (a logged document's record present, another's absent), beside /healthz."""
    targets = lookup_targets(3000, count=10)
    logged = {f"/api/v1/documents/{document_of(n).hex()}" for n in range(3000)}
    assert [target in logged for target in targets] == [True] * 5 + [False] * 5
    keep_up("sqlite", tmp_path, 3000, [1000.0], 1.0, served_in_process, lookups=1.0)
    report = capsys.readouterr().out
    covered = re.search(r"sqlite: status lookups, the index covering ([\d,]+) entries", report)
    assert covered is not None and int(covered.group(1).replace(",", "")) >= 3000 + BATCH
    proofs = re.search(r"index proof bytes: ([\d,]+) for a logged document, ([\d,]+) for one never logged", report)
    assert proofs is not None and int(proofs.group(1)) > 0 and int(proofs.group(2)) > 0
    lookups = re.search(r"GET /api/v1/documents/<sha256> with status proof: ([\d,]+) requests/s.* (\d+) errors", report)
    healthz = re.search(r"ceiling: GET /healthz: ([\d,]+) requests/s.* (\d+) errors", report)
    assert lookups is not None and healthz is not None
    assert int(lookups.group(1).replace(",", "")) > 0 and lookups.group(2) == healthz.group(2) == "0"
    lookups_on_main(tmp_path, 1.0, settle=1.0)  # --lookups-on: again on the log the run left (--keep), not grown
    again = capsys.readouterr().out
    # --settle: the server's first second of lookups reported on a line of its own, before the measured run's
    first = re.search(
        r"the same, the server's first seconds \(then settled\): ([\d,]+) requests/s.* (\d+) errors", again
    )
    assert first is not None and int(first.group(1).replace(",", "")) > 0 and first.group(2) == "0", again
    assert again.index("the server's first seconds") < again.index("with status proof: "), again
    covered_again = re.search(r"sqlite: status lookups, the index covering ([\d,]+) entries", again)
    assert covered_again is not None, again
    assert int(covered_again.group(1).replace(",", "")) >= int(covered.group(1).replace(",", "")), again
    assert re.search(r"with status proof: [\d,]+ requests/s.* 0 errors", again), again
    in_process = re.search(r"without sockets .*: ([\d,]+) us per lookup, ([\d,]+) us per /healthz", again)
    assert in_process is not None and int(in_process.group(1).replace(",", "")) > 0, again


def file_hashes(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir() if p.suffix != ".lock"}


def test_keep_up_on_a_kept_log_runs_on_a_copy_from_a_server_started_anew(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--keep-up-on: the paced phases on a copy of a kept log (its index caught up), a first phase reported apart;
    every entry reported is sequenced and covered, numbered past the kept log's, and the kept files stay as they
    were (a copy each run: variants of the server measured on the same files in turn)."""
    keep_up("sqlite", tmp_path, 3000, [2000.0], 1.0, served_in_process)  # the log left in tmp_path / "sqlite"
    kept = file_hashes(tmp_path / "sqlite")
    warm, paced = keep_up_on(tmp_path, [2000.0], 1.0, warm=BATCH)
    assert (warm.done.accepted, paced.done.accepted) == (BATCH, 2 * BATCH)
    assert warm.done.refused == paced.done.refused == []
    assert paced.done.end > warm.done.end > 3000 + 2 * BATCH  # after the kept log's entries
    assert not math.isnan(warm.settle_seconds) and not math.isnan(paced.settle_seconds)  # the index covered them
    report = capsys.readouterr().out
    assert "a copy of the log kept in" in report and "its index covering the log" in report
    assert file_hashes(tmp_path / "sqlite") == kept  # the kept log untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sqlite"]  # the copy removed
