"""The single sequencer: submitters wait on a pool; one loop swaps it out and commits in a fixed order.

Order of one flush, and what a crash at each step leaves behind:

1. Swap the pool out. Crash: nothing was acknowledged; submitters see a broken
   connection and resubmit (resubmission is idempotent).
2. Re-check each statement against the issuer registry in log order, applying
   registry changes as they come (pure). Statements refused here get their error.
3. Compute leaf and node hashes and the new root from the in-memory right edge
   (pure, about two hashes per leaf).
4. Sign the new checkpoint. Crash: a signature that never left this process;
   the next run may sign another tree of this size, but nobody ever saw this one.
5. One transaction: leaves, hashes, the checkpoint, and a compare-and-swap of
   the head on (old size, old root). Crash before the commit is durable: none of
   it is stored, nothing was acknowledged. A lost compare-and-swap means another
   process sequenced: stop sequencing, say why, never overwrite.
6. Resolve every waiting submitter with its index: only now is an entry
   acknowledged, and it is already on disk.
7. Hand the checkpoint to witnessing, in the background (a slow witness never
   slows sequencing).

On a shared storage (PostgreSQL, a SharedQueue) a process that does not
sequence still accepts submissions: it queues them durably and waits until
they are in the log (or refused); the sequencing process drains the queue into
its pool on every flush. A crash anywhere leaves queued statements queued, to
be logged by whichever process sequences next; a submitter is only answered
once its entry is in the log. A failed commit (the database went away, maybe
mid-commit) reloads the head before the next flush, since the outcome is not
known: the compare-and-swap decides, never a guess.
"""

import asyncio
import contextlib
import copy
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

from logserver.handoff import QueueTimeout, handoff_for
from logserver.keyguard import ForkRefused, KeyGuard
from logserver.logkeys import KeyRing
from logserver.recentleaves import RecentLeaves
from logserver.storage import EntryRecord, Head, HeadMovedError, Storage, StorageError
from tlogcore import merkle
from tlogcore.checkpoint import Checkpoint
from tlogcore.errors import NotAllowedError
from tlogcore.indexroot import IndexRoot
from tlogcore.keys import Signer
from tlogcore.logkey import LogKeyRotation, is_log_key
from tlogcore.note import sign_note
from tlogcore.registry import Registry
from tlogcore.statement import REGISTRY_KINDS, Statement, parse_statement

log = logging.getLogger("logserver.sequencer")
DAMAGED = "run tlog-server check for the details, then restore a backup or run tlog-server recover (docs/key-guard.md)"


class PoolFullError(Exception):
    """The pool is at its bound; the client should retry after `retry_after` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"the sequencing pool is full; retry after {retry_after} s")
        self.retry_after = retry_after


class NotSequencingError(Exception):
    """This process cannot sequence now (another holds the lease, or the head moved under it)."""


@dataclass(frozen=True)
class Submission:
    data: bytes
    # an index-root is logged by the status indexer (statusindexer.py), a log-key by `tlog-server rotate-key`
    statement: Statement | IndexRoot | LogKeyRotation
    leaf_hash: bytes

    @property
    def record(self) -> EntryRecord:
        statement = self.statement  # a log-key entry is stored among the registry's: load() replays both
        replayed = statement.kind in REGISTRY_KINDS or isinstance(statement, LogKeyRotation)
        return EntryRecord(self.data, self.leaf_hash, statement.document, replayed)


@dataclass(frozen=True)
class Sequenced:
    index: int
    leaf_hash: bytes
    duplicate: bool


@dataclass
class SequencerConfig:
    origin: str
    registry_keys: frozenset[str]
    flush_interval: float = 0.1  # seconds; DESIGN.md asks for at most 250 ms
    max_batch: int = 10_000
    flush_at: int = 1_000  # statements waiting that wake the sequencer before the interval (submit(), issue 20)
    max_pool: int = 50_000
    lease_ttl: float = 5.0
    owner: str = "sequencer"
    publish_without_witnesses: bool = True
    queue_poll: float = 0.05  # seconds between checks of a submitter waiting on a shared queue
    queue_timeout: float = 30.0  # then it gets 503; its statements stay queued and are logged later
    # At most this many leaves per merge. A merge takes all that wait (up to this), so a merger that falls behind
    # makes bigger merges, which touch each page of the lookup tables once for more leaves, and catches up.
    merge_rows: int = 1_000_000
    merge_idle: float = 0.2  # seconds between merges when none is waiting
    # A merge waits for this many leaves (or for merge_idle seconds without a commit): a merge of 1,000 leaves
    # cost ~10x more per leaf than one of 10,000, since each rewrites most pages of the lookup tables it touches.
    merge_min: int = 10_000
    names_owned_from: int = 0  # the registry's ownership rule from this index on (logserver/registryrule.py)


@dataclass
class Sequencer:
    storage: Storage
    signer: Signer
    config: SequencerConfig
    clock: Callable[[], float] = time.time
    on_checkpoint: Callable[[Head], Coroutine[Any, Any, None]] | None = None
    head: Head | None = None
    registry: Registry = field(default_factory=lambda: Registry(frozenset()))
    not_sequencing: str | None = "not started"
    _edge: list[bytes] = field(default_factory=list)
    _pool: list[tuple[Submission, asyncio.Future[Sequenced]]] = field(default_factory=list)
    _pending: dict[bytes, asyncio.Future[Sequenced]] = field(default_factory=dict)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _last_lease: float = 0.0
    _group_of: dict[bytes, int] = field(default_factory=dict)  # leaf hash → the submit() call (request) it came in
    _requests_seen: int = 0
    batch_seconds: list[float] = field(default_factory=list)  # for metrics: drained by the app
    guard: KeyGuard | None = None  # default: the same rules with the record in memory (tests, benchmarks)
    _refused_at: float | None = None  # when the guard last refused to sequence (retried every lease_ttl)
    keys: KeyRing | None = None  # the log's keys across rotations (logkeys.py); None: `signer` signs everything
    _recent: RecentLeaves | None = None  # the unmerged tail, while sequencing (recentleaves.py)
    _committed_at: float = 0.0  # time.monotonic() of the last commit, for the merger's idle rule

    def __post_init__(self) -> None:
        self.handoff = handoff_for(self.storage)  # the one seam between the two kinds of storage (handoff.py)
        self._guard = self.guard or KeyGuard(self.config.origin, self.signer.verifier())

    @property
    def key_guard(self) -> KeyGuard:
        return self._guard

    @property
    def size(self) -> int:
        return self.head.size if self.head else 0

    @property
    def pool_size(self) -> int:
        return len(self._pool)

    @property
    def accepts_submissions(self) -> bool:
        """True when sequencing, or when the storage lets another process sequence what this one accepts."""
        return self.not_sequencing is None or self.handoff.accepts_as_standby

    async def load(self) -> None:
        """(Re)load head, right edge and issuer registry from storage: the log's history is the truth."""
        self.head = await self.storage.head()
        if self.head is None and not await self.storage.is_empty():
            raise StorageError(f"the database holds entries but no head checkpoint: it is damaged; {DAMAGED}")
        nodes = merkle.right_edge(self.size)
        try:
            self._edge = await self.storage.get_hashes([merkle.stored_hash_index(lv, i) for lv, i in nodes])
        except KeyError:
            raise StorageError(f"stored hashes of the head's tree are missing (damaged database); {DAMAGED}") from None
        if self.head is not None and self.head.size and merkle.fold_range(self._edge) != self.head.root:
            raise StorageError(f"stored hashes do not match the stored head: refusing to sequence; {DAMAGED}")
        entries = await self.storage.registry_entries()
        self.registry = Registry.replay(
            self.config.registry_keys,
            ((e.index, parse_statement(e.data)) for e in entries if not is_log_key(e.data)),
            self.config.names_owned_from,
        )
        if self.keys is not None:
            self.keys = self.keys.replayed([(e.index, e.data) for e in entries if is_log_key(e.data)])

    def _signers(self, size: int, keys: KeyRing | None) -> list[Signer]:
        return keys.signers(size) if keys is not None else [self.signer]

    async def take_lease(self) -> bool:
        """Take or renew the sequencer lease; on taking it over, reload state first."""
        holder = await self.storage.acquire_lease(self.config.owner, self.clock(), self.config.lease_ttl)
        self._last_lease = self.clock()
        if holder is not None:
            self.not_sequencing = f"another tlog-server process ({holder}) is sequencing this log"
            return False
        if self.not_sequencing is not None:
            await self.load()
            self._recent = await RecentLeaves.load(self.storage, self.size)
            await self.key_guard.reconcile(self.storage, self.head)  # ForkRefused: never sign behind or beside
            if self.head is None:
                await self._publish_empty_tree()
            self.not_sequencing = None
            log.info("sequencing %s from size %d", self.config.origin, self.size)
        return True

    async def _publish_empty_tree(self) -> None:
        """A new log signs its size-0 checkpoint at once, so clients and witnesses have a starting point."""
        note = sign_note(Checkpoint(self.config.origin, 0, merkle.EMPTY_ROOT).text, [self.signer])
        head = Head(0, merkle.EMPTY_ROOT, note)
        await self._record_signed(None, head)
        await self.storage.commit_batch(None, head, [], 0, [], publish=self.config.publish_without_witnesses)
        await self._record_committed(head)
        self.head = head

    async def _record_signed(self, extends: Head | None, new: Head) -> None:
        """Key guard, before the commit that publishes `new` (ForkRefused passes through)."""
        try:
            await self.key_guard.before_publish(extends, new)
        except OSError as exc:
            raise StorageError(f"cannot record the signed checkpoint beside the log key: {exc}") from exc

    async def _record_committed(self, new: Head) -> None:
        try:
            await self.key_guard.committed(new)
        except OSError as exc:  # harmless: the pending record already covers `new` (keyguard.check_signing)
            log.warning("cannot record the committed checkpoint beside the log key: %s", exc)

    async def submit(self, submissions: Sequence[Submission]) -> list[Sequenced]:
        """Wait until every submission is durably sequenced; identical statements return their first entry."""
        if self.not_sequencing is not None:
            if self.handoff.accepts_as_standby:
                return await self._submit_as_standby(submissions)
            raise NotSequencingError(self.not_sequencing)
        existing = await self.find_leaves([s.leaf_hash for s in submissions])
        new = [s for s in submissions if s.leaf_hash not in existing and s.leaf_hash not in self._pending]
        if len(self._pool) + len(new) > self.config.max_pool:
            raise PoolFullError(retry_after=1)
        loop = asyncio.get_running_loop()
        waiters: list[asyncio.Future[Sequenced] | Sequenced] = []
        self._requests_seen += 1
        for s in submissions:
            if s.leaf_hash in existing:
                waiters.append(Sequenced(existing[s.leaf_hash], s.leaf_hash, True))
            elif s.leaf_hash in self._pending:
                waiters.append(self._pending[s.leaf_hash])
            else:
                future: asyncio.Future[Sequenced] = loop.create_future()
                self._pending[s.leaf_hash] = future
                self._group_of[s.leaf_hash] = self._requests_seen
                self._pool.append((s, future))
                waiters.append(future)
        if len(self._pool) >= min(self.config.flush_at, self.config.max_batch):
            self._wake.set()  # a commit's worth (a bulk request, api.MAX_BATCH) waits for no tick; trickles gather
        # One flush resolves a request's futures together: after the first wait the rest are done, and reading
        # them directly saves a shield (an outer future and two callbacks) per statement (issue 20).
        sequenced = [
            w if isinstance(w, Sequenced) else w.result() if w.done() else await asyncio.shield(w) for w in waiters
        ]
        await self._head_covering(sequenced)
        return sequenced

    async def find_leaves(self, leaf_hashes: Sequence[bytes]) -> dict[bytes, int]:
        """`Storage.find_leaves`; while sequencing, the unmerged tail comes from memory, not a scan in storage."""
        if self._recent is None or self.not_sequencing is not None:  # another process may be appending
            return await self.storage.find_leaves(leaf_hashes)
        return await self._recent.find(self.storage, leaf_hashes)

    async def _submit_as_standby(self, submissions: Sequence[Submission]) -> list[Sequenced]:
        """Hand the statements to the sequencing process (handoff.py) and wait until they are in the log."""
        hashes = [s.leaf_hash for s in submissions]
        duplicates = set(await self.storage.find_leaves(hashes))
        try:
            found = await self.handoff.submit(
                [(s.leaf_hash, s.data) for s in submissions], self.config.queue_timeout, self.config.queue_poll
            )
        except QueueTimeout as exc:
            raise NotSequencingError(str(exc)) from None
        sequenced = [Sequenced(found[h], h, h in duplicates) for h in hashes]
        await self._head_covering(sequenced)
        return sequenced

    async def _head_covering(self, sequenced: Sequence[Sequenced]) -> None:
        """Return once `self.head` covers every entry: the response's checkpoint must prove them. Entries found in
        the database can be ahead of it: a flush commits, records the commit beside the key (an fsync), and only
        then moves the head. A standby takes the stored head; a sequencing process waits for its own flush."""
        needed = max((s.index for s in sequenced), default=-1) + 1
        deadline = time.monotonic() + self.config.queue_timeout
        while self.size < needed:
            if self.not_sequencing is not None:
                fresh = await self.storage.head()
                if fresh is not None and fresh.size > self.size:
                    self.head = fresh  # only the sequencer moves it else
                    continue
            if time.monotonic() > deadline:
                raise NotSequencingError(
                    f"the log's head did not reach size {needed} in {self.config.queue_timeout:g} s"
                )
            await asyncio.sleep(self.config.queue_poll)

    async def _follow(self) -> None:
        """Standby: keep head and issuer registry current, so reads and submission checks see the log as it is."""
        fresh = await self.storage.head()
        if fresh is not None and (self.head is None or fresh.size != self.head.size):
            await self.load()
            if self.head is not None:
                try:
                    await self.key_guard.followed(self.head)
                except OSError as exc:
                    log.warning("cannot record the followed checkpoint beside the log key: %s", exc)

    async def _drain_queue(self) -> None:
        """Move statements other processes queued into the pool."""
        loop = asyncio.get_running_loop()
        for queued in await self.handoff.drain(self.config.max_batch - len(self._pool), self._pending):
            future: asyncio.Future[Sequenced] = loop.create_future()
            future.add_done_callback(_nobody_waits)
            self._pending[queued.leaf_hash] = future
            self._pool.append((Submission(queued.data, queued.statement, queued.leaf_hash), future))

    async def _settle_queue(self, logged: Sequence[bytes], refusals: dict[bytes, str]) -> None:
        try:
            await self.handoff.settle(logged, refusals)
        except StorageError as exc:  # harmless: they are drained again, found logged or refused again
            log.warning("queue bookkeeping failed: %s", exc)

    async def run(self) -> None:
        """The loop: flush on the interval or when the pool is full; renew the lease as it goes. Beside it, the
        lookup merger (storage contract 6), so that only the process that writes the log merges."""
        merger = asyncio.get_running_loop().create_task(self._merge_lookups())
        try:
            await self._sequence_loop()
        finally:
            merger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await merger

    async def _merge_lookups(self) -> None:
        """Index committed leaves for lookups, off the commit path; bounded work per transaction."""
        while True:
            moved = 0
            if self.not_sequencing is None and self._merge_due():
                try:
                    moved = await self.storage.merge_lookups(self.config.merge_rows)
                    if self._recent is not None:
                        self._recent.merged_up_to(await self.storage.lookup_watermark())
                except StorageError as exc:
                    log.warning("%s", exc)
            # Polled at the flush interval: _merge_due looks at memory only, and merge_idle may be long.
            await asyncio.sleep(0 if moved else min(self.config.merge_idle, self.config.flush_interval))

    def _merge_due(self) -> bool:
        """Enough leaves wait for one merge, or the log is idle: merge only what is worth a merge's page writes."""
        if self._recent is None:
            return True
        waiting = self.size - self._recent.floor
        idle = time.monotonic() - self._committed_at >= self.config.merge_idle
        return waiting >= self.config.merge_min or (waiting > 0 and idle)

    async def _sequence_loop(self) -> None:
        while True:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for drops a cancellation (SIGTERM) that lands as
            # the event is set, and the loop would run on (monitor/cli.py has the test that showed it).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.config.flush_interval):
                    await self._wake.wait()
            self._wake.clear()
            if self._lease_due():
                try:
                    await self.take_lease()
                except StorageError as exc:
                    log.error("lease renewal failed: %s", exc)
                    continue
                except ForkRefused as exc:
                    self._refuse(str(exc))
            try:
                if self.not_sequencing is not None:
                    await self._follow()
                else:
                    await self._drain_queue()
            except StorageError as exc:
                log.error("storage unavailable: %s", exc)
            if self._pool and self.not_sequencing is None:
                await self.flush()
            elif self._pool:
                self._fail_pool(NotSequencingError(self.not_sequencing or "not sequencing"))

    def _lease_due(self) -> bool:
        if self._refused_at is not None and abs(self.clock() - self._refused_at) < self.config.lease_ttl:
            return False  # the key guard refused: look again later, not on every flush
        # abs(): a wall clock stepping back must not stop the renewals until it catches up again.
        return abs(self.clock() - self._last_lease) >= self.config.lease_ttl / 3 or self.not_sequencing is not None

    def _refuse(self, reason: str) -> None:
        """The key guard refused to sign: stop sequencing, say so once (reads go on)."""
        if reason != self.not_sequencing:
            log.error("%s", reason)
        self.not_sequencing, self._refused_at = reason, self.clock()

    def _fail_pool(self, error: Exception) -> None:
        pool, self._pool = self._pool, []
        for submission, future in pool:
            self._pending.pop(submission.leaf_hash, None)
            self._group_of.pop(submission.leaf_hash, None)
            self.handoff.forget(submission.leaf_hash)
            if not future.done():
                future.set_exception(error)

    def _take_batch(self) -> list[tuple[Submission, asyncio.Future[Sequenced]]]:
        """Up to max_batch from the pool, never cutting one request's statements in two (issue 18, item 11)."""
        cut = min(self.config.max_batch, len(self._pool))
        while 0 < cut < len(self._pool) and self._group_at(cut) is not None:
            if self._group_at(cut) != self._group_at(cut - 1):
                break
            cut += 1
        batch, self._pool = self._pool[:cut], self._pool[cut:]
        return batch

    def _group_at(self, position: int) -> int | None:
        return self._group_of.get(self._pool[position][0].leaf_hash)

    def _apply_rules(
        self, batch: list[tuple[Submission, asyncio.Future[Sequenced]]], logged: dict[bytes, int]
    ) -> tuple[Registry, KeyRing | None, list[tuple[Submission, asyncio.Future[Sequenced]]], dict[bytes, str]]:
        """Registry rules in log order, on a copy that becomes real only after the commit. A request is all or
        nothing: one refused statement refuses its whole request, and the registry goes back to before it."""
        registry, keys = copy.deepcopy(self.registry), self.keys
        accepted: list[tuple[Submission, asyncio.Future[Sequenced]]] = []
        refusals: dict[bytes, str] = {}
        for group in self._requests(batch):
            fresh = []
            for submission, future in group:
                if submission.leaf_hash in logged:  # a racing request already logged it
                    self._resolve(
                        submission, future, Sequenced(logged[submission.leaf_hash], submission.leaf_hash, True)
                    )
                else:
                    fresh.append((submission, future))
            changes_registry = any(s.statement.kind in REGISTRY_KINDS for s, _ in fresh)
            before = copy.deepcopy(registry) if changes_registry and len(fresh) > 1 else registry
            keys_before = keys
            try:
                for offset, (submission, _) in enumerate(fresh):
                    statement, index = submission.statement, self.size + len(accepted) + offset
                    if isinstance(statement, Statement):  # an index-root is no registry matter
                        registry.apply(statement, index)
                    elif isinstance(statement, LogKeyRotation):
                        keys = self._rotated(keys, statement, index)
            except NotAllowedError as exc:
                registry, keys = before, keys_before
                error = NotAllowedError(f"{exc}; nothing from this request was logged") if len(fresh) > 1 else exc
                for submission, future in fresh:
                    self._resolve(submission, future, error)
                    refusals[submission.leaf_hash] = str(exc)
                continue
            accepted += fresh
        return registry, keys, accepted, refusals

    @staticmethod
    def _rotated(keys: KeyRing | None, rotation: LogKeyRotation, index: int) -> KeyRing:
        if keys is None:
            raise NotAllowedError("this log server was started without its key ring: it cannot rotate its key")
        return keys.extended(rotation, index)

    def _requests(
        self, batch: list[tuple[Submission, asyncio.Future[Sequenced]]]
    ) -> list[list[tuple[Submission, asyncio.Future[Sequenced]]]]:
        """The batch cut into requests: runs of one submit() call (queued statements stand alone)."""
        groups: list[list[tuple[Submission, asyncio.Future[Sequenced]]]] = []
        previous: int | None = None
        for item in batch:
            group = self._group_of.get(item[0].leaf_hash)
            if groups and group is not None and group == previous:
                groups[-1].append(item)
            else:
                groups.append([item])
            previous = group
        return groups

    def _resolve(
        self, submission: Submission, future: "asyncio.Future[Sequenced]", outcome: Sequenced | Exception
    ) -> None:
        self._pending.pop(submission.leaf_hash, None)
        self._group_of.pop(submission.leaf_hash, None)
        if future.done():
            return
        if isinstance(outcome, Exception):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)

    async def flush(self) -> None:
        started = time.perf_counter()
        # 1. Swap the pool out (at most max_batch; the rest waits for the next round).
        batch = self._take_batch()
        # 2. Drop statements a racing request already logged; registry rules, in log order.
        try:
            logged = await self.find_leaves([s.leaf_hash for s, _ in batch])
        except StorageError as exc:
            self._fail_batch(batch, exc)
            return
        registry, keys, accepted, refusals = self._apply_rules(batch, logged)
        if not accepted:
            await self._settle_queue(list(logged), refusals)
            return
        # 3. Hashes and root, from the right edge held in memory.
        appended = merkle.append_leaves(self.size, self._edge, [s.leaf_hash for s, _ in accepted])
        new_size = self.size + len(accepted)
        # 4. Sign the checkpoint.
        note = sign_note(Checkpoint(self.config.origin, new_size, appended.root).text, self._signers(new_size, keys))
        new_head = Head(new_size, appended.root, note)
        try:
            await self._record_signed(self.head, new_head)
        except (ForkRefused, StorageError) as exc:
            self._fail_batch(accepted, NotSequencingError(str(exc)))
            if isinstance(exc, ForkRefused):
                self._refuse(str(exc))
                self._fail_pool(NotSequencingError(str(exc)))
            return
        # 5. One transaction with a compare-and-swap on the head.
        try:
            await self.storage.commit_batch(
                self.head,
                new_head,
                [s.record for s, _ in accepted],
                merkle.stored_hash_count(self.size),
                appended.new_hashes,
                publish=self.config.publish_without_witnesses,
            )
        except HeadMovedError as exc:
            with contextlib.suppress(OSError):
                await self.key_guard.abandoned()  # nothing was stored: that signature never left this process
            self.not_sequencing = str(exc)
            log.error("stopped sequencing: %s", exc)
            self._fail_batch(accepted, NotSequencingError(str(exc)))
            self._fail_pool(NotSequencingError(str(exc)))
            return
        except StorageError as exc:
            log.error("commit failed, batch of %d refused: %s", len(accepted), exc)
            self._fail_batch(accepted, exc)
            self.not_sequencing = f"reloading after a failed commit: {exc}"  # it may have committed after all
            return
        await self._record_committed(new_head)
        # 6. Acknowledge: the entries are durable.
        first, self._committed_at = self.size, time.monotonic()
        if self._recent is not None:
            self._recent.added(first, [s.leaf_hash for s, _ in accepted])
        self.head, self._edge, self.registry, self.keys = new_head, appended.edge, registry, keys
        for offset, (submission, future) in enumerate(accepted):
            self._resolve(submission, future, Sequenced(first + offset, submission.leaf_hash, False))
        self.batch_seconds.append(time.perf_counter() - started)
        await self._settle_queue([*logged, *(s.leaf_hash for s, _ in accepted)], refusals)
        # 7. Witnessing, in the background.
        if self.on_checkpoint is not None:
            task: asyncio.Task[None] = asyncio.get_running_loop().create_task(self.on_checkpoint(new_head))
            task.add_done_callback(_log_failure)

    def _fail_batch(self, batch: list[tuple[Submission, asyncio.Future[Sequenced]]], error: Exception) -> None:
        for submission, future in batch:
            self._pending.pop(submission.leaf_hash, None)
            self._group_of.pop(submission.leaf_hash, None)
            self.handoff.forget(submission.leaf_hash)  # still queued: drained again later
            if not future.done():
                future.set_exception(error)


def _nobody_waits(future: "asyncio.Future[Sequenced]") -> None:
    """A queued statement's waiter is in another process: mark any exception as seen."""
    if not future.cancelled():
        future.exception()


def _log_failure(task: "asyncio.Task[None]") -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("witnessing failed: %s", task.exception())
