"""One index update without the cyclic garbage collector (the status index's updates, the log's and the monitor's;
status-proofs.md §11).

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


@contextmanager
def paused_gc() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
