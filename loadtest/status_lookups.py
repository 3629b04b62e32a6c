"""Status lookups over HTTP at the size a keep-up run left its log (issue 19, Scale: "at 10^7 entries an index proof
<= 1.5 KB, index lookups >= 2,000/s over HTTP per server process"), beside `GET /healthz` on the same server.

A real `tlog-server serve` (one process) is started on the log the keep-up run grew and indexed; once its served
index covers the log, wrk asks `GET /api/v1/documents/<sha256>` for a random one of PATHS documents per request,
half of them logged (spread over the whole log: statement n's document, loadtest/log_bench.document_of) and half
never logged (each answer a proof of absence), then `GET /healthz` for as long (loadtest/wrk_reads.py). Each answer
carries its status proof, checked by the server against its root before it is sent (logserver/statuslookup.py).
Used by loadtest/status_http_bench.py (--preload ... --lookups SECONDS); prints figures and asserts nothing.
"""

import base64
import hashlib
import random
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from loadtest.grow import Engine
from loadtest.log_bench import document_of
from loadtest.wrk_reads import WrkResult, first_reads, paths_and_health

PATHS = 100_000  # documents asked, half logged, half never logged: 24 times the proofs kept (readcache.py)
SETTLE_LIMIT = 300.0  # seconds a restarted server's indexer gets to cover the log


@dataclass(frozen=True)
class Lookups:
    documents: int  # entries the served index covers
    proof_bytes: tuple[int, int]  # the index proof of a logged document, of one never logged
    lookups: WrkResult
    healthz: WrkResult
    first: WrkResult | None = None  # the lookups of the server's first seconds, measured apart (`settle`)

    def report(self, engine: str) -> list[str]:
        def line(what: str, result: WrkResult) -> str:
            return (
                f"  {what}: {result.rate:,.0f} requests/s, p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms, "
                f"{result.server_cpu_us:,.0f} us server CPU per answer, {result.errors} errors"
            )

        first = [] if self.first is None else [line("the same, the server's first seconds (then settled)", self.first)]
        return [
            f"{engine}: status lookups, the index covering {self.documents:,} entries, one server process, "
            f"wrk -t2 -c16, {PATHS:,} documents at random (half never logged)",
            f"  index proof bytes: {self.proof_bytes[0]:,} for a logged document, {self.proof_bytes[1]:,} for one "
            "never logged",
            *first,
            line("GET /api/v1/documents/<sha256> with status proof", self.lookups),
            line("ceiling: GET /healthz", self.healthz)
            + f" (lookups {self.lookups.rate / self.healthz.rate:.2f} of it)",
        ]


def lookup_targets(logged: int, count: int = PATHS, seed: int = 19) -> list[str]:
    """Half documents of statements 0..logged-1 at random, half documents never logged."""
    rng = random.Random(seed)
    present = [document_of(rng.randrange(logged)) for _ in range(count // 2)]
    absent = [hashlib.sha256(b"never logged %d" % i).digest() for i in range(count - count // 2)]
    return [f"/api/v1/documents/{document.hex()}" for document in present + absent]


def proof_bytes(client: httpx.Client, target: str, present: bool) -> int:
    """The decoded size of the index proof in `target`'s answer, which must say what `present` expects."""
    index = client.get(target).json()["index"]
    if index is None or (index["record"] is not None) != present:
        raise SystemExit(f"{target}: the answer's status index proof is not what a {present=} document has")
    return len(base64.b64decode(index["proof"]))


def served_size(client: httpx.Client, target: str) -> int:
    """The size of the index root `target`'s answer is proven under (0 before any)."""
    index = client.get(target).json()["index"]
    return int(index["size"]) if index is not None else 0


def measure_lookups(engine: Engine, statements: int, seconds: float, tmp: Path, settle: float = 0.0) -> Lookups:
    """Serve the log (statements 0..statements-1 logged as leaves 1..statements, and maybe more after them), wait
    until its index covers them, then wrk: lookups, then /healthz; with `settle`, lookups for that many seconds
    first, measured apart (loadtest/wrk_reads.py `first_reads`)."""
    targets = lookup_targets(statements)
    with engine.serve() as server, httpx.Client(base_url=server.url, timeout=60) as client:
        deadline = time.monotonic() + SETTLE_LIMIT
        while (size := served_size(client, targets[-1])) <= statements:
            if time.monotonic() > deadline:
                raise SystemExit(
                    f"the restarted server's index did not cover {statements:,} entries in {SETTLE_LIMIT} s"
                )
            time.sleep(0.1)
        sizes = (proof_bytes(client, targets[0], True), proof_bytes(client, targets[-1], False))
        first = first_reads(server, targets, settle, tmp) if settle else None
        lookups, healthz = paths_and_health(server, targets, seconds, tmp)
    return Lookups(size, sizes, lookups, healthz, first)
