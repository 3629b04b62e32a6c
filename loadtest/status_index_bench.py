"""Status index benchmark (issue 19): update throughput, proof rates and sizes, bytes per entry, beside raw SHA-256/s.

    .venv/bin/python -m loadtest.status_index_bench [--sizes 100000,1000000] [--batch 10000] [--shape-size 10000000]
    .venv/bin/python -m loadtest.status_index_bench --store sqlite|postgresql --sizes 1000000 --batches 10000,20000

With --store, the indexer's own update loop runs through real storage instead (loadtest/status_index_store.py).

Rows live in a dict of encoded bytes (page id -> page row, exactly what the database holds), so every read
parses rows and every write merges and encodes pages, as the server does; only SQL itself is left out. Bytes
per entry are given twice: the raw row bytes, and the size of a SQLite file holding the same rows (WITHOUT ROWID,
primary key on the page id). Proof sizes at --shape-size (10^7 by default) are computed exactly from the key
distribution (sorted random keys; which siblings are non-empty and how deep each path ends) without building the
tree, and that shape model is checked against the real proofs at the built sizes. Rates are per CPU second of this one
process (time.process_time), and the SHA-256 ceiling is re-measured before each section the same way, so a busy
shared machine slows the run down but does not bend the figures. Prints figures; asserts nothing.
"""

import argparse
import bisect
import hashlib
import itertools
import os
import platform
import random
import sqlite3
import statistics
import tempfile
import time
from array import array
from collections.abc import Callable

from loadtest import status_index_store
from tlogcore.statusindex import parse_proof, verify_status
from tlogcore.statusindex_nodes import Leaf, NodeId, PathPlan, StoredNode
from tlogcore.statusindex_pages import (
    Page,
    changed_pages,
    encode_raw,
    merge_pages,
    nodes_in,
    page_id_bytes,
    pages_of,
    scan_page,
)
from tlogcore.statusrecord import StatusRecord, new_record

SHAPE_BITS = 64  # the shape model works on 64-bit key prefixes; exact while no two keys share 64 bits


class BytesRows:
    """Rows as a database holds them: page id -> page row (pages of 4 levels, tlogcore/statusindex_pages.py)."""

    def __init__(self) -> None:
        self.rows: dict[bytes, bytes] = {}

    def pages(self, ids: set[NodeId]) -> dict[NodeId, Page]:
        found = {page: self.rows.get(page_id_bytes(page)) for page in ids}
        return {page: scan_page(page[0], data) if data is not None else {} for page, data in found.items()}

    def read(self, wanted: list[NodeId]) -> dict[NodeId, StoredNode]:
        return nodes_in(wanted, self.pages(pages_of(wanted)))

    def write(self, writes: dict[NodeId, StoredNode]) -> None:
        changes = changed_pages(writes)
        merged = merge_pages(self.pages(set(changes)), changes)
        self.rows.update((page_id_bytes(page), encode_raw(nodes)) for page, nodes in merged.items())


def read_all(plan: PathPlan, rows: BytesRows) -> PathPlan:
    while wanted := plan.wanted():
        plan.supply(rows.read(wanted))
    return plan


def rate(work: Callable[[], int], min_seconds: float = 1.0) -> float:
    """Operations per CPU second of this process (the machine is shared: wall time would measure the neighbours)."""
    done, start = 0, time.process_time()
    while (elapsed := time.process_time() - start) < min_seconds:
        done += work()
    return done / elapsed


def row(name: str, value: float, unit: str = "/s", ceiling: float | None = None) -> None:
    ratio = f"  {value / ceiling:6.3f} of ceiling" if ceiling else ""
    print(f"  {name:<60} {value:>14,.1f}{unit}{ratio}")


def sha256_ceiling() -> float:
    data = bytes(65)  # a node hash's input: prefix byte and two hashes

    def work() -> int:
        for _ in range(20_000):
            hashlib.sha256(data).digest()
        return 20_000

    return rate(work)


def grow(rows: BytesRows, keys: list[bytes], target: int, batch: int, rng: random.Random) -> tuple[float, float]:
    """Add random documents in batches until `target`; entries/s and SHA-256 calls per entry over this growth."""
    start, hashes, seconds = len(keys), 0, 0.0
    while len(keys) < target:
        count = min(batch, target - len(keys))
        new = {rng.randbytes(32): new_record([len(keys) + i]) for i in range(count)}
        began = time.process_time()
        update = read_all(PathPlan(new, size_hint=len(keys)), rows).apply(new)
        rows.write(update.writes)
        seconds += time.process_time() - began
        keys.extend(new)
        # One SHA-256 per interior row written; two per leaf row (the record's hash, then the leaf hash).
        hashes += sum(2 if isinstance(node, Leaf) else 1 for node in update.writes.values())
    return (len(keys) - start) / seconds, hashes / (len(keys) - start)


def batch_rates(rows: BytesRows, keys: list[bytes], batches: list[int], rng: random.Random, sha: float) -> None:
    """One update of each batch size at the current size: how fast an indexer that fell behind catches up."""
    for batch in batches:
        updates, hashes = grow(rows, keys, len(keys) + batch, batch, rng)
        row(f"one batch of {batch:,} new documents at this size: documents/s", updates, ceiling=sha / hashes)


def proofs(rows: BytesRows, keys: list[bytes], probes: list[bytes], root: bytes) -> tuple[float, float, list[bytes]]:
    """One plan per lookup, as one HTTP request would make: proofs/s, verifications/s, the proofs."""
    made: list[tuple[bytes, StatusRecord | None, bytes]] = []

    def generate() -> int:
        made.clear()
        for key in probes:
            record, proof = read_all(PathPlan([key], size_hint=len(keys)), rows).lookup(key)
            made.append((key, record, proof.to_bytes()))
        return len(probes)

    def verify() -> int:
        for key, record, proof in made:
            verify_status(key, record, proof, root)
        return len(made)

    generated = rate(generate)
    return generated, rate(verify), [proof for _, _, proof in made]


def sqlite_bytes_per_entry(rows: BytesRows, entries: int) -> float:
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "index.db")
        db = sqlite3.connect(path)
        db.execute("CREATE TABLE status_page (page BLOB PRIMARY KEY, data BLOB NOT NULL) WITHOUT ROWID")
        db.executemany("INSERT INTO status_page VALUES (?, ?)", sorted(rows.rows.items()))
        db.commit()
        db.execute("VACUUM")
        db.close()
        return os.path.getsize(path) / entries


def shape_sizes(sorted_keys: "array[int]", probes: list[int]) -> list[int]:
    """Exact proof sizes for `probes` (64-bit key prefixes) in the compressed tree over `sorted_keys`."""

    def count(prefix: int, depth: int) -> int:
        low = prefix << (SHAPE_BITS - depth)
        return bisect.bisect_left(sorted_keys, low + (1 << (SHAPE_BITS - depth))) - bisect.bisect_left(sorted_keys, low)

    sizes = []
    for key in probes:
        depth, siblings = 0, 0
        while count(key >> (SHAPE_BITS - depth), depth) > 1:  # an interior node: go down one level
            if depth + 1 >= SHAPE_BITS:
                raise RuntimeError("two keys share 64 bits: the shape model is not exact here")
            sibling = (key >> (SHAPE_BITS - depth - 1)) ^ 1
            siblings += count(sibling, depth + 1) > 0
            depth += 1
        own = count(key >> (SHAPE_BITS - depth), depth)
        other_leaf = own == 1 and key not in _members(sorted_keys, key)
        sizes.append(1 + 32 + 32 * siblings + (64 if other_leaf else 0))
    return sizes


def _members(sorted_keys: "array[int]", key: int) -> tuple[int, ...]:
    where = bisect.bisect_left(sorted_keys, key)
    return (key,) if where < len(sorted_keys) and sorted_keys[where] == key else ()


def summary(sizes: list[int]) -> str:
    ordered = sorted(sizes)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return f"mean {statistics.fmean(sizes):7.1f} B, p99 {p99:5d} B, max {max(sizes):5d} B"


def prefix64(key: bytes) -> int:
    return int.from_bytes(key[:8], "big")


def measure_size(rows: BytesRows, keys: list[bytes], args: argparse.Namespace, sha: float, rng: random.Random) -> None:
    size = len(keys)
    root = read_all(PathPlan([]), rows).root_hash()
    present = rng.sample(keys, args.probes)
    absent = [rng.randbytes(32) for _ in range(args.probes)]
    made, verified, present_proofs = proofs(rows, keys, present, root)
    _, _, absent_proofs = proofs(rows, keys, absent, root)
    present_sizes, absent_sizes = [len(p) for p in present_proofs], [len(p) for p in absent_proofs]
    row("proofs made/s (one plan per lookup, rows parsed)", made)
    # Verifying hashes the record, the leaf, and one node per level of the path (EMPTY siblings included).
    depths = [parse_proof(proof).depth for proof in present_proofs]
    row("proofs verified/s", verified, ceiling=sha / (statistics.fmean(depths) + 2))
    print(f"  proof size, present: {summary(present_sizes)}")
    print(f"  proof size, absent:  {summary(absent_sizes)}")
    raw = sum(len(k) + len(v) for k, v in rows.rows.items()) / size
    row("stored bytes per entry (page id + page row, raw)", raw, unit=" B")
    row("rows (pages of 4 levels) per entry", len(rows.rows) / size, unit="  ")
    if args.sqlite:
        row("SQLite file bytes per entry (WITHOUT ROWID, after VACUUM)", sqlite_bytes_per_entry(rows, size), unit=" B")
    model = array("Q", sorted(prefix64(k) for k in keys))
    agrees = shape_sizes(model, [prefix64(k) for k in present + absent]) == present_sizes + absent_sizes
    print(f"  shape model gives the same sizes as the real proofs: {'yes' if agrees else 'NO'}")


def shape_at(size: int, probes: int, rng: random.Random) -> None:
    began = time.perf_counter()
    model = array("Q", sorted(rng.getrandbits(SHAPE_BITS) for _ in range(size)))
    present = [model[rng.randrange(size)] for _ in range(probes)]
    absent = [rng.getrandbits(SHAPE_BITS) for _ in range(probes)]
    print(f"\nProof sizes at {size:,} documents (shape model, {time.perf_counter() - began:.0f} s to draw the keys)")
    print(f"  present: {summary(shape_sizes(model, present))}")
    print(f"  absent:  {summary(shape_sizes(model, absent))}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100000,1000000", help="index sizes to grow to and measure at")
    parser.add_argument("--batch", type=int, default=10_000, help="documents per update batch")
    parser.add_argument("--batches", default="1000,10000,100000", help="batch sizes timed once at each size")
    parser.add_argument("--probes", type=int, default=1000, help="proofs made and verified per size")
    parser.add_argument("--shape-size", type=int, default=10_000_000, help="size for the proof-size model (0: skip)")
    parser.add_argument("--no-sqlite", dest="sqlite", action="store_false", help="skip the SQLite size measurement")
    parser.add_argument("--store", choices=["sqlite", "postgresql"], help="run the indexer's loop through storage")
    parser.add_argument("--updates", type=int, default=3, help="--store: updates timed per batch size")
    args = parser.parse_args()
    if args.store:
        status_index_store.run(args, sha256_ceiling)
        return
    print(f"machine: {platform.machine()}, {os.cpu_count()} cpus, Python {platform.python_version()}")
    print("every rate is per CPU second of this process (time.process_time), the ceiling's too")
    sizes, batches = [int(s) for s in args.sizes.split(",")], [int(b) for b in args.batches.split(",") if b]
    if any(later <= earlier + sum(batches) for earlier, later in itertools.pairwise(sizes)):
        parser.error("each size must exceed the previous one plus the --batches timed there")
    rng, rows, keys = random.Random(19), BytesRows(), list[bytes]()
    for size in sizes:
        sha = sha256_ceiling()
        updates, hashes = grow(rows, keys, size, args.batch, rng)
        print(f"\nIndex of {size:,} documents (grown in batches of {args.batch:,})")
        row("ceiling: raw hashlib.sha256 calls, 65-byte input", sha)
        row("documents indexed/s while growing to this size", updates, ceiling=sha / hashes)
        row("SHA-256 calls per document (counted from rows written)", hashes, unit="  ")
        measure_size(rows, keys, args, sha, rng)
        batch_rates(rows, keys, batches, rng, sha)
    if args.shape_size:
        shape_at(args.shape_size, args.probes, rng)


if __name__ == "__main__":
    main()
