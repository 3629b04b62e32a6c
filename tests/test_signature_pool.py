"""The log's signature workers (logserver/workerpool.py): real worker processes over socket pairs, each part of a
batch answered as the server would check it in-process; a worker killed with -9 while it holds a part is replaced
and the part checked again; a part that loses two workers is refused (WorkersUnavailable), never half answered."""

import asyncio
import functools
import os
import signal
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from log_harness import issue, running_log, seed

from logserver.submission import (
    PositionedError,
    SubmissionRules,
    batch_checker,
    check_part,
    leaf_hashes,
    prepare_submissions,
    statements_from,
)
from logserver.workerpool import SignaturePool, WorkersUnavailable
from tlogcore.errors import SignatureError
from tlogcore.keys import Ed25519Signer

ORIGIN = "log.example.test/pool"
RULES = SubmissionRules(ORIGIN)
ISSUER = Ed25519Signer("issuer.example.test", seed(31))


def statements(count: int, first: int = 0) -> list[bytes]:
    return [issue(ORIGIN, ISSUER, (first + i).to_bytes(32, "big"), when=1_700_000_000) for i in range(count)]


def pool_of(workers: int, replaced: list[int]) -> SignaturePool:
    return SignaturePool(functools.partial(batch_checker, RULES), workers, lambda: replaced.append(1), 30.0)


def same_as_in_process(datas: Sequence[bytes], answer: object) -> None:
    assert isinstance(answer, tuple)
    rows, hashes = answer
    expected = prepare_submissions(datas, RULES, time.time())
    rebuilt = statements_from(rows)
    assert rebuilt == [s.statement for s in expected]
    assert [(vars(s), hash(s)) for s in rebuilt] == [(vars(s.statement), hash(s.statement)) for s in expected]
    assert leaf_hashes(hashes) == [s.leaf_hash for s in expected]


def test_each_part_is_answered_as_the_server_checks_it_in_process() -> None:
    datas = statements(300)
    bad = list(datas[:50])
    bad[17] = bad[17][:-10] + (b"A" if bad[17][-10:-9] != b"A" else b"B") + bad[17][-9:]  # a signature byte

    async def run() -> list[object]:
        pool = pool_of(2, [])
        await pool.start()
        try:
            return list(
                await asyncio.gather(*(pool.call((time.time(), part)) for part in (datas[:150], datas[150:], bad)))
            )
        finally:
            await pool.close()

    first, second, refused = asyncio.run(run())
    same_as_in_process(datas[:150], first)
    same_as_in_process(datas[150:], second)
    assert isinstance(refused, PositionedError) and refused.position == 17
    assert isinstance(refused.error, SignatureError)


async def killed_while_holding(pool: SignaturePool, part: list[bytes], kills: int) -> object:
    """Call the pool with `part` and kill -9 the worker that holds it, `kills` times (each replacement too)."""
    call = asyncio.ensure_future(pool.call((time.time(), part)))
    seen: set[int] = set()
    for _ in range(kills):
        deadline = time.monotonic() + 30
        while not set(pool.processes) - seen and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        victim = next(iter(set(pool.processes) - seen))
        seen.add(victim)
        os.kill(victim, signal.SIGKILL)
        await asyncio.sleep(0)
    async with asyncio.timeout(60):
        return await call


def test_a_worker_killed_holding_a_part_is_replaced_and_the_part_checked_again() -> None:
    # ~0.15 s of checks: the kill lands while the worker holds them
    datas, replaced = statements(2000, 10_000), list[int]()

    async def run() -> tuple[object, list[int], list[int]]:
        pool = pool_of(1, replaced)
        await pool.start()
        try:
            first = pool.processes
            answer = await killed_while_holding(pool, datas, kills=1)
            return answer, first, pool.processes
        finally:
            await pool.close()

    answer, before, after = asyncio.run(run())
    same_as_in_process(datas, answer)
    assert replaced == [1] and len(after) == 1 and after != before


def test_a_part_that_loses_two_workers_is_refused_and_the_pool_goes_on() -> None:
    datas, replaced = statements(2000, 20_000), list[int]()

    async def run() -> object:
        pool = pool_of(1, replaced)
        await pool.start()
        try:
            with pytest.raises(WorkersUnavailable):
                await killed_while_holding(pool, datas, kills=2)
            return await pool.call((time.time(), datas[:10]))  # a third worker answers the next request
        finally:
            await pool.close()

    answer = asyncio.run(run())
    same_as_in_process(datas[:10], answer)
    assert replaced == [1, 1]


def test_closing_the_pool_stops_its_workers() -> None:
    async def run() -> list[int]:
        pool = pool_of(2, [])
        await pool.start()
        pids = pool.processes
        await pool.close()
        return pids

    for pid in asyncio.run(run()):
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def signature_workers(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            command = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if parent == pid and b"witness.workerprocess" in command:
            found.add(int(stat.parent.name))
    return found


def test_the_workers_of_a_server_killed_with_9_exit_with_it(tmp_path: Path) -> None:
    """Nobody stops them after a kill -9 of the server: the end of file on their socket does."""
    with running_log(tmp_path) as server:
        assert server.process is not None
        workers = signature_workers(server.process.pid)
        assert workers, "no signature worker found"
        server.kill()
    deadline = time.monotonic() + 20
    while any(Path(f"/proc/{pid}").exists() for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()]


def test_an_unexpected_error_in_the_checks_is_an_answer_not_a_lost_worker() -> None:
    """A bug (here: an item that is not bytes) fails its request alone, as in-process; the worker goes on."""
    answer = check_part(RULES, (time.time(), [statements(1)[0], None]))  # type: ignore[list-item]
    assert isinstance(answer, RuntimeError) and "checking statements failed" in str(answer)
