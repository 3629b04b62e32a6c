"""What keeping a static tiles directory costs (logserver/static_tiles.py).

    .venv/bin/python -m loadtest.static_tiles_bench            (about 2 minutes on 2 cores)
    .venv/bin/python -m loadtest.static_tiles_bench --quick    (about 30 s)

For each batch size, the same signed statements are sequenced in-process by the real `Sequencer` on
`SQLiteStorage` (one fsync'd commit per batch, as log_bench's integration rate) twice: without a tiles
directory, then with one kept in step exactly as `tlog-server serve` wires it (the sequencer's on_checkpoint
wakes `StaticTiles.run`, which writes in the background: tiles, fsyncs, then the checkpoint). Printed:

- integration rate (entries/s) with and without the directory, and the ratio;
- lag: from a batch's acknowledgement (its commit is durable) to the end of the sync that put a checkpoint
  covering it in the directory (median, p95, max), and how many commits each sync coalesced;
- files and bytes in the directory per entry; the one-shot catch-up (`export-tiles`) rate into an empty
  directory.

Prints figures; asserts nothing. Files go to a temporary folder on the same file system as /tmp.
"""

import argparse
import asyncio
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from loadtest.log_bench import ORIGIN, issuer_add, log_key, make_pool, registry_key
from loadtest.quantiles import percentile
from logserver.sequencer import Sequencer, SequencerConfig, Submission
from logserver.sqlite import SQLiteStorage
from logserver.static_tiles import StaticTiles, SyncResult
from logserver.tasks import cancel_and_wait


@dataclass
class TimedStaticTiles(StaticTiles):
    """The real writer, noting when each sync finished and what size it left in the directory."""

    finished: list[tuple[float, int]] = field(default_factory=list)

    async def sync(self, verify: bool = False) -> SyncResult:
        result = await super().sync(verify)
        if result.checkpoint_written:
            self.finished.append((time.perf_counter(), result.size))
        return result


@dataclass
class Run:
    seconds: float
    cpu: float  # this process's CPU seconds (all threads) while sequencing
    commits: int
    acks: list[tuple[float, int]]  # (time the batch was acknowledged, size after it)
    static: TimedStaticTiles | None


@dataclass(frozen=True)
class Scenario:
    label: str
    batch: int  # statements per submit call
    entries: int
    clients: int = 1  # concurrent submitters
    server_defaults: bool = False  # flush every 100 ms or at 10,000 waiting (tlog-server's defaults)

    def config(self) -> SequencerConfig:
        keys = frozenset([registry_key().verifier().vkey])
        if self.server_defaults:
            return SequencerConfig(ORIGIN, keys)
        # One commit per submit call, at once: the most commits (and syncs) per entry there can be.
        return SequencerConfig(ORIGIN, keys, flush_interval=0.01, max_batch=self.batch, max_pool=2 * self.batch)


async def sequence(db: Path, tiles: Path | None, submissions: Sequence[Submission], scenario: Scenario) -> Run:
    storage = await SQLiteStorage.open(db)
    config = scenario.config()
    static = TimedStaticTiles(storage, tiles, poll_interval=1.0) if tiles is not None else None

    async def on_checkpoint(head: object) -> None:
        if static is not None:
            static.notify()

    sequencer = Sequencer(storage, log_key(), config, on_checkpoint=on_checkpoint if static else None)
    tasks: list[asyncio.Task[None]] = []
    try:
        await sequencer.load()
        if not await sequencer.take_lease():
            raise RuntimeError(f"cannot sequence {db}: {sequencer.not_sequencing}")
        tasks.append(asyncio.create_task(sequencer.run()))
        if static is not None:
            tasks.append(asyncio.create_task(static.run()))
        await sequencer.submit([issuer_add(int(time.time()))])
        acks: list[tuple[float, int]] = []
        batches = iter(range(0, len(submissions), scenario.batch))

        async def client() -> None:
            for start in batches:
                await sequencer.submit(submissions[start : start + scenario.batch])
                acks.append((time.perf_counter(), sequencer.size))

        started, cpu_started = time.perf_counter(), time.process_time()
        await asyncio.gather(*(client() for _ in range(scenario.clients)))
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        acks.sort()
        if static is not None:  # let the directory catch up before stopping, so every lag is measured
            deadline = time.perf_counter() + 60
            while (not static.finished or static.finished[-1][1] < sequencer.size) and time.perf_counter() < deadline:
                await asyncio.sleep(0.01)
        return Run(seconds, cpu, len(sequencer.batch_seconds), acks, static)
    finally:
        await cancel_and_wait(tasks)
        await storage.close()


async def export(db: Path, tiles: Path) -> tuple[float, SyncResult]:
    storage = await SQLiteStorage.open(db)
    try:
        started = time.perf_counter()
        result = await StaticTiles(storage, tiles).sync()
        return time.perf_counter() - started, result
    finally:
        await storage.close()


def lags(run: Run) -> list[float]:
    """Per batch: acknowledgement -> end of the first sync whose checkpoint covers it."""
    assert run.static is not None
    out = []
    finished = run.static.finished
    position = 0
    for acked_at, size in run.acks:
        while position < len(finished) and finished[position][1] < size:
            position += 1
        if position == len(finished):
            break
        out.append(max(0.0, finished[position][0] - acked_at))
    return out


def directory_size(root: Path) -> tuple[int, int]:
    files = [p for p in root.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def scenarios(quick: bool) -> list[Scenario]:
    if quick:
        return [
            Scenario("1 commit per 100", 100, 5_000),
            Scenario("1 commit per 10,000", 10_000, 50_000),
            Scenario("server defaults, 16 clients x 100", 100, 20_000, 16, True),
        ]
    return [
        Scenario("1 commit per 10", 10, 5_000),
        Scenario("1 commit per 100", 100, 20_000),
        Scenario("1 commit per 1,000", 1000, 50_000),
        Scenario("1 commit per 10,000", 10_000, 100_000),
        Scenario("server defaults, 64 clients x 10", 10, 20_000, 64, True),
        Scenario("server defaults, 16 clients x 100", 100, 50_000, 16, True),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer entries, two rounds")
    args = parser.parse_args()
    rounds = 2 if args.quick else 3
    plans = scenarios(args.quick)
    print(f"# static tiles bench: Python {platform.python_version()}, {os.cpu_count()} cores, {platform.machine()}")
    print(f"# {rounds} rounds per row, off and on interleaved; rates: best round; CPU: least per entry")
    pool = make_pool(max(p.entries for p in plans), int(time.time()))
    with tempfile.TemporaryDirectory(prefix="static-tiles-bench-") as tmp_name:
        tmp = Path(tmp_name)
        print(f"# files under {tmp} (fsync on every file, directory and commit)")
        print(
            f"{'scenario':<34} {'entries':>8} {'off e/s':>9} {'on e/s':>9} {'ratio':>6} {'off us/e':>9} "
            f"{'on us/e':>8} {'lag p50':>8} {'lag p95':>8} {'lag max':>8} {'commits/sync':>12} "
            f"{'files/entry':>11} {'bytes/entry':>11} {'export e/s':>10}"
        )
        for row, plan in enumerate(plans):
            entries, count = pool[: plan.entries], plan.entries
            offs, ons = [], []
            for number in range(rounds):
                offs.append(asyncio.run(sequence(tmp / f"off-{row}-{number}.db", None, entries, plan)))
                tiles = tmp / f"tiles-{row}-{number}"
                ons.append(asyncio.run(sequence(tmp / f"on-{row}-{number}.db", tiles, entries, plan)))
            waits = [w for run in ons for w in lags(run)]
            syncs = sum(len(run.static.finished) for run in ons if run.static is not None)
            files, size = directory_size(tmp / f"tiles-{row}-0")
            export_seconds, exported = asyncio.run(export(tmp / f"on-{row}-0.db", tmp / f"export-{row}"))
            off_rate, on_rate = max(count / r.seconds for r in offs), max(count / r.seconds for r in ons)
            off_cpu, on_cpu = min(r.cpu / count for r in offs), min(r.cpu / count for r in ons)
            print(
                f"{plan.label:<34} {count:>8} {off_rate:>9,.0f} {on_rate:>9,.0f} {on_rate / off_rate:>6.2f} "
                f"{off_cpu * 1e6:>9.1f} {on_cpu * 1e6:>8.1f} {percentile(waits, 0.5) * 1000:>6.1f}ms "
                f"{percentile(waits, 0.95) * 1000:>6.1f}ms {max(waits) * 1000:>6.1f}ms "
                f"{sum(r.commits for r in ons) / max(syncs, 1):>12.2f} {files / exported.size:>11.3f} "
                f"{size / exported.size:>11.0f} {exported.size / export_seconds:>10,.0f}",
                flush=True,
            )
            for path in tmp.iterdir():  # keep the temporary folder small
                if path.name.startswith(("off-", "on-", "tiles-", "export-")):
                    shutil.rmtree(path) if path.is_dir() else path.unlink()


if __name__ == "__main__":
    main()
