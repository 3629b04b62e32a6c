"""The growth driver's report (loadtest/grow.py): each stage's figures as it ends, the table, and the goals."""

import os
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from loadtest.log_bench import Load
from loadtest.quantiles import percentile


@dataclass
class Figures:
    engine: str
    size: int
    rate_at_size: float  # entries/s over the last `window` entries
    window: int  # grow.rate_window(size), at most the size
    rate_stage: float  # entries/s over the whole stage
    proofs: Load
    bundles: Load
    tiles: Load
    disk_per_entry: float
    rss: int
    rss_start: int
    rss_anon: int  # of them anonymous (ServerProcess.rss_anon_bytes): the heap, without the mapped file pages
    rss_anon_start: int
    last_chunk: tuple[int, str] = (0, "")  # the stage's last chunk (its rate window): entries, and the work in it
    fresh_rates: tuple[float, ...] = ()  # the first stage: its own fresh log's rate and the others' (grow.FRESH_LOGS)
    fresh_rates_after: tuple[float, ...] = ()  # the fresh logs grown after the last stage (printed, not a goal)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def latency(load: Load) -> str:
    return f"{ms(percentile(load.latencies, 0.5))} / {ms(percentile(load.latencies, 0.99))}"


def failures(load: Load) -> str:
    bad = load.requests - load.ok
    return f" ({bad} non-200: {dict(load.statuses)})" if bad else ""


def print_fresh_after(first: Figures, last: Figures) -> None:
    """The first size's fresh logs grown again after the last stage, and the ratio of their median to the last
    size's rate, beside the goals' ratio (the median of those grown as the run started)."""
    after = " / ".join(f"{rate:,.0f}" for rate in first.fresh_rates_after)
    median = statistics.median(first.fresh_rates_after)
    print(
        f"  [{first.engine}] integration at {first.size:,}: {len(first.fresh_rates_after)} fresh logs again after the "
        f"last stage: {after}/s, median {median:,.0f}/s: {median / last.rate_at_size:.2f}x the rate at {last.size:,} "
        f"(the goal's ratio, from the {len(first.fresh_rates)} as the run started: "
        f"{first.rate_at_size / last.rate_at_size:.2f}x)",
        flush=True,
    )


def print_figures(f: Figures) -> None:
    print(
        f"  [{f.engine}] size {f.size:,}: integration {f.rate_at_size:,.0f}/s over the last {f.window:,} "
        f"({f.rate_stage:,.0f}/s over the stage); proofs {f.proofs.rate:,.0f}/s p50/p99 {latency(f.proofs)} ms"
        f"{failures(f.proofs)}; bundles {f.bundles.rate:,.0f}/s p50/p99 {latency(f.bundles)} ms{failures(f.bundles)}; "
        f"tiles {f.tiles.rate:,.0f}/s{failures(f.tiles)}; disk {f.disk_per_entry:,.0f} B/entry; "
        f"RSS {f.rss_start / 2**20:,.0f} -> {f.rss / 2**20:,.0f} MiB (anonymous {f.rss_anon_start / 2**20:,.0f} -> "
        f"{f.rss_anon / 2**20:,.0f}); load average {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    if f.fresh_rates:  # rate_at_size is their median
        every = " / ".join(f"{rate:,.0f}" for rate in f.fresh_rates)
        print(f"  [{f.engine}] integration at {f.size:,}: the median of {len(f.fresh_rates)} fresh logs: {every}/s")
    entries, work = f.last_chunk
    if work:  # what fell inside the window: a slow one is told apart by it (loadtest/serverwindow.py)
        print(f"  [{f.engine}] its last {entries:,} appended and merged: {work}", flush=True)


def print_table(figures: Sequence[Figures]) -> None:
    print(
        "\n| engine | entries | integration over its rate window (entries/s) | integration, whole stage | "
        "inclusion by leaf hash /s | p50 / p99 ms | bundles /s | p50 / p99 ms | level-0 tiles /s | "
        "disk B/entry | server RSS MiB (start → after reads; anonymous) |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    for f in figures:
        print(
            f"| {f.engine} | {f.size:,} | {f.rate_at_size:,.0f} | {f.rate_stage:,.0f} | {f.proofs.rate:,.0f} | "
            f"{latency(f.proofs)} | {f.bundles.rate:,.0f} | {latency(f.bundles)} | {f.tiles.rate:,.0f} | "
            f"{f.disk_per_entry:,.0f} | {f.rss_start / 2**20:,.0f} → {f.rss / 2**20:,.0f} "
            f"({f.rss_anon_start / 2**20:,.0f} → {f.rss_anon / 2**20:,.0f}) |"
        )


@dataclass(frozen=True)
class Goal:
    name: str
    value: Callable[[Figures], float]
    higher_is_better: bool
    limit: float = 2.0  # how many times worse the largest size may be than the smallest


GOALS = (
    Goal("integration rate", lambda f: f.rate_at_size, True, limit=1.25),  # issue 20: flat, at most 1.25x lower
    Goal("inclusion proofs/s", lambda f: f.proofs.rate, True),
    Goal("inclusion proof p99", lambda f: percentile(f.proofs.latencies, 0.99), False),
    Goal("bundles/s", lambda f: f.bundles.rate, True),
    Goal("bundle p99", lambda f: percentile(f.bundles.latencies, 0.99), False),
    Goal("tile reads/s", lambda f: f.tiles.rate, True),
    Goal("bytes on disk per entry", lambda f: f.disk_per_entry, False),
    # Anonymous: SQLite's reader maps the log file (logserver/sqlite.py READ_MMAP_BYTES), so its VmRSS counts the
    # page cache's pages of the file it read, up to ~2 GiB at 10^7 (BENCHMARKS.md "Thirty-sixth round").
    Goal("server RSS, anonymous", lambda f: f.rss_anon, False, limit=1.25),  # "flat": within 25%
)


def print_goals(figures: Sequence[Figures]) -> None:
    """Goal: no figure more than 2x worse from the smallest size to the largest; the integration rate and the RSS
    flat (at most 1.25x); PostgreSQL integration >= 50% of SQLite's at each size."""
    print("\nGoals")
    for engine in dict.fromkeys(f.engine for f in figures):
        mine = [f for f in figures if f.engine == engine]
        first, last = mine[0], mine[-1]
        if first is last:
            continue
        for goal in GOALS:
            a, b = goal.value(first), goal.value(last)
            worse = a / b if goal.higher_is_better else b / a
            verdict = "met" if worse <= goal.limit else "NOT met"
            change = f"{worse:.2f}x worse" if worse > 1 else f"not worse ({worse:.2f}x)"
            sizes = f"{first.size:,} -> {last.size:,}"
            print(f"  [{engine}] {goal.name}, {sizes}: {change} (limit {goal.limit}x): {verdict}")
    by_size = {(f.engine, f.size): f for f in figures}
    for f in figures:
        if f.engine == "postgresql" and ("sqlite", f.size) in by_size:
            share = f.rate_at_size / by_size["sqlite", f.size].rate_at_size
            print(
                f"  PostgreSQL integration at {f.size:,}: {share:.0%} of SQLite's (goal >= 50%): "
                f"{'met' if share >= 0.5 else 'NOT met'}"
            )
