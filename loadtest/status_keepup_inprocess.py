"""Does the status index keep up with sequencing, the intake aside? (issue 19, Scale: "the index keeping up with
>= 10,000 entries/s of sequencing"; docs/status-proofs.md §11.)

The parts `tlog-server serve` runs besides HTTP, built by the server's own functions (logserver/cli.py:
`build_parts`, `start_sequencing`, `status_indexer`: the same sequencer, storage, status indexer, configuration
and keys, under uvloop with the server's collector settings), in this process. Pre-signed statements go straight
to the sequencer at a paced rate: no HTTP and no signature workers. What the HTTP mode (status_keepup.
served_phases) adds is the intake, the requests and every statement's signature check; on a 2-core machine those
take the CPU the index needs, so this mode tells the index's own rate from the machine's. The lag is read as the
HTTP mode reads it: the log's size minus the size of the index root status proofs are served at
(`newest_logged`, as logserver/statuslookup.py), and the `/metrics` gauge's value. Prints; asserts nothing.
"""

import asyncio
import contextlib
import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import uvloop

from loadtest.grow import Engine, PostgresEngine, SQLiteEngine, signed, signing_pool
from loadtest.localproc import bytes_written, children
from loadtest.log_bench import DATABASE, claim_database, process_cpu_seconds
from loadtest.looppauses import LoopPauses, StepTimes
from loadtest.pgcluster import StatementCost
from loadtest.schedwait import RunQueueWait, machine_times, waited_between, waits_by_thread
from loadtest.status_keepup import (
    BATCH,
    CATCH_UP_LIMIT,
    IN_FLIGHT,
    SAMPLE_EVERY,
    SETTLE_LIMIT,
    STATUS_SETTINGS,
    Paced,
    Phase,
    Preload,
    Samples,
    Submitted,
    print_load,
    settle_wal,
)
from logserver.cli import build_parts, load_config, start_sequencing
from logserver.cli import status_indexer as make_status_indexer
from logserver.identity import read_keys
from logserver.indexerprocess import IndexerProcess
from logserver.metrics import Metrics
from logserver.opening import database_name, open_storage
from logserver.sequencer import NotSequencingError, PoolFullError, Sequencer, Submission
from logserver.storage import StorageError
from logserver.tasks import cancel_and_wait
from tlogcore.gcpause import freeze_start_up

PROCESS_CPU = "this process (the sequencer, SQLite's threads) and the indexer's; no HTTP, no signature checks"


def served_in_process(engine: Engine, preload: Preload, phases: Sequence[Phase]) -> list[Paced]:
    """status_keepup.Serve: the server's parts in this process, its indexer timed over the preload, then each paced
    phase in turn (each starts once the index covers the previous one)."""
    return uvloop.run(_served(engine, preload, phases))


def kept_log(folder: Path) -> Path:
    """The SQLite log's data directory a `--keep` run left in `folder`; exits with what to do if there is none."""
    data = folder / "sqlite"
    if not (data / DATABASE).is_file():
        raise SystemExit(f"{data / DATABASE}: no log there; grow one first with --preload N --keep {folder}")
    return data


WARM = 20_000  # keep_up_on: the first phase's entries, reported apart (the indexer's first update after a start)


def keep_up_on(folder: Path, rates: Sequence[float], seconds: float, warm: int = WARM) -> list[Paced]:
    """The paced phases on a copy of the SQLite log (its index caught up) a `--keep` run left in `folder`, its
    server's parts started anew on it: first `warm` entries at the first rate, reported apart (the indexer's first
    update after a start loads the top of the index it keeps: at 10^7 that once took 24-33 s, §11 "Forty-first
    round"), then each rate for `seconds`. The copy, made in `folder` and removed after, leaves the kept log as it
    was, so that variants of the server are measured on the same files in turn."""
    source = kept_log(folder)
    with tempfile.TemporaryDirectory(dir=folder) as name, signing_pool() as pool:
        data = Path(name) / "sqlite"
        shutil.copytree(source, data, ignore=shutil.ignore_patterns("*.lock"))  # the kept run's own
        os.sync()  # the copy written back now, not under the phases' first commits
        with contextlib.closing(sqlite3.connect(f"file:{data / DATABASE}?mode=ro", uri=True)) as db:
            (size,) = db.execute("SELECT MAX(idx) + 1 FROM leaves").fetchone()  # a seek, not a count of 10^7
            (documents,) = db.execute("SELECT MAX(idx) + 1 FROM leaves WHERE document_key IS NOT NULL").fetchone()
        when, counts = int(time.time()) - 3600, [warm] + [int(rate * seconds) // BATCH * BATCH for rate in rates]
        signed_all = signed(size, sum(counts), when, pool)  # numbered past every statement the log may hold
        phases, start = [], 0
        for rate, count in zip([rates[0], *rates], counts, strict=True):
            phases.append((rate, [signed_all[i : i + BATCH] for i in range(start, start + count, BATCH)]))
            start += count
        del signed_all
        print(f"sqlite: a copy of the log kept in {folder}, {size:,} entries; a first phase of {warm:,} entries")
        return served_in_process(SQLiteEngine(data, STATUS_SETTINGS), Preload(documents, 0.0, kept=True), phases)


def indexer_processes(indexer: IndexerProcess | None) -> list[int]:
    """The indexer's process and its shards (statusshards.py); none before the indexer's first cycle."""
    pid = indexer.pid if indexer is not None else None
    return [pid, *children(pid)] if pid is not None else []


@dataclass
class IndexingCpu:
    """The CPU seconds of the indexer's process and its shards, summed over every such process seen: one replaced
    during a phase (a failed update) keeps what it had used at its last sample (every SAMPLE_EVERY), instead of
    leaving the sum (which then printed a negative CPU per entry)."""

    indexer: IndexerProcess | None
    seen: dict[int, float] = field(default_factory=dict)  # each process's CPU seconds when last sampled
    written: dict[int, int] = field(default_factory=dict)  # and its bytes passed to write() (SQLite's index file)

    def sample(self) -> float:
        for pid in indexer_processes(self.indexer):
            with contextlib.suppress(OSError):  # gone meanwhile
                self.seen[pid] = process_cpu_seconds(pid)
                self.written[pid] = bytes_written(pid)
        return sum(self.seen.values())


def cpu_parts(engine: Engine, indexing: IndexingCpu | None = None) -> tuple[float, float, float]:
    """CPU seconds of this process, of the database server and of the indexer's process with its shards."""
    return time.process_time(), engine.server_cpu(), indexing.sample() if indexing is not None else 0.0


def party_waits(engine: Engine, indexer: IndexerProcess) -> tuple[dict[int, RunQueueWait], ...]:
    """Each party's threads' waiting for a core so far (schedwait.py): this process, the database server (PostgreSQL's
    processes; SQLite runs in this one) and the indexer's process."""
    cluster = engine.cluster.process_ids() if isinstance(engine, PostgresEngine) else []
    pids = ([os.getpid()], cluster, indexer_processes(indexer))
    return tuple(waits_by_thread(party) for party in pids)


def database_cpu(engine: Engine) -> dict[str, float]:
    """PostgreSQL's CPU seconds by kind of process (its backends, autovacuum, checkpointer...); {} for SQLite."""
    cluster = getattr(engine, "cluster", None)
    return cluster.cpu_by_kind() if cluster is not None else {}


def database_writes(engine: Engine, indexing: IndexingCpu) -> dict[str, int]:
    """PostgreSQL's bytes written so far (pgcluster.PgCluster.write_counters); on SQLite, the bytes passed to
    write() by the indexer's processes (the index file: its WAL, then the copy into the file) as last sampled, and by
    this process (the log's file and its WAL, the key guard's record)."""
    if not isinstance(engine, PostgresEngine):
        return {"the indexer's processes": sum(indexing.written.values()), "this process": bytes_written()}
    return engine.cluster.write_counters(engine.database)


def reset_statements(engine: Engine) -> None:
    """With pg_stat_statements loaded (`--pg-settings shared_preload_libraries=pg_stat_statements`), count each
    statement's time from now."""
    if isinstance(engine, PostgresEngine) and engine.cluster.counts_statements():
        engine.cluster.reset_statements(engine.database)


def top_statements(engine: Engine) -> list[StatementCost]:
    if isinstance(engine, PostgresEngine) and engine.cluster.counts_statements():
        return engine.cluster.top_statements(engine.database)
    return []


def cpu_now(engine: Engine, indexing: IndexingCpu | None = None) -> float:
    return sum(cpu_parts(engine, indexing))


async def _served(engine: Engine, preload: Preload, phases: Sequence[Phase]) -> list[Paced]:
    data, launched = engine.data, time.perf_counter()
    claim_database(data, ["--config", str(data / "server.toml")])  # as the HTTP mode's server start does
    cpu = cpu_now(engine)
    config = load_config(data / "server.toml")
    keys = read_keys(data)
    parts = build_parts(data, config, keys, await open_storage(data, config))
    await start_sequencing(parts, keys, data, database_name(data, config))
    indexer = await make_status_indexer(data, config, keys, parts)
    if indexer is None:
        raise RuntimeError(f"{data / 'server.toml'}: no [status_index] index_interval_ms")
    sequencer = parts.sequencer
    tasks = [asyncio.create_task(sequencer.run()), asyncio.create_task(indexer.run())]
    freeze_start_up()  # as the server's lifespan does
    try:
        preload.ready_seconds = time.perf_counter() - launched
        await covered(sequencer, indexer, preload.entries, CATCH_UP_LIMIT)
        preload.catch_up_seconds = time.perf_counter() - launched
        preload.catch_up_cpu = cpu_now(engine, IndexingCpu(indexer)) - cpu
        print(preload.report(engine.name), flush=True)
        await asyncio.to_thread(settle_wal, engine, preload)
        done = []
        for rate, batches in phases:
            done.append(await paced_phase(engine, sequencer, indexer, parts.metrics, batches, rate))
            print("\n".join(done[-1].report(engine.name)), flush=True)
            print_load("")
        return done
    finally:
        await cancel_and_wait(tasks)
        await indexer.store.close()
        await parts.storage.close()


async def served_size(sequencer: Sequencer, indexer: IndexerProcess) -> int:
    version = await indexer.store.newest_logged(sequencer.size)
    return version.size if version is not None else 0


async def covered(sequencer: Sequencer, indexer: IndexerProcess, target: int, limit: float) -> float:
    """Seconds until the served index root covers entries [0, target) (status_keepup.wait_indexed's rule)."""
    started = time.perf_counter()
    while time.perf_counter() - started < limit:
        if await served_size(sequencer, indexer) >= target:
            return time.perf_counter() - started
        await asyncio.sleep(0.05)
    return float("nan")


async def sample_lag(
    sequencer: Sequencer, indexing: IndexingCpu, metrics: Metrics, samples: Samples, started: float
) -> None:
    indexer = indexing.indexer
    assert indexer is not None
    while True:
        indexing.sample()
        direct, now = sequencer.size - await served_size(sequencer, indexer), time.perf_counter() - started
        samples.direct.append((now, direct))
        if metrics.status_index_lag is not None:
            samples.points.append((now, metrics.status_index_lag))
        await asyncio.sleep(SAMPLE_EVERY)


async def paced_submit(sequencer: Sequencer, batches: Sequence[list[Submission]], rate: float) -> Submitted:
    """Batch k handed to the sequencer at k * len(batch) / rate s (open loop, at most IN_FLIGHT at once), as
    status_keepup.paced_submit POSTs them; a refusal is counted and the next batch goes on."""
    interval, started = len(batches[0]) / rate, time.perf_counter()
    turn, done = iter(range(len(batches))), Submitted()

    async def client() -> None:
        for k in turn:  # one iterator shared by the clients: each batch is sent once
            scheduled = started + k * interval
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -0.1:
                done.late += 1
            sent = time.perf_counter()
            try:
                placed = await sequencer.submit(batches[k])  # answered once durable: the commit's latency
            except (NotSequencingError, PoolFullError, StorageError) as exc:
                done.refused.append(type(exc).__name__)
            else:
                done.took([entry.index for entry in placed], sent, scheduled)

    await asyncio.gather(*(client() for _ in range(IN_FLIGHT)))
    done.seconds = time.perf_counter() - started
    return done


async def paced_phase(
    engine: Engine,
    sequencer: Sequencer,
    indexer: IndexerProcess,
    metrics: Metrics,
    batches: Sequence[list[Submission]],
    rate: float,
) -> Paced:
    samples, started, indexing = Samples(), time.perf_counter(), IndexingCpu(indexer)
    parts: tuple[float, ...] = cpu_parts(engine, indexing)
    kinds, writes = database_cpu(engine), database_writes(engine, indexing)
    await asyncio.to_thread(reset_statements, engine)
    loop_cpu = time.thread_time()  # this coroutine runs on the event loop's thread
    waits, machine = party_waits(engine, indexer), machine_times()
    sampler = asyncio.create_task(sample_lag(sequencer, indexing, metrics, samples, started))
    steps = sequencer_steps(sequencer)
    pauses = LoopPauses()
    ticker = asyncio.create_task(pauses.run())
    try:
        done = await paced_submit(sequencer, batches, rate)
        await cancel_and_wait([ticker])  # the pauses and the steps while submissions were answered
        steps.unwatch()
        settle = await covered(sequencer, indexer, done.end, SETTLE_LIMIT)
        # until the index covers the last entry: its indexing counts
        parts = tuple(after - before for after, before in zip(cpu_parts(engine, indexing), parts, strict=True))
        kinds = {kind: cpu - kinds.get(kind, 0.0) for kind, cpu in database_cpu(engine).items()}
        written = database_writes(engine, indexing)
        writes = {what: count - writes[what] for what, count in written.items() if what in writes}
        statements = await asyncio.to_thread(top_statements, engine)
        loop_cpu = time.thread_time() - loop_cpu
        waited = tuple(waited_between(*party) for party in zip(waits, party_waits(engine, indexer), strict=True))
        machine = {state: seconds - machine[state] for state, seconds in machine_times().items()}
    finally:
        steps.unwatch()
        await cancel_and_wait([sampler, ticker])
    cpu = (sum(parts), PROCESS_CPU, loop_cpu, parts, kinds)
    return Paced(rate, done, samples, settle, *cpu, writes, waited, machine, statements, pauses, steps)


SEQUENCER_STEPS = (  # (owner, method, name): what a batch's answer waits for after its signature, in order
    ("key_guard", "before_publish", "key guard (the signed size, fsync'd)"),
    ("storage", "commit_batch", "commit (fsync'd)"),
    ("key_guard", "committed", "key guard (committed)"),
)


def sequencer_steps(sequencer: Sequencer) -> StepTimes:
    """The sequencer's steps timed from now (looppauses.StepTimes), until the steps' `unwatch`."""
    steps = StepTimes()
    for owner, method, name in SEQUENCER_STEPS:
        steps.watch(getattr(sequencer, owner), method, name)
    return steps
