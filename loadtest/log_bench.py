"""Log-server benchmarks, each figure next to a baseline measured in the same run.

    .venv/bin/python -m loadtest.log_bench            (about 6 minutes on 2 cores)
    .venv/bin/python -m loadtest.log_bench --quick    (about 1 minute; smaller sizes, shorter phases)
    .venv/bin/python -m loadtest.log_bench --submit-only    (the verify ceiling and the HTTP submit batch phase)

1. Integration rate: entries/s durably appended (leaves, hashes, signed checkpoint
   in one fsync'd commit) by `Sequencer` + `SQLiteStorage` in-process, statements
   signed and parsed beforehand -- next to pymerkle's `SqliteTree.append_entries`
   on the same entry bytes (pip-installed on first use). One request at a time,
   then with several in flight (the next batch is prepared while one commits),
   each with the process's CPU per entry (all threads: it moves less with the load).
2. HTTP end to end, every issuer signature verified by the server: batches of
   1000 and single statements -- next to raw Ed25519 verifications/s.
3. Submit -> durably sequenced latency at half the single-statement maximum,
   from paced open-loop clients.
4. Inclusion proofs by leaf hash over HTTP on trees of 10^5 and 10^6 entries
   (built in-process, no HTTP) -- next to pymerkle's `prove_inclusion`.
5. Bytes on disk per entry, and the server's RSS at each tree size.

Prints figures; asserts nothing. Talks only to 127.0.0.1; starts and stops its own
`tlog-server serve` processes on data directories in a temporary folder. The load
generator is a minimal HTTP/1.1 client on asyncio streams (cheaper than httpx, which
is also measured for proofs), and it shares the machine's cores with the server:
each HTTP figure also says how much CPU the server and the client used.
"""

import argparse
import asyncio
import base64
import contextlib
import functools
import hashlib
import importlib
import itertools
import os
import platform
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
from cryptography.hazmat.primitives.asymmetric import ed25519

from loadtest import pymerkle_baseline
from loadtest.localproc import free_port
from loadtest.quantiles import percentile
from logserver import proofs, sqlite, sqlite_schema
from logserver.sequencer import Sequencer, SequencerConfig, Submission
from logserver.sqlite import SQLiteStorage
from logserver.storage import Head, Storage, lookup_rows
from logserver.tasks import cancel_and_wait
from tlogcore.gcpause import freeze_start_up
from tlogcore.keys import Ed25519Signer, format_signer_key, libsodium_verifies
from tlogcore.merkle import leaf_hash, stored_hash_count
from tlogcore.statement import ISSUE, ISSUER_ADD, Statement, parse_statement, sign_statement

REPO = Path(__file__).resolve().parent.parent
ORIGIN = "bench.localhost/log"
LOG_SEED, REGISTRY_SEED, ISSUER_SEED = b"\x01" * 32, b"\x02" * 32, b"\x03" * 32
DATABASE = "log.db"  # the name `tlog-server serve` gives its database in --data
ENTRIES = "/api/v1/entries"
POOL_CHUNK = 10_000  # statements signed per worker job
TREE_BATCH = 10_000  # entries per commit when building the big trees
HTTP_BATCH = 1000  # statements per request (the server's maximum)
IN_FLIGHT = 4  # requests waiting at once in part 1's queued run (as BATCH_CLIENTS keep the server's queue full)
BATCH_CLIENTS = 4
SINGLE_CLIENTS = 256
PROOF_CLIENTS = 16
MAX_PACED_CLIENTS = 1000

Job = tuple[str, str, bytes]  # method, target, body
Sender = Callable[[Job], Awaitable[int]]  # sends one request, returns the status


@dataclass(frozen=True)
class Profile:
    integration_entries: int
    batch_sizes: tuple[int, ...]
    tree_sizes: tuple[int, ...]
    seconds: float  # length of each timed HTTP phase
    batch_budget: int  # statements available to each HTTP phase (distinct, so none is a duplicate)
    single_budget: int
    paced_budget: int
    proofs_budget: int = 30_000  # the batch phase whose answers carry every inclusion proof


FULL = Profile(200_000, (1000, 10_000), (100_000, 1_000_000), 10.0, 150_000, 60_000, 40_000)
QUICK = Profile(20_000, (1000, 10_000), (100_000,), 3.0, 60_000, 20_000, 10_000)
SUBMIT_ONLY = Profile(0, (), (), 6.0, 120_000, 0, 0, 0)  # --submit-only: the batch phase alone


@dataclass(frozen=True)
class Row:
    figure: str
    value: str
    baseline: str = ""  # the comparison measured in the same run
    note: str = ""  # ratio, goal, or what limits the figure


# --- keys and statements ------------------------------------------------------


def log_key() -> Ed25519Signer:
    return Ed25519Signer(ORIGIN, LOG_SEED)


def registry_key() -> Ed25519Signer:
    return Ed25519Signer(f"{ORIGIN}/registry", REGISTRY_SEED)


def issuer_key() -> Ed25519Signer:
    return Ed25519Signer("issuer.bench.localhost", ISSUER_SEED)


def signed(statement: Statement, signer: Ed25519Signer) -> Submission:
    data = sign_statement(statement, signer)
    return Submission(data, statement, leaf_hash(data))


def issuer_add(when: int) -> Submission:
    registry, issuer = registry_key(), issuer_key()
    statement = Statement(
        ORIGIN, ISSUER_ADD, registry.verifier().vkey, when, issuer=issuer.verifier().vkey, ref="Bench issuer"
    )
    return signed(statement, registry)


def document_of(number: int) -> bytes:
    """The document statement `number` of a benchmark's log issues (leaf number + 1 in loadtest/grow.py's logs)."""
    return hashlib.sha256(b"document %d" % number).digest()


def issue_chunk(job: tuple[int, int, int]) -> list[Submission]:
    """Signed `issue` statements number start..start+count (runs in a worker process)."""
    start, count, when = job
    issuer = issuer_key()
    vkey = issuer.verifier().vkey
    return [
        signed(
            Statement(ORIGIN, ISSUE, vkey, when, document=document_of(i), ref=f"Diploma 2026/{i}"),
            issuer,
        )
        for i in range(start, start + count)
    ]


def make_pool(count: int, when: int) -> list[Submission]:
    """`count` distinct signed, parsed statements, signed on every core."""
    jobs = [(start, min(POOL_CHUNK, count - start), when) for start in range(0, count, POOL_CHUNK)]
    with ProcessPoolExecutor(os.cpu_count() or 1) as pool:
        return [s for chunk in pool.map(issue_chunk, jobs) for s in chunk]


def entries_body(submissions: Sequence[Submission], inclusion_proofs: bool = True) -> bytes:
    """A POST /api/v1/entries body; `inclusion_proofs=False` asks for the answer without proofs, as `tlog submit`
    does (logserver/api.py SubmitRequest)."""
    body: dict[str, object] = {"statements": [base64.b64encode(s.data).decode() for s in submissions]}
    if not inclusion_proofs:
        body["inclusion_proofs"] = False
    return orjson.dumps(body)


def chunks(items: Sequence[Submission], size: int) -> list[Sequence[Submission]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


# --- small helpers ------------------------------------------------------------


def per_s(value: float) -> str:
    return f"{value:,.0f}/s"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms"


def mib(size: float) -> str:
    return f"{size / 2**20:,.0f} MiB"


def machine_info() -> list[str]:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "?",
    )
    memory = next(
        line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")
    )
    return [
        f"cores: {os.cpu_count()}, CPU: {model}, memory: {int(memory) / 2**20:.0f} GiB, {platform.machine()}",
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
        f"cryptography {importlib.import_module('cryptography').__version__}, pymerkle {pymerkle_baseline.version()}",
        f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
    ]


# --- raw Ed25519 verification: the ceiling for end-to-end submission -----------

MESSAGE = b"tlog-statement/v1\n" + b"x" * 300  # about a statement's text


def cryptography_verifications(seconds: float) -> int:
    key = ed25519.Ed25519PrivateKey.from_private_bytes(ISSUER_SEED)
    public, signature = key.public_key(), key.sign(MESSAGE)
    done, deadline = 0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        for _ in range(100):
            public.verify(signature, MESSAGE)
        done += 100
    return done


def nacl_verifications(seconds: float) -> int:
    signing = importlib.import_module("nacl.signing")
    key = signing.SigningKey(ISSUER_SEED)
    verify, signature = key.verify_key.verify, key.sign(MESSAGE).signature
    done, deadline = 0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        for _ in range(100):
            verify(MESSAGE, signature)
        done += 100
    return done


def parallel_rate(work: Callable[[float], int], workers: int, seconds: float, processes: bool = False) -> float:
    executor = ProcessPoolExecutor(workers) if processes else ThreadPoolExecutor(workers)
    with executor:
        started = time.perf_counter()
        total = sum(executor.map(work, [seconds] * workers))
        return total / (time.perf_counter() - started)


def verify_rows(seconds: float) -> tuple[list[Row], float]:
    """Raw verify rates; also returns the ceiling of the library tlogcore verifies with (PyNaCl, libsodium), on
    every core (processes), which is how the server verifies a big batch."""
    one = parallel_rate(cryptography_verifications, 1, seconds)
    two = parallel_rate(cryptography_verifications, 2, seconds)
    procs = parallel_rate(cryptography_verifications, 2, seconds, processes=True)
    rows = [
        Row("raw Ed25519 verify, cryptography, 1 thread", per_s(one)),
        Row("raw Ed25519 verify, cryptography, 2 threads", per_s(two), per_s(one), f"{two / one:.2f}x of 1 thread"),
        Row("raw Ed25519 verify, cryptography, 2 processes", per_s(procs), per_s(one), f"{procs / one:.2f}x"),
    ]
    nacl_one = parallel_rate(nacl_verifications, 1, seconds)
    nacl_two = parallel_rate(nacl_verifications, 2, seconds)
    nacl_procs = parallel_rate(nacl_verifications, 2, seconds, processes=True)
    rows += [
        Row("raw Ed25519 verify, PyNaCl, 1 thread", per_s(nacl_one), per_s(one), f"{nacl_one / one:.2f}x"),
        Row("raw Ed25519 verify, PyNaCl, 2 threads", per_s(nacl_two), per_s(nacl_one), f"{nacl_two / nacl_one:.2f}x"),
        Row(
            "raw Ed25519 verify, PyNaCl, 2 processes (the ceiling: the library in use)",
            per_s(nacl_procs),
            per_s(nacl_one),
            f"{nacl_procs / nacl_one:.2f}x of 1 process",
        ),
    ]
    return rows, max(nacl_one, nacl_two, nacl_procs)


# --- 1. integration rate, in-process ------------------------------------------


@contextlib.asynccontextmanager
async def running_sequencer(storage: Storage, batch: int, **settings: Any) -> AsyncIterator[Sequencer]:
    """The real Sequencer on `storage` with its run loop going (one commit per `batch`), for in-process appends;
    `settings` override the other SequencerConfig fields."""
    settings = {"flush_interval": 0.01, "max_batch": batch, "max_pool": 2 * batch, **settings}
    config = SequencerConfig(ORIGIN, frozenset([registry_key().verifier().vkey]), **settings)
    sequencer = Sequencer(storage, log_key(), config)
    await sequencer.load()
    if not await sequencer.take_lease():
        raise RuntimeError(f"cannot sequence: {sequencer.not_sequencing}")
    task = asyncio.create_task(sequencer.run())
    try:
        yield sequencer
    finally:
        await cancel_and_wait([task])


async def append_timed(sequencer: Sequencer, submissions: Sequence[Submission], batch: int) -> list[float]:
    """Submit in batches of `batch`, waiting for each to be durable: seconds per batch."""
    seconds = []
    for start in range(0, len(submissions), batch):
        started = time.perf_counter()
        await sequencer.submit(submissions[start : start + batch])
        seconds.append(time.perf_counter() - started)
    return seconds


async def append_queued(sequencer: Sequencer, submissions: Sequence[Submission], batch: int, in_flight: int) -> float:
    """Submit in requests of `batch` with `in_flight` requests waiting at every moment (as busy clients keep the
    log server's queue full): the seconds until the last is durable."""
    requests = iter(range(0, len(submissions), batch))

    async def client() -> None:
        for start in requests:
            await sequencer.submit(submissions[start : start + batch])

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(in_flight)))
    return time.perf_counter() - started


async def sequence(
    db: Path, submissions: Sequence[Submission], batch: int, prefix: Sequence[Submission] = (), in_flight: int = 1
) -> tuple[list[float], Head]:
    """Append through the real Sequencer (its run loop, one commit per `batch`): seconds per batch (with requests
    `in_flight` at a time: the total only), and the head."""
    storage = await SQLiteStorage.open(db)
    try:
        async with running_sequencer(storage, batch, max_pool=(in_flight + 1) * batch) as sequencer:
            if prefix:
                await sequencer.submit(prefix)
            if in_flight > 1:
                seconds = [await append_queued(sequencer, submissions, batch, in_flight)]
            else:
                seconds = await append_timed(sequencer, submissions, batch)
        if sequencer.head is None:
            raise RuntimeError("no head after sequencing")
        return seconds, sequencer.head
    finally:
        await storage.close()


def fsyncs_per_second(folder: Path, seconds: float = 1.0) -> float:
    """4 KiB written and fsync'd, again and again, in `folder`: the disk's bound on durable commits per second."""
    path, done = folder / "fsync-probe", 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        started = time.perf_counter()
        while (elapsed := time.perf_counter() - started) < seconds:
            os.pwrite(fd, b"\0" * 4096, (done % 256) * 4096)
            os.fsync(fd)
            done += 1
    finally:
        os.close(fd)
        path.unlink()
    return done / elapsed


def raw_commit_seconds(db: Path, entries: Sequence[Submission], batch: int) -> float:
    """The rows a commit of `entries` writes (leaves, node hashes, a checkpoint, the head), in batches, with plain
    sqlite3 and nothing else: the storage's own ceiling for the integration rate (the same schema, WAL,
    synchronous = FULL, one fsync per batch). The hashes are random bytes of the right count."""
    sqlite_schema.create_schema(db)
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("INSERT INTO head (id, size, root) VALUES (1, 0, zeroblob(32))")
    records = [s.record for s in entries]
    spent, hashes = 0.0, 0
    for start in range(0, len(records), batch):
        part = records[start : start + batch]
        end, blob = start + len(part), os.urandom(32 * (stored_hash_count(start + len(part)) - hashes))
        rows = lookup_rows(start, part)
        began = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("UPDATE head SET size = ?, root = zeroblob(32) WHERE id = 1 AND size = ?", (end, start))
        conn.executemany(
            "INSERT INTO leaves (idx, data, leaf_key, document_key, registry) VALUES (?, ?, ?, ?, ?)", rows
        )
        conn.execute(sqlite.INSERT_HASHES, (hashes, blob, len(blob) // 32))
        conn.execute("INSERT INTO checkpoints (size, root, note) VALUES (?, zeroblob(32), zeroblob(200))", (end,))
        conn.execute("COMMIT")
        spent += time.perf_counter() - began
        hashes += len(blob) // 32
    conn.close()
    return spent


def integration_rows(
    tmp: Path, entries: Sequence[Submission], registry: Submission, batch_sizes: Iterable[int]
) -> list[Row]:
    fsyncs = fsyncs_per_second(tmp)
    rows = [Row("fsync of 4 KiB, same disk", per_s(fsyncs), "", "one per commit: the bound on commits/s")]
    datas = [s.data for s in entries]
    for batch in batch_sizes:
        cpu, loop_cpu = time.process_time(), time.thread_time()  # the event loop runs in this thread
        per_batch, head = asyncio.run(sequence(tmp / f"ours-{batch}.db", entries, batch, [registry]))
        seconds, cpu = sum(per_batch), (time.process_time() - cpu) / len(entries)
        loop_cpu = (time.thread_time() - loop_cpu) / len(entries)
        queued_cpu = time.process_time()
        queued, queued_head = asyncio.run(
            sequence(tmp / f"queued-{batch}.db", entries, batch, [registry], in_flight=IN_FLIGHT)
        )
        queued_cpu = (time.process_time() - queued_cpu) / len(entries)
        raw = len(entries) / raw_commit_seconds(tmp / f"raw-{batch}.db", entries, batch)
        plain = pymerkle_baseline.append(tmp / f"pymerkle-{batch}.db", [registry.data], datas, batch, False)
        rooted = pymerkle_baseline.append(tmp / f"pymerkle-root-{batch}.db", [registry.data], datas, batch, True)
        ours, theirs = len(entries) / seconds, len(entries) / plain.seconds
        theirs_rooted = len(entries) / rooted.seconds
        same = "same root" if head.root == plain.root == rooted.root == queued_head.root else "ROOTS DIFFER"
        rows += [
            Row(
                f"integration, {len(entries):,} entries in batches of {batch:,}",
                per_s(ours),
                f"pymerkle append_entries {per_s(theirs)}",
                f"{ours / theirs:.2f}x (goal >= 1.0x), {same}; CPU {cpu * 1e6:.1f} us per entry, all threads "
                f"(event loop {loop_cpu * 1e6:.1f})",
            ),
            Row(
                f"  the same with {IN_FLIGHT} requests in flight (the next batch prepared while one commits)",
                per_s(len(entries) / sum(queued)),
                "",
                f"{len(entries) / sum(queued) / ours:.2f}x of one at a time; CPU {queued_cpu * 1e6:.1f} us per entry",
            ),
            Row(
                "  pymerkle append_entries + get_root per batch (it stores no nodes)",
                per_s(theirs_rooted),
                "",
                f"ours {ours / theirs_rooted:.2f}x",
            ),
            Row(
                "  the same rows by plain sqlite3, nothing else (the storage's ceiling)",
                per_s(raw),
                f"fsync bound {per_s(fsyncs * batch)}",
                f"ours {ours / raw:.2f}x of it",
            ),
        ]
    return rows


# --- HTTP: a server process and a minimal client --------------------------------


def prepare_data(data: Path) -> None:
    """A data directory with this benchmark's fixed log and registry keys (so pre-signed statements fit)."""
    data.mkdir(mode=0o700, parents=True, exist_ok=True)
    for name, signer in (("log.key", log_key()), ("registry.key", registry_key())):
        path = data / name
        if not path.exists():
            path.write_text(format_signer_key(signer) + "\n")
            path.chmod(0o600)


@dataclass
class ServerProcess:
    process: "subprocess.Popen[bytes]"
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rss_bytes(self) -> int:
        return self._status_bytes("VmRSS")

    def rss_anon_bytes(self) -> int:
        """The resident set less its file pages: a SQLite reader's memory map of the log (up to READ_MMAP_BYTES)
        counts in VmRSS, but those pages are the OS page cache, shared and reclaimable, not the server's heap."""
        return self._status_bytes("RssAnon")

    def _status_bytes(self, field: str) -> int:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return next(int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith(f"{field}:"))

    def cpu_seconds(self) -> float:
        return process_cpu_seconds(self.process.pid)

    def main_thread_cpu_seconds(self) -> float:
        """CPU seconds of the server's main thread (the event loop); the rest of `cpu_seconds` is its other
        threads (the storage's connections)."""
        return process_cpu_seconds(self.process.pid, self.process.pid)

    def workers_cpu_seconds(self) -> float:
        """CPU seconds of the server's live child processes (its signature workers), now."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        total = 0.0
        for child in children:
            with contextlib.suppress(OSError):  # a worker that exited meanwhile
                total += process_cpu_seconds(int(child))
        return total


def process_cpu_seconds(pid: int, thread: int | None = None) -> float:
    """A process's CPU seconds so far, or one of its threads' (`thread`: a task id in /proc)."""
    path = Path(f"/proc/{pid}/stat") if thread is None else Path(f"/proc/{pid}/task/{thread}/stat")
    fields = path.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def wait_ready(server: ServerProcess, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited with {server.process.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(server.url + "/healthz", timeout=1).status_code == 200:
                return
        time.sleep(0.05)
    raise TimeoutError("server did not start")


def claim_database(data: Path, extra_args: Sequence[str] = ()) -> None:
    """`serve` needs the database claimed by `init` (docs/key-guard.md); init adopts one this log key filled."""
    config = list(extra_args[extra_args.index("--config") :][:2]) if "--config" in extra_args else []
    init = [sys.executable, "-c", "from logserver.cli import main; main()", "init", "--data", str(data), *config]
    subprocess.run(init, cwd=REPO, check=True, capture_output=True)


@contextlib.contextmanager
def running_server(data: Path, extra_args: Sequence[str] = ()) -> Iterator[ServerProcess]:
    claim_database(data, extra_args)
    port = free_port()
    args = [
        sys.executable,
        "-c",
        "from logserver.cli import main; main()",
        "serve",
        "--data",
        str(data),
        "--listen",
        f"127.0.0.1:{port}",
        *extra_args,
    ]
    with (data.parent / f"{data.name}-server.log").open("ab") as log_file:
        process = subprocess.Popen(args, cwd=REPO, stdout=log_file, stderr=log_file)
    server = ServerProcess(process, port)
    try:
        wait_ready(server)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Connection:
    """One keep-alive HTTP/1.1 connection; requests one at a time, Content-Length bodies only."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> "Connection":
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def request(self, job: Job) -> int:
        method, target, body = job
        head = f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        if body:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self.writer.write(head.encode() + b"\r\n" + body)
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("the server closed the connection")
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        await self.reader.readexactly(length)
        return int(status_line.split()[1])

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


@contextlib.asynccontextmanager
async def connections(port: int, count: int) -> AsyncIterator[list[Connection]]:
    opened = [await Connection.open(port) for _ in range(count)]
    try:
        yield opened
    finally:
        for connection in opened:
            await connection.close()


@dataclass
class Load:
    requests: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    server_cpu: float = 0.0  # CPU seconds the server used during the load
    client_cpu: float = 0.0  # CPU seconds this process used
    workers_cpu: float = 0.0  # CPU seconds the server's worker processes (signature checks) used
    main_cpu: float = 0.0  # CPU seconds of the server's main thread, part of server_cpu

    @property
    def ok(self) -> int:
        return self.statuses[200]

    @property
    def rate(self) -> float:
        return self.ok / self.seconds

    def cpu_note(self) -> str:
        errors = {k: v for k, v in self.statuses.items() if k != 200}
        bad = f", non-200: {errors}" if errors else ""
        workers = f", its signature workers {self.workers_cpu / self.seconds:.0%}" if self.workers_cpu else ""
        return (
            f"server CPU {self.server_cpu / self.seconds:.0%}{workers}, client CPU "
            f"{self.client_cpu / self.seconds:.0%} (of one core){bad}"
        )


async def closed_loop(senders: Sequence[Sender], seconds: float, jobs: Iterator[Job]) -> Load:
    """Each sender sends its next job as soon as its last one is answered, until the time or the jobs run out."""
    load = Load()
    deadline = time.perf_counter() + seconds

    async def worker(send: Sender) -> None:
        while time.perf_counter() < deadline and (job := next(jobs, None)) is not None:
            started = time.perf_counter()
            load.statuses[await send(job)] += 1
            load.latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker(send) for send in senders))
    load.seconds = time.perf_counter() - started
    load.requests = len(load.latencies)
    return load


async def paced(senders: Sequence[Sender], rate: float, bodies: Sequence[bytes]) -> Load:
    """Open loop: request n is due at start + n/rate, sender n % len(senders) sends it; latency counts from
    when it was due (so a late send is not hidden)."""
    load = Load()
    count = len(senders)
    start = time.perf_counter() + 0.2

    async def worker(first: int, send: Sender) -> None:
        for n in range(first, len(bodies), count):
            due = start + n / rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            load.statuses[await send(("POST", ENTRIES, bodies[n]))] += 1
            load.latencies.append(time.perf_counter() - due)

    await asyncio.gather(*(worker(i, send) for i, send in enumerate(senders)))
    load.seconds = time.perf_counter() - start
    load.requests = len(load.latencies)
    return load


def measured(server: ServerProcess, work: Callable[[], Awaitable[Load]]) -> Load:
    """Run one load and record the CPU the server and this process spent on it."""
    server_before, client_before = server.cpu_seconds(), time.process_time()
    main_before = server.main_thread_cpu_seconds()
    workers_before = server.workers_cpu_seconds()

    async def run() -> Load:
        return await work()

    load = asyncio.run(run())
    load.server_cpu = server.cpu_seconds() - server_before
    load.main_cpu = server.main_thread_cpu_seconds() - main_before
    load.client_cpu = time.process_time() - client_before
    load.workers_cpu = max(0.0, server.workers_cpu_seconds() - workers_before)  # a replaced worker: not counted
    return load


def raw_closed_loop(port: int, clients: int, seconds: float, jobs: Iterator[Job]) -> Callable[[], Awaitable[Load]]:
    async def work() -> Load:
        async with connections(port, clients) as opened:
            return await closed_loop([c.request for c in opened], seconds, jobs)

    return work


def httpx_closed_loop(url: str, clients: int, seconds: float, jobs: Iterator[Job]) -> Callable[[], Awaitable[Load]]:
    async def work() -> Load:
        limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:

            async def send(job: Job) -> int:
                return (await client.request(job[0], job[1], content=job[2] or None)).status_code

            await send(("GET", "/healthz", b""))  # warm one connection
            return await closed_loop([send] * clients, seconds, jobs)

    return work


def raw_paced(port: int, rate: float, bodies: Sequence[bytes]) -> Callable[[], Awaitable[Load]]:
    clients = min(MAX_PACED_CLIENTS, max(16, int(rate * 0.5)))  # each sends every clients/rate s: >= 0.5 s apart

    async def work() -> Load:
        async with connections(port, clients) as opened:
            return await paced([c.request for c in opened], rate, bodies)

    return work


# --- 2 and 3. end to end over HTTP ---------------------------------------------


def register(server: ServerProcess, registry: Submission) -> None:
    response = httpx.post(
        server.url + ENTRIES, content=entries_body([registry]), headers={"Content-Type": "application/json"}, timeout=30
    )
    response.raise_for_status()


def submission_jobs(bodies: Sequence[bytes]) -> Iterator[Job]:
    return (("POST", ENTRIES, body) for body in bodies)


@dataclass
class HttpLoads:
    health: Load
    batch: Load
    with_proofs: Load
    single: Load
    open_loop: Load
    open_loop_rate: float
    rss: int


@dataclass(frozen=True)
class HttpBodies:
    batch: Sequence[bytes]  # batches of HTTP_BATCH asking for no inclusion proofs (as `tlog submit` does)
    with_proofs: Sequence[bytes]  # batches of HTTP_BATCH with the default answer: every inclusion proof
    single: Sequence[bytes]
    paced: Sequence[bytes]


def http_bodies(pool: Sequence[Submission], profile: Profile) -> HttpBodies:
    cuts = list(itertools.accumulate([0, profile.batch_budget, profile.proofs_budget, profile.single_budget]))
    parts = [pool[a:b] for a, b in itertools.pairwise(cuts)] + [pool[cuts[-1] : cuts[-1] + profile.paced_budget]]
    return HttpBodies(
        [entries_body(c, inclusion_proofs=False) for c in chunks(parts[0], HTTP_BATCH)],
        [entries_body(c) for c in chunks(parts[1], HTTP_BATCH)],
        [entries_body([s]) for s in parts[2]],
        [entries_body([s]) for s in parts[3]],
    )


def run_http_loads(data: Path, registry: Submission, bodies: HttpBodies, seconds: float) -> HttpLoads:
    with running_server(data) as server:
        register(server, registry)
        health_jobs = itertools.repeat(("GET", "/healthz", b""))
        health = measured(server, raw_closed_loop(server.port, 32, seconds / 2, health_jobs))
        batch = measured(server, raw_closed_loop(server.port, BATCH_CLIENTS, seconds, submission_jobs(bodies.batch)))
        proven = measured(
            server, raw_closed_loop(server.port, BATCH_CLIENTS, seconds, submission_jobs(bodies.with_proofs))
        )
        single = measured(server, raw_closed_loop(server.port, SINGLE_CLIENTS, seconds, submission_jobs(bodies.single)))
        rate = max(single.rate / 2, 1.0)
        open_loop = measured(server, raw_paced(server.port, rate, bodies.paced[: int(rate * seconds)]))
        return HttpLoads(health, batch, proven, single, open_loop, rate, server.rss_bytes())


def verify_cpu_seconds(count: int = 2000, direct: bool = False) -> float:
    """CPU seconds (this thread's) of one raw PyNaCl verification, best of three rounds: a cost that other
    programs on the machine do not stretch the way they stretch wall time. `direct`: libsodium's check as
    tlogcore's verifier calls it (keys.libsodium_verifies: no message buffer, no copy), not PyNaCl's
    `VerifyKey.verify`, which stays the ceiling (the library in use, as issue 20 sets it)."""
    signing = importlib.import_module("nacl.signing")
    key = signing.SigningKey(ISSUER_SEED)
    signature, public = key.sign(MESSAGE).signature, bytes(key.verify_key)
    verify = functools.partial(libsodium_verifies, public) if direct else key.verify_key.verify
    best = float("inf")
    for _ in range(3):
        started = time.thread_time()
        for _ in range(count):
            verify(MESSAGE, signature)
        best = min(best, time.thread_time() - started)
    return best / count


def parse_seconds(statements: Sequence[bytes]) -> float:
    """This thread's CPU seconds for one parse without the Ed25519 check, best of three rounds."""
    rounds = []
    for _ in range(3):
        started = time.thread_time()
        for data in statements:
            parse_statement(data, check_signature=False)
        rounds.append(time.thread_time() - started)
    return min(rounds) / len(statements)


def parse_row(statements: Sequence[bytes]) -> Row:
    """A signature worker's parse of one statement without its Ed25519 check (canonical form, fields, signature
    line), in this thread's CPU, best of three rounds, beside raw verify: the worker's share that is not the
    signature."""
    parse, verify = 1e6 * parse_seconds(statements), 1e6 * verify_cpu_seconds()
    return Row(
        "    its parse of one statement, signature aside (thread CPU)",
        f"{parse:.1f} us",
        f"raw verify {verify:.0f} us",
        f"{parse / verify:.2f} of a verification",
    )


def cpu_bound_row(load: Load, per_request: int) -> Row:
    """The most a submission path can reach on this machine's cores, from the CPU it spent per entry in `load`
    (server process, its signature workers, this client): every core busy, no wait anywhere. Beside it, raw
    verification's CPU per entry: their ratio is the best ratio to the verify ceiling this path can show on a
    quiet machine, whatever else ran during this one."""
    entries, cores = max(1, load.ok * per_request), os.cpu_count() or 1
    main, workers, client = (1e6 * cpu / entries for cpu in (load.server_cpu, load.workers_cpu, load.client_cpu))
    spent, verify = main + workers + client, 1e6 * verify_cpu_seconds()
    loop = 1e6 * load.main_cpu / entries
    return Row(
        "  its CPU per entry, and the rate that allows with every core busy",
        per_s(cores * 1e6 / spent),
        f"raw verify {verify:.0f} us of CPU per entry: {per_s(cores * 1e6 / verify)} on {cores} cores",
        f"{verify / spent:.2f} of raw verify at most; server process {main:.0f} us (event loop {loop:.0f}, its "
        f"other threads {main - loop:.0f}) + signature workers {workers:.0f} us + client {client:.0f} us per entry",
    )


def floor_row(load: Load, per_request: int, statements: Sequence[bytes]) -> Row:
    """The best ratio to raw verify this design allows: the signature workers at their floor (one raw verify and
    one parse per statement, this thread's CPU: no hand-off, no hash, no pickle) beside the server process's CPU
    per entry as measured in `load`. Issue 20 asks for 0.6."""
    server = 1e6 * load.server_cpu / max(1, load.ok * per_request)
    verify, parse = 1e6 * verify_cpu_seconds(), 1e6 * parse_seconds(statements)
    direct = 1e6 * verify_cpu_seconds(direct=True)
    return Row(
        "  the bound with the workers at their floor (raw verify + parse) and this server process",
        f"{verify / (verify + parse + server):.2f} of raw verify",
        f"raw verify {verify:.0f} us + parse {parse:.1f} us + server process {server:.0f} us per entry",
        f"0.6 needs the last two within {verify / 0.6 - verify:.0f} us; libsodium's check as the workers call it "
        f"{direct:.1f} us (raw verify, PyNaCl's VerifyKey.verify, {verify:.1f})",
    )


def batch_row(batch: Load, verify_ceiling: float) -> Row:
    batch_rate = batch.rate * HTTP_BATCH
    return Row(
        f"HTTP submit, batches of {HTTP_BATCH}, {BATCH_CLIENTS} clients, no proofs asked (as tlog submit): entries",
        per_s(batch_rate),
        f"raw verify {per_s(verify_ceiling)}",
        f"{batch_rate / verify_ceiling:.2f} of raw verify; goal >= 15,000/s and >= 0.6 of it; "
        f"request p50 {ms(percentile(batch.latencies, 0.5))}; {batch.cpu_note()}",
    )


def submit_only_rows(tmp: Path, pool: Sequence[Submission], registry: Submission, verify_ceiling: float) -> list[Row]:
    """--submit-only: issue 20's HTTP submit figure alone (batches of 1,000, no proofs asked), a few seconds per
    run, for alternating before/after runs on a shared machine."""
    data = tmp / "http"
    prepare_data(data)
    bodies = [entries_body(c, inclusion_proofs=False) for c in chunks(pool, HTTP_BATCH)]
    with running_server(data) as server:
        register(server, registry)
        jobs = submission_jobs(bodies)
        batch = measured(server, raw_closed_loop(server.port, BATCH_CLIENTS, SUBMIT_ONLY.seconds, jobs))
    sample = [s.data for s in pool[:2000]]
    return [batch_row(batch, verify_ceiling), cpu_bound_row(batch, HTTP_BATCH), floor_row(batch, HTTP_BATCH, sample)]


def http_rows(
    tmp: Path, pool: Sequence[Submission], registry: Submission, profile: Profile, verify_ceiling: float
) -> list[Row]:
    data = tmp / "http"
    prepare_data(data)
    loads = run_http_loads(data, registry, http_bodies(pool, profile), profile.seconds)
    batch, proven, single, open_loop = loads.batch, loads.with_proofs, loads.single, loads.open_loop
    proven_rate = proven.rate * HTTP_BATCH
    logged = 1 + (batch.ok + proven.ok) * HTTP_BATCH + single.ok + open_loop.ok
    return [
        Row(
            "server: one `tlog-server serve` process, default config",
            "",
            "",
            "flush_interval 100 ms, max_batch 10,000; uvicorn (h11), started by this script",
        ),
        Row("HTTP GET /healthz (one head query), 32 clients", per_s(loads.health.rate), "", loads.health.cpu_note()),
        batch_row(batch, verify_ceiling),
        cpu_bound_row(batch, HTTP_BATCH),
        parse_row([s.data for s in pool[:2000]]),
        floor_row(batch, HTTP_BATCH, [s.data for s in pool[:2000]]),
        Row(
            f"HTTP submit, batches of {HTTP_BATCH}, {BATCH_CLIENTS} clients, every inclusion proof in the answer",
            per_s(proven_rate),
            f"raw verify {per_s(verify_ceiling)}",
            f"{proven_rate / verify_ceiling:.2f} of raw verify (the default answer); "
            f"request p50 {ms(percentile(proven.latencies, 0.5))}; {proven.cpu_note()}",
        ),
        Row(
            f"HTTP submit, single statements, {SINGLE_CLIENTS} clients",
            per_s(single.rate),
            f"raw verify {per_s(verify_ceiling)}",
            f"p50 {ms(percentile(single.latencies, 0.5))}, "
            f"p99 {ms(percentile(single.latencies, 0.99))}; {single.cpu_note()}",
        ),
        Row(
            f"latency submit -> durable, open loop at {per_s(loads.open_loop_rate)} ({open_loop.requests:,} requests)",
            f"p50 {ms(percentile(open_loop.latencies, 0.5))}, p99 {ms(percentile(open_loop.latencies, 0.99))}",
            "",
            f"goal p99 <= 1 s; achieved {per_s(open_loop.rate)}; {open_loop.cpu_note()}",
        ),
        Row("server RSS after these phases", mib(loads.rss), "", f"log of {logged:,} entries"),
    ]


# --- 4 and 5. proofs on big trees, disk, RSS ------------------------------------


def disk_bytes(db: Path) -> int:
    """Database + WAL after a checkpoint (what a closed log occupies), and the same for its lookup file."""
    total = 0
    for path in (db, sqlite_schema.lookup_path(db)):
        if path.exists():
            with contextlib.closing(sqlite3.connect(path)) as connection:
                connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            wal = path.with_name(path.name + "-wal")
            total += path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
    return total


def disk_breakdown(db: Path, entries: int) -> str:
    """Bytes per entry of each table and index (SQLite's dbstat), largest first."""
    with contextlib.closing(sqlite3.connect(db)) as connection:
        rows = connection.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC").fetchall()
    return ", ".join(f"{name} {size / entries:,.0f}" for name, size in rows if size / entries >= 1)


async def storage_proofs(db: Path, leaves: Sequence[bytes], seconds: float) -> Load:
    """What the proof route does, minus HTTP: head, leaf lookup, proof hashes, through SQLiteStorage; one at a time."""
    storage = await SQLiteStorage.open(db)
    rng, load = random.Random(3), Load()
    try:
        started = time.perf_counter()
        while (now := time.perf_counter()) < started + seconds:
            head, leaf = await storage.head(), rng.choice(leaves)
            index = (await storage.find_leaves([leaf]))[leaf]
            await proofs.inclusion_proofs(storage, [index], head.size if head else 0)
            load.latencies.append(time.perf_counter() - now)
            load.statuses[200] += 1
        load.seconds = time.perf_counter() - started
    finally:
        await storage.close()
    return load


def proof_jobs(leaves: Sequence[bytes], seed: int) -> Iterator[Job]:
    rng = random.Random(seed)
    while True:
        yield ("GET", f"/api/v1/proof/inclusion?leaf_hash={rng.choice(leaves).hex()}", b"")


def proof_note(load: Load) -> str:
    per_core = load.ok / load.server_cpu if load.server_cpu else float("nan")
    return (
        f"p99 {ms(percentile(load.latencies, 0.99))} (goal <= 10 ms); {per_s(per_core)} per server "
        f"CPU-second (goal >= 5,000); {load.cpu_note()}"
    )


def server_proof_loads(data: Path, leaves: Sequence[bytes], seconds: float) -> tuple[Load, Load, int, int]:
    """Proofs over HTTP with the raw client, then with httpx; the server's RSS before and after."""
    with running_server(data) as server:
        rss_start = server.rss_bytes()
        raw = measured(server, raw_closed_loop(server.port, PROOF_CLIENTS, seconds, proof_jobs(leaves, 1)))
        viahttpx = measured(server, httpx_closed_loop(server.url, PROOF_CLIENTS, seconds, proof_jobs(leaves, 2)))
        return raw, viahttpx, rss_start, server.rss_bytes()


def one_tree_rows(
    tmp: Path,
    data: Path,
    datas: Sequence[bytes],
    leaves: Sequence[bytes],
    appended: int,
    per_batch: Sequence[float],
    seconds: float,
) -> list[Row]:
    """Figures for the log in `data` holding `datas` (the last `appended` of them appended in `per_batch` seconds
    each), next to a pymerkle tree of the same entries."""
    size, db = len(datas), data / DATABASE
    disk, breakdown = disk_bytes(db), disk_breakdown(db, len(datas))
    leaf_bytes = sum(map(len, datas)) / size
    direct = asyncio.run(storage_proofs(db, leaves, seconds / 2))
    raw, viahttpx, rss_start, rss_end = server_proof_loads(data, leaves, seconds)
    baseline_db = tmp / f"pymerkle-tree-{size}.db"
    built = pymerkle_baseline.append(baseline_db, [], datas, TREE_BATCH, False)
    baseline = pymerkle_baseline.prove(baseline_db, size, seconds)
    last = per_batch[-10:]  # about the last 100,000 entries: the rate at this size
    in_last = appended - TREE_BATCH * (len(per_batch) - len(last))
    return [
        Row(
            f"tree of {size:,}: built in-process, batches of {TREE_BATCH:,}",
            per_s(appended / sum(per_batch)),
            f"pymerkle append {per_s(size / built.seconds)}",
            f"last {in_last:,} entries: {per_s(in_last / sum(last))}",
        ),
        Row(
            f"  inclusion proof by leaf hash over HTTP, {PROOF_CLIENTS} clients (raw client)",
            per_s(raw.rate),
            f"pymerkle prove_inclusion by index, in-process: {per_s(baseline.rate)}, p99 {baseline.p99_ms:.2f} ms "
            f"(after {baseline.warmup_seconds:.1f} s warm-up)",
            proof_note(raw),
        ),
        Row(f"  same, {PROOF_CLIENTS} httpx async clients", per_s(viahttpx.rate), "", proof_note(viahttpx)),
        Row(
            "  same steps in-process through SQLiteStorage (no HTTP), one at a time",
            per_s(direct.rate),
            "",
            f"p99 {ms(percentile(direct.latencies, 0.99))}",
        ),
        Row(
            "  bytes on disk per entry (db + wal after checkpoint)",
            f"{disk / size:,.0f} B",
            f"minimum {leaf_bytes + 32:,.0f} B (average leaf {leaf_bytes:,.0f} + 32)",
            f"{disk / size / (leaf_bytes + 32):.2f}x; pymerkle {baseline_db.stat().st_size / size:,.0f} B "
            f"(leaves only); total {mib(disk)}; by table/index (B/entry): {breakdown}",
        ),
        Row("  server RSS", f"{mib(rss_start)} at start", "", f"{mib(rss_end)} after the proof phases"),
    ]


def tree_rows(
    tmp: Path, pool: Sequence[Submission], registry: Submission, sizes: Iterable[int], seconds: float
) -> list[Row]:
    """Grow one log to each size in turn (leaf 0 is the registry statement) and measure it there."""
    data = tmp / "tree"
    prepare_data(data)
    rows: list[Row] = []
    done = 0
    for size in sizes:
        more = pool[done : size - 1]
        per_batch, _ = asyncio.run(sequence(data / DATABASE, more, TREE_BATCH, [registry] if done == 0 else []))
        done = size - 1
        datas = [registry.data, *(s.data for s in pool[:done])]
        rows += one_tree_rows(tmp, data, datas, [s.leaf_hash for s in pool[:done]], len(more), per_batch, seconds)
    return rows


# --- the report -------------------------------------------------------------------


def print_rows(title: str, rows: Sequence[Row]) -> None:
    print(f"\n{title}")
    for row in rows:
        print(f"  {row.figure:<78} {row.value:>16}")
        for extra in (row.baseline, row.note):
            if extra:
                print(f"  {'':<6}{extra}")


def print_markdown(rows: Sequence[Row]) -> None:
    print("\n| figure | value | baseline in the same run | notes |\n|---|---:|---|---|")
    for row in rows:
        print(f"| {row.figure.strip()} | {row.value} | {row.baseline} | {row.note} |")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="about one minute: smaller sizes, shorter phases")
    parser.add_argument("--submit-only", action="store_true", help="the HTTP submit batch figure alone (A/B runs)")
    args = parser.parse_args(argv)
    profile = SUBMIT_ONLY if args.submit_only else QUICK if args.quick else FULL
    started = time.perf_counter()
    print("log-server benchmark" + (" (--quick)" if profile is QUICK else ""))
    for line in machine_info():
        print("  " + line)
    when = int(time.time()) - 3600
    registry = issuer_add(when)
    count = max(
        *profile.tree_sizes,
        profile.integration_entries,
        profile.batch_budget + profile.proofs_budget + profile.single_budget + profile.paced_budget,
    )
    t = time.perf_counter()
    pool = make_pool(count, when)
    # The server's own collector settings (logserver/cli.py), taken after the pool is made, as the server takes them
    # after start-up: without them each full collection walked the pool's ~10^7 objects (0.6 s each; 6-8 us per
    # entry of part 1 at 200,000 entries), a cost of this benchmark's pre-signed statements, not of the sequencer.
    freeze_start_up()
    print(f"  signed {count:,} statements in {time.perf_counter() - t:.1f} s (not timed below)", flush=True)
    all_rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="log-bench-") as tmp_name:
        tmp = Path(tmp_name)
        verify, ceiling = verify_rows(2.0 if profile is FULL else 1.0)
        print_rows("Ed25519 verification (the ceiling for submissions)", verify)
        if profile is SUBMIT_ONLY:
            submit = submit_only_rows(tmp, pool[: profile.batch_budget], registry, ceiling)
            print_rows("2. HTTP submit, every signature verified", submit)
            return
        integration = integration_rows(tmp, pool[: profile.integration_entries], registry, profile.batch_sizes)
        print_rows("1. Integration rate (in-process, no signature checks)", integration)
        http = http_rows(tmp, pool, registry, profile, ceiling)
        print_rows("2-3. End to end over HTTP, every signature verified", http)
        trees = tree_rows(tmp, pool, registry, profile.tree_sizes, profile.seconds)
        print_rows("4-5. Proofs, disk and memory on big trees", trees)
        all_rows = verify + integration + http + trees
    print_markdown(all_rows)
    print(
        f"\ntotal time {time.perf_counter() - started:.0f} s; other processes on the machine may add noise "
        f"(load average now {os.getloadavg()[0]:.2f})"
    )


if __name__ == "__main__":
    main()
