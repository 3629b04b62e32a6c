"""Growth driver: grows a log to 10^7 entries and reports how it behaves at 10^5, 10^6 and 10^7.

    .venv/bin/python -m loadtest.grow                                  (10^5, 10^6, 10^7 on SQLite)
    .venv/bin/python -m loadtest.grow --sizes 1e5,1e6 --engines sqlite,postgresql
    .venv/bin/python -m loadtest.grow --quick                          (2*10^4 and 10^5, 3-second phases)
    .venv/bin/python -m loadtest.grow --sizes 1e5,1e6,1e7 --engines sqlite,postgresql --keep DIR \
        --pg-settings shared_buffers=4GB,max_wal_size=16GB       (both to 10^7, kept for grow_resume: ~17 min)

For each storage engine, side by side, and at each size:
- integration rate: entries/s durably appended by the real `Sequencer` in-process (batches of 10,000, one
  fsync'd commit each), over the last entries before the size was reached (`rate_window`: four of the merge
  policy's merges, 2*10^6 at 10^7), and over the whole stage. Appended AND merged: each chunk is timed until the
  sequencer's merger has moved all of its lookup keys into the lookup tables (storage contract 6), so the merge
  work counts wherever the merge policy puts it, the merger's wait for an idle log (merge_idle, 0.2 s) included.
  The first stage's rate is the median over three fresh logs (`fresh_rates`: its window lasts ~1.5 s at 10^5),
  each printed; when the run has more than one size, three more are grown after its last stage and printed with
  the ratio against them, beside the goals' (the machine's speed drifts over a run);
  after each stage, the work in its window (`loadtest/serverwindow.py`: CPU per entry by process, PostgreSQL's
  checkpoints, vacuums and WAL);
- inclusion proofs by leaf hash and proof bundles (`GET /api/v1/bundle/<i>`) over HTTP from a real
  `tlog-server serve` on that database: requests/s and latency p50/p99 (16 keep-alive clients);
- level-0 hash tiles read over HTTP, random full tiles across the tree: reads/s;
- bytes on disk per entry, and the server's RSS after the reads (and of it the anonymous pages: its heap).

Every leaf is a distinct `issue` statement, really signed by the registered issuer key (the server would accept
each one): statements are signed on every core, never during timed appends. A stage is signed in chunks of
100,000 between timed appends up to its rate window; the window is signed whole before it (`stage_plan`), so the
window's merges run beside its appends, as a server's do under sustained load (2 GB of statements at 10^7).
Prints figures as it goes (flushed, so the output can be followed in a log file) and asserts nothing.
"""

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import random
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

from loadtest.grow_report import Figures, print_figures, print_fresh_after, print_goals, print_table
from loadtest.log_bench import (
    DATABASE,
    PROOF_CLIENTS,
    Job,
    Load,
    ServerProcess,
    append_timed,
    disk_bytes,
    issue_chunk,
    issuer_add,
    machine_info,
    measured,
    prepare_data,
    proof_jobs,
    raw_closed_loop,
    running_sequencer,
    running_server,
)
from loadtest.merge_bench import parse_settings
from loadtest.pgcluster import PgCluster, reopen_cluster, start_cluster
from loadtest.serverwindow import ServerSnapshot, describe, snapshot
from logserver.postgres import PostgresStorage
from logserver.sequencer import Sequencer, Submission
from logserver.sequencing import SequencerConfig
from logserver.sqlite import SQLiteStorage
from logserver.storage import Storage
from tlogcore.gcpause import freeze_start_up
from tlogcore.tiles import TILE_WIDTH, Tile

SIGN_CHUNK = 100_000  # statements signed (on every core) before each timed stretch of appends
SIGN_JOB = 10_000  # statements per worker job
APPEND_BATCH = 10_000  # entries per commit, as in log_bench's big trees
RATE_WINDOW = 100_000  # the integration rate "at" a size: over this many entries before it (at least, rate_window)
MERGES_PER_WINDOW = 4  # rate_window: the policy's merges in the window the rate "at" a size is taken over
APPEND_TIMEOUT = 600.0  # seconds for one chunk: a sequencer that stopped must not hang the run
CLUSTER_DIR = "cluster-dir"  # with --keep: the name of the kept PostgreSQL cluster's folder inside the engine's
SAMPLE_EVERY = 97  # keep every 97th leaf hash for the proof requests (spread over the whole tree)
FRESH_LOGS = 3  # the first stage's rate is the median over this many fresh logs: its window is short (1.5 s at 10^5)
FRESH_LOGS_AFTER = 3  # and as many more after the last stage, printed: the machine's speed drifts over a run
MERGE_POLL = 0.005  # seconds between looks at the lookup watermark while the merge catches up
# The harness's own pauses (signing the next chunk, the read phases) must not look like an idle log: the sequencer
# would merge whatever tail waits (SequencerConfig.merge_idle), 100,000 leaves per chunk where sustained load merges
# the policy's share (500,000 at 10^7), at ~3x the CPU per key (lane 5a: 13.6 against 4.8 us, plus the checkpoint).
# So idle merges are off while a stage grows, and the tail is merged, timed, once the stage reaches its size.
HARNESS_MERGE_IDLE = 86_400.0


class Engine(Protocol):
    """A storage engine the driver can grow a log in and serve it from."""

    name: str
    data: Path  # the served log's data directory (keys, server.toml; SQLite's database)

    async def open(self) -> Storage: ...

    def serve(self) -> contextlib.AbstractContextManager[ServerProcess]: ...

    def disk_bytes(self) -> int: ...

    def server_cpu(self) -> float: ...

    def server_snapshot(self) -> ServerSnapshot: ...


@dataclass
class SQLiteEngine:
    data: Path
    server_settings: str = ""  # TOML for the served log's config, e.g. a [server] section
    name: str = "sqlite"

    def __post_init__(self) -> None:
        prepare_data(self.data)
        (self.data / "server.toml").write_text(self.server_settings, encoding="utf-8")

    async def open(self) -> Storage:
        return await SQLiteStorage.open(self.data / DATABASE)

    def serve(self) -> contextlib.AbstractContextManager[ServerProcess]:
        return running_server(self.data, ["--config", str(self.data / "server.toml")])

    def disk_bytes(self) -> int:
        return disk_bytes(self.data / DATABASE)

    def server_cpu(self) -> float:
        return 0.0  # SQLite runs in this process: its CPU is this process's

    def server_snapshot(self) -> ServerSnapshot:
        return snapshot(None)


@dataclass
class PostgresEngine:
    """A throwaway PostgreSQL cluster on 127.0.0.1 (loadtest/pgcluster.py), served with storage.engine = postgresql."""

    data: Path
    cluster: PgCluster
    database: str = "grow"
    name: str = "postgresql"

    @classmethod
    @contextlib.contextmanager
    def started(
        cls, data: Path, server_settings: str = "", keep: bool = False, cluster_settings: dict[str, str] | None = None
    ) -> Iterator["PostgresEngine"]:
        """A new cluster (with `cluster_settings`: PostgreSQL's own, e.g. shared_buffers); with `keep`, its files
        stay beside `data` (named in CLUSTER_DIR) for `loadtest.grow_resume` (not inside: `data` is private to root,
        the cluster runs as another user)."""
        prepare_data(data)
        cluster = start_cluster(data.parent if keep else None, cluster_settings)
        try:
            if keep:
                (data / CLUSTER_DIR).write_text(cluster.directory.name, encoding="utf-8")
            engine = cls(data, cluster)
            cluster.create_database(engine.database)
            engine.write_settings(server_settings)
            print(f"  [postgresql] {cluster.settings_line()}", flush=True)
            yield engine
        finally:
            cluster.stop(remove=not keep)

    @classmethod
    @contextlib.contextmanager
    def reopened(
        cls, data: Path, server_settings: str = "", cluster_settings: dict[str, str] | None = None
    ) -> Iterator["PostgresEngine"]:
        """The cluster a `keep` run left in `data`, started again on a new port (with `cluster_settings`)."""
        kept = data / CLUSTER_DIR
        if not kept.exists():
            raise RuntimeError(f"{data}: no kept PostgreSQL cluster (grow it with --keep)")
        cluster = reopen_cluster(data.parent / kept.read_text(encoding="utf-8").strip(), cluster_settings)
        try:
            engine = cls(data, cluster)
            engine.write_settings(server_settings)
            print(f"  [postgresql] kept cluster: {cluster.settings_line()}", flush=True)
            yield engine
        finally:
            cluster.stop(remove=False)

    def write_settings(self, server_settings: str) -> None:
        (self.data / "server.toml").write_text(
            f'[storage]\nengine = "postgresql"\npostgresql_dsn = "{self.dsn}"\n\n{server_settings}',
            encoding="utf-8",
        )

    @property
    def dsn(self) -> str:
        return self.cluster.dsn(self.database)

    async def open(self) -> Storage:
        return await PostgresStorage.open(self.dsn)

    def serve(self) -> contextlib.AbstractContextManager[ServerProcess]:
        return running_server(self.data, ["--config", str(self.data / "server.toml")])

    def server_cpu(self) -> float:
        return self.cluster.cpu_seconds()

    def server_snapshot(self) -> ServerSnapshot:
        return snapshot(self.cluster, self.database)

    def disk_bytes(self) -> int:
        """The database's tables and indexes (pg_database_size; WAL not counted, as SQLite's is checkpointed)."""
        self.cluster.psql("CHECKPOINT")
        return int(self.cluster.psql(f"SELECT pg_database_size('{self.database}')"))


@dataclass
class Grower:
    """One engine's log, appended to through the real Sequencer; remembers what it needs for the reads."""

    engine: Engine
    size: int = 0
    sample: list[bytes] = field(default_factory=list)  # leaf hashes of every SAMPLE_EVERY-th entry
    seconds: list[tuple[int, float]] = field(default_factory=list)  # (entries, seconds) per commit
    cpu: list[tuple[int, float]] = field(default_factory=list)  # (entries, CPU seconds) per chunk, merge included
    merge_share: int | None = None  # SequencerConfig.merge_share for its sequencer (None: the default)
    merge_cap: int | None = None  # SequencerConfig.merge_cap for its sequencer (None: the default)
    last_chunk: tuple[int, str] = (0, "")  # the last chunk's entries, and serverwindow.describe over it
    _chunk_start: ServerSnapshot | None = None

    async def append(self, sequencer: Sequencer, chunk: Sequence[Submission]) -> None:
        """Append `chunk` and wait until no merge the policy calls for is due or running: that wait counts in the
        chunk's last batch (HARNESS_MERGE_IDLE; `settle` merges the rest at the end of a stage)."""
        self._chunk_start = self.engine.server_snapshot()
        cpu = time.process_time() + self.engine.server_cpu()
        per_batch = await asyncio.wait_for(append_timed(sequencer, chunk, APPEND_BATCH), APPEND_TIMEOUT)
        started = time.perf_counter()
        await asyncio.wait_for(policy_merged(sequencer), APPEND_TIMEOUT)
        per_batch[-1] += time.perf_counter() - started
        self.cpu.append((len(chunk), time.process_time() + self.engine.server_cpu() - cpu))
        lengths = [min(APPEND_BATCH, len(chunk) - i) for i in range(0, len(chunk), APPEND_BATCH)]
        self.seconds += zip(lengths, per_batch, strict=True)
        first_sampled = (SAMPLE_EVERY - self.size % SAMPLE_EVERY) % SAMPLE_EVERY
        self.sample += [s.leaf_hash for s in chunk[first_sampled::SAMPLE_EVERY]]
        self.size += len(chunk)

    async def settle(self, sequencer: Sequencer) -> None:
        """At the end of a stage: the log goes idle, the merger merges the tail; counted in the last chunk."""
        cpu, started = time.process_time() + self.engine.server_cpu(), time.perf_counter()
        sequencer.config.merge_idle = SequencerConfig.merge_idle
        try:
            await asyncio.wait_for(merged_up(sequencer), APPEND_TIMEOUT)
        finally:
            sequencer.config.merge_idle = HARNESS_MERGE_IDLE
        if self.seconds and self.cpu:
            self.seconds[-1] = (self.seconds[-1][0], self.seconds[-1][1] + time.perf_counter() - started)
            spent = time.process_time() + self.engine.server_cpu() - cpu
            self.cpu[-1] = (self.cpu[-1][0], self.cpu[-1][1] + spent)

    def describe_last_chunk(self) -> None:
        """`last_chunk`, from the snapshot its append began with to now (after `settle`). With the sequencer's
        connections still open, so their CPU shows as client backends, apart from autovacuum's; PostgreSQL's WAL
        statistics then lag by at most about a second's worth (a busy backend sends them once a second)."""
        if self._chunk_start is not None and self.cpu:
            entries = self.cpu[-1][0]
            self.last_chunk = (entries, describe(self._chunk_start, self.engine.server_snapshot(), entries))

    def cpu_over(self, entries: int) -> float:
        """CPU microseconds per entry over (about) the last `entries`: this process (the sequencer; SQLite's writer
        and merger threads) plus the database server's processes (PostgreSQL), merges included."""
        done, cpu = 0, 0.0
        for count, spent in reversed(self.cpu):
            if done >= entries:
                break
            done, cpu = done + count, cpu + spent
        return cpu / done * 1e6 if done else float("nan")

    def rate_over(self, entries: int) -> float:
        """Entries/s over (about) the last `entries` entries appended."""
        done, seconds = 0, 0.0
        for count, spent in reversed(self.seconds):
            if done >= entries:
                break
            done, seconds = done + count, seconds + spent
        return done / seconds if seconds else float("nan")


def rate_window(size: int) -> int:
    """Entries the rate "at" `size` is taken over: four of the policy's merges (2*10^6 at 10^7, as grow_resume's
    windows), so the window holds the merges' cost in its share. Its last merge runs alone once the appends end (the
    window is timed until merged): with two merges per window that edge was half the window's merge work."""
    return max(RATE_WINDOW, MERGES_PER_WINDOW * SequencerConfig("", frozenset()).merge_batch(size))


def stage_plan(start: int, size: int) -> list[tuple[int, int]]:
    """How a stage from `start` entries grows to `size`: (target, statements signed ahead) for each `grow_all`.
    First to where the rate window begins, in chunks of SIGN_CHUNK signed between timed appends; then the window
    itself signed whole before it, so the policy's merges run on the other core beside the appends, as under a
    server's sustained load (as grow_resume's windows). Signed in chunks, each merge a chunk started runs alone
    while the harness waits for it before signing the next: its whole wall time added to the appends'."""
    window_start = max(start, size - rate_window(size))
    plan = [(window_start, SIGN_CHUNK)] if window_start > max(start, 1) else []
    return plan + [(size, max(1, size - max(window_start, 1)))]


async def policy_merged(sequencer: Sequencer) -> None:
    """Until the unmerged tail is below what the merge policy waits for (SequencerConfig.merge_batch): a merge the
    policy started during a chunk is finished, its checkpoints included, and counted in that chunk."""
    while sequencer.size - sequencer.merged_through >= sequencer.config.merge_batch(sequencer.merged_through):
        await asyncio.sleep(MERGE_POLL)


async def merged_up(sequencer: Sequencer) -> None:
    """Until the sequencer's merger has moved every committed leaf into the lookup tables (`Grower.settle`: without
    it a merge policy that leaves more leaves unmerged would look faster). It includes the merger's wait for an idle
    log (merge_idle)."""
    while sequencer.merged_through < sequencer.size:  # the merge's checkpoints done too, not just its commit
        await asyncio.sleep(MERGE_POLL)


def signed(first: int, count: int, when: int, pool: ProcessPoolExecutor) -> list[Submission]:
    """Signed `issue` statements number first..first+count, signed on every core."""
    end = first + count
    jobs = [(start, min(SIGN_JOB, end - start), when) for start in range(first, end, SIGN_JOB)]
    return [s for part in pool.map(issue_chunk, jobs) for s in part]


async def grow_all(
    growers: Sequence[Grower], target: int, when: int, pool: ProcessPoolExecutor, sign_ahead: int = SIGN_CHUNK
) -> None:
    """Grow every engine's log to `target`: each chunk of `sign_ahead` statements is signed once, then appended to
    each engine in turn, so the engines are measured on the same statements under the same machine load. A chunk
    that spans a whole measured window (grow_resume) lets the policy's merges run beside the appends, as under a
    server's sustained load; between chunks the harness signs, and a merge still running then is waited for."""
    async with contextlib.AsyncExitStack() as stack:
        sequencers = []
        for grower in growers:
            storage = await grower.engine.open()
            stack.push_async_callback(storage.close)
            policy = {"merge_share": grower.merge_share, "merge_cap": grower.merge_cap}
            share = {name: value for name, value in policy.items() if value is not None}
            running = running_sequencer(storage, APPEND_BATCH, merge_idle=HARNESS_MERGE_IDLE, **share)
            sequencers.append(await stack.enter_async_context(running))
        size = growers[0].size
        if size == 0:
            for grower, sequencer in zip(growers, sequencers, strict=True):
                await sequencer.submit([issuer_add(when)])  # leaf 0: the issuer is registered
                grower.size = 1
            size = 1
        while size < target:
            # statement n is leaf n + 1 (leaf 0 is the registry statement), so every document is distinct
            chunk = signed(size - 1, min(sign_ahead, target - size), when, pool)
            # The server's collector settings, and the chunk out of the collector's sight: a full collection walking
            # the harness's own 100,000 signed statements is a cost the server never pays (log_bench does the same).
            freeze_start_up()
            progress = []
            for grower, sequencer in zip(growers, sequencers, strict=True):
                try:
                    await grower.append(sequencer, chunk)
                except TimeoutError:
                    raise RuntimeError(
                        f"{grower.engine.name}: {len(chunk):,} entries not sequenced in {APPEND_TIMEOUT} s "
                        f"(sequencer: {sequencer.not_sequencing or 'sequencing'})"
                    ) from None
                progress.append(
                    f"{grower.engine.name} {grower.rate_over(len(chunk)):,.0f}/s "
                    f"{grower.cpu_over(len(chunk)):,.1f} us CPU/entry"
                )
            size += len(chunk)
            # the trend between the stages, to tell a steady fall from one slow stretch (load average beside it)
            print(f"    {size:,}: {', '.join(progress)}; load {os.getloadavg()[0]:.1f}", flush=True)
        for grower, sequencer in zip(growers, sequencers, strict=True):
            await grower.settle(sequencer)  # the tail the stage left, merged and timed (HARNESS_MERGE_IDLE)
            grower.describe_last_chunk()


# --- reads over HTTP -------------------------------------------------------------


def bundle_jobs(size: int, seed: int) -> Iterator[Job]:
    rng = random.Random(seed)
    while True:
        yield ("GET", f"/api/v1/bundle/{rng.randrange(size)}", b"")


def tile_jobs(size: int, seed: int) -> Iterator[Job]:
    """Random full level-0 hash tiles from anywhere in the tree (what a monitor or a CDN miss asks for)."""
    rng, full = random.Random(seed), max(1, size // TILE_WIDTH)
    while True:
        yield ("GET", "/" + Tile(0, rng.randrange(full)).path, b"")


def measure(engine: Engine, grower: Grower, stage_seconds: float, stage_entries: int, seconds: float) -> Figures:
    disk = engine.disk_bytes()
    with engine.serve() as server:
        rss_start, rss_anon_start = server.rss_bytes(), server.rss_anon_bytes()

        def load(jobs: Iterator[Job]) -> Load:
            return measured(server, raw_closed_loop(server.port, PROOF_CLIENTS, seconds, jobs))

        proofs = load(proof_jobs(grower.sample, grower.size))
        bundles = load(bundle_jobs(grower.size, grower.size + 1))
        tiles = load(tile_jobs(grower.size, grower.size + 2))
        rss, rss_anon = server.rss_bytes(), server.rss_anon_bytes()
    return Figures(
        engine.name,
        grower.size,
        grower.rate_over(rate_window(grower.size)),
        min(rate_window(grower.size), grower.size),
        stage_entries / stage_seconds,
        proofs,
        bundles,
        tiles,
        disk / grower.size,
        rss,
        rss_start,
        rss_anon,
        rss_anon_start,
        grower.last_chunk,
    )


# --- main ----------------------------------------------------------------------------


def parse_sizes(text: str) -> list[int]:
    sizes = sorted({int(float(part)) for part in text.split(",") if part.strip()})
    if not sizes or sizes[0] < 2 * TILE_WIDTH:
        raise argparse.ArgumentTypeError(f"sizes must be at least {2 * TILE_WIDTH}: {text!r}")
    return sizes


def make_engine(
    name: str,
    tmp: Path,
    stack: contextlib.ExitStack,
    server_settings: str,
    keep: bool = False,
    cluster_settings: dict[str, str] | None = None,
) -> Engine:
    if name == "sqlite":
        return SQLiteEngine(tmp / "sqlite", server_settings)
    if name == "postgresql":
        return stack.enter_context(PostgresEngine.started(tmp / "postgresql", server_settings, keep, cluster_settings))
    raise argparse.ArgumentTypeError(f"unknown engine {name!r}: sqlite or postgresql")


@contextlib.contextmanager
def fresh_twin(engine: Engine, number: int) -> Iterator[Engine]:
    """Another empty log on `engine`'s engine (SQLite: a folder beside its own; PostgreSQL: a database in the same
    cluster), removed afterwards."""
    data = engine.data.with_name(f"{engine.data.name}-fresh{number}")
    if not isinstance(engine, PostgresEngine):
        try:
            yield SQLiteEngine(data)
        finally:
            shutil.rmtree(data, ignore_errors=True)
        return
    twin = PostgresEngine(data, engine.cluster, f"{engine.database}_fresh{number}")
    prepare_data(data)
    engine.cluster.create_database(twin.database)
    twin.write_settings("")
    try:
        yield twin
    finally:
        engine.cluster.psql(f'DROP DATABASE IF EXISTS "{twin.database}"')
        shutil.rmtree(data, ignore_errors=True)


def fresh_rates(
    engines: Sequence[Engine], size: int, when: int, pool: ProcessPoolExecutor, numbers: range
) -> list[list[float]]:
    """Each engine's rate over the first `size` entries of one more fresh log per number in `numbers`, grown as the
    first stage is (`stage_plan`). A fresh stage's window lasts about 1.5 s at 10^5: one such window swung 59,267 to
    76,025/s between runs on one morning, and the fresh rate rose through the morning while the rate at 10^7 held
    within 3 %, so the ratio's verdict was the fresh window's (BENCHMARKS.md "Fiftieth round"). Hence several,
    some grown as the run starts and some after its last stage."""
    rates: list[list[float]] = [[] for _ in engines]
    for number in numbers:
        with contextlib.ExitStack() as stack:
            twins = [Grower(stack.enter_context(fresh_twin(engine, number))) for engine in engines]
            for target, sign_ahead in stage_plan(0, size):
                asyncio.run(grow_all(twins, target, when, pool, sign_ahead))
            for mine, twin in zip(rates, twins, strict=True):
                mine.append(twin.rate_over(rate_window(size)))
    return rates


def with_fresh_rates(figures: Figures, others: Sequence[float]) -> Figures:
    """The first stage's figures, its rate the median of its own fresh log's and `others`' (all kept, printed)."""
    every = (figures.rate_at_size, *others)
    return replace(figures, rate_at_size=statistics.median(every), fresh_rates=every)


def with_fresh_rates_after(figures: Figures, after: Sequence[float]) -> Figures:
    """The first stage's figures with the rates of the fresh logs grown again after the last stage. Printed beside
    the goals' ratio, not part of it: right after a stage of 10^7 fresh logs ran 17-27 % slower than at the run's
    start, each on less CPU, so they waited on something the start did not (BENCHMARKS.md "Fifty-first round")."""
    return replace(figures, fresh_rates_after=tuple(after))


def signing_pool() -> ProcessPoolExecutor:
    # forkserver, not fork: a forked worker would inherit the SQLite sequencer lock's file descriptor (a flock),
    # and keep the lease held after the in-process sequencer closes, so no server could sequence afterwards
    return ProcessPoolExecutor(os.cpu_count() or 1, mp_context=multiprocessing.get_context("forkserver"))


def run(
    engine_names: Sequence[str],
    sizes: Sequence[int],
    seconds: float,
    tmp: Path,
    server_settings: str = "",
    keep: bool = False,
    merge_share: int | None = None,
    pg_settings: dict[str, str] | None = None,
) -> list[Figures]:
    when = int(time.time()) - 3600
    figures: list[Figures] = []
    with contextlib.ExitStack() as stack, signing_pool() as pool:
        growers = [
            Grower(make_engine(name, tmp, stack, server_settings, keep, pg_settings), merge_share=merge_share)
            for name in engine_names
        ]
        for size in sizes:
            before = [(g.size, sum(s for _, s in g.seconds)) for g in growers]
            for target, sign_ahead in stage_plan(growers[0].size, size):
                asyncio.run(grow_all(growers, target, when, pool, sign_ahead))
            first = before[0][0] == 0
            numbers = range(1, FRESH_LOGS)
            others = fresh_rates([g.engine for g in growers], size, when, pool, numbers) if first else None
            for engine, (grower, (size_before, seconds_before)) in enumerate(zip(growers, before, strict=True)):
                stage_seconds = sum(s for _, s in grower.seconds) - seconds_before
                figure = measure(grower.engine, grower, stage_seconds, grower.size - size_before, seconds)
                figures.append(with_fresh_rates(figure, others[engine]) if others is not None else figure)
                print_figures(figures[-1])
        if len(sizes) > 1 and figures[0].fresh_rates:
            numbers = range(FRESH_LOGS, FRESH_LOGS + FRESH_LOGS_AFTER)
            after = fresh_rates([g.engine for g in growers], sizes[0], when, pool, numbers)
            for engine, rates in enumerate(after):  # the first stage's figures come first, one per engine
                figures[engine] = with_fresh_rates_after(figures[engine], rates)
                print_fresh_after(figures[engine], figures[-len(growers) + engine])
    return figures


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=parse_sizes, default=None, help="comma-separated, e.g. 1e5,1e6,1e7")
    parser.add_argument("--engines", default="sqlite", help="comma-separated: sqlite, postgresql")
    parser.add_argument("--seconds", type=float, default=None, help="length of each HTTP read phase (default 10)")
    parser.add_argument("--quick", action="store_true", help="sizes 2e4,1e5 and 3-second read phases")
    parser.add_argument(
        "--merge-share",
        type=int,
        default=None,
        help="SequencerConfig.merge_share (default its own; 1000000000: every merge of merge_min, the rule before)",
    )
    parser.add_argument(
        "--keep", type=Path, default=None, help="grow the logs here and keep them, PostgreSQL's cluster too"
    )
    parser.add_argument(
        "--tile-cache-bytes", type=int, default=None, help="the served log's tile_cache_bytes (default: the server's)"
    )
    parser.add_argument(
        "--pg-settings",
        default="",
        help="PostgreSQL server settings beside pgcluster's own, e.g. shared_buffers=4GB,max_wal_size=16GB",
    )
    args = parser.parse_args(argv)
    settings = "" if args.tile_cache_bytes is None else f"[server]\ntile_cache_bytes = {args.tile_cache_bytes}\n"
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the cleanups (PostgreSQL cluster, temp folder)
    sizes = args.sizes or ([20_000, 100_000] if args.quick else [100_000, 1_000_000, 10_000_000])
    seconds = args.seconds or (3.0 if args.quick else 10.0)
    engine_names = [name.strip() for name in args.engines.split(",") if name.strip()]
    began = time.perf_counter()
    print(f"growth driver: sizes {', '.join(f'{s:,}' for s in sizes)}; engines {', '.join(engine_names)}")
    for line in machine_info():
        print("  " + line)
    print(
        f"  statements: distinct `issue` statements, each signed by the registered issuer key, {SIGN_CHUNK:,} at a "
        f"time on every core between timed appends (not timed), each rate window signed whole before it; "
        f"reads: {PROOF_CLIENTS} keep-alive clients, {seconds:g} s per phase",
        flush=True,
    )
    with contextlib.ExitStack() as stack:
        folder = args.keep or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="grow-")))
        folder.mkdir(parents=True, exist_ok=True)
        keep = args.keep is not None
        pg_settings = parse_settings(args.pg_settings)
        figures = run(engine_names, sizes, seconds, folder, settings, keep, args.merge_share, pg_settings)
    print_table(figures)
    print_goals(figures)
    print(f"\ntotal time {time.perf_counter() - began:.0f} s; load average now {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
