"""The monitor's ceilings, measured in the benchmark's own run and printed by loadtest/monitor_bench.py.

1. Merkle audit (`verify = "tree"`), per level-0 tile of 256 entries: the SHA-256 work alone (256 leaf hashes of
   the real entries and 255 node hashes, in tight loops), tlogcore's Python around it as the monitor runs it
   (decoding the entry bundle, the leaf hashes of the tile in one call, the compare with the tile, folding the
   tile into its parent's hash), the rest of the monitor's CPU (HTTP, the pipeline, the state), and the log
   server's CPU for serving the tile and its bundle. The monitor and the server share the 2 cores, so the bound of
   the whole audit is 2 cores / (monitor + server CPU per entry).
2. Audit with every signature checked: CPU per entry of each stage the audit must do, each timed through the very
   call that runs it (Ed25519 verification, `audit.verify_packed`, in the workers; statement parsing,
   `audit.parse_checked`, in the main process; the status-index recomputation per document; the rest of the main
   process, from the `workers = 1` run's CPU minus those three; the log server), and the 2-core bound they give
   together.
"""

import contextlib
import gc
import hashlib
import pickle
import random
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from monitor.audit import Unverified, parse_checked, verify_packed
from monitor.statusaudit import APPLY_EVERY, StatusAudit, StatusItem
from monitor.statusworker import COLLECT_EVERY
from tlogcore import merkle
from tlogcore.gcpause import CollectorAtRest
from tlogcore.tileauth import fold_tile
from tlogcore.tiles import TILE_WIDTH, decode_entry_bundle, encode_entry_bundle

CHUNK = 32 * TILE_WIDTH  # the benchmark's chunk_tiles = 32
SAMPLE_ENTRIES = 2000  # statements each stage of the checks is timed on


def per_call_seconds(work: Callable[[], object], seconds: float = 0.5) -> float:
    """CPU seconds of one call of `work`, repeated for about `seconds`."""
    done, started = 0, time.process_time()
    while (spent := time.process_time() - started) < seconds:
        work()
        done += 1
    return spent / done


def hashing_per_tile(entries: Sequence[bytes]) -> float:
    """SHA-256 alone for one tile: the 256 leaf hashes of these entries and 255 node hashes, no other Python."""
    sha256, tile = hashlib.sha256, [b"\x00" + e for e in entries[:TILE_WIDTH]]
    node = b"\x01" + b"\x02" * 64

    def leaves() -> None:
        for data in tile:
            sha256(data).digest()

    def nodes() -> None:
        for _ in range(TILE_WIDTH - 1):
            sha256(node).digest()

    return per_call_seconds(leaves) + per_call_seconds(nodes)


def tlogcore_per_tile(entries: Sequence[bytes]) -> float:
    """What the monitor's tlogcore calls cost for one full tile: `TreeView.entries` (decode, leaf hashes, compare)
    and `fold_tile` (authenticating the tile against its parent)."""
    bundle = encode_entry_bundle(entries[:TILE_WIDTH])
    body = merkle.leaf_hashes(entries[:TILE_WIDTH])

    def one_tile() -> None:
        if merkle.leaf_hashes(decode_entry_bundle(bundle, TILE_WIDTH)) != body:
            raise AssertionError("the tile does not match its own entries")
        fold_tile(body)

    return per_call_seconds(one_tile)


def parse_per_entry(entries: Sequence[bytes], origin: str) -> float:
    """The main process's stage of the checks with workers (monitor/checkstages.py): `parse_checked` in mode
    "signatures", every check but the Ed25519 verifications, which it leaves for the workers. CPU seconds per
    entry: CPU time, not wall time, so that other tenants' load does not count."""
    sample = list(entries[:SAMPLE_ENTRIES])
    leaves = [merkle.leaf_hash(data) for data in sample]  # the Merkle audit's, made before the checks
    return per_call_seconds(lambda: parse_checked(sample, 1, leaves, origin, "signatures"), 1.0) / len(sample)


def _unverified(entries: Sequence[bytes], origin: str) -> Unverified:
    """What the main process's parse leaves for the workers, for a sample of the entries."""
    sample = list(entries[:SAMPLE_ENTRIES])
    return parse_checked(sample, 1, [b""] * len(sample), origin, "signatures")[1]


def verify_per_entry(entries: Sequence[bytes], origin: str) -> float:
    """The workers' stage: `verify_packed` on what `parse_checked` left, CPU seconds per entry."""
    unverified = _unverified(entries, origin)
    return per_call_seconds(lambda: verify_packed(unverified), 1.0) / len(unverified)


def crossing_per_entry(entries: Sequence[bytes], origin: str) -> float:
    """What crosses the process boundary per entry with `workers > 1`: each statement's signed text, signer and
    signature pickled to a worker, unpickled there (monitor/checkstages.py: the main process parses; the answers back
    are the few that fail)."""
    unverified = _unverified(entries, origin)

    def cross() -> None:
        pickle.loads(pickle.dumps(unverified, pickle.HIGHEST_PROTOCOL))

    return per_call_seconds(cross) / len(unverified)


@contextlib.contextmanager
def status_process_collector() -> Iterator[CollectorAtRest]:
    """The status process's collector policy (monitor/statusworker.py), here for the timing, given back after."""
    enabled = gc.isenabled()
    try:
        yield CollectorAtRest(COLLECT_EVERY)
    finally:
        gc.unfreeze()
        if enabled:
            gc.enable()


def status_per_document(items: Sequence[StatusItem]) -> float:
    """The monitor's status-index recomputation (statusaudit.py, chunks of CHUNK entries into a fresh index file,
    applied in batches of APPLY_EVERY as for a log with no index root, the last batch as the last chunk ends), CPU
    seconds per document, under the status process's collector policy. `items` are entries 0, 1, … each
    naming a document."""
    with tempfile.TemporaryDirectory(prefix="monitor-bounds-") as tmp, status_process_collector() as collector:
        audit = StatusAudit(Path(tmp) / "state.db", "bench")
        started = time.process_time()
        try:
            for first in range(0, len(items), CHUNK):
                chunk = items[first : first + CHUNK]
                if first + CHUNK >= len(items):
                    audit.apply_every = 1  # the last chunk applies what waits: every document's work is timed
                if audit.chunk_items(chunk, first, first + len(chunk), frozenset()):
                    raise AssertionError("a finding in an honest index")
                collector.after_update(True)
            head = audit._head(0)
            if head is None or head.indexed != len(items):
                raise AssertionError("the index did not take every document")
        finally:
            audit.close()  # timed: it writes the pages the updates journaled since the last fold
        return (time.process_time() - started) / len(items)


def timed_documents(size: int) -> int:
    """The documents `status_at_size` times: one batch (statusaudit.py APPLY_EVERY), or the whole index if smaller."""
    return min(size, APPLY_EVERY)


def status_at_size(size: int, build_chunk: int = 100_000) -> float:
    """The status-index recomputation's CPU seconds per document as the index reaches `size` documents: built in
    chunks of `build_chunk`, each applied as it ends (not timed), then the last batch timed: its documents fed in
    chunks of CHUNK and applied at once as the last one ends, as a log with no index root has them applied (and one
    whose roots come as far apart). This is what a long audit pays per document at that size
    (`status_per_document` is the mean from an empty index)."""
    rng = random.Random(size)
    timed = timed_documents(size)
    built = size - timed
    with tempfile.TemporaryDirectory(prefix="monitor-bounds-") as tmp, status_process_collector() as collector:
        audit = StatusAudit(Path(tmp) / "state.db", "bench")
        try:
            audit.apply_every = 1
            for first in range(0, built, build_chunk):
                count = min(build_chunk, built - first)
                audit.chunk_items(
                    [(first + i, "issue", rng.randbytes(32)) for i in range(count)], first, first + count, frozenset()
                )
                collector.after_update(True)
            audit.apply_every = timed
            items: list[StatusItem] = [(built + i, "issue", rng.randbytes(32)) for i in range(timed)]
            started = time.process_time()
            for first in range(0, len(items), CHUNK):
                chunk = items[first : first + CHUNK]
                if audit.chunk_items(chunk, built + first, built + first + len(chunk), frozenset()):
                    raise AssertionError("a finding in an honest index")
                collector.after_update(True)
            audit.close()  # timed: it writes the pages the updates journaled since the last fold
            return (time.process_time() - started) / len(items)
        finally:
            audit.close()


def print_status_sizes(figures: dict[int, float], mean: float, signed: int) -> None:
    """The status recomputation per document at each size (`status_at_size`), beside the mean of the signed run."""
    print("\n| status-index recomputation (statusaudit.py), CPU per document | µs | documents/s on one core |")
    print("|---|---:|---:|")
    label = f"mean from an empty index to {signed:,} documents (the stage in the signature bound)"
    print(f"| {label} | {mean * 1e6:,.1f} | {1 / mean:,.0f} |")
    for size, seconds in figures.items():
        label = f"at {size:,} documents: the last {timed_documents(size):,} timed, applied at once"
        print(f"| {label} | {seconds * 1e6:,.1f} | {1 / seconds:,.0f} |")


@dataclass(frozen=True)
class TreeBound:
    hashing: float  # seconds per tile
    tlogcore: float
    monitor: float  # the monitor's whole CPU per tile in the tree audit
    server: float  # the log server's CPU per tile in the tree audit
    start: float = 0.0  # the monitor's start (imports, CLI), CPU seconds, paid once per audit
    entries: int = 0  # entries the tree audit covered

    def rows(self) -> list[tuple[str, float]]:
        rest = max(0.0, self.monitor - self.tlogcore)
        return [
            ("SHA-256 alone (256 leaf hashes of these entries + 255 node hashes)", self.hashing),
            ("tlogcore per tile as the monitor calls it (decode, leaf hashes, compare, fold)", self.tlogcore),
            ("the rest of the monitor (HTTP client, pipeline, state), from its CPU in the tree audit", rest),
            ("the log server serving the tile and its bundle, from its CPU in the tree audit", self.server),
        ]

    @property
    def two_cores(self) -> float:
        """Entries/s if the monitor and the server shared 2 cores perfectly; each is one process, so neither goes
        faster than one core allows (from a tile mirror the server does almost nothing: the monitor's core is it)."""
        return min(2 * TILE_WIDTH / (self.monitor + self.server), TILE_WIDTH / max(self.monitor, self.server))

    @property
    def with_start(self) -> float:
        """Entries/s of the whole command for `entries`: the start, then the tiles with the monitor and the server
        each on a core of its own (the slower of the two sets the pace). The goal's rate counts the start too."""
        tiles = self.entries / TILE_WIDTH
        return self.entries / (self.start + tiles * max(self.monitor, self.server)) if self.entries else 0.0


def print_tree_bound(bound: TreeBound) -> None:
    print("\n| Merkle audit, per level-0 tile of 256 entries (CPU) | µs per tile | entries/s on one core |")
    print("|---|---:|---:|")
    for label, seconds in bound.rows():
        print(f"| {label} | {seconds * 1e6:,.0f} | {TILE_WIDTH / seconds if seconds else 0:,.0f} |")
    print(
        f"| bound of the tree audit on 2 cores (monitor + server CPU per tile, at most one core each) | "
        f"{(bound.monitor + bound.server) * 1e6:,.0f} | {bound.two_cores:,.0f} (2 cores) |"
    )
    if bound.entries:
        print(
            f"| bound of the whole command for {bound.entries:,} entries: the start ({bound.start:.2f} CPU s), then "
            f"the slower of monitor and server per tile | | {bound.with_start:,.0f} |"
        )


def print_signature_bound(stages: dict[str, float], status: float = 0.0, start: float = 0.0, entries: int = 0) -> None:
    """`stages`: CPU seconds per entry of each stage; prints them and the 2-core bound. Then two limits the sum does
    not show: the status index runs in one process (`status`, seconds per document: never more than one core), and a
    run of `entries` pays the monitor's start (`start` CPU seconds of imports, on one core while the other waits)."""
    print("\n| audit with signatures, CPU per entry | µs | entries/s on one core |\n|---|---:|---:|")
    for label, seconds in stages.items():
        print(f"| {label} | {seconds * 1e6:,.1f} | {1 / seconds if seconds else 0:,.0f} |")
    total = sum(stages.values())
    print(f"| all of it: the bound on 2 cores | {total * 1e6:,.1f} | {2 / total:,.0f} (2 cores) |")
    if status:
        print(f"| the status process alone: one process, at most one core | {status * 1e6:,.1f} | {1 / status:,.0f} |")
    if entries:
        pace = max(total / 2, status)
        label = f"bound of the whole command for {entries:,} entries: the start ({start:.2f} CPU s), then the lower of"
        print(f"| {label} the two above | | {entries / (start + entries * pace):,.0f} |")
