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

On a shared storage (PostgreSQL, a SharedQueue) a process that does not sequence still accepts submissions: it
queues them durably and waits until they are in the log (or refused); the sequencing process drains the queue into
its pool on every flush. A crash anywhere leaves queued statements queued, to be logged by whichever process
sequences next; a submitter is only answered once its entry is in the log. A failed commit (the database went away,
maybe mid-commit) reloads the head before the next flush, since the outcome is not known: the compare-and-swap
decides, never a guess. A lease renewal that fails refuses the pool at once (503, retry): nothing in it was stored.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

from logserver import batchrules
from logserver.batchrules import RulesOutcome
from logserver.handoff import QueueTimeout, handoff_for
from logserver.keyguard import ForkRefused, KeyGuard
from logserver.logkeys import KeyRing
from logserver.readtail import ReadTail
from logserver.recentleaves import RecentLeaves
from logserver.sequencing import PreparedBatch, Request
from logserver.sequencing import Sequenced as Sequenced
from logserver.sequencing import SequencerConfig as SequencerConfig
from logserver.sequencing import Submission as Submission
from logserver.storage import Head, HeadMovedError, Storage, StorageError
from tlogcore import merkle
from tlogcore.checkpoint import Checkpoint
from tlogcore.errors import NotAllowedError
from tlogcore.keys import Signer
from tlogcore.logkey import is_log_key
from tlogcore.note import sign_note
from tlogcore.registry import Registry
from tlogcore.statement import parse_statement

log = logging.getLogger("logserver.sequencer")
DAMAGED = "run tlog-server check for the details, then restore a backup or run tlog-server recover (docs/key-guard.md)"


class PoolFullError(Exception):
    """The pool is at its bound; the client should retry after `retry_after` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"the sequencing pool is full; retry after {retry_after} s")
        self.retry_after = retry_after


class NotSequencingError(Exception):
    """This process cannot sequence now (another holds the lease, or the head moved under it)."""


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
    _pool: list[Request] = field(default_factory=list)
    _pooled: int = 0  # statements in the pool
    _pending: dict[bytes, Request] = field(default_factory=dict)  # leaf hash -> the request that will log it
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _last_lease: float = 0.0
    batch_seconds: list[float] = field(default_factory=list)  # for metrics: drained by the app
    guard: KeyGuard | None = None  # default: the same rules with the record in memory (tests, benchmarks)
    _refused_at: float | None = None  # when the guard last refused to sequence (retried every lease_ttl)
    keys: KeyRing | None = None  # the log's keys across rotations (logkeys.py); None: `signer` signs everything
    _recent: RecentLeaves | None = None  # the unmerged tail, while sequencing (recentleaves.py)
    tail: ReadTail = field(default_factory=ReadTail)  # the tail's lookup keys for reads, in every process (readtail.py)
    _committed_at: float = 0.0  # time.monotonic() of the last commit, for the merger's idle rule
    _recheck: set[bytes] = field(default_factory=set)  # statements whose first lookup may have missed a commit
    merged_through: int = 0  # the lookup watermark after the merger's last merge, checkpoints included (benchmarks)

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
        return self._pooled

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
            self.merged_through = self._recent.floor  # the stored watermark, as the merger's first look would read
            await self.tail.follow(self.storage, self.size)
            self._recheck.update(s.leaf_hash for r in self._pool for s in r.submissions)  # the log may have moved
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
        head = self.head
        hashes = [s.leaf_hash for s in submissions]
        existing = await self.find_leaves(hashes)
        stale = self.head is not head  # a commit landed during the lookup (PostgreSQL): the flush looks again
        pending = self._pending
        new = [s for s in submissions if s.leaf_hash not in existing and s.leaf_hash not in pending]
        if len({s.leaf_hash for s in new}) < len(new):  # the same statement twice in one request: logged once
            new = list({s.leaf_hash: s for s in new}.values())
        if self._pooled + len(new) > self.config.max_pool:
            raise PoolFullError(retry_after=1)
        request = None
        if new:
            future = asyncio.get_running_loop().create_future()
            request = Request(new, future, batchrules.changes_rules([s.statement for s in new]))
            pending.update(dict.fromkeys([s.leaf_hash for s in new], request))
            self._pool.append(request)
            self._pooled += len(new)
            if stale:
                self._recheck.update(s.leaf_hash for s in new)
            if self._pooled >= min(self.config.flush_at, self.config.max_batch):
                self._wake.set()  # a commit's worth (a bulk request, api.MAX_BATCH) waits for no tick; trickles gather
        if request is not None and len(new) == len(submissions):  # the usual case: all new, one future to wait for
            await asyncio.shield(request.done)  # shielded: a submitter going away must not cancel the request
            sequenced = request.entries() if not request.logged else [request.entry(h) for h in hashes]
        else:
            sequenced = await self._sequenced(hashes, existing)
        await self._head_covering(sequenced)
        return sequenced

    async def _sequenced(self, hashes: Sequence[bytes], existing: dict[bytes, int]) -> list[Sequenced]:
        """Where each statement went: found in the log, or logged by the request holding it (this submit()'s own or
        an earlier one's), in order; the first of those requests refused raises its error."""
        owners = [None if h in existing else self._pending[h] for h in hashes]
        for owner in dict.fromkeys(o for o in owners if o is not None):
            await asyncio.shield(owner.done)
        return [
            Sequenced(existing[h], h, True) if owner is None else owner.entry(h)
            for h, owner in zip(hashes, owners, strict=True)
        ]

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
        await self.tail.follow(self.storage, self.size)

    async def _drain_queue(self) -> None:
        """Move statements other processes queued into the pool."""
        loop = asyncio.get_running_loop()
        for queued in await self.handoff.drain(self.config.max_batch - self._pooled, self._pending):
            future: asyncio.Future[None] = loop.create_future()
            future.add_done_callback(_nobody_waits)
            submission = Submission(queued.data, queued.statement, queued.leaf_hash)
            request = Request([submission], future, batchrules.changes_rules([queued.statement]))
            self._pending[queued.leaf_hash] = request  # a request of its own: it stands alone
            self._recheck.add(queued.leaf_hash)  # another process took it: it may be in the log already
            self._pool.append(request)
            self._pooled += 1

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
                    self.merged_through = watermark = await self.storage.lookup_watermark()
                    self.tail.merged_up_to(watermark)
                    if self._recent is not None:
                        self._recent.merged_up_to(watermark)
                except StorageError as exc:
                    log.warning("%s", exc)
            # Polled at the flush interval: _merge_due looks at memory only, and merge_idle may be long.
            await asyncio.sleep(0 if moved else min(self.config.merge_idle, self.config.flush_interval))

    def _merge_due(self) -> bool:
        """Enough leaves wait for one merge, or the log is idle: merge only what is worth a merge's page writes.
        Enough grows with the tables (SequencerConfig.merge_batch), so the page writes per leaf stay flat."""
        if self._recent is None:
            return True
        merged = self._recent.floor  # at most the stored watermark, known without asking storage
        waiting = self.size - merged
        # Idle: nothing waits to be sequenced, and no commit for merge_idle. Not the time alone: a commit that takes
        # longer than merge_idle (10,000 entries at 10^7 on PostgreSQL) would start a merge of a short tail.
        idle = not self._pending and time.monotonic() - self._committed_at >= self.config.merge_idle
        return waiting >= self.config.merge_batch(merged) or (waiting > 0 and idle)

    async def _sequence_loop(self) -> None:
        while True:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for drops a cancellation (SIGTERM) that lands as
            # the event is set, and the loop would run on (monitor/commands.py has the test that showed it).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.config.flush_interval):
                    await self._wake.wait()
            self._wake.clear()
            if self._lease_due():
                try:
                    await self.take_lease()
                except StorageError as exc:
                    log.error("lease renewal failed: %s", exc)
                    self._fail_pool(exc)  # 503 now, not held for as long as the database is away
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
        pool, self._pool, self._pooled = self._pool, [], 0
        self._fail_batch(pool, error)

    def _take_batch(self) -> list[Request]:
        """Whole requests from the front of the pool, up to max_batch statements: one request's statements are never
        cut in two (issue 18, item 11), so a batch may end past max_batch by the rest of its last request."""
        taken = cut = 0
        while cut < len(self._pool) and taken < self.config.max_batch:
            taken += len(self._pool[cut])
            cut += 1
        batch, self._pool = self._pool[:cut], self._pool[cut:]
        self._pooled -= taken
        return batch

    def _apply_rules(
        self, batch: list[Request], logged: dict[bytes, int], first: int, registry: Registry, keys: KeyRing | None
    ) -> tuple[RulesOutcome, list[Request], dict[bytes, str]]:
        """Registry rules in log order from index `first` (logserver/batchrules.py), on a copy that becomes real
        only after the commit. A request is all or nothing: one refused statement refuses its whole request."""
        requests = [request for request in batch if not logged or self._drop_logged(request, logged)]
        statements = [[s.statement for s in request.submissions] for request in requests]
        outcome = batchrules.apply_rules(statements, first, registry, keys)
        accepted: list[Request] = []
        refusals: dict[bytes, str] = {}
        for number, request in enumerate(requests):
            exc = outcome.refused.get(number)
            if exc is None:
                accepted.append(request)
                continue
            error = NotAllowedError(f"{exc}; nothing from this request was logged") if len(request) > 1 else exc
            refusals.update(dict.fromkeys([s.leaf_hash for s in request.submissions], str(exc)))
            self._settle(request, error)
        return outcome, accepted, refusals

    def _drop_logged(self, request: Request, logged: dict[bytes, int]) -> bool:
        """Take out of `request` the statements a racing request already logged (they answer with that entry);
        whether any statement is left in it to log. One with none left is answered now."""
        kept = [s for s in request.submissions if s.leaf_hash not in logged]
        if len(kept) < len(request):
            for submission in request.submissions:
                if submission.leaf_hash in logged:
                    request.logged[submission.leaf_hash] = logged[submission.leaf_hash]
                    self._forget(submission.leaf_hash)
            request.submissions = kept
        if not kept:
            self._settle(request, None)
        return bool(kept)

    def _forget(self, leaf_hash: bytes) -> None:
        self._pending.pop(leaf_hash, None)
        self._recheck.discard(leaf_hash)

    def _settle(self, request: Request, error: Exception | None) -> None:
        """Answer a request: logged (`first` set) or refused with `error`; it is no longer pending."""
        for submission in request.submissions:
            self._forget(submission.leaf_hash)
        if request.done.done():
            return
        if error is None:
            request.done.set_result(None)
        else:
            request.done.set_exception(error)

    async def flush(self) -> None:
        """Commit what waits in the pool, a batch at a time. While requests keep arriving, the next batch's lookups,
        rules and hashes are done while the previous batch commits (the writer waits on its fsync meanwhile), on
        the log as that commit leaves it; it is signed and committed only after that commit (issue 20)."""
        prepared = await self._prepare(self._take_batch(), self.size, self._edge, self.registry, self.keys)
        while prepared is not None:
            commit = asyncio.get_running_loop().create_task(self._publish(prepared))
            try:
                following = await self._prepare_beside(commit, prepared)
                committed = await commit
            except BaseException:
                commit.cancel()
                raise
            if following is not None and (not committed or self.size != following.first):
                self._return_to_pool(following.accepted)  # prepared on a tree that was not committed: again
                following = None
            prepared = following
        if self._pooled >= min(self.config.flush_at, self.config.max_batch):
            self._wake.set()  # what arrived meanwhile goes at once (flush_at)

    async def _prepare_beside(self, commit: "asyncio.Task[bool]", prepared: PreparedBatch) -> PreparedBatch | None:
        """The next batch, made ready on the tree `prepared` makes, from what waits or arrives while it commits.
        Only on rules no commit can change (a registry or key change is committed alone first): if the commit fails,
        what the next batch's rules decided still holds, and only its hashes are redone."""
        await asyncio.sleep(0)  # the commit signs and hands its work to the key guard and the writer
        while not commit.done() and not prepared.changes_rules and not self._lease_due():
            if self._pooled >= min(self.config.flush_at, self.config.max_batch):
                tip = prepared.outcome
                following = await self._prepare(
                    self._take_batch(), prepared.size, prepared.appended.edge, tip.registry, tip.keys
                )
                if following is not None:
                    return following
                continue
            self._wake.clear()
            woken = asyncio.get_running_loop().create_task(self._wake.wait())
            await asyncio.wait((commit, woken), return_when=asyncio.FIRST_COMPLETED)
            woken.cancel()
        return None

    async def _prepare(
        self, batch: list[Request], first: int, edge: list[bytes], registry: Registry, keys: KeyRing | None
    ) -> "PreparedBatch | None":
        """Steps 2 and 3 for `batch` appended at `first` to the tree whose right edge is `edge`; None when
        nothing of it is left to commit."""
        started = time.perf_counter()
        # 2. Drop statements a racing request already logged (only those whose first lookup may be stale).
        recheck = self._recheck
        try:
            stale = [s.leaf_hash for r in batch for s in r.submissions if s.leaf_hash in recheck] if recheck else []
            logged = await self.find_leaves(stale) if stale else {}
        except StorageError as exc:
            self._fail_batch(batch, exc)
            return None
        outcome, accepted, refusals = self._apply_rules(batch, logged, first, registry, keys)
        await asyncio.sleep(0)  # a commit running beside this one takes its next step (flush), then this goes on
        if not accepted:
            await self._settle_queue(list(logged), refusals)
            return None
        hashes = [s.leaf_hash for r in accepted for s in r.submissions]  # 3. Hashes and root, from the right edge.
        appended = merkle.append_leaves(first, edge, hashes)
        changes = any(r.changes_rules for r in accepted)
        records = [s.record for r in accepted for s in r.submissions]
        return PreparedBatch(started, first, accepted, hashes, records, logged, refusals, outcome, appended, changes)

    async def _publish(self, prepared: "PreparedBatch") -> bool:
        """Steps 4 to 7 for a prepared batch extending the current head; whether it was committed."""
        accepted, new_size, keys = prepared.accepted, prepared.size, prepared.outcome.keys
        # 4. Sign the checkpoint.
        root = prepared.appended.root
        note = sign_note(Checkpoint(self.config.origin, new_size, root).text, self._signers(new_size, keys))
        new_head = Head(new_size, root, note)
        try:
            await self._record_signed(self.head, new_head)
        except (ForkRefused, StorageError) as exc:
            self._fail_batch(accepted, NotSequencingError(str(exc)))
            if isinstance(exc, ForkRefused):
                self._refuse(str(exc))
                self._fail_pool(NotSequencingError(str(exc)))
            return False
        # 5. One transaction with a compare-and-swap on the head.
        try:
            await self.storage.commit_batch(
                self.head,
                new_head,
                prepared.records,
                merkle.stored_hash_count(self.size),
                prepared.appended.new_hashes,
                publish=self.config.publish_without_witnesses,
            )
        except HeadMovedError as exc:
            with contextlib.suppress(OSError):
                await self.key_guard.abandoned()  # nothing was stored: that signature never left this process
            self.not_sequencing = str(exc)
            log.error("stopped sequencing: %s", exc)
            self._fail_batch(accepted, NotSequencingError(str(exc)))
            self._fail_pool(NotSequencingError(str(exc)))
            return False
        except StorageError as exc:
            log.error("commit failed, batch of %d refused: %s", len(prepared.hashes), exc)
            self._fail_batch(accepted, exc)
            self.not_sequencing = f"reloading after a failed commit: {exc}"  # it may have committed after all
            return False
        await self._record_committed(new_head)
        self._acknowledge(prepared, new_head)
        await self._settle_queue([*prepared.logged, *prepared.hashes], prepared.refusals)
        # 7. Witnessing, in the background.
        if self.on_checkpoint is not None:
            task: asyncio.Task[None] = asyncio.get_running_loop().create_task(self.on_checkpoint(new_head))
            task.add_done_callback(_log_failure)
        return True

    def _acknowledge(self, prepared: "PreparedBatch", new_head: Head) -> None:
        """6. The entries are durable: the log moves on, and every waiting submitter gets its index."""
        first, self._committed_at = self.size, time.monotonic()
        if self._recent is not None:
            self._recent.added(first, prepared.hashes)
        self.tail.added_records(first, prepared.records)
        self.head, self._edge = new_head, prepared.appended.edge
        self.registry, self.keys = prepared.outcome.registry, prepared.outcome.keys
        pending = self._pending
        for leaf_hash in prepared.hashes:
            pending.pop(leaf_hash, None)
        if self._recheck:
            self._recheck.difference_update(prepared.hashes)
        for request in prepared.accepted:
            request.first, first = first, first + len(request)
            if not request.done.done():
                request.done.set_result(None)
        self.batch_seconds.append(time.perf_counter() - prepared.started)

    def _return_to_pool(self, requests: list[Request]) -> None:
        """Back to the front of the pool, in order, to be looked up again: the log may have moved meanwhile."""
        self._recheck.update(s.leaf_hash for r in requests for s in r.submissions)
        self._pool[:0] = requests
        self._pooled += sum(map(len, requests))

    def _fail_batch(self, batch: list[Request], error: Exception) -> None:
        for request in batch:
            for submission in request.submissions:
                self.handoff.forget(submission.leaf_hash)  # still queued: drained again later
            self._settle(request, error)


def _nobody_waits(future: "asyncio.Future[None]") -> None:
    """A queued statement's waiter is in another process: mark any exception as seen."""
    if not future.cancelled():
        future.exception()


def _log_failure(task: "asyncio.Task[None]") -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("witnessing failed: %s", task.exception())
