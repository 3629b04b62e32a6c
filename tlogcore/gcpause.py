"""The cyclic garbage collector's policies, written once for every process of the project: `freeze_start_up` for a
long-lived process that serves or audits, `CollectorAtRest` for a process whose work is index updates, and
`paused_gc` around one index update (the status index's updates, the log's and the monitor's; status-proofs.md §11).

An index update allocates hundreds of thousands of small objects (node ids, nodes, page pieces), and keeps many
of them for the whole update (the read plan, the writes) beside the long-lived top of the tree: CPython's
generational collector then walks them again and again as they survive its young generations, 20-30 % of the
update's CPU at 10^6 documents (loadtest/status_index_bench.py --store; pausing it around one phase alone only
moved the walk to the next phase). None of them is in a reference cycle: reference counting frees them all the
same. The pause is process wide, so it is held for one update (about a second at most: MAX_ENTRIES_PER_STEP),
during which the rest of the process's cyclic garbage waits for the next collection; the collector is enabled
again only if it was enabled before (never against a caller's own setting).
"""

import gc
from collections.abc import Iterator
from contextlib import contextmanager

GC_YOUNGEST = 10_000  # net allocations between collections of the youngest generation (freeze_start_up)


def freeze_start_up() -> None:
    """The collector's policy in a long-lived process that serves requests or audits chunks: the log server's
    process (logserver/cli.py) and the monitor's main process (monitor/commands.py). What start-up made (modules,
    the app, the registry, the key ring) lives as long as the process: moved out of the collector's sight, so that
    a full collection walks only what the work made since. Before, each of the server's full collections walked
    ~55,000 objects, and collections took about 5 µs of its CPU per entry submitted (gc.callbacks, batches of
    1,000: docs/performance.md, "HTTP submit"); the monitor's main process spent 6.6 µs per audited entry in them
    (gc.callbacks, 2·10^5 entries, 2 workers). The youngest generation is collected after 10,000 net allocations
    instead of 700: a batch (a chunk) makes and drops a few objects per statement, so at 700 its own live objects
    were walked and promoted again and again (about 2 µs per entry in the server, measured)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNGEST, *gc.get_threshold()[1:])


@contextmanager
def paused_gc() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class CollectorAtRest:
    """The collector's policy in a process whose work is index updates alone: the log's indexer process
    (logserver/indexerprocess.py) and the monitor's status process (monitor/statusworker.py). No automatic
    collection: a full one once `collect_every` updates have been made, when the process is next at rest (caught up
    with the log, or at the end of a monitor's round), or after four times as many if it never rests.

    Why: what outlives an update (the kept top of the tree, the next update already prepared: about a million
    objects per 50,000 documents) was all walked by the collection that followed each update (the first allocation
    after `paused_gc` gives the collector back), to find nothing: collected 0 in each of 17 updates of 50,000 at
    10^6, 0.23-0.34 s apiece, about a tenth of the process's time (gc.callbacks). A 4·10^6 youngest threshold
    instead made one pause of 2.8 s. None of an update's objects is in a cycle (gcpause's first rule); what cyclic
    garbage the rest of the process makes (its event loop, its connections) waits for the next full collection."""

    def __init__(self, collect_every: int) -> None:
        self.collect_every = collect_every
        self._updates = 0  # since the last full collection
        gc.disable()
        gc.collect()
        gc.freeze()  # what start-up made (modules, connections), as the server's own start-up does

    def after_update(self, made: bool) -> None:
        """After a request that may have made an update (`made`: it did)."""
        self._updates += made
        if self._updates >= 4 * self.collect_every:
            self._collect()

    def at_rest(self) -> None:
        """After the process caught up: the full collection, if due."""
        if self._updates >= self.collect_every:
            self._collect()

    def _collect(self) -> None:
        gc.collect()
        self._updates = 0
