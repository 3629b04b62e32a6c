"""The one seam between a storage several processes share and one that only the sequencing process writes.

`Sequencer` asks its `Handoff` (chosen once, by `handoff_for`) what a process that does not sequence does with
submissions, and where queued statements come from and go to (storage contract 5, logserver/storage.py):

- `NoHandoff` (SQLite): a standby refuses submissions; there is nothing to drain or settle.
- `QueueHandoff` (PostgreSQL, a SharedQueue): a standby queues them durably and waits until the sequencing process
  has logged them; the sequencing process drains the queue into its pool and settles what it logged or refused.
"""

import asyncio
import time
from collections.abc import Container, Sequence
from dataclasses import dataclass, field

from logserver.storage import SharedQueue, Storage
from tlogcore import merkle
from tlogcore.errors import NotAllowedError, TlogError
from tlogcore.statement import Statement, parse_statement


class QueueTimeout(Exception):
    """Queued statements were not sequenced in time (they stay queued and are logged later)."""


@dataclass(frozen=True)
class Queued:
    data: bytes
    statement: Statement
    leaf_hash: bytes


class NoHandoff:
    accepts_as_standby = False

    async def submit(self, pairs: Sequence[tuple[bytes, bytes]], timeout: float, poll: float) -> dict[bytes, int]:
        raise QueueTimeout("this storage has no queue")  # never called: accepts_as_standby is False

    async def drain(self, room: int, pending: Container[bytes]) -> list[Queued]:
        return []

    async def settle(self, logged: Sequence[bytes], refusals: dict[bytes, str]) -> None:
        return None

    def forget(self, leaf_hash: bytes) -> None:
        return None


@dataclass
class QueueHandoff:
    queue: SharedQueue
    storage: Storage
    _from_queue: set[bytes] = field(default_factory=set)  # leaf hashes in the pool that came from the queue
    accepts_as_standby = True

    async def submit(self, pairs: Sequence[tuple[bytes, bytes]], timeout: float, poll: float) -> dict[bytes, int]:
        """Standby: queue (leaf hash, statement) pairs durably, then wait until every one is in the log; the
        index of each. NotAllowedError if the sequencing process refused one; QueueTimeout after `timeout`."""
        hashes = [h for h, _ in pairs]
        found = await self.storage.find_leaves(hashes)
        waiting = {h: d for h, d in pairs if h not in found}
        if waiting:
            await self.queue.enqueue(list(waiting.items()))
        deadline = time.monotonic() + timeout
        while waiting:
            await asyncio.sleep(poll)
            found.update(await self.storage.find_leaves(list(waiting)))
            refused = await self.queue.queue_refusals([h for h in waiting if h not in found])
            if refused:
                raise NotAllowedError(next(iter(refused.values())))
            waiting = {h: d for h, d in waiting.items() if h not in found}
            if waiting and time.monotonic() > deadline:
                raise QueueTimeout(
                    f"{len(waiting)} statements are queued but no process has sequenced them within "
                    f"{timeout:g} s; they will be logged, resubmit later to get their entries"
                )
        return found

    async def drain(self, room: int, pending: Container[bytes]) -> list[Queued]:
        """Statements other processes queued, for the pool (their signatures were checked on the way in)."""
        if room <= 0:
            return []
        refusals: dict[bytes, str] = {}
        out = []
        for data in await self.queue.queued(room):
            digest = merkle.leaf_hash(data)
            if digest in pending:
                continue
            try:
                statement = parse_statement(data, check_signature=False)
            except TlogError as exc:
                refusals[digest] = f"malformed queued statement: {exc}"
                continue
            self._from_queue.add(digest)
            out.append(Queued(data, statement, digest))
        if refusals:
            await self.queue.refuse_queued(refusals)
        return out

    async def settle(self, logged: Sequence[bytes], refusals: dict[bytes, str]) -> None:
        """After a flush: forget queued statements now in the log, and record the refused ones for their waiters."""
        logged = [h for h in logged if h in self._from_queue]
        refusals = {h: r for h, r in refusals.items() if h in self._from_queue}
        self._from_queue.difference_update(logged)
        self._from_queue.difference_update(refusals)
        if logged:
            await self.queue.dequeue(logged)
        if refusals:
            await self.queue.refuse_queued(refusals)

    def forget(self, leaf_hash: bytes) -> None:
        """A pooled statement failed (the batch or the commit did): still queued, it is drained again later."""
        self._from_queue.discard(leaf_hash)


Handoff = NoHandoff | QueueHandoff


def handoff_for(storage: Storage) -> Handoff:
    """The seam, decided once: a storage that is also a SharedQueue hands submissions over through it."""
    return QueueHandoff(storage, storage) if isinstance(storage, SharedQueue) else NoHandoff()
