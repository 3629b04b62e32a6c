"""The monitor's audit with every signature checked, code from two or more source trees alternating: one log built
once, served by one `tlog-server serve`, audited from scratch by `tlog-monitor audit-once` (`workers = 2`, as
monitor_bench.py configures it) with each tree's code in turn, round after round.

Why: on a shared virtual machine the speed of a core moves by half from one minute to the next (raw SHA-256 from
1.7 to 3.5·10^6/s within an hour here), more than a change to the monitor moves it. Runs made one after another,
alternating, each with the machine's idle cores and every process's CPU beside it, compare code; a single run of
monitor_bench.py does not. Trees are directories holding the repository (e.g. `git worktree add /tmp/before
<commit>`, with a `.venv` link): each audit runs `python -c` with its tree as the working directory, so it imports
that tree's `monitor` and `tlogcore`.

    .venv/bin/python -m loadtest.monitor_ab --trees /tmp/before,. --rounds 4 --entries 200000
"""

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from loadtest.log_bench import machine_info, running_server
from loadtest.monitor_bench import build_log, run_audit_once, sha256_rate, write_config


@dataclass(frozen=True)
class Run:
    entries: int
    seconds: float
    main_cpu: float  # the monitor's main process
    all_cpu: float  # it and every process it started (workers, status process)
    server_cpu: float
    idle: float  # the machine's idle cores, on average over the audit
    sha256: float  # raw SHA-256 calls/s on one core, measured just before
    main_peak_mb: float  # the main process's largest resident set

    def row(self, tree: str, number: int) -> str:
        per = 1e6 / self.entries
        return (
            f"| {tree} | {number} | {self.entries / self.seconds:,.0f} | {self.all_cpu * per:.1f} | "
            f"{self.main_cpu * per:.1f} | {self.server_cpu * per:.1f} | {self.idle:.2f} | {self.sha256:,.0f} | "
            f"{self.main_peak_mb:,.0f} |"
        )


def audit(tree: Path, config: Path, entries: int, server_cpu: Callable[[], float]) -> Run:
    sha256 = sha256_rate(0.3)
    server_before = server_cpu()
    done = run_audit_once(config, entries, cwd=tree)
    main_cpu, server = done.cpu_by_pid.get(done.pid, 0.0), server_cpu() - server_before
    all_cpu = sum(done.cpu_by_pid.values())
    return Run(entries, done.seconds, main_cpu, all_cpu, server, done.idle, sha256, done.main_peak_mb)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trees", required=True, help="comma-separated source trees, e.g. /tmp/before,.")
    parser.add_argument("--rounds", type=int, default=4, help="audits per tree, alternating (default 4)")
    parser.add_argument("--entries", type=int, default=200_000, help="entries of the log (default 200,000)")
    args = parser.parse_args(argv)
    trees = [Path(t).resolve() for t in args.trees.split(",")]
    for tree in trees:
        if not (tree / "monitor" / "cli.py").is_file():
            raise SystemExit(f"monitor_ab: {tree} holds no monitor/cli.py: give the repository's directory")
    print("monitor audit A/B (audit-once, verify = signatures, workers = 2)")
    for line in machine_info():
        print("  " + line)
    print(
        "\n| tree | round | entries/s | CPU µs per entry, all its processes | main process | the log server "
        "| the machine's idle cores | raw SHA-256/s just before | main process peak MB |"
        "\n|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    runs: dict[Path, list[Run]] = {tree: [] for tree in trees}
    with tempfile.TemporaryDirectory(prefix="monitor-ab-") as tmp_name:
        tmp = Path(tmp_name)
        build_log(tmp / "log", args.entries, int(time.time()) - 3600)
        with running_server(tmp / "log") as server:
            for number in range(args.rounds):
                for index, tree in enumerate(trees):
                    config = write_config(tmp / f"t{index}-r{number}.toml", server.url, "signatures", 2)
                    run = audit(tree, config, args.entries + 1, server.cpu_seconds)
                    runs[tree].append(run)
                    print(run.row(tree.name or str(tree), number), flush=True)
    print("\n| tree | mean entries/s | mean CPU µs per entry (all / main) | mean idle cores |\n|---|---:|---:|---:|")
    for tree, done in runs.items():
        rate = sum(r.entries / r.seconds for r in done) / len(done)
        cpu = sum(r.all_cpu / r.entries for r in done) / len(done) * 1e6
        main_cpu = sum(r.main_cpu / r.entries for r in done) / len(done) * 1e6
        idle = sum(r.idle for r in done) / len(done)
        print(f"| {tree} | {rate:,.0f} | {cpu:.1f} / {main_cpu:.1f} | {idle:.2f} |")
    print(f"\nload average now {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
