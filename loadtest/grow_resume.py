"""Integration rate at the size a kept growth run reached, beside a fresh log's rate at 10^5, in one quiet run.

    .venv/bin/python -m loadtest.grow --sizes 1e5,1e6,1e7 --engines sqlite,postgresql --keep DIR   (hours)
    .venv/bin/python -m loadtest.grow_resume --keep DIR --engines sqlite,postgresql                  (minutes)

Issue 20 asks the integration rate to stay flat from 10^5 to 10^7 (at most 1.25x lower). Growing to 10^7 takes
hours, and on a shared machine the load moves during them, so the growth run's own 10^5 and 10^7 figures are
taken under different loads. This script takes both in a few minutes: it appends `--entries` more statements to each
kept log (SQLite's database and PostgreSQL's kept cluster, started again) through the real `Sequencer` in batches of
10,000, exactly as `loadtest.grow` does, and grows a fresh log of each engine to `--baseline` entries the same way,
then prints both rates and their ratio. Each statement is a distinct, really signed `issue` statement, signed on
every core before the timed appends: the kept log's whole window at once (~0.9 KB per statement in memory, 1.7 GB
for 2*10^6), so the policy's merges run on the other core beside the appends, as under a server's sustained load,
instead of alone between signed chunks. Then, with `--wrk-seconds`, it serves each kept log and asks for inclusion
proofs by leaf hash of random leaves over the whole tree with wrk (loadtest/wrk_reads.py), beside `GET /healthz`:
issue 20's p99 at 10^7, from a process started for it and timed until ready (it warms its reads first,
logserver/warmup.py); `--cold` drops the kept files from the page cache first (as after a reboot), `--warm-seconds
0` turns the warm-up off (the A/B). With `--pg-settings shared_preload_libraries=pg_stat_statements` it prints
PostgreSQL's costliest statements over each window, in us per entry: which of them grow with the log; with
`--without-duplicate-probe`, a bound: the sequencer's duplicate probe answered at once (what a filter in front of it
could save at most). Prints figures and asserts nothing.

Both rates are of entries appended AND merged (loadtest/grow.py: each chunk is timed until no merge the policy
calls for is due or running, checkpoints included, and the tail left at the end is merged inside the last chunk's
time; the harness's own pauses between chunks are not idle time for the merger). A merge waits for a share of the
merged table (`SequencerConfig.merge_batch`: 500,000 leaves at 10^7), so a window must span several merges to show
their cost fairly: at 10^7 append at least 2*10^6 (`--entries 2e6`, four merges); the script prints how many merges
the window spans.

SIZE or LOAD? With `--pairs K` (SQLite) it alternates K times, under the same load, appending the same `--entries`
to a fresh log first grown to `--baseline` and to the kept log, and prints the CPU per entry of the process's main
thread (the event loop: the sequencer) and of its other threads (SQLite's writer and merger), from /proc, over the
appends alone (signing and start-up left out).
"""

import argparse
import asyncio
import contextlib
import os
import random
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from loadtest.grow import (
    Engine,
    Grower,
    PostgresEngine,
    SQLiteEngine,
    grow_all,
    parse_sizes,
    signing_pool,
)
from loadtest.log_bench import machine_info
from loadtest.merge_bench import parse_settings
from loadtest.serverwindow import describe
from loadtest.wrk_reads import proofs_and_health
from logserver.postgres import PostgresStorage
from logserver.sequencer import Sequencer, Submission
from logserver.sequencing import SequencerConfig
from tlogcore.merkle import stored_hash_index

FLAT_LIMIT = 1.25  # issue 20: at most 1.25x lower at 10^7 than at 10^5
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")  # /proc/<pid>/task/<tid>/stat counts CPU in these


def thread_cpu() -> tuple[float, float]:
    """CPU seconds of this process's main thread and of all its other threads (utime + stime, proc(5))."""
    main = others = 0.0
    for stat in Path("/proc/self/task").glob("*/stat"):
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            fields = stat.read_text().rsplit(")", 1)[1].split()
            seconds = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
            if stat.parent.name == str(os.getpid()):
                main += seconds
            else:
                others += seconds
    return main, others


@dataclass
class ThreadTimedGrower(Grower):
    """A Grower that also adds up, over its appends alone, the CPU of the main thread and of the other threads."""

    main_cpu: float = 0.0
    others_cpu: float = 0.0
    appended: int = 0
    windows: list[float] = field(default_factory=list)

    async def append(self, sequencer: Sequencer, chunk: Sequence[Submission]) -> None:
        with self.threads_timed():
            await super().append(sequencer, chunk)
        self.appended += len(chunk)

    async def settle(self, sequencer: Sequencer) -> None:
        with self.threads_timed():
            await super().settle(sequencer)

    @contextlib.contextmanager
    def threads_timed(self) -> Iterator[None]:
        main, others = thread_cpu()
        yield
        after = thread_cpu()
        self.main_cpu, self.others_cpu = self.main_cpu + after[0] - main, self.others_cpu + after[1] - others

    def line(self, label: str, start: int) -> str:
        per = 1e6 / self.appended
        return (
            f"  {label} at {start:,}: {self.appended:,} appended, {self.rate_over(self.appended):,.0f}/s; main thread "
            f"{self.main_cpu * per:,.1f} us CPU/entry, other threads {self.others_cpu * per:,.1f}; "
            f"load {os.getloadavg()[0]:.2f}"
        )


def threads_pair(keep: Path, entries: int, baseline: int, pool: ProcessPoolExecutor) -> tuple[float, float]:
    """One pair, SQLite: `entries` appended to a fresh log grown to `baseline`, then to the kept log; the main
    thread's CPU us per entry of each."""
    when = int(time.time()) - 3600
    pair = []
    with tempfile.TemporaryDirectory(prefix="grow-baseline-") as tmp:
        fresh = SQLiteEngine(Path(tmp) / "sqlite")
        asyncio.run(grow_all([Grower(fresh)], baseline, when, pool))
        kept = SQLiteEngine(keep / "sqlite")
        for label, engine in (("fresh log", fresh), ("kept log", kept)):
            grower = ThreadTimedGrower(engine, size=asyncio.run(head_size(engine)))
            start = grower.size
            asyncio.run(grow_all([grower], start + entries, when, pool))
            print(grower.line(label, start), flush=True)
            pair.append(grower.main_cpu / grower.appended * 1e6)
    return pair[0], pair[1]


def size_or_load(keep: Path, entries: int, baseline: int, pairs: int, pool: ProcessPoolExecutor) -> None:
    results = []
    for number in range(pairs):
        print(f"pair {number + 1} of {pairs}", flush=True)
        results.append(threads_pair(keep, entries, baseline, pool))
    higher = sum(kept > fresh for fresh, kept in results)
    ratios = ", ".join(f"{kept / fresh:.2f}" for fresh, kept in results)
    print(f"main thread CPU per entry, kept / fresh: {ratios}; higher at the kept size in {higher} of {pairs} pairs")


@contextlib.contextmanager
def kept_engine(name: str, folder: Path, pg_settings: dict[str, str] | None = None) -> Iterator[Engine]:
    if name == "sqlite":
        if not (folder / "sqlite").exists():
            raise SystemExit(f"{folder / 'sqlite'}: no kept SQLite log (grow it with loadtest.grow --keep)")
        yield SQLiteEngine(folder / "sqlite")
    elif name == "postgresql":
        with PostgresEngine.reopened(folder / "postgresql", cluster_settings=pg_settings) as engine:
            yield engine
    else:
        raise SystemExit(f"unknown engine {name!r}: sqlite or postgresql")


@contextlib.contextmanager
def fresh_engine(name: str, folder: Path, pg_settings: dict[str, str] | None = None) -> Iterator[Engine]:
    if name == "sqlite":
        yield SQLiteEngine(folder / "sqlite")
    else:
        with PostgresEngine.started(folder / "postgresql", cluster_settings=pg_settings) as engine:
            yield engine


async def head_size(engine: Engine) -> int:
    storage = await engine.open()
    try:
        head = await storage.head()
    finally:
        await storage.close()
    return head.size if head else 0


def appended_rate(
    engine: Engine, entries: int, pool: ProcessPoolExecutor, merge_cap: int | None = None
) -> tuple[int, float, float]:
    """(size before, entries/s, CPU us per entry) over `entries` more appended to a log that has entries."""
    grower = Grower(engine, size=asyncio.run(head_size(engine)), merge_cap=merge_cap)
    start = grower.size
    if start == 0:
        raise SystemExit(f"{engine.name}: the kept log is empty")
    # The whole window signed first: its merges run beside the appends, as under a server's sustained load.
    before = engine.server_snapshot()
    with statements_counted(engine, "kept", entries):
        asyncio.run(grow_all([grower], start + entries, int(time.time()) - 3600, pool, sign_ahead=entries))
    print(f"  [{engine.name}] kept log: {describe(before, engine.server_snapshot(), entries)}", flush=True)
    return start, grower.rate_over(entries), grower.cpu_over(entries)


@contextlib.contextmanager
def statements_counted(engine: Engine, which: str, entries: int) -> Iterator[None]:
    """With pg_stat_statements loaded (`--pg-settings shared_preload_libraries=pg_stat_statements`), the
    statements that took PostgreSQL's time over the window, in us per entry: which of them grow with the log."""
    if not (isinstance(engine, PostgresEngine) and engine.cluster.counts_statements()):
        yield
        return
    engine.cluster.reset_statements(engine.database)
    yield
    for cost in engine.cluster.top_statements(engine.database, 6):
        print(f"  [{engine.name}] {which} log: {cost.seconds / entries * 1e6:.1f} us per entry in {cost.line()}")


def fresh_rate(
    engine: Engine, size: int, pool: ProcessPoolExecutor, merge_cap: int | None = None
) -> tuple[float, float]:
    """(entries/s, CPU us per entry) growing a fresh log to `size`."""
    grower = Grower(engine, merge_cap=merge_cap)
    before = engine.server_snapshot()
    with statements_counted(engine, "fresh", size):
        asyncio.run(grow_all([grower], size, int(time.time()) - 3600, pool))
    print(f"  [{engine.name}] fresh log: {describe(before, engine.server_snapshot(), size)}", flush=True)
    return grower.rate_over(size), grower.cpu_over(size)


async def leaf_sample(engine: Engine, size: int, count: int) -> list[bytes]:
    storage = await engine.open()
    try:
        picked = random.Random(size).sample(range(size), min(count, size))
        return await storage.get_hashes([stored_hash_index(0, i) for i in picked])
    finally:
        await storage.close()


def wrk_proofs(engine: Engine, size: int, seconds: float, tmp: Path, start: "ReadStart") -> str:
    """Inclusion proofs by leaf hash of 2,000 random leaves, then /healthz, each `seconds` with wrk, one process
    started for them: ready (its /healthz 200) once it has warmed its reads (logserver/warmup.py), timed."""
    sample = asyncio.run(leaf_sample(engine, size, 2_000))
    start.prepare(engine)
    started = time.monotonic()
    with engine.serve() as server:
        ready = time.monotonic() - started
        proofs, health = proofs_and_health(server, sample, seconds, tmp)
    return (
        f"| {engine.name} | {size:,} | {proofs.rate:,.0f}/s, p50 {proofs.p50_ms:.1f} ms, p99 {proofs.p99_ms:.1f} ms "
        f"({proofs.errors} errors) | {health.rate:,.0f}/s ({proofs.rate / health.rate:.2f}) | "
        f"{'met' if proofs.p99_ms <= 10 else 'NOT met'} | {ready:.1f} s |"
    )


@dataclass(frozen=True)
class ReadStart:
    """How the served process starts: `[server] warm_seconds` (None: the default), and with `cold` the kept log's
    files dropped from the OS page cache first (posix_fadvise DONTNEED on this folder's files alone: what a reboot
    or other jobs leave; the machine's other files are untouched)."""

    warm_seconds: float | None = None
    cold: bool = False

    def prepare(self, engine: Engine) -> None:
        settings = "" if self.warm_seconds is None else f"[server]\nwarm_seconds = {self.warm_seconds}\n"
        if isinstance(engine, PostgresEngine):
            engine.write_settings(settings)
            folder = engine.cluster.directory
        elif isinstance(engine, SQLiteEngine):
            (engine.data / "server.toml").write_text(settings, encoding="utf-8")
            folder = engine.data
        else:
            raise TypeError(f"no kept files known for {engine.name}")
        if self.cold:
            for path in (p for p in folder.rglob("*") if p.is_file()):
                with contextlib.suppress(OSError):  # a file PostgreSQL removed meanwhile
                    fd = os.open(path, os.O_RDONLY)
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                    os.close(fd)


def measure(
    name: str,
    folder: Path,
    entries: int,
    baseline: int,
    pool: ProcessPoolExecutor,
    pg_settings: dict[str, str],
    merge_cap: int | None = None,
) -> str:
    """One engine's row: a fresh log grown to `baseline`, then `entries` appended to the kept log; PostgreSQL's
    clusters both run with `pg_settings`, so the ratio compares sizes, not settings."""
    with (
        tempfile.TemporaryDirectory(prefix="grow-baseline-") as tmp,
        fresh_engine(name, Path(tmp), pg_settings) as engine,
    ):
        base, base_cpu = fresh_rate(engine, baseline, pool, merge_cap)
    print(
        f"  [{name}] fresh log to {baseline:,}: {base:,.0f}/s, {base_cpu:,.1f} us CPU/entry; "
        f"load {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    with kept_engine(name, folder, pg_settings) as engine:
        size, rate, cpu = appended_rate(engine, entries, pool, merge_cap)
    policy = SequencerConfig("", frozenset())
    merges = entries / (policy if merge_cap is None else replace(policy, merge_cap=merge_cap)).merge_batch(size)
    print(
        f"  [{name}] kept log at {size:,}: {rate:,.0f}/s, {cpu:,.1f} us CPU/entry, appended and merged "
        f"(about {merges:.1f} merges of the "
        f"policy's size in the window{'' if merges >= 3 else ': too few, use a larger --entries'}); "
        f"load {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    worse = base / rate
    verdict = "met" if worse <= FLAT_LIMIT else "NOT met"
    return (
        f"| {name} | {base:,.0f}/s over the first {baseline:,} ({base_cpu:,.1f} us CPU/entry) | {rate:,.0f}/s over "
        f"{entries:,} appended at {size:,} ({cpu:,.1f} us CPU/entry) | {worse:.2f}x | {verdict} (limit {FLAT_LIMIT}x) |"
    )


async def all_new(storage: PostgresStorage, leaf_hashes: Sequence[bytes]) -> dict[bytes, int]:
    """`find_merged` for a bound only: what a filter in front of the sequencer's duplicate probe could save at most.
    The answer is right here because every leaf this harness appends is new; a log must always ask its table."""
    return {}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", type=Path, required=True, help="the folder a `loadtest.grow --keep` run left")
    parser.add_argument("--engines", default="sqlite", help="comma-separated: sqlite, postgresql")
    parser.add_argument("--entries", type=parse_sizes, default=[100_000], help="entries appended to each kept log")
    parser.add_argument("--baseline", type=parse_sizes, default=[100_000], help="size of the fresh log")
    parser.add_argument("--wrk-seconds", type=float, default=0.0, help="then proofs by leaf hash with wrk (0: no)")
    parser.add_argument("--reads-only", action="store_true", help="no appends: only the wrk reads of each kept log")
    parser.add_argument("--cold", action="store_true", help="reads: the kept files out of the page cache first")
    parser.add_argument("--warm-seconds", type=float, default=None, help="reads: the server's warm_seconds (0: off)")
    parser.add_argument("--pairs", type=int, default=0, help="SQLite: alternate fresh and kept appends, per thread")
    parser.add_argument(
        "--pg-settings",
        default="",
        help="extra PostgreSQL server settings (fresh and kept, the reads too), e.g. shared_buffers=4GB",
    )
    parser.add_argument("--merge-cap", type=int, default=None, help="SequencerConfig.merge_cap (default its own)")
    parser.add_argument(
        "--without-duplicate-probe",
        action="store_true",
        help="a bound, PostgreSQL: the sequencer's duplicate probe of the lookup table answered at once (never a log)",
    )
    args = parser.parse_args(argv)
    probe = PostgresStorage.find_merged
    if args.without_duplicate_probe:
        PostgresStorage.find_merged = all_new  # type: ignore[method-assign,assignment]
    try:
        run(args)
    finally:
        PostgresStorage.find_merged = probe  # type: ignore[method-assign]


def run(args: argparse.Namespace) -> None:
    names = [name.strip() for name in args.engines.split(",") if name.strip()]
    print("integration at the kept size beside a fresh log, same run")
    for line in machine_info():
        print("  " + line)
    if args.without_duplicate_probe:
        print("  a BOUND: the sequencer's duplicate probe of PostgreSQL's lookup table answered at once (all new)")
    if args.pairs:
        with signing_pool() as pool:
            size_or_load(args.keep, args.entries[-1], args.baseline[-1], args.pairs, pool)
        return
    settings = parse_settings(args.pg_settings)
    if not args.reads_only:
        with signing_pool() as pool:
            print(f"  PostgreSQL clusters (fresh and kept): {settings}")
            rows = [
                measure(name, args.keep, args.entries[-1], args.baseline[-1], pool, settings, args.merge_cap)
                for name in names
            ]
        print("\n| engine | fresh log | kept log | fresh / kept | flat? |\n|---|---|---|---|---|")
        print("\n".join(rows))
    if args.wrk_seconds > 0:
        reads = []
        for name in names:
            with tempfile.TemporaryDirectory() as tmp, kept_engine(name, args.keep, settings) as engine:
                start = ReadStart(args.warm_seconds, args.cold)
                reads.append(wrk_proofs(engine, asyncio.run(head_size(engine)), args.wrk_seconds, Path(tmp), start))
                print(reads[-1], flush=True)
        columns = (
            "engine | entries | proofs by leaf hash, wrk, 1 process | /healthz (ratio) | p99 <= 10 ms? | ready after"
        )
        print(f"\n| {columns} |")
        print("|---|---|---|---|---|---|\n" + "\n".join(reads))


if __name__ == "__main__":
    main()
