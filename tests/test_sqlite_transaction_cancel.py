"""A transaction on aiosqlite (logserver/sqlite.py `immediate_transaction`, the lookup merger's) cancelled while
its COMMIT waits on aiosqlite's thread. The cancelled statement still runs there, so the COMMIT ends the
transaction, and the ROLLBACK queued behind it finds none: its error replaced the cancellation with a StorageError,
which the sequencer's merger logged as a failed merge before running on, and the sequencer, stopping, waited for the
merger forever (a `dev.py bench --quick` hung in static_tiles_bench)."""

import asyncio
from pathlib import Path

import aiosqlite
import pytest

from logserver.sqlite import immediate_transaction

# Keeps aiosqlite's thread busy for a while (about a second here): statements queued behind it wait.
SLOW = "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 3000000) SELECT count(*) FROM c"


async def rows(db: aiosqlite.Connection) -> int:
    async with db.execute("SELECT count(*) FROM t") as cursor:
        (count,) = await cursor.fetchone() or (0,)
    return int(count)


def test_a_transaction_cancelled_while_its_commit_waits_is_cancelled_not_a_storage_error(tmp_path: Path) -> None:
    async def scenario() -> None:
        db = await aiosqlite.connect(tmp_path / "t.db", isolation_level=None)
        try:
            await db.execute("CREATE TABLE t (x)")
            queued = asyncio.Event()
            slow: list[asyncio.Future[aiosqlite.Cursor]] = []

            async def write() -> None:
                async with immediate_transaction(db, "the write failed", begin="BEGIN"):
                    await db.execute("INSERT INTO t VALUES (1)")
                    slow.append(asyncio.ensure_future(db.execute(SLOW)))
                    await asyncio.sleep(0)  # the slow statement is queued on the thread: the COMMIT waits behind it
                    queued.set()

            task = asyncio.ensure_future(write())
            await queued.wait()  # the task has queued its COMMIT and awaits it
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await (await slow[0]).close()
            assert not db.in_transaction
            assert await rows(db) == 1  # the COMMIT ran on the thread: the write is whole, not half
        finally:
            await db.close()

    asyncio.run(scenario())


def test_a_transaction_whose_work_fails_is_rolled_back_and_the_failure_raised(tmp_path: Path) -> None:
    async def scenario() -> None:
        db = await aiosqlite.connect(tmp_path / "t.db", isolation_level=None)
        try:
            await db.execute("CREATE TABLE t (x)")
            with pytest.raises(RuntimeError, match="the work failed"):
                async with immediate_transaction(db, "the write failed"):
                    await db.execute("INSERT INTO t VALUES (1)")
                    raise RuntimeError("the work failed")
            assert not db.in_transaction and await rows(db) == 0
        finally:
            await db.close()

    asyncio.run(scenario())
