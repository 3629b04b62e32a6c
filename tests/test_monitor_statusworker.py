"""The monitor's status index in its own process (monitor/statusworker.py): the same root and findings as in the main
process, the rows written before the findings come back, and a status process that dies stops the round with a
StateError (the chunk is then not committed), never a traceback or a silent gap."""

import asyncio
import hashlib
import multiprocessing
import os
import signal
import sqlite3
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import pytest
from monitor_helpers import status_head

from monitor.state import StateError
from monitor.statusaudit import StatusAudit, StatusItem
from monitor.statusworker import StatusRunner, close_index, findings_of
from tlogcore.indexroot import IndexRoot, sign_index_root
from tlogcore.keys import Ed25519Signer
from tlogcore.statement import ISSUE, REVOKE

ORIGIN = "log.example/status"
REGISTRY = Ed25519Signer("registry.example", b"\x31" * 32)


def items(start: int, count: int) -> list[StatusItem]:
    kinds = [ISSUE, ISSUE, REVOKE]
    return [(i, kinds[i % 3], hashlib.sha256(b"doc %d" % (i // 3)).digest()) for i in range(start, start + count)]


def wrong_root(index: int) -> StatusItem:
    """An index-root entry that states a root no honest index has: a finding."""
    statement = IndexRoot(ORIGIN, REGISTRY.verifier().vkey, 1_800_000_000, index, b"\x07" * 32)
    return (index, None, sign_index_root(statement, REGISTRY))


async def run_chunks(state: Path, executor: ProcessPoolExecutor | None) -> list[list[str]]:
    runner = StatusRunner(state, ORIGIN, executor)
    keys = frozenset([REGISTRY.verifier().vkey])
    chunks = [items(0, 1500), items(1500, 40) + [wrong_root(1540)], items(1541, 2000)]
    spans = [(0, 1500), (1500, 1541), (1541, 3541)]
    futures = [runner.submit(chunk, span, keys) for chunk, span in zip(chunks, spans, strict=True)]
    found = [[f.summary for f in await findings_of(future)] for future in futures]
    await runner.close()
    return found


def test_the_status_process_reaches_the_same_root_and_findings_as_the_main_process(tmp_path: Path) -> None:
    local = asyncio.run(run_chunks(tmp_path / "local.db", None))
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(1, mp_context=context) as executor:
        remote = asyncio.run(run_chunks(tmp_path / "remote.db", executor))
    assert local == remote
    assert [len(f) for f in local] == [0, 1, 0] and "is not the one the monitor computes" in local[1][0]
    assert status_head(tmp_path / "local.db", ORIGIN) == status_head(tmp_path / "remote.db", ORIGIN)
    assert status_head(tmp_path / "local.db", ORIGIN)[0] == 3541


def test_a_status_process_that_dies_is_a_state_error(tmp_path: Path) -> None:
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(1, mp_context=context) as executor:
        pid = executor.submit(os.getpid).result()
        os.kill(pid, signal.SIGKILL)

        async def one_chunk() -> None:
            runner = StatusRunner(tmp_path / "state.db", ORIGIN, executor)
            try:
                await findings_of(runner.submit(items(0, 10), (0, 10), frozenset()))
            finally:
                await runner.close()  # a dead process is closed without an error

        with pytest.raises(StateError, match="status index process stopped"):
            asyncio.run(one_chunk())
    close_index(str(tmp_path / "state.db"), ORIGIN)


def test_a_status_process_known_dead_refuses_the_next_call_as_a_state_error(tmp_path: Path) -> None:
    """Once the pool has noticed its process died, `submit` itself raises BrokenProcessPool instead of returning a
    future that fails with it. That escaped as a traceback (CI, twenty-fifth round, in the test above: a race on
    when the pool notices); it is the same failure, the state's error."""
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(1, mp_context=context) as executor:
        os.kill(executor.submit(os.getpid).result(), signal.SIGKILL)
        with pytest.raises(BrokenProcessPool):
            executor.submit(os.getpid).result(timeout=30)  # the pool has noticed: its next submit raises itself
        with pytest.raises(BrokenProcessPool):
            executor.submit(os.getpid)

        async def calls() -> list[str]:
            runner, failures = StatusRunner(tmp_path / "state.db", ORIGIN, executor), []
            for call in (
                lambda: findings_of(runner.submit(items(0, 10), (0, 10), frozenset())),
                lambda: runner.start_over_if_behind(10),
            ):
                with pytest.raises(StateError, match="status index process stopped") as failed:
                    await call()
                failures.append(str(failed.value))
            await runner.close()  # a dead process is closed without an error
            return failures

        assert len(asyncio.run(calls())) == 2


def test_a_chunk_audited_again_after_a_crash_finds_what_it_found_before(tmp_path: Path) -> None:
    """The index's rows are committed before the chunk is (statusaudit.py): a crash in between makes the monitor
    audit the chunk again, with the index already past it. Its findings must come back (from the index file), or
    the alert about a lying index-root would be lost for good."""
    keys = frozenset([REGISTRY.verifier().vkey])
    chunk = items(0, 40) + [wrong_root(40)] + items(41, 10)
    audit = StatusAudit(tmp_path / "state.db", ORIGIN)
    first = [(f.index, f.summary, f.evidence) for f in audit.chunk_items(chunk, 0, 51, keys)]
    audit.close()  # the crash: the chunk's commit in the state never happened
    again = StatusAudit(tmp_path / "state.db", ORIGIN)
    try:
        second = [(f.index, f.summary, f.evidence) for f in again.chunk_items(chunk, 0, 51, keys)]
        assert len(first) == 1 and first[0][0] == 40
        assert second == first
        assert again.chunk_items(items(51, 5), 51, 56, keys) == []  # the next chunk does not repeat it
    finally:
        again.close()


def test_a_damaged_index_row_is_a_state_error_naming_the_file(tmp_path: Path) -> None:
    """A page row that no longer decodes (a disk fault, a hand edit) stops the round with a StateError that names
    the index file, like a SQLite fault, never a traceback from deep inside the audit."""
    state = tmp_path / "state.db"
    asyncio.run(run_chunks(state, None))
    index_file = next(tmp_path.glob("state.db.status*"))
    with sqlite3.connect(index_file) as db:
        db.execute("UPDATE pages SET data = x'ff00'")
    db.close()

    async def one_more_chunk() -> None:
        runner = StatusRunner(state, ORIGIN, None)
        try:
            await findings_of(runner.submit(items(3541, 3000), (3541, 6541), frozenset()))
        finally:
            await runner.close()

    with pytest.raises(StateError, match=f"{index_file.name}.*damaged"):
        asyncio.run(one_more_chunk())
