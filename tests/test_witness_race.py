"""Races made deterministic: a hook stalls one request between its checks and its compare-and-swap.

The app runs under real uvicorn on 127.0.0.1 with real SQLite; the hook is the
app factory's `before_commit` argument (as litewitness's TestRace does).
"""

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from witness_helpers import TinyLog, serve_in_process, tiny_log

from tlogcore.cosignature import CosignatureV1Signer
from tlogcore.note import open_note
from witness.app import create_app
from witness.client import WitnessClient, WitnessUnavailableError
from witness.config import parse_config
from witness.cosigner import Signed
from witness.storage import LogState, SQLiteStorage
from witness.witness import Conflict, TreeHead

NOW = 1_750_000_000
SIGNER = CosignatureV1Signer("witness.race.test", b"\x44" * 32, lambda: NOW)


class Stall:
    """A before_commit hook that holds the first request matching `select` until released."""

    def __init__(self, select: Callable[[Signed], bool]) -> None:
        self.select = select
        self.reached = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self, request: Signed) -> None:
        if not self.reached.is_set() and self.select(request):
            self.reached.set()
            await self.release.wait()


async def with_witness(
    tmp_path: Path, log: TinyLog, hook: Stall, body: Callable[[httpx.AsyncClient, SQLiteStorage], Awaitable[None]]
) -> None:
    config = parse_config(f'name = "{SIGNER.name}"\n[[log]]\norigin = "{log.origin}"\nvkey = "{log.vkey}"\n')
    storage = await SQLiteStorage.open(str(tmp_path / "witness.sqlite"))
    try:
        app = create_app(config, storage, SIGNER, lambda: NOW, before_commit=hook)
        async with serve_in_process(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as http:
            try:
                await body(http, storage)
            finally:
                hook.release.set()  # a failed assertion must not leave a request stalled
    finally:
        await storage.close()


def cosigned_by_us(log: TinyLog, request: bytes, response: httpx.Response) -> bool:
    if response.status_code != 200:
        return False
    note = request.split(b"\n\n", 1)[1] + response.content
    ours = SIGNER.verifier()
    return open_note(note, [log.key.verifier(), ours]).verified_by(ours) is not None


def test_two_advances_from_one_size_exactly_one_wins(tmp_path: Path) -> None:
    log = tiny_log()
    stall = Stall(lambda r: r.checkpoint.size == 5)

    async def race(http: httpx.AsyncClient, storage: SQLiteStorage) -> None:
        assert (await http.post("/add-checkpoint", content=log.body(0, 3))).status_code == 200
        first = asyncio.create_task(http.post("/add-checkpoint", content=log.body(3, 5)))
        await asyncio.wait_for(stall.reached.wait(), 10)  # the first passed its checks against size 3…
        second_body = log.body(3, 6)
        second = await http.post("/add-checkpoint", content=second_body)  # …the second commits meanwhile
        assert cosigned_by_us(log, second_body, second)
        stall.release.set()
        lost = await first
        assert (lost.status_code, lost.text, lost.headers["content-type"]) == (409, "6\n", "text/x.tlog.size")
        state = await storage.latest(log.origin)
        assert state is not None and (state.size, state.root) == (6, log.root(6))

    asyncio.run(with_witness(tmp_path, log, stall, race))


def test_a_racing_fork_is_never_cosigned_beside_the_winner(tmp_path: Path) -> None:
    log = tiny_log()
    fork = log.forked(4)
    assert log.root(5) != fork.root(5) and log.root(4) == fork.root(4)
    stall = Stall(lambda r: r.checkpoint.root == log.root(5))

    async def race(http: httpx.AsyncClient, storage: SQLiteStorage) -> None:
        assert (await http.post("/add-checkpoint", content=log.body(0, 4))).status_code == 200
        honest_body, fork_body = log.body(4, 5), fork.body(4, 5)  # both valid from size 4
        honest = asyncio.create_task(http.post("/add-checkpoint", content=honest_body))
        await asyncio.wait_for(stall.reached.wait(), 10)
        forked = await http.post("/add-checkpoint", content=fork_body)
        assert cosigned_by_us(fork, fork_body, forked)
        stall.release.set()
        lost = await honest
        assert (lost.status_code, lost.text) == (409, "5\n")
        # Told size 5, the honest log tries again: now it is the fork, refused.
        retry = await http.post("/add-checkpoint", content=log.body(5, 5))
        assert retry.status_code == 422 and "conflicting root" in retry.text
        state = await storage.latest(fork.origin)
        assert state is not None and (state.size, state.root) == (5, fork.root(5))
        assert [e.root for e in await storage.evidence(log.origin)] == [log.root(5)]

    asyncio.run(with_witness(tmp_path, log, stall, race))


def test_a_stalled_resubmission_cannot_claim_an_old_size_is_the_latest(tmp_path: Path) -> None:
    """Same size, empty proof: still a compare-and-swap on (size, root), so a witness that moved on answers 409."""
    log = tiny_log()
    stall = Stall(lambda r: r.old_size == r.checkpoint.size == 3)

    async def race(http: httpx.AsyncClient, storage: SQLiteStorage) -> None:
        assert (await http.post("/add-checkpoint", content=log.body(0, 3))).status_code == 200
        again = asyncio.create_task(http.post("/add-checkpoint", content=log.body(3, 3)))
        await asyncio.wait_for(stall.reached.wait(), 10)
        assert (await http.post("/add-checkpoint", content=log.body(3, 8))).status_code == 200
        stall.release.set()
        assert ((await again).status_code, (await again).text) == (409, "8\n")

    asyncio.run(with_witness(tmp_path, log, stall, race))


def test_client_timeout_is_a_clear_error(tmp_path: Path) -> None:
    log = tiny_log()
    stall = Stall(lambda r: True)

    async def slow(http: httpx.AsyncClient, storage: SQLiteStorage) -> None:
        async with WitnessClient(str(http.base_url), timeout=0.3) as client:
            with pytest.raises(WitnessUnavailableError, match="ReadTimeout"):
                await client.add_checkpoint(0, [], log.checkpoint(2))
        stall.release.set()

    asyncio.run(with_witness(tmp_path, log, stall, slow))


def test_storage_compare_and_swap_between_two_connections(tmp_path: Path) -> None:
    """Two storages on one file (two processes started by mistake): the second writer loses, cleanly."""
    log = tiny_log()
    path = str(tmp_path / "shared.sqlite")

    def state(size: int, fork: TinyLog | None = None) -> LogState:
        return LogState(size, (fork or log).root(size), b"note %d" % size)

    async def run() -> None:
        one, two = await SQLiteStorage.open(path), await SQLiteStorage.open(path)
        try:
            await one.compare_and_swap(log.origin, None, state(2))
            with pytest.raises(Conflict) as first_insert:  # first-time INSERT, guarded by the primary key
                await two.compare_and_swap(log.origin, None, state(3))
            assert first_insert.value.known_size == 2
            from_two = TreeHead(2, log.root(2))
            results = await asyncio.gather(
                one.compare_and_swap(log.origin, from_two, state(4)),
                two.compare_and_swap(log.origin, from_two, state(5, log.forked(3))),
                return_exceptions=True,
            )
            assert sorted(type(r).__name__ for r in results) == ["Conflict", "NoneType"]
            winner = await two.latest(log.origin)
            assert winner is not None and winner.size in (4, 5)
            assert [r.known_size for r in results if isinstance(r, Conflict)] == [winner.size]
            with pytest.raises(ValueError, match="refusing"):  # the last guard: never back, never a second root
                await one.compare_and_swap(log.origin, winner.head, state(winner.size - 1))
            with pytest.raises(ValueError, match="refusing"):
                await one.compare_and_swap(log.origin, winner.head, LogState(winner.size, bytes(32), b""))
        finally:
            await one.close()
            await two.close()

    asyncio.run(run())
