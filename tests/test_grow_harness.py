"""The growth benchmark's harness (loadtest/grow.py) measures the merges sustained load makes: its own pauses
(signing the next chunk) must not look like an idle log, or the sequencer merges each chunk's short tail, which at
10^7 costs ~3x the CPU per key of the policy's merge (docs/performance.md, "Integration in-process", fifth round)."""

import asyncio
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from loadtest import grow, grow_resume, log_bench
from logserver.postgres import PostgresStorage
from logserver.sequencer import Sequencer, SequencerConfig
from logserver.sqlite import SQLiteStorage
from logserver.storage import Storage
from tests.pg_cluster import PgDatabase


class CountingStorage(SQLiteStorage):
    """The real SQLite storage, remembering how many leaves each merge moved."""

    merges: list[int]

    async def merge_lookups(self, limit: int) -> int:
        moved = await super().merge_lookups(limit)
        if moved:
            self.merges.append(moved)
        return moved


@dataclass
class CountingEngine(grow.SQLiteEngine):
    merges: list[int] = field(default_factory=list)

    async def open(self) -> Storage:
        storage = await CountingStorage.open(self.data / log_bench.DATABASE)
        assert isinstance(storage, CountingStorage)
        storage.merges = self.merges
        return storage


def test_a_stage_merges_at_the_policys_size_not_once_per_signed_chunk(tmp_path: Path) -> None:
    engine = CountingEngine(tmp_path / "sqlite")
    grower = grow.Grower(engine)
    with grow.signing_pool() as pool:
        asyncio.run(grow.grow_all([grower], 3_001, int(time.time()) - 3600, pool, sign_ahead=1_000))  # 3 chunks
    # 3,000 leaves wait, below merge_min (10,000): no merge while the stage grows, one when it ends (timed)
    assert engine.merges == [3_001]
    assert sum(count for count, _ in grower.seconds) == 3_000  # the issuer's leaf 0 is not timed
    assert len(grower.cpu) == 3
    entries, work = grower.last_chunk  # the last chunk, its merge at the stage's end included
    assert entries == 1_000 and re.fullmatch(r"CPU per entry: this process \d+\.\d us", work), work


def test_the_first_stages_rate_is_the_median_of_three_fresh_logs_and_three_more_follow_the_last_stage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A fresh 10^5 lasts ~1.5 s, and one such window swung 59,267-76,025/s between runs (BENCHMARKS.md "Fiftieth
    # round"), and rose through a morning while the rate at 10^7 held: three fresh logs as the run starts (the
    # goal's ratio), three more after its last stage, printed beside it. Later stages are measured once.
    first, second = grow.run(["sqlite"], [1_500, 3_000], 0.2, tmp_path)
    assert len(first.fresh_rates) == grow.FRESH_LOGS == 3 and len(set(first.fresh_rates)) == 3
    assert first.rate_at_size == sorted(first.fresh_rates)[1]
    assert len(first.fresh_rates_after) == grow.FRESH_LOGS_AFTER == 3
    assert len(set(first.fresh_rates + first.fresh_rates_after)) == 6
    assert second.fresh_rates == second.fresh_rates_after == () and second.size == 3_000
    assert not [path for path in tmp_path.iterdir() if "fresh" in path.name]  # the fresh logs removed
    after = sorted(first.fresh_rates_after)[1] / second.rate_at_size
    printed = capsys.readouterr().out
    assert f"3 fresh logs again after the last stage: {first.fresh_rates_after[0]:,.0f} / " in printed
    assert f"{after:.2f}x the rate at 3,000 (the goal's ratio" in printed
    assert f"{first.rate_at_size / second.rate_at_size:.2f}x)" in printed


def test_a_run_of_one_size_grows_no_fresh_log_after_it(tmp_path: Path) -> None:
    (only,) = grow.run(["sqlite"], [1_500], 0.2, tmp_path)
    assert len(only.fresh_rates) == 3 and only.fresh_rates_after == ()
    assert only.rate_at_size == sorted(only.fresh_rates)[1]


def test_a_postgresql_fresh_twin_is_a_database_in_the_same_cluster_dropped_afterwards(
    tmp_path: Path, pg_database: PgDatabase
) -> None:
    cluster = pg_database.cluster
    engine = grow.PostgresEngine(tmp_path / "postgresql", cluster, pg_database.name)
    listed = f"SELECT count(*) FROM pg_database WHERE datname = '{pg_database.name}_fresh2'"
    with grow.fresh_twin(engine, 2) as twin:
        assert isinstance(twin, grow.PostgresEngine) and twin.cluster is cluster
        assert cluster.psql(listed) == "1" and (tmp_path / "postgresql-fresh2" / "server.toml").exists()
    assert cluster.psql(listed) == "0" and not (tmp_path / "postgresql-fresh2").exists()


def test_merged_through_is_the_stored_watermark_at_start_and_follows_each_finished_merge(tmp_path: Path) -> None:
    async def scenario() -> None:
        when = int(time.time()) - 60
        statements = log_bench.issue_chunk((0, 40, when))
        storage = await SQLiteStorage.open(tmp_path / "log.db")
        registry = frozenset([log_bench.registry_key().verifier().vkey])
        config = SequencerConfig(log_bench.ORIGIN, registry, flush_interval=0.01, merge_min=20, merge_idle=3600)
        try:
            async with log_bench.running_sequencer(storage, 100, merge_min=20, merge_idle=3600) as sequencer:
                await sequencer.submit([log_bench.issuer_add(when), *statements[:24]])
                for _ in range(100):  # bounded: 5 s
                    if sequencer.merged_through == 25:
                        break
                    await asyncio.sleep(0.05)
                assert sequencer.merged_through == 25 == await storage.lookup_watermark()
                await sequencer.submit(statements[24:30])  # 6 wait, below merge_min: not merged
            again = Sequencer(storage, log_bench.log_key(), config)
            await again.load()
            assert await again.take_lease()
            assert again.merged_through == 25  # read back at start: a harness waiting on it does not hang
        finally:
            await storage.close()

    asyncio.run(scenario())


def test_growth_runs_start_postgresql_with_the_settings_asked_and_print_what_the_server_reports(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The figures of record name the server settings they ran with (docs/reference.md "PostgreSQL server
    # settings"), as the server reports them, not as asked: the kept log's reads had run on the defaults.
    kept = Path(tempfile.mkdtemp(prefix="grow-kept-"))  # not under pytest's tmp_path: the cluster's user must enter it
    try:
        kept.chmod(0o711)
        keep = ["--keep", str(kept)]
        grow.main(
            [
                "--sizes",
                "512",
                "--engines",
                "postgresql",
                "--seconds",
                "0.3",
                "--pg-settings",
                "max_wal_size=6GB",
                *keep,
            ]
        )
        printed = capsys.readouterr().out
        assert (
            "[postgresql] PostgreSQL server: checkpoint_timeout 15min, max_wal_size 6GB, shared_buffers 128MB"
            in printed
        )
        assert "[postgresql] size 512: integration" in printed
        assert re.search(
            r"\[postgresql\] integration at 512: the median of 3 fresh logs: [0-9,]+ / [0-9,]+ / ", printed
        )
        assert not [path for path in kept.iterdir() if "fresh" in path.name]  # the fresh logs' folders removed
        # what the server did in the window: its processes' CPU and its upkeep (loadtest/serverwindow.py)
        window = re.search(r"\[postgresql\] its last 511 appended and merged: CPU per entry: (.*)", printed)
        assert window and "this process" in window[1], printed  # the backends' few ms: under /proc's 10 ms tick
        assert re.search(r"checkpoints begun \d+ \([0-9.]+ GiB written by checkpoints\); vacuum runs \d+", window[1])
        assert re.search(r"WAL [0-9,]+ B and [0-9.]+ full-page images per entry$", window[1]), window[1]
        assert re.search(r"RSS \d+ -> \d+ MiB \(anonymous \d+ -> \d+\)", printed)  # the heap, apart from mapped files
        reads = ["--reads-only", "--wrk-seconds", "1", "--engines", "postgresql", "--pg-settings", "max_wal_size=7GB"]
        grow_resume.main([*keep, *reads])
        printed = capsys.readouterr().out
        assert (
            "kept cluster: PostgreSQL server: checkpoint_timeout 15min, max_wal_size 7GB, shared_buffers 128MB"
            in printed
        )
        assert "| postgresql | 512 | " in printed
        statements = ["--engines", "postgresql", "--entries", "600", "--baseline", "600"]
        grow_resume.main([*keep, *statements, "--pg-settings", "shared_preload_libraries=pg_stat_statements"])
        printed = capsys.readouterr().out
        for window in ("fresh", "kept"):  # which statements grow with the log (BENCHMARKS.md "Thirty-sixth round")
            assert re.search(rf"\[postgresql\] {window} log: [0-9.]+ us per entry in .*COPY \"leaves\"", printed)
            assert re.search(rf"\[postgresql\] {window} log: CPU per entry: .*this process .*checkpoints", printed)
    finally:
        shutil.rmtree(kept, ignore_errors=True)


def test_the_bound_without_the_duplicate_probe_says_so_and_puts_the_probe_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The bound replaces PostgresStorage.find_merged for the run (right only because a benchmark's leaves are all
    # new); a log in the same process afterwards must ask its table again.
    probe = PostgresStorage.find_merged
    grow_resume.main(["--keep", str(tmp_path), "--reads-only", "--without-duplicate-probe"])
    assert "a BOUND: the sequencer's duplicate probe" in capsys.readouterr().out
    assert PostgresStorage.find_merged is probe


def test_a_stage_signs_its_rate_window_whole_so_the_windows_merges_run_beside_the_appends() -> None:
    # From empty: the issuer's leaf 0, then the whole window of 10^5 signed at once
    assert grow.stage_plan(0, 100_000) == [(100_000, 99_999)]
    # 10^6 (window 4*10^5) and 10^7 (window 2*10^6, four merges of 500,000): chunks up to the window, then the
    # window in one signed chunk
    assert grow.stage_plan(100_000, 1_000_000) == [(600_000, grow.SIGN_CHUNK), (1_000_000, 400_000)]
    assert grow.stage_plan(1_000_000, 10_000_000) == [(8_000_000, grow.SIGN_CHUNK), (10_000_000, 2_000_000)]
    # a stage shorter than its window (--quick: 2*10^4 then 10^5) is one window
    assert grow.stage_plan(20_000, 100_000) == [(100_000, 80_000)]
    for start, size in ((0, 100_000), (100_000, 1_000_000), (20_000, 100_000), (1_000_000, 10_000_000)):
        plan = grow.stage_plan(start, size)
        assert plan[-1][0] == size and plan[-1][1] <= grow.rate_window(size)
