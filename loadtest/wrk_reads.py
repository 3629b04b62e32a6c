"""Reads over HTTP measured with wrk, beside `GET /healthz` on the same server as the ceiling.

    apt-get install wrk                                   (Debian package `wrk`: a C load generator; the Python
                                                           clients cap near the server's own rate)
    .venv/bin/python -m loadtest.wrk_reads --quick        (2*10^4 entries, 1 and 2 processes, 5-second runs)
    .venv/bin/python -m loadtest.wrk_reads --sizes 2e4,1e6 --workers 1,2
    .venv/bin/python -m loadtest.wrk_reads --sizes 1e6 --workers 1 --in-process   (also the app's CPU per request,
                                                           in-process without sockets: the figure least moved by load)
    .venv/bin/python -m loadtest.wrk_reads --sizes 1e6 --workers 1 --settle 20   (the server's first 20 s of proofs
                                                           reported apart, then the run measured: a settled server)
    .venv/bin/python -m loadtest.wrk_reads --sizes 1e6 --workers 1 --tiles --data DIR   (also level-0 hash tiles,
                                                           random over the whole tree, from a server of their own)
    .venv/bin/python -m loadtest.wrk_reads --sizes 1e7    (10^7: the log is grown in-process first, signed on every
                                                           core: a few hours on 2 cores and ~4 GB of disk)
    .venv/bin/python -m loadtest.wrk_reads --sizes 1e6 --burst 1e5,3e5 --engine sqlite --workers 1,2 --seconds 5
                                                          (right after a burst: the proofs with that many leaves
                                                           left unmerged, storage contract 6)

For each size, a SQLite log is grown with the real Sequencer (loadtest/grow.py: every leaf a distinct, really
signed `issue` statement), then served by `tlog-server serve` with `[server] workers = N` for each N asked; wrk
(2 threads, 16 connections) asks for inclusion proofs by leaf hash of random leaves spread over the whole tree
(`GET /api/v1/proof/inclusion?leaf_hash=...`), then `GET /healthz` for the same time: the ceiling of the server's
HTTP stack on this machine. Prints requests/s, latency p50/p99 and the server's CPU per answer (every process of
it, from /proc: on a shared machine the load moves it far less than the rates) for both; asserts nothing.

With `--burst`, after growing to each size, each server (one per burst size and worker count) is sent a burst of that
many newly signed statements over HTTP (batches of 1,000, 4 in flight) while the benchmark holds the lookup tables'
write lock (SQLite: the lookup file's; PostgreSQL: the watermark's row), so the server's merger cannot catch up; then
the reads run, the lock still held: the moment right after a burst, held. The proofs ask for random leaves of the
whole tree, the burst's among them (a leaf in every 97). A server opening a SQLite log merges its tail first, so
each server gets its own burst. `--engine postgresql` runs it on a
throwaway PostgreSQL cluster (loadtest/pgcluster.py).
"""

import argparse
import asyncio
import contextlib
import itertools
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]  # no stubs shipped
import httpx

from loadtest.grow import (
    SAMPLE_EVERY,
    Grower,
    PostgresEngine,
    SQLiteEngine,
    grow_all,
    parse_sizes,
    signed,
    signing_pool,
    tile_jobs,
)
from loadtest.log_bench import DATABASE, ENTRIES, ServerProcess, chunks, entries_body, machine_info
from logserver import cli
from logserver.app import RequestLog, build_app
from logserver.identity import read_keys
from logserver.logstate import LogState
from logserver.opening import open_status_store, open_storage
from logserver.requestlines import BatchedLines
from logserver.sequencer import Submission
from logserver.sqlite_schema import lookup_path
from logserver.submission import SubmissionRules
from tlogcore.merkle import leaf_hash

WRK = "/usr/bin/wrk"
TILE_PATHS = 20_000  # random tiles wrk picks from (`--tiles`)
THREADS, CONNECTIONS = 2, 16
LUA = """-- a random path from the file named by WRK_PATHS, per request
local paths = {}
for line in io.lines(os.getenv("WRK_PATHS")) do paths[#paths + 1] = line end
math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
request = function() return wrk.format("GET", paths[math.random(#paths)]) end
"""


@dataclass(frozen=True)
class WrkResult:
    rate: float  # requests/s
    p50_ms: float
    p99_ms: float
    errors: int  # non-2xx answers and socket errors
    requests: int = 0
    server_cpu_us: float = float("nan")  # the server's CPU (all its processes) per answer: the load moves it less


def with_cpu(result: WrkResult, cpu_seconds: float) -> WrkResult:
    per_answer = cpu_seconds / result.requests * 1e6 if result.requests else float("nan")
    return WrkResult(result.rate, result.p50_ms, result.p99_ms, result.errors, result.requests, per_answer)


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def parse_wrk(output: str) -> WrkResult:
    """The figures of `wrk --latency` output."""
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", output, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", output, re.M).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    errors = (int(non_2xx.group(1)) if non_2xx else 0) + (sum(map(int, socket.groups())) if socket else 0)
    requests = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    return WrkResult(rate, p50, p99, errors, requests)


def run_wrk(url: str, seconds: float, paths_file: Path | None, lua: Path) -> WrkResult:
    args = [WRK, f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{seconds:g}s", "--latency"]
    env = dict(os.environ)
    if paths_file is not None:
        args += ["-s", str(lua)]
        env["WRK_PATHS"] = str(paths_file)
    done = subprocess.run([*args, url], capture_output=True, text=True, check=True, env=env)
    return parse_wrk(done.stdout)


def measure(
    engine: SQLiteEngine | PostgresEngine,
    grower: Grower,
    workers: int,
    seconds: float,
    tmp: Path,
    burst: Sequence[Submission] = (),
    settle: float = 0.0,
) -> tuple[WrkResult, WrkResult, int, WrkResult | None]:
    """Proofs and /healthz from a server of `workers` processes, how many leaves were unmerged meanwhile, and with
    `settle` the proofs of the server's first `settle` seconds, measured apart (`first_reads`). With a `burst`, the
    lookup merge is held off once the server serves, the burst is submitted to it over HTTP, then the reads run:
    the moment right after a burst, before the merge catches up."""
    configure(engine, workers)
    with engine.serve() as server:
        if not burst:
            opening = first_reads(server, proof_paths(grower.sample), settle, tmp) if settle else None
            return (*proofs_and_health(server, grower.sample, seconds, tmp), unmerged(engine), opening)
        time.sleep(3.0 * (workers - 1))  # the other workers open the database (and the lookup file) once one serves
        with merges_held(engine):
            asyncio.run(submit_all(server.url, burst))
            first = (SAMPLE_EVERY - grower.size % SAMPLE_EVERY) % SAMPLE_EVERY
            grower.sample += [s.leaf_hash for s in burst[first::SAMPLE_EVERY]]
            grower.size += len(burst)
            time.sleep(1.0)  # every worker follows the head (each flush interval)
            opening = first_reads(server, proof_paths(grower.sample), settle, tmp) if settle else None
            return (*proofs_and_health(server, grower.sample, seconds, tmp), unmerged(engine), opening)


def configure(engine: SQLiteEngine | PostgresEngine, workers: int) -> None:
    """The served log's settings: `[server] workers` processes."""
    settings = f"[server]\nworkers = {workers}\n" if workers > 1 else ""
    if isinstance(engine, PostgresEngine):
        engine.write_settings(settings)
    else:
        (engine.data / "server.toml").write_text(settings, encoding="utf-8")


def measure_tiles(
    engine: SQLiteEngine | PostgresEngine, size: int, workers: int, seconds: float, tmp: Path
) -> tuple[WrkResult, WrkResult]:
    """Level-0 hash tiles, random and full, from anywhere in the tree (`--tiles`: grow.py's `tile_jobs`, what a
    monitor or a mirror's cache miss asks for), then `GET /healthz`, from a server of `workers` processes."""
    configure(engine, workers)
    targets = [path for _, path, _ in itertools.islice(tile_jobs(size, size + 2), TILE_PATHS)]
    with engine.serve() as server:
        return paths_and_health(server, targets, seconds, tmp)


@contextlib.contextmanager
def merges_held(engine: SQLiteEngine | PostgresEngine) -> Iterator[None]:
    """No lookup merge can commit meanwhile: the lookup tables' write lock is held (SQLite: the lookup file's; a
    merge waits for it, fails after its busy timeout and is tried again) or the watermark's row (PostgreSQL: a
    merge's first statement locks it)."""
    if isinstance(engine, SQLiteEngine):
        db = sqlite3.connect(lookup_path(engine.data / DATABASE), isolation_level=None)
        try:
            db.execute("BEGIN IMMEDIATE")
            yield
        finally:
            db.close()  # rolls the empty transaction back
        return
    held, release = threading.Event(), threading.Event()

    async def hold() -> None:
        conn = await asyncpg.connect(engine.dsn)
        try:
            async with conn.transaction():
                await conn.execute("SELECT merged FROM lookup_state WHERE id = 1 FOR UPDATE")
                held.set()
                await asyncio.get_running_loop().run_in_executor(None, release.wait)
        finally:
            await conn.close()

    holder = threading.Thread(target=asyncio.run, args=(hold(),))
    holder.start()
    try:
        if not held.wait(30):
            raise RuntimeError("could not lock the lookup watermark's row")
        yield
    finally:
        release.set()
        holder.join()


def unmerged(engine: SQLiteEngine | PostgresEngine) -> int:
    """How many leaves the lookup tables do not hold yet (read beside the server, without opening its storage)."""
    query = "SELECT (SELECT size FROM head WHERE id = 1) - (SELECT merged FROM {}lookup_state WHERE id = 1)"
    if isinstance(engine, PostgresEngine):
        return int(engine.cluster.psql(query.format(""), engine.database))
    db = sqlite3.connect(f"file:{engine.data / DATABASE}?mode=ro", uri=True)
    try:
        db.execute("ATTACH DATABASE ? AS lk", (f"file:{lookup_path(engine.data / DATABASE)}?mode=ro",))
        return int(db.execute(query.format("lk.")).fetchone()[0])
    finally:
        db.close()


async def submit_all(url: str, burst: Sequence[Submission], senders: int = 4) -> None:
    """The burst over HTTP in batches of 1,000, `senders` requests in flight, each waited for (durable)."""
    bodies = iter([entries_body(part, inclusion_proofs=False) for part in chunks(burst, 1000)])
    async with httpx.AsyncClient(timeout=300.0) as client:

        async def sender() -> None:
            for body in bodies:
                answer = await client.post(url + ENTRIES, content=body, headers={"content-type": "application/json"})
                if answer.status_code != 200:
                    raise RuntimeError(f"the burst was refused: {answer.status_code} {answer.text[:200]}")

        await asyncio.gather(*(sender() for _ in range(senders)))


def proofs_and_health(
    server: ServerProcess, sample: Sequence[bytes], seconds: float, tmp: Path
) -> tuple[WrkResult, WrkResult]:
    """Inclusion proofs by leaf hash of random leaves of `sample`, then `GET /healthz`, each `seconds` with wrk,
    each with the server's CPU per answer."""
    return paths_and_health(server, proof_paths(sample), seconds, tmp)


def proof_paths(sample: Sequence[bytes]) -> list[str]:
    return [f"/api/v1/proof/inclusion?leaf_hash={h.hex()}" for h in sample]


def paths_and_health(
    server: ServerProcess, targets: Sequence[str], seconds: float, tmp: Path
) -> tuple[WrkResult, WrkResult]:
    """`GET` of a random one of `targets` per request, then `GET /healthz`, each `seconds` with wrk, each with the
    server's CPU per answer."""
    paths, lua = _scripts(targets, tmp)
    run_wrk(server.url + "/healthz", 1.0, None, lua)  # warm up: connections, page cache
    reads = _timed(server, server.url, seconds, paths, lua)
    return reads, _timed(server, server.url + "/healthz", seconds, None, lua)


def first_reads(server: ServerProcess, targets: Sequence[str], seconds: float, tmp: Path) -> WrkResult:
    """The reads of `paths_and_health` for `seconds` right after the server started, measured apart (`--settle`):
    a new process is slower until its caches have filled (SQLite's page cache, the file pages it maps, the kept
    hashes): at 10^7 a server's first 15 s of status lookups took ~11 minor page faults and ~610 us of CPU per
    answer, from its third on 0.1-0.7 and 501-541 us (docs/performance.md, "Read figures with wrk"). A server runs
    for days: the figures after this are the ones its users meet, these the ones right after a restart."""
    paths, lua = _scripts(targets, tmp)
    run_wrk(server.url + "/healthz", 1.0, None, lua)
    return _timed(server, server.url, seconds, paths, lua)


def _scripts(targets: Sequence[str], tmp: Path) -> tuple[Path, Path]:
    paths, lua = tmp / "paths.txt", tmp / "paths.lua"
    paths.write_text("".join(f"{target}\n" for target in targets))
    lua.write_text(LUA)
    return paths, lua


def _timed(server: ServerProcess, url: str, seconds: float, paths: Path | None, lua: Path) -> WrkResult:
    """wrk on `url` (a random one of `paths` per request, if given), with the server's CPU per answer."""

    def cpu() -> float:
        return server.cpu_seconds() + server.workers_cpu_seconds()

    before = cpu()
    result = run_wrk(url, seconds, paths, lua)
    return with_cpu(result, cpu() - before)


async def in_process(data: Path, sample: Sequence[bytes], rounds: int = 7, per_round: int = 1500) -> dict[str, float]:
    """CPU per request (best of `rounds`) of the server's app, request log around it as `serve` runs it, driven
    without sockets: the proofs by leaf hash of `sample`, then `GET /healthz`. What the app itself costs, apart from
    the HTTP stack and the machine's load (the figure the third round's A/B compared)."""
    paths = [f"/api/v1/proof/inclusion?leaf_hash={leaf.hex()}" for leaf in sample]
    found = await app_cpu(data, paths, rounds, per_round)
    return {"proof": found["paths"], "/healthz": found["/healthz"]}


async def app_cpu(
    data: Path, paths: Sequence[str], rounds: int = 7, per_round: int = 1500, status: bool = False
) -> dict[str, float]:
    """CPU per request (µs, best of `rounds`) of the app serving the log in `data`, driven without sockets: `paths`
    in turn, then `GET /healthz`. The request log is on, as `serve` has it: each line handed to a batch of lines
    (logserver/requestlines.py), there written to stderr, here to /dev/null. `status`: with the log's SQLite status
    index (`log.db.status`), for status lookups."""
    config = cli.load_config(data / "server.toml")
    keys = read_keys(data)
    storage = await open_storage(data, config)
    store = await open_status_store(data, config) if status else None  # as `serve` opens it
    lines = BatchedLines(open(os.devnull, "w"))  # noqa: SIM115 (closed below)
    try:
        parts = cli.build_parts(data, config, keys, storage)
        await parts.sequencer.load()
        rules = SubmissionRules(keys.log.name, config.max_future_seconds)
        state = LogState(storage, parts.sequencer, rules, keys.log.verifier().vkey, [keys.registry.verifier().vkey])
        state.status = store
        app = RequestLog(build_app(state), lines=lines.add)
        return {
            "paths": await _cpu_per_request(app, paths, rounds, per_round),
            "/healthz": await _cpu_per_request(app, ["/healthz"], rounds, per_round),
        }
    finally:
        lines.close()
        lines.stream.close()
        if store is not None:
            await store.close()
        await storage.close()


async def _cpu_per_request(app: Any, paths: Sequence[str], rounds: int, per_round: int) -> float:
    statuses: set[int] = set()

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.add(message["status"])

    async def call(target: str) -> None:
        path, _, query = target.partition("?")
        scope = {
            "type": "http",
            "method": "GET",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "headers": [(b"host", b"bench")],
            "http_version": "1.1",
            "scheme": "http",
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 2),
            "root_path": "",
        }
        await app(scope, receive, send)

    best = float("inf")
    for turn in range(rounds):
        started = time.process_time()
        for i in range(per_round):
            await call(paths[(turn * per_round + i) % len(paths)])
        best = min(best, (time.process_time() - started) / per_round * 1e6)
    if statuses != {200}:
        raise RuntimeError(f"in-process answers were {sorted(statuses)}, not all 200")
    return best


def row(size: int, tail: int, workers: int, what: str, result: WrkResult, ceiling: WrkResult | None) -> str:
    beside = f"{result.rate / ceiling.rate:.0%} of /healthz" if ceiling is not None else "ceiling"
    return (
        f"| {size:,} | {tail:,} | {workers} | {what} | {result.rate:,.0f}/s | {result.p50_ms:.1f} ms "
        f"| {result.p99_ms:.1f} ms | {result.server_cpu_us:.0f} us | {result.errors} | {beside} |"
    )


def rows_beside_health(
    lines: list[str], where: tuple[int, int, int], what: str, result: WrkResult, health: WrkResult
) -> None:
    """The rows of one server's reads and of its `/healthz` (entries, unmerged, processes), added and printed."""
    lines.append(row(*where, what, result, health))
    lines.append(row(*where, "GET /healthz", health, None))
    print(lines[-2], lines[-1], f"load average {os.getloadavg()[0]:.2f}", sep="\n", flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=parse_sizes, default=None, help="comma-separated, e.g. 2e4,1e6 (1e7: hours)")
    parser.add_argument("--workers", default="1,2", help="server processes to compare, e.g. 1,2")
    parser.add_argument("--seconds", type=float, default=None, help="length of each wrk run (default 10)")
    parser.add_argument("--quick", action="store_true", help="2*10^4 entries, 5-second runs")
    parser.add_argument("--in-process", action="store_true", help="also the app's CPU per request without sockets")
    parser.add_argument("--burst", type=parse_sizes, default=[], help="unmerged tails to measure, e.g. 1e5,3e5")
    parser.add_argument("--engine", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--data", type=Path, default=None, help="keep the SQLite log here, or reuse the one kept")
    parser.add_argument("--tiles", action="store_true", help="also random level-0 hash tiles over the whole tree")
    parser.add_argument(
        "--settle", type=float, default=0.0, help="seconds of proofs first, reported apart (a new process's caches)"
    )
    args = parser.parse_args(argv)
    if shutil.which(WRK) is None and not Path(WRK).exists():
        raise SystemExit(f"{WRK} is missing: install the Debian package `wrk` (apt-get install wrk)")
    sizes = args.sizes or ([20_000] if args.quick else [20_000, 1_000_000])
    seconds = args.seconds or (5.0 if args.quick else 10.0)
    print("\n".join(machine_info()))
    print(
        f"wrk: {THREADS} threads, {CONNECTIONS} connections, {seconds:g} s per run; load average before: "
        f"{os.getloadavg()[0]:.2f}"
    )
    lines = [
        "| entries | unmerged | processes | request | rate | p50 | p99 | server CPU per answer | errors | beside |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    with contextlib.ExitStack() as stack, signing_pool() as pool:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        engine: SQLiteEngine | PostgresEngine
        if args.engine == "postgresql":
            engine = stack.enter_context(PostgresEngine.started(tmp / "postgresql"))
        else:
            engine = SQLiteEngine(args.data or tmp / "sqlite")
        grower = Grower(engine)
        asyncio.run(kept(grower))
        when = int(time.time()) - 3600
        worker_counts = [int(n) for n in args.workers.split(",")]
        for size in sizes:
            asyncio.run(grow_all([grower], size, when, pool))
            if args.in_process:
                cpu = asyncio.run(in_process(engine.data, grower.sample))
                print(f"in-process, {grower.size:,} entries: " + ", ".join(f"{k} {v:.1f} us" for k, v in cpu.items()))
            for tail in args.burst or [0]:
                for n in worker_counts:
                    burst = signed(grower.size - 1, tail, when, pool) if tail else []
                    proofs, health, waiting, first = measure(engine, grower, n, seconds, tmp, burst, args.settle)
                    if first is not None:
                        what = f"inclusion proof by leaf hash, the server's first {args.settle:g} s"
                        lines.append(row(grower.size, waiting, n, what, first, health))
                        print(lines[-1], flush=True)
                    rows_beside_health(lines, (grower.size, waiting, n), "inclusion proof by leaf hash", proofs, health)
            for n in worker_counts if args.tiles else []:
                tiles, health = measure_tiles(engine, grower.size, n, seconds, tmp)
                rows_beside_health(lines, (grower.size, 0, n), "level-0 hash tile, random over the tree", tiles, health)
    print("\n" + "\n".join(lines))


async def kept(grower: Grower) -> None:
    """A log kept by an earlier `--data` run: its size and its sample of leaf hashes, read back (none: a new log)."""
    if not (isinstance(grower.engine, SQLiteEngine) and (grower.engine.data / DATABASE).exists()):
        return
    storage = await grower.engine.open()
    try:
        head = await storage.head()
        grower.size = head.size if head else 0
        for start in range(0, grower.size, 100_000):
            entries = await storage.get_entries(start, min(grower.size, start + 100_000))
            first = (SAMPLE_EVERY - start % SAMPLE_EVERY) % SAMPLE_EVERY
            grower.sample += [leaf_hash(data) for data in entries[first::SAMPLE_EVERY]]
    finally:
        await storage.close()


if __name__ == "__main__":
    main()
