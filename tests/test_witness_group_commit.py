"""The witness's group commit (witness/storage.py): compare-and-swaps that wait together commit together, with
exactly the outcome each would have had alone, and nobody hears "won" unless the COMMIT carrying its row returned.
Real SQLite files; no mocks."""

import asyncio
import sqlite3
from pathlib import Path

import pytest
from witness_helpers import tiny_log

from witness.storage import LogState, SQLiteStorage, StorageUnavailable
from witness.witness import Conflict, TreeHead

LOG = tiny_log()


def state(size: int) -> LogState:
    return LogState(size, LOG.root(size), b"note %d" % size)


def head(size: int) -> TreeHead:
    return TreeHead(size, LOG.root(size))


def stored_size(path: Path, origin: str) -> int | None:
    with sqlite3.connect(path) as db:  # a separate connection: what is on disk, not what a cache says
        row = db.execute("SELECT size FROM latest WHERE origin = ?", (origin,)).fetchone()
    return None if row is None else int(row[0])


def test_swaps_waiting_together_keep_their_one_by_one_outcomes(tmp_path: Path) -> None:
    """Twelve logs advancing at once, plus three requests racing from one size of a thirteenth log: every
    log advances, and of the three exactly one wins while the others learn the size that won."""
    path = tmp_path / "w.sqlite"
    origins = [f"log.example/{i}" for i in range(12)]

    async def run() -> tuple[list[BaseException | None], list[BaseException | None]]:
        storage = await SQLiteStorage.open(str(path))
        try:
            await storage.compare_and_swap("race", None, state(2))
            advances = [storage.compare_and_swap(o, None, state(3)) for o in origins]
            racing = [storage.compare_and_swap("race", head(2), state(n)) for n in (4, 5, 6)]
            results = await asyncio.gather(*advances, *racing, return_exceptions=True)
        finally:
            await storage.close()
        return list(results[:12]), list(results[12:])

    advanced, raced = asyncio.run(run())
    assert advanced == [None] * 12
    assert [stored_size(path, o) for o in origins] == [3] * 12
    assert raced[0] is None  # arrival order: the first from size 2 wins…
    assert [type(r) for r in raced[1:]] == [Conflict, Conflict]  # …the others lost to it, in the same batch
    assert [r.known_size for r in raced[1:] if isinstance(r, Conflict)] == [4, 4]
    assert stored_size(path, "race") == 4


def test_a_failed_commit_fails_every_swap_of_its_batch_and_stores_none(tmp_path: Path) -> None:
    path = tmp_path / "w.sqlite"

    async def run() -> list[BaseException | None]:
        storage = await SQLiteStorage.open(str(path))
        try:
            await storage.compare_and_swap("kept", None, state(2))
            storage._writer.execute("PRAGMA query_only = 1")  # every write now fails, as on a full disk
            results = await asyncio.gather(
                storage.compare_and_swap("kept", head(2), state(3)),
                storage.compare_and_swap("new", None, state(1)),
                return_exceptions=True,
            )
            storage._writer.execute("PRAGMA query_only = 0")
            await storage.compare_and_swap("kept", head(2), state(5))  # the database works again
            return list(results)
        finally:
            await storage.close()

    results = asyncio.run(run())
    assert [type(r) for r in results] == [StorageUnavailable, StorageUnavailable]
    assert stored_size(path, "kept") == 5 and stored_size(path, "new") is None


def test_a_read_after_a_won_swap_sees_it(tmp_path: Path) -> None:
    """Reads use their own connection: each must see every commit that returned before it."""

    async def run() -> list[int]:
        storage = await SQLiteStorage.open(str(tmp_path / "w.sqlite"))
        try:
            seen = []
            previous: TreeHead | None = None
            for size in range(1, 30):
                await storage.compare_and_swap(LOG.origin, previous, state(size))
                latest = await storage.latest(LOG.origin)
                assert latest is not None
                seen.append(latest.size)
                previous = latest.head
            with pytest.raises(Conflict):  # and a stale expectation still loses
                await storage.compare_and_swap(LOG.origin, head(3), state(40))
            return seen
        finally:
            await storage.close()

    assert asyncio.run(run()) == list(range(1, 30))


def test_a_cancelled_request_leaves_its_batch_and_its_own_swap_committed(tmp_path: Path) -> None:
    """compare_and_swap awaits its own future (no asyncio.shield, docs/performance.md "The witness", third round):
    a request cancelled while its swap waits for the commit is cancelled alone; its swap is committed all the same
    (the committer skips a future already done), and the others of its batch hear that they won."""
    path = tmp_path / "w.sqlite"

    async def run() -> tuple[bool, list[BaseException | None]]:
        storage = await SQLiteStorage.open(str(path))
        try:
            swaps = [
                asyncio.create_task(storage.compare_and_swap(f"log.example/{i}", None, state(i + 1))) for i in range(4)
            ]
            await asyncio.sleep(0)  # every swap is waiting for the commit
            swaps[1].cancel()
            outcomes = await asyncio.gather(*swaps, return_exceptions=True)
            again = await asyncio.gather(  # the committer is still sound: one more batch, from the stored heads
                *(storage.compare_and_swap(f"log.example/{i}", head(i + 1), state(i + 2)) for i in range(4)),
                return_exceptions=True,
            )
            return swaps[1].cancelled(), [*outcomes, *again]
        finally:
            await storage.close()

    cancelled, outcomes = asyncio.run(run())
    assert cancelled and isinstance(outcomes[1], asyncio.CancelledError)
    assert [outcomes[i] for i in (0, 2, 3)] == [None, None, None] and outcomes[4:] == [None] * 4
    assert [stored_size(path, f"log.example/{i}") for i in range(4)] == [2, 3, 4, 5]
