"""Load tests with locust against a real log: one command starts the log, runs the scenarios and prints figures.

    .venv/bin/python -m loadtest.run_locust --scenario mix --users 50 --duration 60
    .venv/bin/python -m loadtest.run_locust --scenario all --users 20 --duration 20 --entries 100000

It builds a log of `--entries` entries in a temporary folder (the registry statement registering the issuer key,
then signed `issue` statements, appended in-process with the real Sequencer, not timed), serves it with a real
`tlog-server serve` on 127.0.0.1 (free port), runs `locust --headless` as a subprocess for each scenario (the
scenarios are in loadtest/locustfile.py), prints requests/s, latency p50/p95/p99 and failures per request type,
and stops everything. Locust runs in its own process because it monkey-patches the standard library with gevent.
Locust and the server share this machine's cores: the figures are for both on one machine.
"""

import argparse
import contextlib
import csv
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from loadtest.log_bench import ISSUER_SEED, ORIGIN, ServerProcess, issuer_key, machine_info, running_server
from loadtest.monitor_bench import build_log
from tlogcore.tiles import TILE_WIDTH

REPO = Path(__file__).resolve().parent.parent
LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"
SCENARIOS = {  # scenario -> locust user classes (the mix weights them by their `weight`)
    "issuer": ["IssuerUser"],
    "verifier": ["VerifierUser"],
    "monitor": ["MonitorUser"],
    "mix": ["IssuerUser", "VerifierUser", "MonitorUser"],
}
SAMPLE_SIZE = 2000  # preloaded entries the verifiers pick from
MIN_ENTRIES = 2 * TILE_WIDTH  # so there are full tiles and entry bundles to read


@dataclass(frozen=True)
class LoadLog:
    """A running log with a preloaded tree, and the plan the locust scenarios read."""

    server: ServerProcess
    folder: Path
    plan: Path
    size: int

    def submitted(self) -> list[tuple[bytes, int]]:
        """(leaf hash, index) of the entries the issuer scenarios recorded, one per request."""
        found = []
        for path in sorted(self.folder.glob("submitted-*.txt")):
            for line in path.read_text(encoding="utf-8").splitlines():
                leaf, index = line.split()
                found.append((bytes.fromhex(leaf), int(index)))
        return found


@contextlib.contextmanager
def started_log(folder: Path, entries: int, batch_size: int = 100, think_seconds: float = 0.0) -> Iterator[LoadLog]:
    """Build a log of `entries` entries in `folder/log`, serve it, and write the plan for the locustfile."""
    if entries < MIN_ENTRIES:
        raise ValueError(f"preload at least {MIN_ENTRIES} entries (got {entries})")
    when = int(time.time()) - 3600
    pool = build_log(folder / "log", entries - 1, when)  # entry 0 registers the issuer
    chosen = random.Random(1).sample(range(len(pool)), min(SAMPLE_SIZE, len(pool)))
    sample = [
        {"index": i + 1, "leaf_hash": pool[i].leaf_hash.hex(), "document": (pool[i].statement.document or b"").hex()}
        for i in chosen
    ]
    plan = folder / "plan.json"
    plan.write_text(
        json.dumps(
            {
                "origin": ORIGIN,
                "issuer_name": issuer_key().name,
                "issuer_seed": ISSUER_SEED.hex(),
                "size": entries,
                "sample": sample,
                "submitted_dir": str(folder),
                "batch_size": batch_size,
                "think_seconds": think_seconds,
            }
        ),
        encoding="utf-8",
    )
    with running_server(folder / "log") as server:
        yield LoadLog(server, folder, plan, entries)


@dataclass(frozen=True)
class RequestStats:
    name: str  # "GET /checkpoint", or "Aggregated"
    requests: int
    failures: int
    rate: float  # requests/s
    p50_ms: float
    p95_ms: float
    p99_ms: float
    average_bytes: float  # response body size


@dataclass(frozen=True)
class ScenarioResult:
    scenario: str
    users: int
    seconds: float
    exit_code: int
    stats: list[RequestStats]  # per request type, then "Aggregated"
    failure_lines: list[str]  # locust's failures table: what failed and how often
    server_cpu: float  # CPU seconds the server used during the run

    @property
    def total(self) -> RequestStats:
        return next(s for s in self.stats if s.name == "Aggregated")


def read_stats(path: Path) -> list[RequestStats]:
    with path.open(encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(file))

    def number(row: dict[str, str], key: str) -> float:
        value = row.get(key, "")
        return float(value) if value not in ("", "N/A") else float("nan")

    return [
        RequestStats(
            row["Name"],
            int(row["Request Count"]),
            int(row["Failure Count"]),
            number(row, "Requests/s"),
            number(row, "50%"),
            number(row, "95%"),
            number(row, "99%"),
            number(row, "Average Content Size"),
        )
        for row in rows
    ]


def read_failures(path: Path) -> list[str]:
    if not path.exists():
        return []
    with path.open(encoding="utf-8", newline="") as file:
        return [f"{row['Occurrences']}x {row['Method']} {row['Name']}: {row['Error']}" for row in csv.DictReader(file)]


def run_scenario(log: LoadLog, scenario: str, users: int, seconds: float) -> ScenarioResult:
    """Run one scenario headless for `seconds` against `log`, as a locust subprocess; its figures from the CSVs."""
    prefix = log.folder / f"locust-{scenario}"
    args = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--users",
        str(users),
        "--spawn-rate",
        str(users),  # all users at once: the run is short
        "--run-time",
        f"{max(1, round(seconds))}s",
        "--stop-timeout",
        "10",
        "--host",
        log.server.url,
        "--csv",
        str(prefix),
        "--only-summary",
        "--loglevel",
        "WARNING",
        *SCENARIOS[scenario],
    ]
    env = {**os.environ, "TLOG_LOADTEST_PLAN": str(log.plan)}
    cpu_before = log.server.cpu_seconds()
    with (log.folder / f"locust-{scenario}.log").open("wb") as output:
        process = subprocess.run(args, cwd=REPO, env=env, stdout=output, stderr=subprocess.STDOUT, timeout=seconds + 90)
    stats_path = prefix.with_name(prefix.name + "_stats.csv")
    if not stats_path.exists():
        tail = (log.folder / f"locust-{scenario}.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"locust wrote no statistics (exit {process.returncode}):\n{tail}")
    return ScenarioResult(
        scenario,
        users,
        seconds,
        process.returncode,
        read_stats(stats_path),
        read_failures(prefix.with_name(prefix.name + "_failures.csv")),
        log.server.cpu_seconds() - cpu_before,
    )


def print_result(result: ScenarioResult) -> None:
    print(
        f"\nscenario {result.scenario}: {result.users} users, {result.seconds:g} s, locust exit {result.exit_code}, "
        f"server CPU {result.server_cpu / result.seconds:.0%} of one core"
    )
    print(
        f"  {'request':<48} {'requests':>9} {'failures':>9} {'req/s':>8} "
        f"{'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'bytes':>7}"
    )
    for s in result.stats:
        print(
            f"  {s.name:<48} {s.requests:>9,} {s.failures:>9,} {s.rate:>8,.1f} "
            f"{s.p50_ms:>7,.0f} {s.p95_ms:>7,.0f} {s.p99_ms:>7,.0f} {s.average_bytes:>7,.0f}"
        )
    for line in result.failure_lines:
        print(f"  failure: {line}")


def print_markdown(results: Sequence[ScenarioResult]) -> None:
    print(
        "\n| scenario | request | requests | failures | req/s | p50 / p95 / p99 ms | bytes |\n"
        "|---|---|---:|---:|---:|---:|---:|"
    )
    for result in results:
        for s in result.stats:
            print(
                f"| {result.scenario} ({result.users} users) | {s.name} | {s.requests:,} | {s.failures:,} | "
                f"{s.rate:,.1f} | {s.p50_ms:,.0f} / {s.p95_ms:,.0f} / {s.p99_ms:,.0f} | {s.average_bytes:,.0f} |"
            )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", choices=[*SCENARIOS, "all"], default="mix", help="all: the four in turn")
    parser.add_argument("--users", type=int, default=50, help="concurrent locust users (default 50)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per scenario (default 60)")
    parser.add_argument("--entries", type=int, default=100_000, help="entries preloaded before the run")
    parser.add_argument("--batch-size", type=int, default=100, help="statements per issuer batch (1..1000)")
    parser.add_argument("--think", type=float, default=0.0, help="mean pause between a user's requests, seconds")
    args = parser.parse_args(argv)
    if args.users < 1 or args.duration <= 0 or not 1 <= args.batch_size <= 1000 or args.entries < MIN_ENTRIES:
        parser.error(f"need users >= 1, duration > 0, batch size 1..1000 and entries >= {MIN_ENTRIES}")
    scenarios = list(SCENARIOS) if args.scenario == "all" else [args.scenario]
    print("locust load test")
    for line in machine_info():
        print("  " + line)
    results = []
    with tempfile.TemporaryDirectory(prefix="locust-") as tmp:
        started = time.perf_counter()
        with started_log(Path(tmp), args.entries, args.batch_size, args.think) as log:
            print(
                f"  log of {args.entries:,} entries built and served at {log.server.url} in "
                f"{time.perf_counter() - started:.0f} s (not timed)",
                flush=True,
            )
            for scenario in scenarios:
                results.append(run_scenario(log, scenario, args.users, args.duration))
                print_result(results[-1])
            print(f"\nserver RSS at the end: {log.server.rss_bytes() / 2**20:,.0f} MiB")
    print_markdown(results)
    print(f"\nload average now {os.getloadavg()[0]:.2f}")
    if any(r.total.failures for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
