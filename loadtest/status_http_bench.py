"""Status lookups over HTTP (GET /api/v1/documents/<sha256>, each with its status index proof) on one real
`tlog-server serve` process, measured with wrk beside GET /healthz on the same server in the same run (the ceiling:
the HTTP stack with no work), and the index's lag behind sequencing under a submission load (docs/status-proofs.md).

    .venv/bin/python -m loadtest.status_http_bench [--documents 20000] [--seconds 10] [--connections 16]
    .venv/bin/python -m loadtest.status_http_bench --preload 1e6 \
        --rate 10000,5000 --seconds 30 --engine sqlite,postgresql
    .venv/bin/python -m loadtest.status_http_bench --preload 1e7 --rate 10000 --seconds 30 \
        --engine sqlite --intake sequencer --keep /var/tmp/log1e7
    .venv/bin/python -m loadtest.status_http_bench --lookups-on /var/tmp/log1e7 --lookups 30 [--settle 30]
    .venv/bin/python -m loadtest.status_http_bench --keep-up-on /var/tmp/log1e7 --rate 10000 --seconds 120
    .venv/bin/python -m loadtest.status_http_bench --preload 1e7 --rate 10000 --seconds 300 \
        --engine postgresql --intake sequencer --checkpoint \
        --pg-settings shared_buffers=4GB,shared_preload_libraries=pg_stat_statements,max_wal_size=16GB

Phases: (1) submit `documents` issue statements as fast as the server takes them (batches of 1000), sampling the
`tlog_status_index_lag_entries` gauge of /metrics every 0.1 s, then time how long the index takes to cover them
all; (2) wrk on /healthz, then on lookups rotating over 1,000 documents (half present, half never logged). Prints
figures and the load average; asserts nothing.

With --preload: does the index keep up? (loadtest/status_keepup.py) The log is grown to `preload` entries
in-process, a real server indexes them, then pre-signed statements are submitted at a paced --rate for --seconds
while the lag is sampled; per engine. With --intake sequencer the server's parts run in this process and the
statements go straight to its sequencer (loadtest/status_keepup_inprocess.py): the index's rate without the intake's
CPU. The ceilings printed beside it: raw SHA-256 per second (the index's hashing), and the CPU this machine spends
writing file pages into the page cache, new and cached (every byte the database writes goes through it). On
PostgreSQL the in-process phases also print what the database wrote per entry (WAL, data pages by who wrote them,
growth); --pg-settings shared_buffers=4GB,... starts its cluster with those settings (with
shared_preload_libraries=pg_stat_statements, each phase also prints the statements that took the database's time,
with the blocks each read, dirtied and wrote out), and --checkpoint checkpoints between the preload and the phases,
as a server that has run a while (a fresh cluster zero-fills a new WAL segment per 16 MB written). The benchmark
cluster runs with max_wal_size=4GB; at 10^7 a status index keeps up with 16GB (BENCHMARKS.md "Thirty-fifth round"),
as docs/reference.md recommends. The in-process phases also print, for each party (this process, the database
server, the indexer's process), how much of its ready work waited for a core (Linux's scheduler statistics,
loadtest/schedwait.py), and what the machine's cores did meanwhile (user, system, idle, steal...): whether a party
that falls behind is short of cores or of work it can do at once. --lookups SECONDS then starts a server anew on the
log and measures status lookups at that size with wrk, beside /healthz (loadtest/status_lookups.py: lookups at 10^7
with --preload 1e7). --keep DIR grows the log in DIR and leaves it there; --lookups-on DIR --lookups SECONDS then
measures lookups again on that log, without growing it (variants of the server compared on the same files, in turn);
with --settle SECONDS, the server's first SECONDS of lookups are reported apart and the measured run follows them
(a new process is slower until its caches have filled: loadtest/wrk_reads.py `first_reads`). --keep-up-on DIR runs
the in-process keep-up on a copy of that log instead of growing one: its server's parts started anew, a first
phase of 20,000 entries reported apart (the indexer's first update after a start), then --rate for --seconds.
"""

import argparse
import asyncio
import contextlib
import hashlib
import os
import random
import re
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from loadtest.grow import SQLiteEngine
from loadtest.localproc import REPO, free_port, log_identity
from loadtest.log_bench import DATABASE
from loadtest.merge_bench import parse_settings
from loadtest.status_index_bench import sha256_ceiling
from loadtest.status_keepup import STATUS_SETTINGS, keep_up, served_phases
from loadtest.status_keepup_inprocess import keep_up_on, kept_log, served_in_process
from loadtest.status_lookups import lookup_targets, measure_lookups
from loadtest.wrk_reads import app_cpu
from tlogcore.keys import Ed25519Signer, parse_signer_key
from tlogcore.statement import ISSUE, ISSUER_ADD, Statement, sign_statement

SERVER = [sys.executable, "-c", "from logserver.cli import main; main()"]
BATCH = 1000
LAG = re.compile(rb"^tlog_status_index_lag_entries (\d+)$", re.M)


def start_server(data: Path) -> tuple[subprocess.Popen[bytes], str]:
    config = data.parent / "log.toml"
    config.write_text("[status_index]\nindex_interval_ms = 100\n")
    port = free_port()
    log = (data.parent / "server.log").open("ab")
    args = [*SERVER, "serve", "--data", str(data), "--listen", f"127.0.0.1:{port}", "--config", str(config)]
    process = subprocess.Popen(args, cwd=REPO, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("the server did not start: see " + str(data.parent / "server.log"))


def post(client: httpx.Client, statements: list[bytes]) -> httpx.Response:
    import base64

    body = {"statements": [base64.b64encode(s).decode() for s in statements]}
    response = client.post("/api/v1/entries", json=body)
    response.raise_for_status()
    return response


def lag(client: httpx.Client) -> int | None:
    found = LAG.search(client.get("/metrics").content)
    return int(found.group(1)) if found else None


def fill(client: httpx.Client, data: Path, documents: int) -> dict[str, float]:
    """Phase 1: submit, sample the lag, wait until the index covers everything."""
    origin = client.get("/api/v1/log").json()["origin"]
    registry = parse_signer_key((data / "registry.key").read_text().strip())
    issuer = Ed25519Signer("bench.issuer", b"\x42" * 32)
    add = Statement(origin, ISSUER_ADD, registry.verifier().vkey, int(time.time()), issuer=issuer.verifier().vkey)
    post(client, [sign_statement(add, registry)])
    now = int(time.time())
    statements = [
        sign_statement(Statement(origin, ISSUE, issuer.verifier().vkey, now, document=doc(i)), issuer)
        for i in range(documents)
    ]
    samples: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        with httpx.Client(base_url=str(client.base_url), timeout=30) as own:
            while not stop.is_set():
                value = lag(own)
                if value is not None:
                    samples.append(value)
                time.sleep(0.1)

    sampler = threading.Thread(target=sample)
    sampler.start()
    started = time.perf_counter()
    for first in range(0, documents, BATCH):
        post(client, statements[first : first + BATCH])
    submitted = time.perf_counter()
    size = int(client.get("/api/v1/log").json()["size"])
    covered_at = None
    while time.perf_counter() - submitted < 120:
        served = client.get(f"/api/v1/documents/{doc(-1).hex()}").json()["index"]
        if served is not None and served["size"] >= size:
            covered_at = time.perf_counter()
            break
        time.sleep(0.05)
    stop.set()
    sampler.join()
    return {
        "documents/s sequenced": documents / (submitted - started),
        "max lag (entries)": max(samples, default=-1),
        "seconds from last submission to a proof covering it": (covered_at or float("nan")) - submitted,
    }


def doc(i: int) -> bytes:
    return hashlib.sha256(b"bench document %d" % i).digest()


def wrk(url: str, seconds: int, connections: int, script: Path | None) -> float:
    args = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s"]
    args += ["-s", str(script)] if script is not None else []
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    found = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if found is None or errors is not None:
        raise SystemExit("wrk: " + out)
    return float(found.group(1))


def lookup_script(tmp: Path, documents: int) -> Path:
    paths = [f"/api/v1/documents/{doc(i).hex()}" for i in range(0, documents, max(1, documents // 500))][:500]
    paths += [f"/api/v1/documents/{doc(-1 - i).hex()}" for i in range(500)]  # never logged: proofs of absence
    script = tmp / "lookups.lua"
    listed = ",\n".join(f'"{p}"' for p in paths)
    script.write_text(
        f"local paths = {{\n{listed}\n}}\nlocal i = 0\n"
        'request = function()\n  i = i + 1\n  return wrk.format("GET", paths[(i % #paths) + 1])\nend\n'
    )
    return script


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--documents", type=int, default=20_000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--preload", type=lambda text: int(float(text)), default=0, help="e.g. 1e6: keep-up mode")
    parser.add_argument("--rate", default="10000", help="keep-up mode: entries/s submitted, paced; a list: in turn")
    parser.add_argument("--engine", default="sqlite", help="keep-up mode: sqlite, postgresql or both (comma)")
    parser.add_argument(
        "--intake",
        choices=["http", "sequencer"],
        default="http",
        help="keep-up mode: POSTs to a real server (signatures checked), or the server's parts fed in-process",
    )
    parser.add_argument(
        "--pg-settings", default="", help="keep-up mode: PostgreSQL's own settings, e.g. shared_buffers=2GB (comma)"
    )
    parser.add_argument(
        "--checkpoint",
        action="store_true",
        help="keep-up mode, PostgreSQL: CHECKPOINT once the preload is indexed (WAL segments recycled, not new)",
    )
    parser.add_argument(
        "--lookups",
        type=float,
        default=0.0,
        help="keep-up mode: then SECONDS of wrk on status lookups at that size, from a server started anew",
    )
    parser.add_argument("--keep", type=Path, help="keep-up mode: grow the log in this folder and leave it there")
    parser.add_argument(
        "--lookups-on", type=Path, help="--lookups SECONDS on the SQLite log a --keep run left in this folder"
    )
    parser.add_argument(
        "--settle", type=float, default=0.0, help="--lookups-on: SECONDS of lookups first, reported apart"
    )
    parser.add_argument(
        "--keep-up-on",
        type=Path,
        help="keep-up mode, in-process, on a copy of the SQLite log a --keep run left there (--rate, --seconds)",
    )
    args = parser.parse_args()
    if args.keep_up_on:
        keep_up_on(args.keep_up_on, [float(r) for r in args.rate.split(",")], args.seconds)
        print(f"ceiling: raw SHA-256 {sha256_ceiling():,.0f}/s (one core, this run)")
        return
    if args.lookups_on:
        lookups_on_main(args.lookups_on, args.lookups or args.seconds, args.settle)
        return
    if args.preload:
        keep_up_main(args)
        return
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        data = tmp / "log"
        log_identity(data)
        process, url = start_server(data)
        try:
            with httpx.Client(base_url=url, timeout=60) as client:
                filled = fill(client, data, args.documents)
                proof = client.get(f"/api/v1/documents/{doc(0).hex()}").json()["index"]
            healthz = wrk(url + "/healthz", args.seconds, args.connections, None)
            lookups = wrk(url, args.seconds, args.connections, lookup_script(tmp, args.documents))
        finally:
            process.terminate()
            process.wait(20)
    print(f"load average: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    print(f"{args.documents} documents, one server process (SQLite), [status_index] index_interval_ms = 100")
    for what, value in filled.items():
        print(f"  {what}: {value:,.2f}")
    print(f"  index proof bytes for a present document: {len(proof['proof']) * 3 // 4}")
    print(f"ceiling: GET /healthz {healthz:,.0f} requests/s (wrk -t2 -c{args.connections}, {args.seconds} s)")
    print(
        f"GET /api/v1/documents/<sha256> with status proof: {lookups:,.0f} requests/s ({lookups / healthz:.2f} of it)"
    )


def page_cache_writes(directory: Path, size: int = 256 << 20, block: int = 8192) -> tuple[float, float]:
    """CPU seconds per MB (user + system) of writing a new file in 8 KiB blocks, then of writing the same pages
    again while they are cached: what a byte the database writes costs this machine (not synced: the kernel's
    copy into the page cache alone, as PostgreSQL's own writes between its syncs)."""
    path, data, costs = directory / "page-cache-writes", b"\1" * block, []
    try:
        with path.open("wb", buffering=0) as out:
            for _ in range(2):
                out.seek(0)
                started = time.process_time()
                for _ in range(size // block):
                    out.write(data)
                costs.append((time.process_time() - started) / (size / 1e6))
    finally:
        path.unlink(missing_ok=True)
    return costs[0], costs[1]


def keep_up_main(args: argparse.Namespace) -> None:
    serve = served_in_process if args.intake == "sequencer" else served_phases
    settings = parse_settings(args.pg_settings)
    for engine in args.engine.split(","):
        with contextlib.nullcontext(str(args.keep)) if args.keep else tempfile.TemporaryDirectory() as name:
            rates = [float(r) for r in args.rate.split(",")]
            keep_up(
                engine, Path(name), args.preload, rates, args.seconds, serve, settings, args.checkpoint, args.lookups
            )
    print(f"ceiling: raw SHA-256 {sha256_ceiling():,.0f}/s (one core, this run)")
    with tempfile.TemporaryDirectory(dir=REPO) as name:  # the disk the benchmark's data was on
        fresh, cached = page_cache_writes(Path(name))
    print(
        f"ceiling: writing file pages into the page cache, {1 / fresh:,.0f} MB per CPU second for new pages "
        f"({fresh * 1e3:.2f} us per KB), {1 / cached:,.0f} MB per CPU second rewriting cached ones (this run)"
    )


def lookups_on_main(folder: Path, seconds: float, settle: float = 0.0) -> None:
    """Status lookups on the SQLite log a `--keep` run left in `folder` (its documents: statements 0..n-1)."""
    data = kept_log(folder)
    with contextlib.closing(sqlite3.connect(f"file:{data / DATABASE}?mode=ro", uri=True)) as db:
        statements = db.execute("SELECT COUNT(*) FROM leaves WHERE document_key IS NOT NULL").fetchone()[0]
    with tempfile.TemporaryDirectory() as name:
        found = measure_lookups(SQLiteEngine(data, STATUS_SETTINGS), statements, seconds, Path(name), settle)
    print("\n".join(found.report("sqlite")), flush=True)
    targets = lookup_targets(statements)
    random.Random(30).shuffle(targets)  # logged and never logged in every round (the list is half, then half)
    cpu = asyncio.run(app_cpu(data, targets, status=True))
    print(
        f"  without sockets (the app driven in-process, best of 7 rounds of 1,500): {cpu['paths']:,.0f} us per "
        f"lookup, {cpu['/healthz']:,.0f} us per /healthz",
        flush=True,
    )


if __name__ == "__main__":
    main()
