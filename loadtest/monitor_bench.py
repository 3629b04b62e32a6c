"""Monitor benchmark: how fast `tlog-monitor audit-once` audits a local log from its tiles, next to raw SHA-256.

    .venv/bin/python -m loadtest.monitor_bench            (about 4 minutes on 2 cores: a 10^6-entry log)
    .venv/bin/python -m loadtest.monitor_bench --quick    (about 1 minute: 10^5 entries)
    .venv/bin/python -m loadtest.monitor_bench --tiles-dir   (either size: tiles from a static mirror, read as files)

1. A log of 10^6 `issue` statements (plus the registry entry) is built in-process with the real `Sequencer` and
   `SQLiteStorage` (statements signed on every core beforehand; not timed), then served by a real
   `tlog-server serve` on 127.0.0.1.
2. The real CLI, `tlog-monitor audit-once`, audits it from scratch, downloading only tiles and entry bundles,
   authenticating every tile against the signed root and every entry against its level-0 tile:
   - `verify = "tree"`: the Merkle audit alone (no statement parsing);
   - `verify = "parse"`: plus strict statement parsing, origin, issuer registry and watch rules, no Ed25519;
   - `verify = "signatures"`: plus every statement's Ed25519 signature (1 and 2 worker processes), on a second
     log of 2*10^5 entries (`--signed-entries N` sets it): issue 20's figure of record.
   Each figure: entries / wall time of the whole command (process start, state, HTTP and all), and the CPU
   seconds the monitor and the log server each used, since they share the machine's cores.
3. Raw `hashlib.sha256` calls/s (64-byte input) in the same run: the Merkle audit costs about 2 hashes per
   entry (the leaf hash, and ~1 node hash per leaf to fold each level-0 tile into its parent). And Ed25519
   verifications/s through tlogcore (1 and 2 processes): the ceiling of `verify = "signatures"`.
   With `--tiles-dir`, each log's tiles are first exported with the real `tlog-server export-tiles` (not timed)
   and the monitor reads them as files from that directory (`[[log]] tiles_dir`, monitor/mirror.py); the log
   server then answers only `GET /checkpoint`, as a monitor of a log with a static mirror sees it. Files, not
   HTTP: there is no non-Python static server here (no nginx), and a Python one would stand in for the log's.
4. The bounds of both goals from this run's own figures (loadtest/monitor_bounds.py): per level-0 tile, the CPU of
   SHA-256 alone, of tlogcore's calls, of the rest of the monitor and of the log server serving the tile and its
   bundle; with signatures, the CPU per entry of each stage (Ed25519, parsing, the status index, pickling, the main
   process, the server) and the entries/s 2 cores allow for the sum. Stage costs are CPU time (`process_time`), so
   other tenants' load changes them less than the wall-time rates above.
5. The status recomputation per document once the index is large (10^5 with --quick, 10^6 without, or
   `--status-sizes`): the index built first (not timed), then chunks of the benchmark's size timed. With
   `--status-only`, only these figures (about 2 minutes at 10^6):
       .venv/bin/python -m loadtest.monitor_bench --status-only --status-sizes 20000,100000,1000000

Prints figures; asserts nothing. Talks only to 127.0.0.1.
"""

import argparse
import asyncio
import dataclasses
import hashlib
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from loadtest import monitor_bounds as bounds
from loadtest.localproc import rss_kib
from loadtest.log_bench import (
    DATABASE,
    ORIGIN,
    ServerProcess,
    issuer_add,
    log_key,
    machine_info,
    make_pool,
    parallel_rate,
    prepare_data,
    registry_key,
    running_server,
    sequence,
)
from loadtest.schedwait import machine_times
from logserver.sequencer import Submission
from monitor.statusaudit import APPLY_EVERY, StatusItem
from monitor.statusfile import read_head
from tlogcore.tiles import TILE_WIDTH

REPO = Path(__file__).resolve().parent.parent
MONITOR = [sys.executable, "-c", "from monitor.cli import main; main()"]
TREE_BATCH = 10_000


@dataclass(frozen=True)
class Profile:
    entries: int  # the big log, audited in "tree" and "parse" modes
    signed_entries: int  # the log audited with every signature checked
    status_size: int  # the index size at which the status recomputation is also measured (monitor_bounds.py)


# The signed audit at 2·10^5 entries in both: issue 20's figure of record. Its log logs no index root, so the monitor
# applies its documents 65,536 entries at a time (statusaudit.py APPLY_EVERY): a log of 2·10^4 would have none
# applied during the audit.
FULL = Profile(1_000_000, 200_000, 1_000_000)
QUICK = Profile(100_000, 200_000, 100_000)


@dataclass(frozen=True)
class Audit:
    label: str
    entries: int
    seconds: float
    monitor_cpu: float  # the main process
    server_cpu: float
    all_cpu: float  # the main process and every process it started (workers, status process)
    idle: float  # the machine's cores left idle, on average over the audit (/proc/stat: loadtest/schedwait.py)
    indexed: tuple[int, int] = (0, 0)  # the status index after it: entries applied, entries audited into its file

    @property
    def rate(self) -> float:
        return self.entries / self.seconds


def sha256_rate(seconds: float = 1.0) -> float:
    data, sha256 = b"\x01" * 64, hashlib.sha256
    done, deadline = 0, time.perf_counter() + seconds
    started = time.perf_counter()
    while time.perf_counter() < deadline:
        for _ in range(1000):
            sha256(data).digest()
        done += 1000
    return done / (time.perf_counter() - started)


def ed25519_verifications(seconds: float) -> int:
    """Statement-signature checks through tlogcore's verifier (the library the monitor uses) for `seconds`."""
    signer = registry_key()
    verifier, message = signer.verifier(), b"tlog-statement/v1\n" * 12
    signature = signer.sign(message)
    done, deadline = 0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        for _ in range(100):
            verifier.verify(message, signature)
        done += 100
    return done


def build_log(data: Path, count: int, when: int) -> list[Submission]:
    """A log of the registry statement then `count` signed `issue` statements; returns those statements."""
    prepare_data(data)
    pool = make_pool(count, when)
    asyncio.run(sequence(data / DATABASE, pool, TREE_BATCH, [issuer_add(when)]))
    return pool


def export_tiles(data: Path) -> Path:
    """The log's static tiles directory, written by the real `tlog-server export-tiles` (what a mirror copies)."""
    out = data.parent / f"{data.name}-tiles"
    server = [sys.executable, "-c", "from logserver.cli import main; main()"]
    subprocess.run([*server, "export-tiles", "--data", str(data), "--out", str(out)], cwd=REPO, check=True)
    return out


def write_config(path: Path, url: str, verify: str, workers: int, tiles_dir: Path | None = None) -> Path:
    registry = registry_key().verifier().vkey
    mirror = f'tiles_dir = "{tiles_dir}"\n' if tiles_dir is not None else ""
    path.write_text(
        f'state = "{path.stem}.db"\nverify = "{verify}"\nworkers = {workers}\nchunk_tiles = 32\n'
        f'max_concurrent_requests = 16\n\n[[log]]\nurl = "{url}"\n{mirror}'
        f'policy = """\nlog {log_key().verifier().vkey}\nquorum none\n"""\nregistry_vkeys = ["{registry}"]\n\n'
        '[[watch]]\nname = "registry"\nregistry = true\n\n[[sink]]\ntype = "file"\npath = "alerts.jsonl"\n',
        encoding="utf-8",
    )
    return path


def session_cpu(session: int) -> dict[int, float]:
    """CPU seconds so far of every process in `session` (the monitor, its forkserver, workers and status process:
    getrusage does not count the forkserver's children)."""
    found: dict[int, float] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            fields = Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # it ended between the listing and the read
        if int(fields[3]) == session:
            found[int(name)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return found


@dataclass(frozen=True)
class AuditOnce:
    """One `audit-once` as a process: its wall time, every process's CPU, and the machine's idle cores."""

    seconds: float
    pid: int  # the monitor's main process
    cpu_by_pid: dict[int, float]  # polled from /proc every 20 ms (a process's last 20 ms may be missed)
    idle: float  # the machine's cores left idle, on average over the audit (/proc/stat: loadtest/schedwait.py)
    main_peak_mb: float = 0.0  # the main process's largest resident set seen (polled as the CPU is)


def run_audit_once(config: Path, entries: int, cwd: Path = REPO) -> AuditOnce:
    """`tlog-monitor audit-once` with the code of the tree `cwd` (`python -c` imports from it); it must verify size
    `entries`."""
    machine = machine_times()
    started = time.perf_counter()
    process = subprocess.Popen(
        [*MONITOR, "audit-once", "--config", str(config)],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its session id is its pid: every process it starts is found by that
    )
    seen: dict[int, float] = {}
    peak = 0.0
    stderr_reader = ThreadPoolExecutor(1)
    stderr = stderr_reader.submit(process.stderr.read) if process.stderr else None
    while process.poll() is None:
        seen.update(session_cpu(process.pid))
        peak = max(peak, rss_kib(process.pid) / 1024)
        time.sleep(0.02)
    seconds = time.perf_counter() - started
    idle = sum(machine_times()[state] - machine[state] for state in ("idle", "iowait")) / seconds
    text = stderr.result().decode("utf-8", "replace") if stderr else ""
    stderr_reader.shutdown()
    if process.returncode not in (0, 3):
        raise RuntimeError(f"audit-once failed ({process.returncode}): {text[-2000:]}")
    if f"verified size {entries}" not in text:
        raise RuntimeError(f"the monitor did not verify size {entries}: {text[-2000:]}")
    return AuditOnce(seconds, process.pid, seen, idle, peak)


def audit(server: ServerProcess, config: Path, label: str, entries: int) -> Audit:
    """One `audit-once` from scratch; the monitor's CPU is its main process's (getrusage) and, polled from /proc
    every 20 ms, that of all its processes (a process's last 20 ms may be missed)."""
    server_cpu = server.cpu_seconds()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = run_audit_once(config, entries)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    monitor_cpu = (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)
    others = sum(cpu for pid, cpu in done.cpu_by_pid.items() if pid != done.pid)
    server_used = server.cpu_seconds() - server_cpu
    indexed = status_indexed(config, ORIGIN)
    return Audit(label, entries, done.seconds, monitor_cpu, server_used, monitor_cpu + others, done.idle, indexed)


def status_indexed(config: Path, origin: str) -> tuple[int, int]:
    """Where the audit left the monitor's status index (monitor/statusfile.py head): the entries whose documents it
    applied, and the entries audited into its file (those past the first wait for a batch: statusaudit.py
    APPLY_EVERY). (0, 0) with no index (verify = "tree")."""
    row = read_head(config.parent / f"{config.stem}.db", origin, ("indexed", "size"))  # write_config's `state`
    return (int(row[0]), int(row[1])) if row else (0, 0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="about one minute: 10^5 entries")
    parser.add_argument("--tiles-dir", action="store_true", help="tiles from an exported static tiles directory")
    parser.add_argument(
        "--status-sizes",
        help="index sizes at which to measure the status recomputation per document, e.g. 100000,1000000 "
        "(default: 100000 with --quick, 1000000 without)",
    )
    parser.add_argument("--status-only", action="store_true", help="only the status recomputation at those sizes")
    parser.add_argument(
        "--signed-entries",
        type=int,
        help="entries of the log audited with every signature checked (default: 200,000)",
    )
    args = parser.parse_args(argv)
    profile = QUICK if args.quick else FULL
    if args.signed_entries is not None:
        profile = dataclasses.replace(profile, signed_entries=args.signed_entries)
    status_sizes = [int(size) for size in (args.status_sizes or str(profile.status_size)).split(",")]
    if args.status_only:
        print_status_only(status_sizes)
        return
    began = time.perf_counter()
    mode = (" (--quick)" if args.quick else "") + (" (--tiles-dir: tiles read as files)" if args.tiles_dir else "")
    print("monitor benchmark" + mode)
    for line in machine_info():
        print("  " + line)
    when = int(time.time()) - 3600
    audits: list[Audit] = []
    with tempfile.TemporaryDirectory(prefix="monitor-bench-") as tmp_name:
        tmp = Path(tmp_name)
        t = time.perf_counter()
        big = build_log(tmp / "big", profile.entries, when)
        signed = build_log(tmp / "signed", profile.signed_entries, when)
        mirrors = {name: export_tiles(tmp / name) if args.tiles_dir else None for name in ("big", "signed")}
        print(
            f"  built logs of {profile.entries + 1:,} and {profile.signed_entries + 1:,} entries in "
            f"{time.perf_counter() - t:.0f} s (not timed below)",
            flush=True,
        )
        hashes = sha256_rate()
        verifies = {n: parallel_rate(ed25519_verifications, n, 1.0, processes=n > 1) for n in (1, 2)}
        with running_server(tmp / "big") as server:
            size = profile.entries + 1
            for verify in ("tree", "parse"):
                config = write_config(tmp / f"big-{verify}.toml", server.url, verify, 1, mirrors["big"])
                audits.append(audit(server, config, f'verify = "{verify}"', size))
                print(f"  {audits[-1].label}: {audits[-1].rate:,.0f} entries/s", flush=True)
        with running_server(tmp / "signed") as server:
            size = profile.signed_entries + 1
            for workers in (1, 2):
                config = write_config(
                    tmp / f"signed-{workers}.toml", server.url, "signatures", workers, mirrors["signed"]
                )
                audits.append(audit(server, config, f'verify = "signatures", workers = {workers}', size))
                print(f"  {audits[-1].label}: {audits[-1].rate:,.0f} entries/s", flush=True)
    print(
        f"\nraw hashlib.sha256 (64 bytes), 1 core: {hashes:,.0f} calls/s; "
        f"the Merkle audit's ceiling at ~2 hashes per entry: {hashes / 2:,.0f} entries/s"
    )
    print(
        "\n| audit (tlog-monitor audit-once, from scratch) | entries | entries/s | monitor CPU s: main process / all "
        "its processes | server CPU s | entries per monitor CPU s (all) | the machine's idle cores |"
        "\n|---|---:|---:|---:|---:|---:|---:|"
    )
    for a in audits:
        cpu, per_cpu = f"{a.monitor_cpu:.1f} / {a.all_cpu:.1f}", f"{a.entries / a.all_cpu:,.0f}"
        row = f"| {a.label} | {a.entries:,} | {a.rate:,.0f} | {cpu} | {a.server_cpu:.1f} | {per_cpu} | {a.idle:.2f} |"
        print(row)
    print(f"| raw `hashlib.sha256` calls/s (64 bytes), same run | | {hashes:,.0f} | | | | |")
    for n, rate in verifies.items():
        label = f"Ed25519 verifications/s (tlogcore), {n} process{'es' if n > 1 else ''}, same run"
        print(f"| {label} | | {rate:,.0f} | | | | |")
    print_indexed(audits)
    print_bounds(audits, big, signed, status_sizes)
    print(f"\ntotal time {time.perf_counter() - began:.0f} s; load average now {os.getloadavg()[0]:.2f}")


def print_indexed(audits: list[Audit]) -> None:
    """How much of each audit's status-index work it did: this log logs no index root, so its documents
    go into the index APPLY_EVERY entries at a time, and those after the last batch wait for the next round."""
    print()
    for a in audits:
        applied, audited = a.indexed
        if audited:
            print(
                f"{a.label}: the status index applied to entry {applied:,} of {audited:,} (no index root in this"
                f" log: batches of {APPLY_EVERY:,} entries; the rest waits in its file for the next round)"
            )


def startup_cpu() -> float:
    """CPU seconds of starting the monitor's CLI and importing everything (`--help`): paid once per audit."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([*MONITOR, "audit-once", "--help"], cwd=REPO, capture_output=True, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def print_status_only(sizes: list[int]) -> None:
    print("monitor benchmark: the status recomputation per document only")
    for line in machine_info():
        print("  " + line)
    began = time.perf_counter()
    rng = random.Random(0)
    items: list[StatusItem] = [(i, "issue", rng.randbytes(32)) for i in range(QUICK.signed_entries)]
    bounds.print_status_sizes(
        {size: bounds.status_at_size(size) for size in sizes}, bounds.status_per_document(items), len(items)
    )
    print(f"\ntotal time {time.perf_counter() - began:.0f} s; load average now {os.getloadavg()[0]:.2f}")


def print_bounds(audits: list[Audit], big: list[Submission], signed: list[Submission], status_sizes: list[int]) -> None:
    """The ceilings of both goals from this run's own figures (monitor_bounds.py says what each is)."""
    entries = [s.data for s in big]
    tree, one_worker = audits[0], audits[2]
    start = startup_cpu()
    tiles = tree.entries / TILE_WIDTH
    print(f"\nmonitor start (imports, CLI) costs {start:.2f} CPU s per audit; taken out of the per-tile figures")
    bounds.print_tree_bound(
        bounds.TreeBound(
            bounds.hashing_per_tile(entries),
            bounds.tlogcore_per_tile(entries),
            (tree.monitor_cpu - start) / tiles,
            tree.server_cpu / tiles,
            start,
            tree.entries,
        )
    )
    origin = signed[0].statement.origin
    items: list[StatusItem] = [(i, s.statement.kind, s.statement.document or b"") for i, s in enumerate(signed)]
    statements = [s.data for s in signed]
    stages = {
        "Ed25519 verification of a statement, in the workers": bounds.verify_per_entry(statements, origin),
        "statement parsing and checks without Ed25519, in the main process (monitor/checkstages.py)": (
            bounds.parse_per_entry(statements, origin)
        ),
        "status-index recomputation, per document (status process)": bounds.status_per_document(items),
    }
    status = stages["status-index recomputation, per document (status process)"]
    crossing = bounds.crossing_per_entry(statements, origin)
    whole = (one_worker.monitor_cpu - start) / one_worker.entries
    stages["the rest of the main process (tiles, registry, watch rules, state)"] = max(
        0.0, whole - sum(stages.values())
    )
    stages["signed texts to the workers (pickling, workers > 1 only)"] = crossing
    stages["the log server serving tiles and bundles"] = one_worker.server_cpu / one_worker.entries
    bounds.print_signature_bound(stages, status, start, one_worker.entries)
    bounds.print_status_sizes({size: bounds.status_at_size(size) for size in status_sizes}, status, len(items))


if __name__ == "__main__":
    main()
