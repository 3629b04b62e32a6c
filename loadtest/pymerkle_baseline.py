"""The baseline for the log-server benchmark: pymerkle's SqliteTree (RFC 9162 hashing), on the same entry bytes.

pymerkle is not a project dependency: `ensure_installed` pip-installs it into the
running interpreter's environment on first use. It is imported lazily (and typed
`Any`), so ruff and mypy pass without it.

What pymerkle's SqliteTree does, for reading the figures: `append_entries` hashes
each entry and inserts (entry, leaf hash) rows in one transaction (default
rollback journal, synchronous=FULL, so it is durable). It stores no interior
node and signs nothing; roots and proofs are computed on demand from the leaf
hashes, with an in-memory cache of subtree roots at least 128 leaves wide.
`prove_inclusion` takes a 1-based leaf index: its table has no index on the
leaf hash, so a proof "by leaf hash" would first need a full table scan.
"""

import importlib
import importlib.util
import random
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PACKAGE = "pymerkle"


def ensure_installed(module: str, requirement: str) -> Any | None:
    """Import `module`, pip-installing `requirement` first if missing; None if that fails."""
    if importlib.util.find_spec(module) is None:
        print(f"  installing {requirement} (pip) for the comparison...", flush=True)
        command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", requirement]
        if subprocess.run(command, capture_output=True).returncode != 0:
            return None
        importlib.invalidate_caches()
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


def version() -> str:
    module = ensure_installed(PACKAGE, PACKAGE)
    return str(getattr(module, "__version__", "?")) if module else "not installed"


def open_tree(db: Path) -> Any:
    module = ensure_installed(PACKAGE, PACKAGE)
    if module is None:
        raise RuntimeError("pymerkle could not be installed")
    return module.SqliteTree(str(db))


@dataclass(frozen=True)
class AppendResult:
    seconds: float
    root: bytes


def append(db: Path, prefix: Sequence[bytes], entries: Sequence[bytes], batch: int, with_root: bool) -> AppendResult:
    """Append `prefix` (untimed), then `entries` one transaction per `batch`; optionally compute the root each time."""
    tree = open_tree(db)
    try:
        tree.append_entries(list(prefix))
        started = time.perf_counter()
        for start in range(0, len(entries), batch):
            tree.append_entries(entries[start : start + batch], chunksize=batch)
            if with_root:
                tree.get_root()
        seconds = time.perf_counter() - started
        return AppendResult(seconds, bytes(tree.get_root()))
    finally:
        tree.close()


@dataclass(frozen=True)
class ProofResult:
    warmup_seconds: float  # the first `warmup` proofs: filling the subtree-root cache
    rate: float  # proofs/s once warm
    p99_ms: float


def prove(db: Path, size: int, seconds: float, warmup: int = 2000) -> ProofResult:
    """Inclusion proofs for random 1-based indexes against the whole tree, in-process, one thread."""
    tree = open_tree(db)
    rng = random.Random(7)
    try:
        started = time.perf_counter()
        for _ in range(warmup):
            tree.prove_inclusion(rng.randrange(1, size + 1), size)
        warmup_seconds = time.perf_counter() - started
        latencies: list[float] = []
        started = time.perf_counter()
        deadline = started + seconds
        while (now := time.perf_counter()) < deadline:
            tree.prove_inclusion(rng.randrange(1, size + 1), size)
            latencies.append(time.perf_counter() - now)
        elapsed = time.perf_counter() - started
    finally:
        tree.close()
    latencies.sort()
    return ProofResult(warmup_seconds, len(latencies) / elapsed, latencies[int(0.99 * (len(latencies) - 1))] * 1000)
