"""The sequencer's data: its configuration, what it takes in, what it answers, and a batch ready to commit."""

import asyncio
from dataclasses import dataclass, field

from logserver.batchrules import RulesOutcome
from logserver.storage import EntryRecord
from tlogcore import merkle
from tlogcore.indexroot import IndexRoot
from tlogcore.logkey import LogKeyRotation
from tlogcore.statement import REGISTRY_KINDS, Statement


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


@dataclass(slots=True)
class Sequenced:
    """Where a submitted statement is in the log. One is made per entry answered: not frozen, since a frozen
    dataclass's __init__ cost 0.8 us and this one 0.3 (issue 20)."""

    index: int
    leaf_hash: bytes
    duplicate: bool


@dataclass(eq=False)
class Request:
    """One submit() call's statements new to the log (or one statement another process queued): they go into one
    batch and are logged or refused together (issue 18, item 11), with one future for all of them, not one each
    (issue 20: a future per statement cost the event loop ~2 us per entry)."""

    submissions: list[Submission]
    done: "asyncio.Future[None]"  # set once they are committed (`first` set), or with the error refusing them
    changes_rules: bool  # a registry or key change among them (batchrules.changes_rules)
    first: int = -1  # the index of the first of `submissions`; the others follow it in order
    logged: dict[bytes, int] = field(default_factory=dict)  # found in the log before this committed, not logged again
    _positions: dict[bytes, int] | None = None

    def __len__(self) -> int:
        return len(self.submissions)

    def entry(self, leaf_hash: bytes) -> Sequenced:
        """Where one of its statements went, once `done`."""
        if leaf_hash in self.logged:
            return Sequenced(self.logged[leaf_hash], leaf_hash, True)
        if self._positions is None:
            self._positions = {s.leaf_hash: i for i, s in enumerate(self.submissions)}
        return Sequenced(self.first + self._positions[leaf_hash], leaf_hash, False)

    def entries(self) -> list[Sequenced]:
        """Where each of `submissions` went, in order, once `done` (those found logged are no longer among them)."""
        return [Sequenced(i, s.leaf_hash, False) for i, s in enumerate(self.submissions, self.first)]


@dataclass
class PreparedBatch:
    """A batch ready to be signed and committed at `first` (steps 2 and 3 done): what the log becomes with it."""

    started: float  # time.perf_counter() when its flush began, for the metrics
    first: int
    accepted: list[Request]
    hashes: list[bytes]  # the leaf hashes of their statements, in log order
    records: list[EntryRecord]
    logged: dict[bytes, int]  # statements of the batch found already in the log
    refusals: dict[bytes, str]
    outcome: RulesOutcome
    appended: merkle.Appended
    changes_rules: bool  # a registry or key change: the next batch waits for this commit before its rules

    @property
    def size(self) -> int:
        return self.first + len(self.hashes)


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
    # ...or for 1/merge_share of the leaves already merged, whichever is more, up to merge_cap: the keys are random,
    # so a merge of a fixed count into a table 100x larger dirties ~one page per key instead of one per ~20 keys
    # (loadtest/merge_bench.py). A merge of a fixed share keeps the pages written per key, so the merge's cost per
    # entry, flat as the log grows. The cap bounds the tail the sequencer holds in memory (recentleaves.py).
    merge_share: int = 10
    merge_cap: int = 500_000
    names_owned_from: int = 0  # the registry's ownership rule from this index on (logserver/registryrule.py)

    def merge_batch(self, merged: int) -> int:
        """The leaves a merge waits for when the lookup tables hold `merged` (module comment above)."""
        return max(self.merge_min, min(self.merge_cap, merged // self.merge_share))
