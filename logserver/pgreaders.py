"""PostgreSQL connections kept out of asyncpg's pool for reads (logserver/postgres.py `_fetch`).

A read through the pool pays its acquire and release: a task for the acquire's timeout, a shielded task for the
release, ~50 us of the server's CPU per proof by leaf hash (docs/performance.md, "Proofs by leaf hash", fifth
round). A reader is a pooled connection taken once and kept: at most `limit` of them (PostgresStorage keeps half the
pool, so commits and transactions always have the other half). A read that finds none idle waits its turn, first
come first served: a reader given back goes to the oldest waiter, never to a read that came later (asyncio.Queue
let later reads barge in, and the waiters' p99 under wrk was 100 ms). Only single statements outside any
transaction run on a reader, so it carries no state from one read to the next; after an error (a cancelled or
timed-out query, a dropped connection) it goes back to the pool, which ends the query or the connection.
"""

import asyncio
import collections
import contextlib
from collections.abc import Sequence
from typing import Any

import asyncpg  # type: ignore[import-untyped]  # no stubs shipped


class Readers:
    def __init__(self, pool: asyncpg.Pool, limit: int, timeout: float, errors: tuple[type[BaseException], ...]):
        self._pool, self.limit, self._timeout, self._errors = pool, limit, timeout, errors
        self.idle: list[asyncpg.Connection] = []
        self._owned = 0  # idle, in use, or being connected
        self._waiting: collections.deque[asyncio.Future[asyncpg.Connection]] = collections.deque()

    async def fetch(self, sql: str, args: Sequence[Any]) -> list[asyncpg.Record]:
        conn = await self._take()
        try:
            rows: list[asyncpg.Record] = await conn.fetch(sql, *args)
        except BaseException:
            self._owned -= 1
            await self._pool.release(conn)
            raise
        if self._owned > self.limit:  # closing
            self._owned -= 1
            await self._pool.release(conn)
        else:
            self._give_back(conn)
        return rows

    async def _take(self) -> asyncpg.Connection:
        """An idle reader, a new one while fewer than `limit`, else the next one given back."""
        if self.idle:
            return self.idle.pop()
        if self._owned < self.limit:
            self._owned += 1  # before the await: concurrent reads never connect more than `limit`
            try:
                return await self._pool.acquire(timeout=self._timeout)
            except BaseException:
                self._owned -= 1
                raise
        handed: asyncio.Future[asyncpg.Connection] = asyncio.get_running_loop().create_future()
        self._waiting.append(handed)
        try:
            async with asyncio.timeout(self._timeout):
                return await handed
        except BaseException:
            if handed.done() and not handed.cancelled() and handed.exception() is None:  # handed, then cancelled
                self._give_back(handed.result())
            raise

    def _give_back(self, conn: asyncpg.Connection) -> None:
        while self._waiting:
            handed = self._waiting.popleft()
            if not handed.done():  # else timed out or cancelled
                handed.set_result(conn)
                return
        self.idle.append(conn)

    async def close(self) -> None:
        """No reader kept from now on: the idle ones back to the pool, a read still running releases its own (the
        pool's close waits for every connection)."""
        self.limit = -1
        await self.drop()

    async def drop(self) -> None:
        """The idle readers back to the pool, and the waiting reads refused (retried by `_fetch` on a lost
        connection; at close, refused)."""
        for handed in filter(lambda f: not f.done(), self._waiting):
            handed.set_exception(asyncpg.InterfaceError("readers dropped"))
        self._waiting.clear()
        while self.idle:
            conn = self.idle.pop()
            self._owned -= 1
            with contextlib.suppress(*self._errors):  # a dropped connection: the pool ends it
                await self._pool.release(conn)
