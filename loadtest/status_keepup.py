"""Does the status index keep up with sequencing? (issue 19, Scale: "the index keeping up with >= 10,000 entries/s
of sequencing ... say how far [it lags] and measure it"), measured directly on a real `tlog-server serve`.

The log is preloaded to `preload` entries with the in-process sequencer (loadtest/grow.py: really signed `issue`
statements, batches of 10,000); the server then starts and its own indexer indexes them all (timed: the catch-up
rate). Then pre-signed statements are submitted over HTTP at a paced `rate` (batches of 1,000, scheduled every
1000/rate s, at most IN_FLIGHT requests at once, no inclusion proofs asked) for `seconds`, while the
`tlog_status_index_lag_entries` gauge of /metrics is sampled every SAMPLE_EVERY s. Used by
loadtest/status_http_bench.py (--preload); prints figures and asserts nothing.
"""

import asyncio
import collections
import contextlib
import os
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from loadtest.grow import Engine, Grower, PostgresEngine, grow_all, make_engine, signed, signing_pool
from loadtest.log_bench import ServerProcess, entries_body, process_cpu_seconds
from loadtest.looppauses import LoopPauses, StepTimes
from loadtest.pgcluster import StatementCost
from loadtest.quantiles import percentile
from loadtest.schedwait import RunQueueWait
from loadtest.status_lookups import measure_lookups, served_size
from logserver.sequencer import Submission

BATCH = 1000  # statements per request (the server's maximum)
IN_FLIGHT = 4  # requests at once at most: a paced client whose requests overlap when one is slow
SAMPLE_EVERY = 0.2  # seconds between looks at the lag gauge
CATCH_UP_LIMIT = 900.0  # seconds the indexer gets to index the preload (10^6 at ~120 us/doc: ~2 min of CPU)
SETTLE_LIMIT = 300.0  # seconds the indexer gets to cover the timed phase's last entry
LAG = re.compile(rb"^tlog_status_index_lag_entries (\d+)$", re.M)
NEVER_LOGGED = "00" * 32  # a document no statement names: its answer carries the served index root's size
STATUS_SETTINGS = "[status_index]\nindex_interval_ms = 100\n"
SQLITE_WRITERS = ("the indexer's processes", "this process")  # status_keepup_inprocess.database_writes
PARTIES = ("this process", "the database server", "the indexer's processes (its own and its shards')")
SERVER_CPU = "the server process; its children (signature workers, the status indexer) not counted"
Phase = tuple[float, list[list[Submission]]]  # entries/s asked, and the batches to submit at that rate


@dataclass
class Samples:
    """Per look: seconds since the paced phase began, and the lag in entries two ways: `points` from the server's
    gauge (measured at each cycle's start and after each step of a catch-up: up to a step old), `direct` as a client
    sees it (the log's size minus the size of the index root its status proofs are served at)."""

    points: list[tuple[float, int]] = field(default_factory=list)
    direct: list[tuple[float, int]] = field(default_factory=list)


def lag(client: httpx.Client) -> int | None:
    found = LAG.search(client.get("/metrics").content)
    return int(found.group(1)) if found else None


def log_size(client: httpx.Client) -> int:
    return int(client.get("/api/v1/log").json()["size"])


def served_index(client: httpx.Client) -> int:
    """The size of the index root status proofs are served at (0 before any)."""
    return served_size(client, f"/api/v1/documents/{NEVER_LOGGED}")


def wait_indexed(client: httpx.Client, limit: float, target: int) -> float:
    """Seconds until a served status proof's index root covers entries [0, target): the indexer has indexed
    every entry submitted so far (`target` is one past the last one). Not the log's size: `index-root` statements
    logged after the last submission name no document, and no root covers the one that states it (§7), so a
    log ending in several of them would never count as covered (before: a wait of CATCH_UP_LIMIT)."""
    started = time.perf_counter()
    while time.perf_counter() - started < limit:
        if served_index(client) >= target:
            return time.perf_counter() - started
        time.sleep(0.05)
    return float("nan")


def sample_lag(url: str, stop: threading.Event, samples: Samples, started: float) -> None:
    with httpx.Client(base_url=url, timeout=30) as own:
        while not stop.is_set():
            value, size = lag(own), log_size(own)
            direct, now = size - served_index(own), time.perf_counter() - started
            samples.direct.append((now, direct))
            if value is not None:
                samples.points.append((now, value))
            stop.wait(SAMPLE_EVERY)


def refusal(response: httpx.Response) -> str:
    """A refused request as `status error-code` (the JSON error body's code, logserver/httpkit.py)."""
    try:
        code = str(response.json().get("error", "?"))
    except ValueError:
        code = "?"
    return f"{response.status_code} {code}"


@dataclass
class Submitted:
    """A paced phase's submissions: seconds from the first scheduled send to the last answer, requests started
    later than 0.1 s behind schedule, the refused ones (`status error-code`: their entries were not logged and are
    not counted as submitted), the entries accepted, one past the highest log index one of them got, and each
    accepted request's answer time, from its send and from its scheduled send (the sequencer's commit latency as an
    issuer sees it, a held commit included; docs/operating.md "Disk": the log file's WAL emptied)."""

    seconds: float = 0.0
    late: int = 0
    refused: list[str] = field(default_factory=list)
    accepted: int = 0
    end: int = 0
    answers: list[tuple[float, float]] = field(default_factory=list)  # (from the send, from the scheduled send)

    def took(self, indexes: Sequence[int], sent: float, scheduled: float) -> None:
        """One accepted request, sent at `sent` for `scheduled` (perf_counter), answered now."""
        answered = time.perf_counter()
        self.accepted += len(indexes)
        self.end = max(self.end, 1 + max(indexes))
        self.answers.append((answered - sent, answered - scheduled))

    def answers_line(self) -> str:
        sent, scheduled = ([answer[i] * 1000 for answer in self.answers] for i in (0, 1))
        figures = ", ".join(
            f"{name} {percentile(sent, q):,.0f} / {percentile(scheduled, q):,.0f}"
            for name, q in (("p50", 0.5), ("p99", 0.99), ("max", 1.0))
        )
        return f"  answers, ms from the send / from the scheduled send ({len(self.answers):,} requests): {figures}"


def paced_submit(url: str, bodies: Sequence[bytes], rate: float) -> Submitted:
    """POST `bodies` at request k's scheduled time k * BATCH / rate (open loop, IN_FLIGHT clients); a refused
    request is counted and the client goes on with the next, as an issuer retrying later would."""
    interval, started = BATCH / rate, time.perf_counter()
    turn, done = iter(range(len(bodies))), Submitted()
    lock = threading.Lock()
    headers = {"content-type": "application/json"}

    def client() -> None:
        with httpx.Client(base_url=url, timeout=120) as own:
            while True:
                with lock:
                    k = next(turn, None)
                if k is None:
                    return
                scheduled = started + k * interval
                delay = scheduled - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                elif delay < -0.1:
                    done.late += 1
                sent = time.perf_counter()
                response = own.post("/api/v1/entries", content=bodies[k], headers=headers)
                with lock:
                    if response.is_success:
                        done.took([entry["index"] for entry in response.json()["entries"]], sent, scheduled)
                    else:
                        done.refused.append(refusal(response))

    threads = [threading.Thread(target=client) for _ in range(IN_FLIGHT)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done.seconds = time.perf_counter() - started
    return done


@dataclass
class Preload:
    entries: int
    seconds: float  # grown in-process (signing included)
    ready_seconds: float = float("nan")  # from launching the server to /healthz answering 200 (its warm-up included)
    catch_up_seconds: float = float("nan")  # from launching the server to a served index root covering the preload
    catch_up_cpu: float = float("nan")  # the server's CPU seconds (and PostgreSQL's) over that time
    checkpoint: bool = False  # PostgreSQL: a CHECKPOINT once the preload is indexed (`settle_wal`)
    kept: bool = False  # a log a --keep run left, its index caught up (status_keepup_inprocess.keep_up_on)

    def report(self, engine: str) -> str:
        if self.kept:
            return f"{engine}: server ready {self.ready_seconds:,.1f} s after launch, its index covering the log"
        return (
            f"{engine}: preload {self.entries:,} entries in {self.seconds:,.0f} s (in-process sequencer); "
            f"server ready {self.ready_seconds:,.1f} s after launch; its indexer covered the preload "
            f"{self.catch_up_seconds:,.1f} s after launch ({self.entries / self.catch_up_seconds:,.0f} documents/s, "
            f"{self.catch_up_cpu / self.entries * 1e6:,.0f} us server CPU per document, start-up included)"
        )


@dataclass
class Paced:
    rate: float  # asked, entries/s
    done: Submitted
    samples: Samples
    settle_seconds: float
    cpu_seconds: float
    cpu_what: str  # whose CPU `cpu_seconds` counts
    loop_cpu_seconds: float | None = None  # of it, the event loop's thread (in-process: one core at most)
    cpu_parts: tuple[float, ...] | None = None  # in-process: this process, the database server, the indexer's
    database_kinds: dict[str, float] = field(default_factory=dict)  # in-process: PostgreSQL's CPU by kind
    database_writes: dict[str, int] = field(default_factory=dict)  # in-process: what the database wrote
    waits: tuple[RunQueueWait, ...] = ()  # in-process: each party's ready work that waited for a core (schedwait.py)
    machine: dict[str, float] = field(default_factory=dict)  # in-process: the cores' seconds by state (schedwait.py)
    statements: list[StatementCost] = field(default_factory=list)  # in-process, pg_stat_statements loaded
    pauses: LoopPauses | None = None  # in-process: the event loop the sequencer answers on (looppauses.py)
    steps: StepTimes | None = None  # in-process: the sequencer's key guard and commit, each call timed

    def report(self, engine: str) -> list[str]:
        accepted = self.done.accepted
        achieved = accepted / self.done.seconds
        return [
            f"  paced phase: asked {self.rate:,.0f} entries/s, achieved {achieved:,.0f} entries/s "
            f"({accepted:,} entries accepted in {self.done.seconds:,.1f} s; {self.done.late} requests > 0.1 s late)",
            f"  refused requests (not counted as submitted): {len(self.done.refused)}"
            + "".join(f"; {what} x{count}" for what, count in sorted(collections.Counter(self.done.refused).items())),
            self.done.answers_line(),
            *([self.pauses.line()] if self.pauses is not None else []),
            *([self.steps.line()] if self.steps is not None else []),
            f"  CPU per entry ({self.cpu_what}{', PostgreSQL' if engine == 'postgresql' else ''}; until the index "
            f"covers the last entry): {self.cpu_seconds / max(accepted, 1) * 1e6:,.0f} us"
            + self.loop_share()
            + self.parts_share(),
            *self.database_share(),
            *self.writes_share(),
            *self.statements_share(),
            *self.waits_share(),
            lag_line("lag, direct (log size - served index root size)", self.samples.direct, self.done.seconds),
            lag_line("lag, /metrics gauge", self.samples.points, self.done.seconds),
            f"  seconds from the last answer to a served index root covering it: {self.settle_seconds:,.2f}",
        ]

    def parts_share(self) -> str:
        """In-process: who spent it (the machine's 2 cores are shared by the three)."""
        if self.cpu_parts is None:
            return ""
        wall = self.done.seconds + self.settle_seconds
        named = zip(
            ("this process", "the database server", "the indexer's processes (with its shards)"),
            self.cpu_parts,
            strict=True,
        )
        return "; " + ", ".join(
            f"{who} {cpu / max(self.done.accepted, 1) * 1e6:,.0f} us ({cpu / wall:.2f} of a core)" for who, cpu in named
        )

    def database_share(self) -> list[str]:
        """PostgreSQL's share by kind of process, biggest first, per entry (in-process runs on PostgreSQL)."""
        if not self.database_kinds:
            return []
        kinds = sorted(self.database_kinds.items(), key=lambda kind: -kind[1])
        per_entry = 1e6 / max(self.done.accepted, 1)
        shares = ", ".join(f"{kind} {cpu * per_entry:,.0f} us" for kind, cpu in kinds)
        return [f"    of the database server's: {shares}"]

    def writes_share(self) -> list[str]:
        """What the database wrote per entry (in-process runs): bytes that pass through the page cache."""
        if not self.database_writes:
            return []
        per = {what: count / max(self.done.accepted, 1) for what, count in self.database_writes.items()}
        if "wal" not in per:  # SQLite: what each party passed to write()
            parties = ", ".join(f"{who} {per[who]:,.0f} B" for who in SQLITE_WRITERS)
            return [f"    SQLite's writes per entry (bytes passed to write(), /proc/<pid>/io wchar): {parties}"]
        writers = ("by backends", "by the checkpointer", "by the bgwriter")
        pages = ", ".join(f"{who} {per[who]:,.0f} B" for who in writers)
        return [
            f"    PostgreSQL's writes per entry: WAL {per['wal']:,.0f} B ({per['wal records']:.1f} records, "
            f"{per['full-page images']:.2f} full-page images); data pages written {pages}; the database grew "
            f"{per['database']:,.0f} B, of it status_page {per['status_page']:,.0f} B"
        ]

    def statements_share(self) -> list[str]:
        """PostgreSQL's statements that took the most time over the phase (in-process, with pg_stat_statements)."""
        if not self.statements:
            return []
        return ["    PostgreSQL's statements by time (pg_stat_statements; 8 KiB blocks):"] + [
            f"      {statement.line()}" for statement in self.statements
        ]

    def waits_share(self) -> list[str]:
        """In-process: how much of each party's ready work waited for a core (thread-seconds per second of the
        window), and how often a running thread was taken off its core: short of cores, or short of work."""
        if not self.waits:
            return []
        wall = self.done.seconds + self.settle_seconds
        shares = ", ".join(
            f"{who} {wait.waited / wall:.2f} ({wait.preempted / wall:,.0f} preemptions/s)"
            for who, wait in zip(PARTIES, self.waits, strict=True)
        )
        lines = [f"    ready but waiting for a core (thread-seconds per second, schedstat): {shares}"]
        if self.machine:
            states = ", ".join(f"{state} {seconds / wall:.2f}" for state, seconds in self.machine.items() if seconds)
            lines.append(f"    the machine's cores, in cores over the window (/proc/stat): {states}")
        return lines

    def loop_share(self) -> str:
        """The event loop's thread runs the sequencer's and the indexer's Python (one GIL): at most one core."""
        if self.loop_cpu_seconds is None:
            return ""
        return (
            f"; of it the event loop's thread {self.loop_cpu_seconds / max(self.done.accepted, 1) * 1e6:,.0f} us, "
            f"{self.loop_cpu_seconds / (self.done.seconds + self.settle_seconds):.2f} of a core"
        )


def lag_line(what: str, points: list[tuple[float, int]], seconds: float) -> str:
    during = [v for t, v in points if t <= seconds]
    second_half = [v for t, v in points if seconds / 2 <= t <= seconds]
    slope = growth(points, seconds)
    return (
        f"  {what}, entries, {len(points)} samples every {SAMPLE_EVERY} s: max {max(during, default=-1):,}, "
        f"max over the second half {max(second_half, default=-1):,}, at the end {during[-1] if during else -1:,}; "
        f"growth over the second half {slope:+,.0f} entries/s"
    )


def growth(points: list[tuple[float, int]], seconds: float) -> float:
    """Least-squares slope (entries/s) of the lag over the paced phase's second half: ~0 when the index keeps up."""
    half = [(t, v) for t, v in points if seconds / 2 <= t <= seconds]
    if len(half) < 2:
        return float("nan")
    mean_t = sum(t for t, _ in half) / len(half)
    mean_v = sum(v for _, v in half) / len(half)
    spread = sum((t - mean_t) ** 2 for t, _ in half)
    return sum((t - mean_t) * (v - mean_v) for t, v in half) / spread if spread else float("nan")


def settle_wal(engine: Engine, preload: Preload) -> None:
    """With `preload.checkpoint`, make PostgreSQL checkpoint before the paced phases, as a server past its first
    checkpoint: the WAL segments the preload and its catch-up filled are then recycled for the phases' WAL. Without
    it, a fresh cluster creates and zero-fills a new 16 MB segment for every 16 MB it writes (XLogFileInit, fsynced
    on the commit path), until its first checkpoint: 4.7 % of both cores at 10,000/s (§11, fourteenth round)."""
    if preload.checkpoint and isinstance(engine, PostgresEngine):
        started = time.perf_counter()
        engine.cluster.psql("CHECKPOINT")
        print(f"  CHECKPOINT before the paced phases: {time.perf_counter() - started:.1f} s", flush=True)


def print_load(when: str) -> None:
    print(f"  load average{when}: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)


def server_cpu(engine: Engine, server: ServerProcess) -> float:
    return process_cpu_seconds(server.process.pid) + engine.server_cpu()


def paced_phase(
    engine: Engine, server: ServerProcess, client: httpx.Client, bodies: Sequence[bytes], rate: float
) -> Paced:
    samples, stop = Samples(), threading.Event()
    cpu, started = server_cpu(engine, server), time.perf_counter()
    sampler = threading.Thread(target=sample_lag, args=(server.url, stop, samples, started))
    sampler.start()
    try:
        done = paced_submit(server.url, bodies, rate)
        settle = wait_indexed(client, SETTLE_LIMIT, done.end)
        cpu = server_cpu(engine, server) - cpu  # until the index covers the last entry: its indexing counts
    finally:
        stop.set()
        sampler.join()
    return Paced(rate, done, samples, settle, cpu, SERVER_CPU)


def served_phases(engine: Engine, preload: Preload, phases: Sequence[Phase]) -> list[Paced]:
    """Launch the server, time its indexer over the preload, then each paced phase in turn (each starts with the
    index covering the log: the previous phase's backlog is indexed first)."""
    cpu_before, launched = engine.server_cpu(), time.perf_counter()
    with engine.serve() as server, httpx.Client(base_url=server.url, timeout=60) as client:
        preload.ready_seconds = time.perf_counter() - launched
        wait_indexed(client, CATCH_UP_LIMIT, preload.entries)
        preload.catch_up_seconds = time.perf_counter() - launched
        preload.catch_up_cpu = server_cpu(engine, server) - cpu_before
        print(preload.report(engine.name), flush=True)
        settle_wal(engine, preload)
        done = []
        for rate, batches in phases:
            bodies = [entries_body(batch, False) for batch in batches]
            done.append(paced_phase(engine, server, client, bodies, rate))
            print("\n".join(done[-1].report(engine.name)), flush=True)
            print_load("")
        return done


Serve = Callable[[Engine, Preload, Sequence[Phase]], list[Paced]]


def keep_up(
    engine_name: str,
    tmp: Path,
    preload: int,
    rates: Sequence[float],
    seconds: float,
    serve: Serve = served_phases,
    pg_settings: dict[str, str] | None = None,
    checkpoint: bool = False,
    lookups: float = 0.0,
) -> list[Paced]:
    """Preload, let the server's indexer catch up, then submit at each of `rates` for `seconds` and sample the lag;
    prints as it goes. `serve`: `served_phases`, a real `tlog-server serve` taking POSTs (its signature workers
    checking every statement), or status_keepup_inprocess.served_in_process, the same server's parts without HTTP.
    `pg_settings`: PostgreSQL's own (its cluster's command line), e.g. {"shared_buffers": "2GB"}; `checkpoint`: a
    CHECKPOINT between the preload and the phases (`settle_wal`). `lookups`: then as many seconds of wrk on status
    lookups of the preload's documents, from a server started anew on the log (loadtest/status_lookups.py)."""
    when = int(time.time()) - 3600
    with contextlib.ExitStack() as stack, signing_pool() as pool:
        engine = make_engine(engine_name, tmp, stack, STATUS_SETTINGS, cluster_settings=pg_settings)
        grower = Grower(engine)
        started = time.perf_counter()
        asyncio.run(grow_all([grower], preload, when, pool))
        grown = Preload(grower.size, time.perf_counter() - started, checkpoint=checkpoint)
        phases, first = [], grower.size - 1  # statement n is leaf n + 1 (grow_all): the numbering continues
        for rate in rates:
            count = int(rate * seconds) // BATCH * BATCH
            paced = signed(first, count, when, pool)
            phases.append((rate, [paced[i : i + BATCH] for i in range(0, count, BATCH)]))
            first += count
        del paced
        print_load(" before the server starts")
        try:
            done = serve(engine, grown, phases)
        finally:
            for log in tmp.glob("*server.log"):  # why an indexer stalls, if it does: its retried failures
                failed = [line for line in log.read_text(errors="replace").splitlines() if "failed" in line]
                print(f"  {len(failed)} failures in the server's log{': ' + failed[0] if failed else ''}", flush=True)
        if lookups:
            print("\n".join(measure_lookups(engine, grown.entries - 1, lookups, tmp).report(engine_name)), flush=True)
        return done
