"""The order of the monitor's audit stages (monitor/entryaudit.py): a chunk's status index is queued once it is
parsed, before its signatures are verified (with workers), and chunks are queued ahead while the status process is
busy, so it is never left idle while the main process commits; each commit still stores the registry as of its own
chunk's end; a chunk that fails to resolve leaves the one before it committed. Against a real log server, the
monitor in this process (workers = 1, unless a test says), with chunks of one tile (256 entries)."""

import asyncio
import gc
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from monitor import entryaudit
from monitor.audit import Checked
from monitor.checkstages import Checker
from monitor.commands import Runtime, load_config
from monitor.entryaudit import EntryAudit
from monitor.state import AuditedChunk, State, registry_to_json
from monitor.statusworker import StatusRunner
from tests.monitor_helpers import FilledLog, doc, issuer_key, monitor_config, read_alerts, start_log
from tlogcore.gcpause import GC_YOUNGEST
from tlogcore.statement import ISSUER_RETIRE

RETIRED_AT = 302  # in the second chunk, [256, 512)


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FilledLog]:
    """Key `one` registered in the first chunk and retired in the second; 603 entries, three chunks."""
    filled = start_log(tmp_path_factory.mktemp("pipeline"))
    try:
        one, two = issuer_key("one.example", 71), issuer_key("two.example", 72)
        filled.register("one", one)
        filled.register("two", two)
        filled.submit(filled.issue("one", [doc(i, b"one") for i in range(300)]))
        assert filled.submit([filled.registry_statement(ISSUER_RETIRE, one, "rotated")]) == [RETIRED_AT]
        filled.submit(filled.issue("two", [doc(i, b"two") for i in range(300)]))
        filled.wait_published(filled.size)
        yield filled
    finally:
        filled.close()


def audit(tmp_path: Path, log: FilledLog) -> Runtime:
    policy = f"log {log.log_vkey}\nquorum none\n"
    config = load_config(monitor_config(tmp_path / "m.toml", log.server.url, policy, extra="chunk_tiles = 1"))
    return Runtime(config, False, progress=False)


def run_audit(runtime: Runtime) -> None:
    async def go() -> None:
        try:
            await runtime.followers[0].poll()
        finally:
            await runtime.close()

    asyncio.run(go())


@pytest.fixture
def collector_as_it_was() -> Iterator[None]:
    """Runtime sets this process's collector policy (tlogcore/gcpause.py): given back after the test."""
    threshold = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


def record_stages(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int, Any]]:
    """(stage, chunk end, what) for each status index queued and each chunk committed, in the order they happen."""
    events: list[tuple[str, int, Any]] = []
    submit, commit = StatusRunner.submit, State.commit_chunk

    def submitted(runner: StatusRunner, items: Any, span: tuple[int, int], keys: frozenset[str]) -> Any:
        events.append(("status", span[1], None))
        return submit(runner, items, span, keys)

    def committed(state: State, origin: str, chunk: AuditedChunk, now: float) -> None:
        stored = registry_to_json(chunk.registry) if chunk.registry is not None else None
        events.append(("commit", chunk.next_index, stored))
        commit(state, origin, chunk, now)

    monkeypatch.setattr(StatusRunner, "submit", submitted)
    monkeypatch.setattr(State, "commit_chunk", committed)
    return events


@pytest.mark.usefixtures("collector_as_it_was")
def test_with_workers_each_chunks_status_index_is_queued_before_its_signatures_are_verified(
    tmp_path: Path, log: FilledLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """checkstages.py: with worker processes and every signature checked, a chunk's status index is queued once its
    statements are parsed, so that the status process works ahead of the signature checks. Here no signature is
    verified until the status index of the last chunk is queued (after 30 s the audit fails instead: the status
    index waited for the signatures); the audit ends all the same, every entry once, nothing found wrong."""
    events = record_stages(monkeypatch)
    submit, verified = StatusRunner.submit, Checker._verified
    last_queued = asyncio.Event()

    def queued(runner: StatusRunner, items: Any, span: tuple[int, int], keys: frozenset[str]) -> Any:
        if span[1] == log.size:
            last_queued.set()
        return submit(runner, items, span, keys)

    async def held(checker: Checker, parsed: list[Checked], unverified: Any) -> list[Checked]:
        await asyncio.wait_for(last_queued.wait(), 30)
        events.append(("verified", parsed[-1].index + 1, None))
        return await verified(checker, parsed, unverified)

    monkeypatch.setattr(StatusRunner, "submit", queued)
    monkeypatch.setattr(Checker, "_verified", held)
    policy = f"log {log.log_vkey}\nquorum none\n"
    config = monitor_config(tmp_path / "m.toml", log.server.url, policy, extra="chunk_tiles = 1\nworkers = 2")
    run_audit(Runtime(load_config(config), False, progress=False))
    order = [(stage, end) for stage, end, _ in events]
    assert order[:3] == [("status", 256), ("status", 512), ("status", 603)]
    assert sorted(order[3:6]) == [("verified", 256), ("verified", 512), ("verified", 603)]
    assert order[6:] == [("commit", 256), ("commit", 512), ("commit", 603)]
    with sqlite3.connect(tmp_path / "state.db") as db:
        assert db.execute("SELECT next_index FROM logs").fetchone() == (603,)
    assert [a for a in read_alerts(tmp_path / "alerts.jsonl") if a["category"] == "misbehaviour"] == []


@pytest.mark.usefixtures("collector_as_it_was")
def test_each_commit_stores_the_registry_as_of_its_own_chunk(
    tmp_path: Path, log: FilledLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second chunk, which retires key `one`, is resolved before the first is committed: the first commit must
    still store `one` as active (a registry shared with the next chunk would store it retired, and a monitor resumed
    from that commit would refuse `one`'s statements in [256, 302) as signed by a retired key)."""
    events = record_stages(monkeypatch)
    run_audit(audit(tmp_path, log))
    stored = {end: what for stage, end, what in events if stage == "commit"}
    one = log.issuers["one"].verifier().vkey

    def retired_index(registry_json: str) -> object:
        return next(k["retired_index"] for k in json.loads(registry_json) if k["vkey"] == one)

    assert retired_index(stored[256]) is None
    assert retired_index(stored[512]) == RETIRED_AT
    assert retired_index(stored[603]) == RETIRED_AT


@pytest.mark.usefixtures("collector_as_it_was")
def test_a_chunk_that_fails_to_resolve_leaves_the_one_before_it_committed(
    tmp_path: Path, log: FilledLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Resolving chunk [256, 512) fails (its watch rules: here, made to raise): the chunk before it, resolved and
    waiting for its commit, is committed all the same, and the audit stops at 256."""
    entry_alerts = EntryAudit._entry_alerts

    async def failing(audit: EntryAudit, view: Any, target: Any, checked: Any, entries: Any, start: int) -> Any:
        if start == 256:
            raise RuntimeError("the watch rules failed")
        return await entry_alerts(audit, view, target, checked, entries, start)

    monkeypatch.setattr(EntryAudit, "_entry_alerts", failing)
    runtime = audit(tmp_path, log)
    with pytest.raises(RuntimeError, match="the watch rules failed"):
        run_audit(runtime)
    with sqlite3.connect(tmp_path / "state.db") as db:
        (next_index,) = db.execute("SELECT next_index FROM logs").fetchone()
    assert next_index == 256


@pytest.mark.usefixtures("collector_as_it_was")
def test_with_workers_a_chunk_whose_signature_checks_fail_leaves_the_one_before_it_committed(
    tmp_path: Path, log: FilledLog, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The verification of chunk [256, 512) fails (made to raise here, as a worker that died would): the chunk before
    it is committed all the same, the audit stops at 256 with the error, and no task of the chunks in flight is
    left with a failure nobody took (asyncio would log "exception was never retrieved")."""
    verified = Checker._verified

    async def failing(checker: Checker, parsed: list[Checked], unverified: Any) -> list[Checked]:
        if parsed[0].index == 256:
            raise RuntimeError("a worker died")
        return await verified(checker, parsed, unverified)

    monkeypatch.setattr(Checker, "_verified", failing)
    policy = f"log {log.log_vkey}\nquorum none\n"
    config = monitor_config(tmp_path / "m.toml", log.server.url, policy, extra="chunk_tiles = 1\nworkers = 2")
    with pytest.raises(RuntimeError, match="a worker died"):
        run_audit(Runtime(load_config(config), False, progress=False))
    gc.collect()  # an unretrieved failure is logged when its task is collected
    with sqlite3.connect(tmp_path / "state.db") as db:
        assert db.execute("SELECT next_index FROM logs").fetchone() == (256,)
    assert "never retrieved" not in caplog.text


@pytest.mark.usefixtures("collector_as_it_was")
def test_the_monitor_keeps_what_start_up_made_out_of_the_collectors_walks(tmp_path: Path, log: FilledLog) -> None:
    """tlogcore/gcpause.py freeze_start_up: the main process spent 6.6 µs per audited entry in collections."""
    gc.unfreeze()
    gc.set_threshold(700, 10, 10)
    runtime = audit(tmp_path, log)
    try:
        assert gc.get_threshold()[0] == GC_YOUNGEST
        assert gc.get_freeze_count() > 0
    finally:
        asyncio.run(runtime.close())


class FindingsWhenAwaited(asyncio.Future):  # type: ignore[type-arg]
    """A status index's findings that are not back until the audit waits for them: a status process still busy."""

    def __init__(self, findings: Any) -> None:
        super().__init__()
        self.findings = findings

    def __await__(self) -> Any:
        if not self.done():
            self.set_result(self.findings)
        return super().__await__()


@pytest.mark.usefixtures("collector_as_it_was")
def test_while_the_status_index_is_busy_chunks_are_queued_up_to_status_ahead_entries_before_a_commit_waits(
    tmp_path: Path, log: FilledLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the status findings not back, the main process goes on resolving chunks (and feeding the workers) until
    the chunks waiting for their commit hold more than
    STATUS_AHEAD_ENTRIES entries: a batch or a fold in the status process (0.4-1.2 s) no longer
    stops it after one chunk."""
    events = record_stages(monkeypatch)
    submit = StatusRunner.submit

    def busy(runner: StatusRunner, items: Any, span: tuple[int, int], keys: frozenset[str]) -> Any:
        done = submit(runner, items, span, keys)  # the chunk's own findings, made now (workers = 1)
        return FindingsWhenAwaited(done.result())

    monkeypatch.setattr(StatusRunner, "submit", busy)
    monkeypatch.setattr(entryaudit, "STATUS_AHEAD_ENTRIES", 512)  # two chunks of one tile
    run_audit(audit(tmp_path, log))
    order = [(stage, end) for stage, end, _ in events]
    assert order == [
        ("status", 256),
        ("status", 512),
        ("status", 603),
        ("commit", 256),
        ("commit", 512),
        ("commit", 603),
    ]
    with sqlite3.connect(tmp_path / "state.db") as db:
        (next_index,) = db.execute("SELECT next_index FROM logs").fetchone()
    assert next_index == 603
