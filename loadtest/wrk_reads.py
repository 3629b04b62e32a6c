"""Reads over HTTP measured with wrk, beside `GET /healthz` on the same server as the ceiling.

    apt-get install wrk                                   (Debian package `wrk`: a C load generator; the Python
                                                           clients cap near the server's own rate)
    .venv/bin/python -m loadtest.wrk_reads --quick        (2*10^4 entries, 1 and 2 processes, 5-second runs)
    .venv/bin/python -m loadtest.wrk_reads --sizes 2e4,1e6 --workers 1,2
    .venv/bin/python -m loadtest.wrk_reads --sizes 1e6 --workers 1 --in-process   (also the app's CPU per request,
                                                           in-process without sockets: the figure least moved by load)
    .venv/bin/python -m loadtest.wrk_reads --sizes 1e7    (10^7: the log is grown in-process first, signed on every
                                                           core: a few hours on 2 cores and ~4 GB of disk)

For each size, a SQLite log is grown with the real Sequencer (loadtest/grow.py: every leaf a distinct, really
signed `issue` statement), then served by `tlog-server serve` with `[server] workers = N` for each N asked; wrk
(2 threads, 16 connections) asks for inclusion proofs by leaf hash of random leaves spread over the whole tree
(`GET /api/v1/proof/inclusion?leaf_hash=...`), then `GET /healthz` for the same time: the ceiling of the server's
HTTP stack on this machine. Prints requests/s, latency p50/p99 and the server's CPU per answer (every process of
it, from /proc: on a shared machine the load moves it far less than the rates) for both; asserts nothing.
"""

import argparse
import asyncio
import logging
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadtest.grow import Grower, SQLiteEngine, grow_all, parse_sizes, signing_pool
from loadtest.log_bench import ServerProcess, machine_info
from logserver import cli
from logserver.app import RequestLog, build_app
from logserver.identity import read_keys
from logserver.logstate import LogState
from logserver.submission import SubmissionRules

WRK = "/usr/bin/wrk"
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


def measure(engine: SQLiteEngine, grower: Grower, workers: int, seconds: float, tmp: Path) -> tuple[WrkResult, ...]:
    settings = f"[server]\nworkers = {workers}\n" if workers > 1 else ""
    (engine.data / "server.toml").write_text(settings, encoding="utf-8")
    with engine.serve() as server:
        return proofs_and_health(server, grower.sample, seconds, tmp)


def proofs_and_health(
    server: ServerProcess, sample: Sequence[bytes], seconds: float, tmp: Path
) -> tuple[WrkResult, WrkResult]:
    """Inclusion proofs by leaf hash of random leaves of `sample`, then `GET /healthz`, each `seconds` with wrk,
    each with the server's CPU per answer."""
    paths, lua = tmp / "proof-paths.txt", tmp / "paths.lua"
    paths.write_text("".join(f"/api/v1/proof/inclusion?leaf_hash={h.hex()}\n" for h in sample))
    lua.write_text(LUA)
    run_wrk(server.url + "/healthz", 1.0, None, lua)  # warm up: connections, page cache

    def cpu() -> float:
        return server.cpu_seconds() + server.workers_cpu_seconds()

    before = cpu()
    proofs = run_wrk(server.url, seconds, paths, lua)
    between = cpu()
    health = run_wrk(server.url + "/healthz", seconds, None, lua)
    after = cpu()
    return with_cpu(proofs, between - before), with_cpu(health, after - between)


async def in_process(data: Path, sample: Sequence[bytes], rounds: int = 7, per_round: int = 1500) -> dict[str, float]:
    """CPU per request (best of `rounds`) of the server's app, request log around it as `serve` runs it, driven
    without sockets: the proofs by leaf hash of `sample`, then `GET /healthz`. What the app itself costs, apart from
    the HTTP stack and the machine's load (the figure the third round's A/B compared). The request log is on, as
    `serve` has it (there to stderr, here to /dev/null)."""
    config = cli.load_config(data / "server.toml")
    keys = read_keys(data)
    storage = await cli.open_storage(data, config)
    requests = logging.getLogger("logserver.requests")
    saved = requests.level, requests.propagate
    handler = logging.StreamHandler(open(os.devnull, "w"))  # noqa: SIM115 (closed below)
    handler.setFormatter(logging.Formatter("%(message)s"))
    requests.addHandler(handler)
    requests.setLevel(logging.INFO)
    requests.propagate = False
    try:
        parts = cli.build_parts(data, config, keys, storage)
        await parts.sequencer.load()
        rules = SubmissionRules(keys.log.name, config.max_future_seconds)
        state = LogState(storage, parts.sequencer, rules, keys.log.verifier().vkey, [keys.registry.verifier().vkey])
        app = RequestLog(build_app(state))
        paths = [f"/api/v1/proof/inclusion?leaf_hash={leaf.hex()}" for leaf in sample]
        return {
            "proof": await _cpu_per_request(app, paths, rounds, per_round),
            "/healthz": await _cpu_per_request(app, ["/healthz"], rounds, per_round),
        }
    finally:
        requests.removeHandler(handler)
        handler.stream.close()
        requests.level, requests.propagate = saved
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


def row(size: int, workers: int, what: str, result: WrkResult, ceiling: WrkResult | None) -> str:
    beside = f"{result.rate / ceiling.rate:.0%} of /healthz" if ceiling is not None else "ceiling"
    return (
        f"| {size:,} | {workers} | {what} | {result.rate:,.0f}/s | {result.p50_ms:.1f} ms | {result.p99_ms:.1f} ms "
        f"| {result.server_cpu_us:.0f} us | {result.errors} | {beside} |"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=parse_sizes, default=None, help="comma-separated, e.g. 2e4,1e6 (1e7: hours)")
    parser.add_argument("--workers", default="1,2", help="server processes to compare, e.g. 1,2")
    parser.add_argument("--seconds", type=float, default=None, help="length of each wrk run (default 10)")
    parser.add_argument("--quick", action="store_true", help="2*10^4 entries, 5-second runs")
    parser.add_argument("--in-process", action="store_true", help="also the app's CPU per request without sockets")
    args = parser.parse_args(argv)
    if shutil.which(WRK) is None and not Path(WRK).exists():
        raise SystemExit(f"{WRK} is missing: install the Debian package `wrk` (apt-get install wrk)")
    sizes = args.sizes or ([20_000] if args.quick else [20_000, 1_000_000])
    seconds = args.seconds or (5.0 if args.quick else 10.0)
    workers = [int(n) for n in args.workers.split(",")]
    print("\n".join(machine_info()))
    print(
        f"wrk: {THREADS} threads, {CONNECTIONS} connections, {seconds:g} s per run; load average before: "
        f"{os.getloadavg()[0]:.2f}"
    )
    lines = [
        "| entries | processes | request | rate | p50 | p99 | server CPU per answer | errors | beside |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as name, signing_pool() as pool:
        tmp = Path(name)
        engine = SQLiteEngine(tmp / "sqlite")
        grower = Grower(engine)
        when = int(time.time()) - 3600
        for size in sizes:
            asyncio.run(grow_all([grower], size, when, pool))
            if args.in_process:
                cpu = asyncio.run(in_process(engine.data, grower.sample))
                print(f"in-process, {grower.size:,} entries: " + ", ".join(f"{k} {v:.1f} us" for k, v in cpu.items()))
            for n in workers:
                proofs, health = measure(engine, grower, n, seconds, tmp)
                lines.append(row(grower.size, n, "inclusion proof by leaf hash", proofs, health))
                lines.append(row(grower.size, n, "GET /healthz", health, None))
                print(lines[-2], lines[-1], sep="\n", flush=True)
    print("\n" + "\n".join(lines))


if __name__ == "__main__":
    main()
