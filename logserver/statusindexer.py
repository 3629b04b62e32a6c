"""The status indexer: keeps the status index up with the log, off the commit path (docs/status-proofs.md §9).

`IndexUpdater` does the index's own work; `tlog-server serve` runs it in a process of its own (indexerprocess.py)
and `StatusIndexer` in the caller's event loop (tests, tools). Each step:
1. the index covers entries [0, N) (statusstore head), the log holds [0, S); if S > N, read entries [N, S) and
   keep their `issue` and `revoke` statements (index, kind, document);
2. read the pages on those documents' paths at version N in rounds (tlogcore PageUpdate), compute the update
   page by page, and commit it at version S with a compare-and-swap of the index head, in one transaction;
3. sign `index-root(size S, root, time)` with the log's registry key and log it as an ordinary entry, then
   record where it landed (`IndexRootLogger`, in the process that sequences).
A crash (kill -9) anywhere leaves either version N or version S whole; a version whose statement was not logged
yet is logged on the next step (the signature is deterministic and its time is stored with the version, so the
resubmission is the same leaf and the sequencer answers with the entry it already has).

Entries that are themselves `index-root` statements name no document: a range holding nothing else does not make
a new version (otherwise each statement would call for the next, one entry per step forever).
"""

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import KW_ONLY, dataclass, field

from logserver.keyindex import KeyIndex
from logserver.metrics import Metrics
from logserver.sequencer import NotSequencingError, PoolFullError, Sequencer, Submission
from logserver.statusshards import ShardPool
from logserver.statusstore import IndexVersion, StatusStore
from logserver.storage import Storage, StorageError
from logserver.tasks import cancel_and_wait
from tlogcore.checkpoint import parse_checkpoint
from tlogcore.errors import TlogError
from tlogcore.gcpause import paused_gc
from tlogcore.indexroot import IndexRoot, is_index_root, parse_index_root, sign_index_root
from tlogcore.keys import Ed25519Signer
from tlogcore.logkey import is_log_key
from tlogcore.merkle import leaf_hash
from tlogcore.note import parse_note
from tlogcore.statement import DOCUMENT_KINDS, logged_document, parse_statement
from tlogcore.statusindex import KEY_BITS
from tlogcore.statusindex_nodes import NodeId, PathPlan
from tlogcore.statusindex_pages import STRIDE, Page, first_depth_below, page_id_bytes, scan_page
from tlogcore.statuspageset import PageSet, decoded
from tlogcore.statuspageupdate import PageUpdate

log = logging.getLogger("logserver.statusindexer")
MAX_ENTRIES_PER_STEP = 20_000  # an updater's default (tests); the server's indexer process: indexerprocess.STEP
# Depths the indexer keeps in memory: the pages starting at depths 0 to 20 (statusindex_pages.py), at most
# 2^24 - 1 nodes whatever the size. At 10^6 a path is about 20 deep, so the pages at depth 16 were most of an
# update's reads: keeping them took the read phase from 45 to 26 us and the update from 147 to 125 us per document,
# all in (docs/status-proofs.md §11, eighth round). At 10^7 a path is about 23 deep and the pages at depth 20 were
# about one read per entry, each a `pread` of the index file beyond SQLite's memory map: keeping them took the
# indexing processes from 171-198 to 159-160 us per entry at 10,000 entries/s, for about 2.3 GB per shard process;
# at 10^6 it costs more than it saves (155 against 141 us, 0.3 GB more per shard: §11, twenty-ninth round). The
# depth is one for every size: a depth that changes with the size must read the top again, and a shard making the
# next update while the last one commits cannot (its rows are not readable yet).
UPPER_DEPTH = 23  # the last depth of a page (pages start at multiples of STRIDE): kept pages are kept whole
KEEP_FROM = 1024  # documents in one update from which the top is worth loading (an indexer catching up)
# Pages one write transaction of the indexer rewrites or prunes at most (its update's own pages included; a version
# pruned whole, alone if it is bigger): a catch-up of many steps in one cycle leaves them all due at once (50 steps
# of 20,000 at 10^6: 1.85 million), and deleting them in one transaction held SQLite's write lock for 12.5 s, past
# the sequencer's 5 s busy timeout (docs/status-proofs.md §11, "Seventh round"). One full step at 10^6 rewrites
# about 45,000 pages: its commit then prunes the oldest due version alone (`_due`), as the end of a cycle does.
PAGES_PER_WRITE = 50_000
# Seconds between noting the version lookups are served at and deleting the rows it supersedes: a lookup that began
# before the note (it reads in a few rounds, in milliseconds) has finished by then. Time, not cycles: an index that
# never catches up with the log stays in one cycle, and pruning once waited for the cycle's end, so under a
# sustained load the superseded rows were never deleted (docs/status-proofs.md §11, "Seventeenth round").
PRUNE_GRACE = 2.0
# reconcile_index: entries read back from the log's end for its last index-root, and per read. An index writes one
# every few seconds, so a lost index finds it in the first read; a log never indexed is read this far back.
ROOT_SCAN = 1_000_000
SCAN_CHUNK = 10_000
# What a cycle may meet and retry at the next: storage down, a damaged row, and the sequencer refusing the
# `index-root` statement (its pool full under load, or the lease lost). The last two once ended the indexer's task.
UPDATE_FAILURES = (StorageError, TlogError, OSError, NotSequencingError, PoolFullError)


def document_entries(datas: Sequence[bytes], first: int) -> tuple[list[tuple[int, str, bytes]], bool]:
    """The (index, kind, document) of the issue and revoke statements among entries first, first+1, …, and
    whether any entry is not an index-root statement (then the range calls for a new index version)."""
    found, other = [], False
    for offset, data in enumerate(datas):
        if is_index_root(data) or is_log_key(data):  # neither names a document (a log-key: logkeys.py)
            continue
        other = True
        document = logged_document(data)  # logged: parsed whole when it was submitted
        if document is not None:
            found.append((first + offset, *document))
            continue
        statement = parse_statement(data, check_signature=False)  # a registry statement (or never seen before)
        if statement.kind in DOCUMENT_KINDS and statement.document is not None:
            found.append((first + offset, statement.kind, statement.document))
    return found, other


async def read_plan(store: StatusStore, plan: PathPlan, version: int, pages: PageSet | None = None) -> PathPlan:
    """Every round of `plan` against the stored rows as of `version` (each page read once, kept in `pages`): any
    plan, by node ids. The server's lookups read one key's pages whole instead (statuslookup.read_proof); the tests
    read with this one too, a second reader to compare them with."""
    pages = pages or PageSet(version)
    while wanted := plan.wanted():
        plan.supply(await store.read_nodes(wanted, version, pages))
    return plan


class UpperLevels:
    """The pages holding the nodes at depth <= UPPER_DEPTH as of one index version (the pages starting at depth
    0, 4, 8, 12, 16 and 20, whole), kept in memory between updates.

    The indexer is the index's only writer (compare-and-swap), so after its own commit it knows the new top pages
    without reading them (the commit wrote them whole: `PageSet.written`); they are handed to the next commit,
    which then reads none of them again. They are used only while the head read from storage is the version they
    are of (a version's rows never change once committed); any other head (a restart, another writer's commit),
    a failed compare-and-swap and any update that raised (its commit may or may not have landed) make them be read
    again, so a crash or another process's write never leaves a stale page in use.
    Below the kept depths a path is read a page per round (its 4 levels: one stored row, statusindex_pages.py),
    so a round reads at most one row per open path and an update at 10^6 takes about 3 rounds. The top is loaded
    only for a batch of `keep_from` documents or more (an indexer catching up, as the monitor does, §9): a small
    batch reads its few paths from storage, a page per round from the root.
    The pages of the deepest kept depth are most of the top (2^20 of 1.1 million at 10^7), and parsing them all
    took 22 of the 26 s a load took there, while the index fell behind the log: their rows are kept as stored and
    each is parsed when a batch's path first reaches it (`_parse_paths`), before the walk that needs it.
    """

    def __init__(
        self, store: StatusStore, keep_from: int = KEEP_FROM, depth: int = UPPER_DEPTH, half: int | None = None
    ) -> None:
        """`half`: keep only the root's page and the pages of that half of the tree (a shard: statusshards.py)."""
        self._store, self._keep_from, self._depth, self._half = store, keep_from, depth, half
        self._bottom = depth - depth % STRIDE  # the deepest kept pages start here
        self._version: int | None = None
        self._pages: dict[NodeId, Page] = {}  # a commit rewrites these whole
        self._unparsed: dict[bytes, bytes] = {}  # stored rows of pages at `_bottom` no path has reached yet

    async def update(self, entries: Sequence[tuple[int, str, bytes]], version: int, pages: PageSet) -> PageUpdate:
        """The update adding `entries` at `version` (the index head), every page it needs read; `pages` keeps
        the pages read (for the commit), the kept ones included (the commit does not read them again)."""
        if self._version != version:
            self.forget()
            if len(entries) >= self._keep_from:
                rows = await self._store.read_upper_rows(self._depth, version, self._half)
                self._pages, self._unparsed = await asyncio.to_thread(self._split, rows)
                self._version = version
        if self._version == version and self._unparsed:
            await asyncio.to_thread(self._parse_paths, entries)
        # Below the kept levels a page per path per round; with no top kept, a path is about log2(size) + 2
        # deep: its pages that far down are asked in the first round (as PathPlan's first window asks).
        ahead = 0 if self._version == version else version.bit_length() + 4
        held = self._version == version and pages.version == version
        if pages.version == version:
            pages.pages.update(self._pages)
        # With the top held, the walk starts below it (every page starting at depth <= self._depth that a path of
        # this batch reaches is held: the walk reads no other).
        update = PageUpdate(entries, pages.pages, held_above=first_depth_below(self._depth) if held else 0)
        while wanted := update.wanted(ahead):
            update.supply(await self._store.read_pages(wanted, version, pages))
            await asyncio.sleep(0)  # SQLite reads do not yield: let the event loop run between rounds
        return update

    def _split(self, rows: Sequence[tuple[bytes, bytes]]) -> tuple[dict[NodeId, Page], dict[bytes, bytes]]:
        """The top's rows: those above `_bottom` parsed, those at it as stored (none kept unparsed if it is 0)."""
        bottom = self._bottom.to_bytes(2, "big") if self._bottom else None
        return decoded([row for row in rows if row[0][:2] != bottom]), {p: d for p, d in rows if p[:2] == bottom}

    def _parse_paths(self, entries: Sequence[tuple[int, str, bytes]]) -> None:
        """Parse the kept page at `_bottom` on each entry's path, unless parsed already (or written since: the
        parsed page is then the newer one) or stored nowhere (the path ends above it)."""
        shift = KEY_BITS - self._bottom
        for _, _, document in entries:
            page = (self._bottom, int.from_bytes(document, "big") >> shift)
            if page not in self._pages and (data := self._unparsed.pop(page_id_bytes(page), None)) is not None:
                self._pages[page] = scan_page(self._bottom, data)

    def committed(self, old: int, new: int, pages: PageSet) -> None:
        """The update from version `old` to `new` is committed, its pages as `pages.written`: if the top held
        was `old`'s, they make it `new`'s."""
        if self._version != old or pages.version != old:
            self.forget()
            return
        self._pages.update((page, nodes) for page, nodes in pages.written.items() if page[0] <= self._depth)
        self._version = new

    def holds(self, version: int) -> bool:
        """Whether the top kept is `version`'s."""
        return self._version == version

    def forget(self) -> None:
        self._version, self._pages, self._unparsed = None, {}, {}


@dataclass(frozen=True)
class Advanced:
    """A version the indexer committed, and whether its root is to be stated in the log (`IndexUpdater.advance`)."""

    version: IndexVersion
    stated: bool


@dataclass(frozen=True)
class Prepared:
    """An update applied over `base` (None: the empty index) and not committed: the version it makes, its pages."""

    base: IndexVersion | None
    new: IndexVersion
    pages: PageSet

    @property
    def sharded(self) -> bool:
        """Made by the shards (statusshards.py): its pages are rows only, and the shards hold them for the next."""
        return self.pages.rows is not None

    def builds_on(self, head: IndexVersion | None) -> bool:
        """Whether `head` (read from storage) is the version it was made over."""
        if head is None or self.base is None:
            return head is None and self.base is None
        return (head.size, head.root) == (self.base.size, self.base.root)


@dataclass
class IndexUpdater:
    """The index's own work: each `advance` commits the next version (read, apply, commit, prune what is due);
    stating its root in the log is the caller's (`StatusIndexer` in one process; the server with the updater in a
    process of its own: indexerprocess.py)."""

    storage: Storage
    store: StatusStore
    _: KW_ONLY
    clock: Callable[[], float] = time.time
    # Versions this process wrote, with the pages they rewrote (their stored ids): once no lookup
    # reads below a version, the older rows of those pages are deleted, in the next update's own transaction
    # (`_due`), or alone at the end of a cycle that committed none (`prune`). Lost on restart: a crash leaks at
    # most a few updates' old rows.
    _rewritten: list[tuple[int, list[bytes]]] = field(default_factory=list)
    _notes: deque[tuple[float, int]] = field(default_factory=deque)  # (monotonic time, version served), note_served
    _prunable: int = 0  # rows superseded at or below this version are read by no lookup any more
    _unread: tuple[int, int] = (0, 0)  # (log_roots_from, versions at or below it never read: `_note_unread`)
    prune_grace: float = PRUNE_GRACE
    monotonic: Callable[[], float] = time.monotonic
    keep_upper_from: int = KEEP_FROM  # UpperLevels
    upper_depth: int = UPPER_DEPTH  # UpperLevels (tests keep fewer depths, so that small indexes read pages)
    pages_per_write: int = PAGES_PER_WRITE
    max_entries_per_step: int = field(default_factory=lambda: MAX_ENTRIES_PER_STEP)  # read when made (tests set it)
    _upper: UpperLevels | None = None
    overlap: bool = False  # prepare the next update while one commits (the indexer's own process)
    _following: "asyncio.Task[Prepared | None] | None" = None  # the next update, being made or made, not committed
    shards: ShardPool | None = None  # big updates made as two halves (the indexer's own process)

    async def advance(self) -> Advanced | None:
        """One update if the log has grown, committed but not yet stated in the log (the caller logs its root
        when `stated`: `IndexRootLogger`); None if the index did not advance. With `overlap`, the next update is
        prepared while this one commits (`_prepare_following`), goes on being prepared after this call returns
        (the caller states this root meanwhile, §11 "Twelfth round"), and is committed by the next call."""
        with paused_gc():  # gcpause.py: a fifth of the update's CPU otherwise
            following, self._following = self._following, None
            prepared = await following if following is not None else None  # made while the caller stated a root
            head, log_from = await self.store.head(), await self.store.log_roots_from()
            await self._note_unread(log_from)
            if prepared is not None and not prepared.builds_on(head):
                prepared = None  # made over a head that another writer has moved since
                self._forget_upper()  # its kept pages are that update's, not the head's
            if prepared is None:
                prepared = await self._prepare(head)
                if prepared is None:
                    return None
            following = asyncio.create_task(self._prepare_following(prepared)) if self.overlap else None
            try:
                await self._commit(prepared)
            except BaseException:
                await cancel_and_wait([following] if following else [])
                raise
            self._following = following  # not awaited here: this root is stated while the next one is made
        # a rebuild states no size below one already stated (the monitor's rule)
        return Advanced(prepared.new, prepared.new.size >= log_from)

    async def close(self) -> None:
        """Stop making the next update (nothing of it is stored; a new updater makes it again), and the shards."""
        following, self._following = self._following, None
        await cancel_and_wait([following] if following else [])
        if self.shards is not None:
            self.shards.close()

    async def _prepare(
        self, base: IndexVersion | None, in_flight: dict[NodeId, Page] | None = None, after_shards: bool = False
    ) -> Prepared | None:
        """The entries after `base` (a step at most) applied over it, not committed; None if the log holds none or
        they name no document. `in_flight`: the pages `base`'s commit, not landed yet, writes; `after_shards`:
        that commit's update was made by the shards, which hold its pages (None if they cannot make this one).
        The kept top pages move to the new version at once (`_commit` forgets them if the commit fails)."""
        covered = base.size if base else 0
        log_head = await self.storage.head()
        end = min(log_head.size if log_head else 0, covered + self.max_entries_per_step)
        if end <= covered:
            return None
        # Parsing and hashing run in a thread: the event loop (sequencing, lookups) goes on meanwhile (§9).
        entries, grows = await asyncio.to_thread(
            document_entries, await self.storage.get_entries(covered, end), covered
        )
        if not grows:
            return None
        # A batch goes to the shards if big, or if they hold `covered` (the update before was theirs): made here,
        # it would leave their tops behind, and the next big one waited while they read them again (2-4 s at 10^7,
        # docs/status-proofs.md §11 "Forty-second round").
        big = len(entries) >= self.keep_upper_from
        if self.shards is not None and in_flight is None and (big or self.shards.holds(covered)):
            made = await self.shards.prepare(self.store, covered, end, entries, after_shards)
            if made is not None:
                if self._upper is not None:
                    self._upper.forget()  # its memory back: the shards keep the top now
                return Prepared(base, IndexVersion(end, made[0], int(self.clock())), made[1])
        if after_shards:
            return None  # made whole here it would read rows the commit in flight has not written yet
        upper = self._upper = self._upper or UpperLevels(self.store, self.keep_upper_from, self.upper_depth)
        try:
            pages = PageSet(covered)
            pages.pages.update(in_flight or {})  # taken whole: reads at `covered` do not see them yet
            update = await upper.update(entries, covered, pages)
            root, written = await asyncio.to_thread(update.apply)
        except BaseException:
            upper.forget()  # read the top again next time
            raise
        pages.made(written)
        upper.committed(covered, end, pages)
        return Prepared(base, IndexVersion(end, root, int(self.clock())), pages)

    async def _prepare_following(self, prepared: Prepared) -> Prepared | None:
        """The update after `prepared`, made while `prepared` commits: its pages are read at `prepared`'s
        version, which has no rows yet, so each read returns the row before it; that is the new version's row
        for every page the commit does not write, and the pages it writes are taken from it, whole. Only with the
        top kept (else it would be read from rows the commit has not written yet), and, with shards, only after
        an update they made: None otherwise, or on any failure (the next call prepares again, after the commit)."""
        if prepared.sharded:
            with contextlib.suppress(StorageError, TlogError, OSError):
                return await self._prepare(prepared.new, after_shards=True)
            return None
        if self.shards is not None:
            # Made whole here (a small batch, or no halves apart yet): the next update, made over this one's pages
            # in flight, would be made whole too, and so on while the log outruns the index, the shards idle (a
            # whole paced phase at 10,000/s, §11 "Nineteenth round"). It is made after this commit instead, by the
            # shards if it is big.
            return None
        if self._upper is None or not self._upper.holds(prepared.new.size):
            return None
        try:
            return await self._prepare(prepared.new, prepared.pages.written)
        except (StorageError, TlogError, OSError):
            return None

    async def _commit(self, prepared: Prepared) -> None:
        written = prepared.pages.page_ids_written()
        due = self._due(self.pages_per_write - len(written))
        try:
            await self.store.commit(prepared.base, prepared.new, {}, prepared.pages, due)
        except BaseException:
            self._forget_upper()  # the commit may or may not have landed: read the top again next time
            raise  # the prunes stay due (pruning twice deletes nothing more)
        del self._rewritten[: len(due)]
        self._rewritten.append((prepared.new.size, written))  # what a prune deletes by

    def _forget_upper(self) -> None:
        if self._upper is not None:
            self._upper.forget()
        if self.shards is not None:
            self.shards.forget()

    def note_served(self, served: int) -> None:
        """Note the version lookups are served at now (each step may). Rows superseded at or below a version noted
        `prune_grace` seconds ago, before this note, may go: a lookup that began before that note has finished, and
        every later one reads at that version or newer (the served version never moves back)."""
        now = self.monotonic()
        while len(self._notes) > 1 and self._notes[1][0] <= now - self.prune_grace:
            self._notes.popleft()  # the newest note old enough is kept
        if self._notes and self._notes[0][0] <= now - self.prune_grace:
            self._prunable = max(self._prunable, self._notes[0][1])
        self._notes.append((now, served))

    async def _note_unread(self, log_from: int) -> None:
        """Versions of fewer than `log_from` entries get no index-root statement (`advance`); if none of them
        had one before either, no lookup ever reads one, and a row superseded at or below `log_from` is read by
        nothing: it may go at once, without a served version. An index rebuilt from a log of 10^7 states roots
        from about 9*10^6 on: its catch-up pruned nothing before, and left SQLite's table 3.2 rows per page,
        compacted by the first minutes of load (docs/status-proofs.md §11 "Thirty-third round")."""
        if log_from != self._unread[0]:
            self._unread = (log_from, 0 if await self.store.logged_below(log_from) else log_from)

    def _due(self, budget: int) -> list[tuple[int, list[bytes]]]:
        """The oldest rewritten versions whose superseded rows no lookup reads any more, whole, as many as rewrote
        `budget` pages at most, and the oldest alone if it is bigger: so each write prunes at least a version when
        one is due, and pruning keeps pace with an index that never catches up (a step rewrites more pages than
        the budget at 10^6). The rest wait for the next writes."""
        count, pages, prunable = 0, 0, max(self._prunable, self._unread[1])
        while count < len(self._rewritten) and self._rewritten[count][0] <= prunable:
            pages += len(self._rewritten[count][1])
            if pages > budget and count > 0:
                break
            count += 1
        return self._rewritten[:count]

    async def prune(self) -> None:
        """Delete rows that are due and that no update has deleted in its own transaction: one write's worth per
        cycle (`pages_per_write`; one version alone if it is bigger), each version in a transaction of its own;
        the cycle's pause then lets the sequencer in."""
        for version, pages in self._due(self.pages_per_write):
            await self.store.prune(version, pages)
            self._rewritten.pop(0)


@dataclass
class StatusIndexer(IndexUpdater):
    """The updater in the sequencing process's event loop, stating each version's root through `log_statement`."""

    registry_key: Ed25519Signer
    origin: str
    log_statement: Callable[[bytes], Awaitable[int]]  # logs an entry, returns its index once durable
    interval: float = 0.25
    metrics: Metrics | None = None  # gets the lag: published entries no logged index root covers yet
    may_write: Callable[[], bool] = field(default=lambda: True)  # only the sequencing process indexes
    _keys: KeyIndex | None = field(default=None, init=False, repr=False)

    async def step(self) -> bool:
        """One update if the log has grown; True if the index advanced."""
        unlogged = await unlogged_version(self.store)
        if unlogged is not None:
            await self._log_root(unlogged)  # committed before a crash, its statement not yet logged
        advanced = await self.advance()
        if advanced is None:
            return False
        if advanced.stated:
            await self._log_root(advanced.version)
        return True

    async def _log_root(self, version: IndexVersion) -> None:
        if self._keys is None:
            self._keys = KeyIndex(self.storage)
        await IndexRootLogger(self.store, self.registry_key, self.origin, self.log_statement, self._keys).log(version)

    async def measure_lag(self) -> int:
        """The lag, published in the metrics, and the served version noted for pruning (note_served)."""
        lag, served = await self.publish_lag()
        self.note_served(served)
        return lag

    async def publish_lag(self) -> tuple[int, int]:
        return await publish_lag(self.storage, self.store, self.metrics)

    async def run(self) -> None:
        """Step until cancelled; a failing step is logged and retried (the log itself is never held up)."""
        while True:
            try:
                await self.measure_lag()  # before catching up: the gauge shows the worst point of each cycle
                if self.may_write():
                    while await self.step():
                        await self.measure_lag()  # the gauge moves, and pruning keeps pace (note_served)
                await self.prune()  # what no update deleted (an idle index)
            except UPDATE_FAILURES as exc:
                log.warning("status index update failed (retried): %s", exc)
            await asyncio.sleep(self.interval)


async def last_stated(storage: Storage, size: int, scan: int = ROOT_SCAN) -> int:
    """A size that no `index-root` among the log's entries [0, size) goes beyond: the one the last of them states,
    read back from the log's end; if there is none among the last `scan` entries, the size where the reading stopped
    (an index-root states a size below its own position), or 0 if it read the whole log."""
    end, floor = size, max(0, size - scan)
    while end > floor:
        start = max(floor, end - SCAN_CHUNK)
        for data in reversed(await storage.get_entries(start, end)):
            if is_index_root(data):
                with contextlib.suppress(TlogError):  # one the log should have refused: a monitor alerts on it
                    return parse_index_root(data, check_signature=False).size
        end = start
    return floor


async def reconcile_index(storage: Storage, store: StatusStore, scan: int = ROOT_SCAN) -> str | None:
    """At the server's start, before its indexer: the index derived from this log, or started over (what was done,
    for the server's log). An index ahead of the log (its file from another time or place) is emptied; so is none
    at all (a file lost, or an earlier release's moved: statusstore.py) told where to state roots from. Either way
    the rebuilt index states roots only from the size the log's last `index-root` covers (`last_stated`): the
    monitor alerts on a size that goes back. The index is read first: it never covers more than the log had when
    it was committed."""
    head = await store.head()
    log_head = await storage.head()
    size = log_head.size if log_head else 0
    if head is not None and head.size <= size:
        return await _behind(storage, store, head.size, size, scan)
    stated = await last_stated(storage, size, scan)
    if head is None:
        if stated <= await store.log_roots_from():
            return None  # roots from 0 for a log never indexed, or already told
        await store.start_over(stated)
        return f"status index: none stored; it is built from the log, its roots stated from size {stated} on"
    await store.start_over(stated)
    return f"status index covers {head.size} entries but the log holds {size}: started over, rebuilt from the log"


async def _behind(storage: Storage, store: StatusStore, indexed: int, size: int, scan: int) -> str | None:
    """An index behind its log (as it is while it catches up, or older than the log's last index-root: its file
    restored from an older copy, its last commits lost in a power cut) goes on from its head, stating roots only
    from that index-root's size. Only the entries past the index are read back: an index-root before them states a
    size below the index's."""
    stated = await last_stated(storage, size, min(scan, size - indexed))
    if stated <= indexed or stated <= await store.log_roots_from():
        return None
    await store.state_roots_from(stated)
    return f"status index covers {indexed} entries, the log's last index root {stated}: its roots stated from there"


async def unlogged_version(store: StatusStore) -> IndexVersion | None:
    """The head version if it was committed but its `index-root` statement not logged (a crash between the two)."""
    head, log_from = await store.head(), await store.log_roots_from()
    return head if head is not None and head.entry is None and head.size >= log_from else None


async def published_and_served(storage: Storage, store: StatusStore) -> tuple[int, int]:
    """(the newest published checkpoint's size, the size the newest index root inside it covers): the second is the
    version lookups are served at (statuslookup.py), which pruning waits for (`IndexUpdater.note_served`)."""
    published = await storage.latest_published()
    size = parse_checkpoint(parse_note(published).text).size if published else 0
    logged = await store.newest_logged(size)
    return size, logged.size if logged else 0


async def publish_lag(storage: Storage, store: StatusStore, metrics: Metrics | None) -> tuple[int, int]:
    """(entries of the newest published checkpoint that no index root inside it covers, the size the newest such
    root covers): §9's lag, set in `metrics`, and the version lookups are served at."""
    size, served = await published_and_served(storage, store)
    if metrics is not None:
        metrics.status_index_lag = size - served
    return size - served, served


@dataclass(frozen=True)
class IndexRootLogger:
    """Signs a committed version's `index-root` statement with the log's registry key, logs it as an ordinary
    entry and records where it landed (§9: a version whose statement is not logged yet is logged again later; the
    signature is deterministic, its time stored with the version and its key index root a function of the log's
    entries below its size, so the retry is the same leaf). It states v2 roots (§12: the key index's beside)."""

    store: StatusStore
    registry_key: Ed25519Signer
    origin: str
    log_statement: Callable[[bytes], Awaitable[int]]
    keys: KeyIndex

    async def log(self, version: IndexVersion) -> None:
        await self.store.set_entry(version.size, await self.state(version))

    async def state(self, version: IndexVersion) -> int:
        """Log the version's statement; the entry it landed at, not recorded yet (the caller's: `log`, or the
        indexer's process on its writer's thread, indexerprocess.py)."""
        signer = self.registry_key.verifier().vkey
        keys_root = (await self.keys.at(version.size)).root
        statement = IndexRoot(self.origin, signer, version.time, version.size, version.root, keys_root)
        return await self.log_statement(sign_index_root(statement, self.registry_key))


def logged_by(sequencer: Sequencer) -> Callable[[bytes], Awaitable[int]]:
    """Log an index-root statement through the sequencer's pool, like any entry; its index once durable."""

    async def log_statement(data: bytes) -> int:
        submission = Submission(data, parse_index_root(data), leaf_hash(data))
        return (await sequencer.submit([submission]))[0].index

    return log_statement
