"""The whole benchmark set, run one script after another, with a summary table at the end.

    python3 dev.py bench --quick      (a few minutes on 2 cores: each script's quick form)
    python3 dev.py bench              (the full set: about an hour on 2 cores, without the 10^7 growth)
    python3 dev.py bench --only submit_bench,wrk_reads

Every script prints its figure beside a ceiling measured in the same run (BENCHMARKS.md); this runner only starts
them, shows their output as it comes, and sums up: which ran, how long, and the markdown rows each printed. HTTP
reads are measured with wrk: install it with `apt-get install wrk` (Debian package `wrk`, /usr/bin/wrk).
"""

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Bench:
    module: str  # loadtest.<module>
    quick: tuple[str, ...]  # arguments of the quick run
    full: tuple[str, ...] = ()  # arguments of the full run
    in_quick: bool = True  # False: only in the full set


# Every loadtest script with a main(): in the set, or below with the reason it is not.
BENCHES = [
    Bench("core_bench", ()),
    Bench("api_bench", ()),
    Bench("log_bench", ("--quick",)),
    Bench("grow", ("--quick",), ("--sizes", "1e5,1e6")),
    Bench("wrk_reads", ("--quick",), ("--sizes", "2e4,1e6", "--workers", "1,2")),
    Bench("submit_bench", ("--count", "20000")),
    Bench("monitor_bench", ("--quick",)),
    Bench("witness_bench", ("--seconds", "3")),
    Bench("witnessing_bench", ("--rounds", "100"), ("--rounds", "300")),
    Bench("status_index_bench", ("--sizes", "100000", "--batches", "1000,10000", "--shape-size", "0")),
    Bench("status_http_bench", ("--documents", "5000", "--seconds", "5"), ("--documents", "100000", "--seconds", "20")),
    Bench("static_tiles_bench", ("--quick",)),
    Bench("storage_bench", ("--entries", "20000", "--failovers", "2"), (), in_quick=False),
    Bench("pg_merge_wal", (), (), in_quick=False),  # a diagnostic of the 10^7 growth (PostgreSQL's merge WAL)
    Bench("merge_bench", (), (), in_quick=False),  # a lookup merge per key by table size, both engines (issue 20)
    Bench(
        "page_layout_bench",
        ("--documents", "1e5", "--updates", "5", "--batch", "2000", "--rounds", "1"),
        ("--rounds", "2"),
    ),  # PostgreSQL per index update, four layouts of its rows (issue 19)
    Bench(
        "sqlite_layout_bench", ("--documents", "1e5", "--updates", "5", "--batch", "2000"), ()
    ),  # SQLite: what an index update writes, two layouts of its rows (issue 19)
    Bench("qr_sizes", ()),
]
NOT_IN_THE_SET = {
    "soak": "a durability soak (kill -9 every 20 s for 15 minutes), not a figure; run it by itself",
    "run_locust": "a locust scenario driver (python -m loadtest.run_locust); wrk and the scripts above give figures",
    "bench_set": "this runner",
    "grow_resume": "needs the logs a `loadtest.grow --keep DIR` run to 10^7 left (hours); run it after one",
    "monitor_ab": "compares source trees (worktrees of two commits), not a figure of the tree it runs in",
    "mldsa_fallback_bench": "needs Node.js (it runs the page's vendored ML-DSA-44 bundle in V8); run it by itself",
}


def chosen(quick: bool, only: Sequence[str]) -> list[Bench]:
    if only:
        unknown = set(only) - {b.module for b in BENCHES}
        if unknown:
            raise SystemExit(f"--only: no benchmark named {', '.join(sorted(unknown))}; see --list")
        return [b for b in BENCHES if b.module in only]
    return [b for b in BENCHES if b.in_quick or not quick]


@dataclass
class Outcome:
    bench: Bench
    command: str
    seconds: float
    status: int
    rows: list[str]  # the markdown table rows it printed


def run_one(bench: Bench, quick: bool) -> Outcome:
    args = bench.quick if quick else bench.full
    command = [sys.executable, "-m", f"loadtest.{bench.module}", *args]
    shown = " ".join([".venv/bin/python", *command[1:]])
    print(f"\n=== {shown}   (load average {os.getloadavg()[0]:.2f})", flush=True)
    started = time.monotonic()
    rows: list[str] = []
    with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True) as process:
        for line in process.stdout or []:
            print(line, end="", flush=True)
            if line.startswith("|") and not line.startswith("|---"):
                rows.append(line.rstrip("\n"))
    return Outcome(bench, shown, time.monotonic() - started, process.returncode, rows)


def summary(outcomes: Sequence[Outcome]) -> str:
    lines = ["| benchmark | command | seconds | result |", "|---|---|---:|---|"]
    for o in outcomes:
        lines.append(f"| {o.bench.module} | `{o.command}` | {o.seconds:,.0f} | {'ok' if o.status == 0 else 'FAILED'} |")
    for o in outcomes:
        if o.rows:
            lines += ["", f"{o.bench.module}:", *o.rows]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 dev.py bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="each script's quick form: a few minutes in all")
    parser.add_argument("--only", default="", help="comma-separated script names, e.g. submit_bench,wrk_reads")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = parser.parse_args(argv)
    benches = chosen(args.quick, [n for n in args.only.split(",") if n])
    if args.list:
        for b in BENCHES:
            print(f"{b.module}: quick {' '.join(b.quick) or '(no arguments)'}; full {' '.join(b.full) or '(none)'}")
        for name, why in NOT_IN_THE_SET.items():
            print(f"{name}: not in the set ({why})")
        return 0
    print(f"machine: {os.cpu_count()} cores; load average {os.getloadavg()}")
    outcomes = [run_one(b, args.quick) for b in benches]
    print("\n## Summary\n\n" + summary(outcomes), flush=True)
    return 0 if all(o.status == 0 for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
