"""The status index's update made as two, one per half of the tree, in long-lived processes of their own
(docs/status-proofs.md §9, §11 "Sixteenth round").

Why: the indexer's process ran one chain of Python (read the paths' pages, apply the documents, encode the rows)
under one GIL, and used 0.75 of a core even with a core to itself, while the machine stayed 0.4 of a core idle at
10,000 entries/s (§11, fifteenth round). A document's path never leaves the half of the tree its key's first bit
names, so below the root an update is two independent updates. Each shard keeps its half's top (UpperLevels),
reads its half's pages from storage, applies its half's documents over them and encodes its half's rows; the
indexer's process joins the two into the root's page (tlogcore.statusindex_pages.join_halves) and commits every
row, the version and the head in one transaction, as the whole update does. So a crash still leaves a version
whole or not at all, and the rows, roots and proofs are byte for byte the whole update's.

The indexer's process makes the update whole itself, as before, where the halves are not apart (an empty index,
or a root that is a leaf), and for a batch under `keep_from` documents unless the shards made the update before
(`holds`): the shards start at the first big batch, and from then on take small ones too, so that their tops stay
the head's (§11 "Forty-second round"). The update after one made whole is made once that one has committed (the
shards do not hold its pages), so the next big one goes back to the shards (§11 "Nineteenth round"); an update is
not made while one commits if a shard no longer holds the version in flight either.

A shard is `python -m witness.workerprocess` (a socket pair, one request and one answer at a time, in order), a
child of the indexer's process: it exits at end of file and, through `exit_with_parent`, within half a second of
that process's death, even mid-update. A shard that fails or is gone fails the update (StorageError): the server
then replaces the indexer's process, its shards with it (indexerprocess.py).
"""

import asyncio
import contextlib
import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from logserver.config import ServerConfig
from logserver.opening import open_status_store
from logserver.statuspages import encoded
from logserver.statusstore import StatusStore
from logserver.storage import StorageError
from tlogcore.errors import TlogError
from tlogcore.gcpause import CollectorAtRest, paused_gc
from tlogcore.statusindex_nodes import NodeId
from tlogcore.statusindex_pages import ROOT_PAGE, Page, encode_raw, join_halves, page_id_bytes
from tlogcore.statuspageset import PageSet
from tlogcore.statuspageupdate import raw_hash
from witness.processes import exit_with_parent
from witness.workerprocess import WorkerProcess

HALVES = 2  # the root's two children: one shard each (a 2-core machine's two cores)
START_TIMEOUT = 60.0  # seconds for a shard to import and open its connection
Entry = tuple[int, str, bytes]  # (log index, kind, document SHA-256)


class ShardFailed(StorageError):
    """A shard could not make its half (its storage failed, or it is gone): the update is not made."""


@dataclass(frozen=True)
class ShardSettings:
    """What a shard opens (pickled to it: paths and configuration, never a key)."""

    data: Path  # the log's data directory
    config: ServerConfig
    half: int
    depth: int  # UpperLevels' depth
    collect_every: int


@dataclass(frozen=True)
class HalfUpdate:
    """A shard's answer: the root's page as its update made it (its own side new, the other as it last read it),
    and its half's other pages, encoded at the new version (statuspages.encoded)."""

    root_page: Page | None  # None: the half had no document
    rows: list[tuple[bytes, int, bytes]]


class IndexShard:
    """In the shard's process: the top of its half (UpperLevels), and the pages its last update wrote, for the next
    update made while that one commits (IndexUpdater's `overlap`)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        store: StatusStore,
        settings: ShardSettings,
        collector: CollectorAtRest | None = None,  # the shard's process's (open_shard)
    ) -> None:
        from logserver.statusindexer import UpperLevels  # statusindexer imports this module

        self._loop, self._store = loop, store
        # Its top is kept whatever its half's share of the batch (a small batch comes only once it holds it)
        self._upper = UpperLevels(store, 1, settings.depth, half=settings.half)
        self._in_flight: tuple[int, dict[NodeId, Page]] | None = None  # (version, its pages), not committed yet
        self._collector = collector

    def __call__(self, request: tuple[Any, ...]) -> HalfUpdate | str | None:
        """("update", covered, end, entries, following) → HalfUpdate, None (declined: `following` and the version
        in flight is not this shard's), or the failure's message; ("forget",) and ("rest",) → None."""
        if request[0] == "forget":
            self._upper.forget()
            self._in_flight = None
            return None
        if request[0] == "rest":  # the indexer caught up with the log
            if self._collector is not None:
                self._collector.at_rest()
            return None
        try:
            with paused_gc():
                answer = self._loop.run_until_complete(self._update(*request[1:]))
        except (StorageError, TlogError, OSError) as exc:  # answered, not raised: a raise would end the shard
            self._upper.forget()
            self._in_flight = None
            return str(exc)
        if self._collector is not None:
            self._collector.after_update(answer is not None)
        return answer

    async def _update(self, covered: int, end: int, entries: Sequence[Entry], following: bool) -> HalfUpdate | None:
        pages = PageSet(covered)
        if following:  # `covered` is being committed: its rows are not readable yet, its pages are this shard's
            if self._in_flight is None or self._in_flight[0] != covered or not self._upper.holds(covered):
                return None
            pages.pages.update(self._in_flight[1])
        if not entries:  # nothing in this half: its pages at `end` are those at `covered`
            pages.made({})
            self._upper.committed(covered, end, pages)
            self._in_flight = (end, {})
            return HalfUpdate(None, [])
        update = await self._upper.update(entries, covered, pages)
        _, written = update.apply()  # the root's hash is the joined page's, not this half's alone
        pages.made(written)
        self._upper.committed(covered, end, pages)
        self._in_flight = (end, written)
        below_root = {page: nodes for page, nodes in written.items() if page != ROOT_PAGE}
        return HalfUpdate(written[ROOT_PAGE], encoded(below_root, end))


def open_shard(settings: ShardSettings) -> IndexShard:
    exit_with_parent(os.getppid())  # the indexer's process
    loop = asyncio.new_event_loop()
    store = loop.run_until_complete(open_status_store(settings.data, settings.config, indexer=True))
    return IndexShard(loop, store, settings, CollectorAtRest(settings.collect_every))


class ShardPool:
    """The indexer's side: two shards, each request answered in order. Answers owed to a request whose caller was
    cancelled (the next update dropped when a commit failed) are read and dropped before the next request."""

    def __init__(self, settings: Sequence[ShardSettings]) -> None:
        self._settings = list(settings)
        self._shards: list[WorkerProcess] = []
        self._owed = [0] * len(self._settings)
        self._root: tuple[int, Page] | None = None  # the last joined root's page and its version
        self.updates = 0  # made by the shards (the tests check they made them)

    async def _started(self) -> None:
        """Start the shards at the first update they make (a log that never has a big batch never needs them)."""
        try:
            while len(self._shards) < len(self._settings):
                settings = self._settings[len(self._shards)]
                self._shards.append(await WorkerProcess.start(functools.partial(open_shard, settings), START_TIMEOUT))
        except (OSError, TimeoutError, EOFError) as exc:
            self.close()
            raise ShardFailed(f"a status index shard did not start: {exc}") from None
        self._owed = [0] * len(self._shards)

    def holds(self, version: int) -> bool:
        """Whether their last update (committed or in flight) made `version`: its tops are theirs to build on."""
        return self._root is not None and self._root[0] == version

    def close(self) -> None:
        shards, self._shards, self._root = self._shards, [], None
        for shard in shards:
            with contextlib.suppress(OSError):
                shard.stop()

    def forget(self) -> None:
        """The shards' tops and pages in flight may not be the head's any more: read again at the next update."""
        self._root = None
        self._send_all(("forget",))

    async def rest(self) -> None:
        """The indexer caught up with the log: each shard's full collection, if due (gcpause.CollectorAtRest)."""
        self._send_all(("rest",))
        await self._settle()

    async def prepare(
        self, store: StatusStore, covered: int, end: int, entries: Sequence[Entry], following: bool
    ) -> tuple[bytes, PageSet] | None:
        """The update of `entries` over version `covered` made by the shards: its root and its rows (PageSet.rows),
        not committed; None if the halves are not apart, or if `following` and a shard no longer holds `covered`."""
        base = await self._root_page(store, covered)
        if base.get(1, (True, b""))[0]:
            return None  # no root yet, or a leaf: the update is made whole
        if not self._shards:
            await self._started()
        await self._settle()
        halves: list[list[Entry]] = [[] for _ in self._shards]
        for entry in entries:
            halves[entry[2][0] >> 7].append(entry)
        for half, documents in enumerate(halves):  # a half with none is asked too: it moves its top to `end`
            self._send(half, ("update", covered, end, documents, following))
        answers = [await self._answer(half) for half in range(len(self._shards))]
        if None in answers:
            self.forget()
            return None
        made = [answer for answer in answers if answer is not None]
        root_page = join_halves(base, [answer.root_page for answer in made])
        pages = PageSet(covered)
        pages.made_rows(
            [(page_id_bytes(ROOT_PAGE), end, encode_raw(root_page))] + [row for half in made for row in half.rows]
        )
        self._root = (end, root_page)
        self.updates += 1
        return raw_hash(root_page[1]), pages

    async def _root_page(self, store: StatusStore, version: int) -> Page:
        if self._root is not None and self._root[0] == version:
            return self._root[1]  # the one joined last (being committed, or committed)
        return (await store.read_pages([ROOT_PAGE], version))[ROOT_PAGE]

    def _send(self, half: int, request: tuple[Any, ...]) -> None:
        self._shards[half].send(request)
        self._owed[half] += 1

    def _send_all(self, request: tuple[Any, ...]) -> None:
        for half in range(len(self._shards)):
            self._send(half, request)

    async def _receive(self, half: int) -> Any:
        try:
            answer = await self._shards[half].receive()
        except EOFError as exc:
            raise ShardFailed(f"status index shard {half}: {exc}") from None
        self._owed[half] -= 1
        return answer

    async def _settle(self) -> None:
        for half, owed in enumerate(self._owed):
            for _ in range(owed):
                await self._receive(half)

    async def _answer(self, half: int) -> HalfUpdate | None:
        answer = await self._receive(half)
        if isinstance(answer, str):
            self.forget()
            raise ShardFailed(f"status index shard {half}: {answer}")
        return answer  # type: ignore[no-any-return]


def shard_settings(data: Path, config: ServerConfig, depth: int, collect_every: int) -> list[ShardSettings]:
    return [ShardSettings(data, config, half, depth, collect_every) for half in range(HALVES)]
