"""How many cosignatures per second one witness sustains over HTTP, next to the Ed25519 ceiling of the same run.

    .venv/bin/python -m loadtest.witness_bench [--seconds 10] [--concurrency 32] [--httpx-concurrency 8]
    .venv/bin/python -m loadtest.witness_bench --quick          (3 s per row, about 70 s)
    .venv/bin/python -m loadtest.witness_bench --quick --setups 2x0,2x1   (processes x workers, one run each)
    .venv/bin/python -m loadtest.witness_bench --write-lock 3   (two processes' commits: busy handler or flock)

Starts `tlog-witness serve` (uvicorn on uvloop + httptools; for each of `--setups`, default 1x2 then 2x0:
`processes` servers on the port, each with `workers` processes that verify and cosign; SQLite WAL +
synchronous=FULL, group commit: every cosignature is committed and fsynced before it is returned) in a
subprocess on 127.0.0.1, then drives it over keep-alive connections, per client:

* GET /healthz: the HTTP stack alone (uvicorn + httptools + starlette), no work;
* advance: one log per connection, each request growing its log by one entry
  with a valid consistency proof (sizes serialise per log, so one log each);
* resubmit: one log at a fixed size, the same checkpoint with an empty proof
  again and again; tlog-witness answers each with a fresh cosignature, and each
  is still a compare-and-swap on (size, root) and a commit.

Two clients: httpx (what `witness.client` uses; on this machine its async
client, not the witness, is the limit, as its /healthz row shows) and a
minimal asyncio HTTP/1.1 client whose cost is a few µs per request, so its rows
measure the server. Per request the witness verifies one Ed25519 log signature
and makes one Ed25519 cosignature: "sign + verify" on one core is the ceiling.

wrk (Debian package `wrk`: `apt-get install wrk`; a C load generator, on one thread) posts the
resubmit body and GETs /healthz too: it costs the machine a few µs a request where the Python
clients cost tens, so its rows leave both cores to the server. The advance rows need each log's
requests in order, one connection per log, which only the Python clients do.

The raw client (and wrk) also drive a no-work bound: the witness's own app class, served
with the witness's own uvicorn settings, whose POST /add-checkpoint reads the
same body and answers a cosignature-sized line without parsing, verifying,
signing or storing anything (`--bare-server`). Each row also gives the CPU the
server used per answer (its processes and their workers, from /proc): a figure a
busy machine disturbs less than the rate, and the share of the ceiling that CPU would give with every core
busy ("CPU bound": near the row's own share, CPU per cosignature is what stops it). A second wrk row with 4
connections shows that CPU growing as the batches shrink (docs/performance.md, "The witness"). Published
anchor: a Go witness (litewitness) sustains about 250–290 requests/s. Prints figures; asserts nothing.
"""

import argparse
import asyncio
import os
import pickle
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from loadtest import witness_writers
from loadtest.localproc import free_port
from loadtest.witness_drivers import DRIVERS, LOCALHOST, Bodies, Tally, per_sender, repeat
from loadtest.wrk_reads import WRK, parse_wrk
from tlogcore import merkle
from tlogcore.checkpoint import Checkpoint
from tlogcore.cosignature import CosignatureV1Signer
from tlogcore.keys import Ed25519Signer
from tlogcore.note import OpenedNote, sign_note
from witness.app import MAX_BODY_SIZE, WitnessApp, read_body, send_text
from witness.cli import serve_app
from witness.client import request_body
from witness.cosigner import Signed, stored_head
from witness.storage import LogState, SQLiteStorage, connect
from witness.witness import AddCheckpoint, TreeHead, check_update, cosign, parse_request, verify_log_signature

SETUPS = "1x2,2x0"  # the witness's processes x workers: the default config, then two servers on the port
FIXED_SIZE = 1000  # the size of the log the "resubmit" rows post again and again
# What the no-work server answers: as long as one Ed25519 cosignature line of a witness named "bench.witness".
BARE_ANSWER = "\u2014 bench.witness " + "A" * 100 + "\n"


class BenchLog:
    """A log of `count` entries (`entry <i>`) under one origin, for building requests."""

    def __init__(self, origin: str, key: Ed25519Signer, stored: list[bytes]) -> None:
        self.origin, self.key, self.stored = origin, key, stored

    def _fold(self, plan: merkle.HashPlan) -> list[bytes]:
        return plan.assemble([self.stored[i] for i in plan.stored_indexes])

    def checkpoint(self, size: int) -> bytes:
        root = self._fold(merkle.root_plan(size))[0] if size else merkle.EMPTY_ROOT
        return sign_note(Checkpoint(self.origin, size, root).text, [self.key])

    def body(self, old: int, new: int) -> bytes:
        return request_body(old, self._fold(merkle.consistency_plan(old, new)), self.checkpoint(new))


def stored_hashes(count: int) -> list[bytes]:
    return merkle.append_leaves(0, [], [merkle.leaf_hash(b"entry %d" % i) for i in range(count)]).new_hashes


def ceiling(seconds: float = 1.0) -> tuple[float, float, float]:
    """Raw Ed25519 sign calls/s, verify calls/s, and (sign + verify) pairs/s, on a checkpoint-sized message."""
    key = Ed25519Signer("bench.example/log", b"\x07" * 32)
    verifier = key.verifier()
    message = b"cosignature/v1\ntime 1700000000\n" + Checkpoint("bench.example/log", 1000, b"\x01" * 32).text.encode()
    signature = key.sign(message)

    def rate(work: Callable[[], object]) -> float:
        done, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds:
            for _ in range(200):
                work()
            done += 200
        return done / elapsed

    signs = rate(lambda: key.sign(message))
    verifies = rate(lambda: verifier.verify(message, signature))
    return signs, verifies, 1 / (1 / signs + 1 / verifies)


def start_witness(
    directory: Path, logs: list[BenchLog], port: int, processes: int = 1, workers: int = 2
) -> subprocess.Popen[bytes]:
    config = directory / "witness.toml"
    config.write_text(
        f'name = "bench.witness"\nprocesses = {processes}\nworkers = {workers}\n'
        + "".join(f'[[log]]\norigin = "{log.origin}"\nvkey = "{log.key.verifier().vkey}"\n' for log in logs)
    )
    return start_server(
        [
            sys.executable,
            "-m",
            "witness.cli",
            "serve",
            "--data",
            str(directory / "data"),
            "--config",
            str(config),
            "--listen",
            f"{LOCALHOST}:{port}",
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        port,
    )


def start_server(command: list[str], port: int) -> subprocess.Popen[bytes]:
    """Run `command` and wait until it answers GET /healthz on `port`."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    with httpx.Client() as http:
        while time.monotonic() < deadline:
            try:
                if http.get(f"http://{LOCALHOST}:{port}/healthz").status_code == 200:
                    return process
            except httpx.TransportError:
                time.sleep(0.05)
    process.kill()
    raise SystemExit(f"{command[2]} did not start")


def bare_app() -> WitnessApp:
    """The witness's app class with a POST /add-checkpoint that reads the body, then answers without any work."""

    async def add_checkpoint(scope: Scope, receive: Receive, send: Send) -> None:
        await read_body(scope, receive, MAX_BODY_SIZE)
        await send_text(send, BARE_ANSWER)

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok\n")

    return WitnessApp(add_checkpoint, [Route("/healthz", healthz, methods=["GET"])])


def _cpu_seconds(stat: Path) -> tuple[int, float]:
    """(parent pid, user + system CPU seconds) of one /proc stat file."""
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _tree(pid: int) -> dict[int, float]:
    """`pid` and every process descended from it (its server processes, their cosigning workers): CPU seconds."""
    parents: dict[int, int] = {}
    seconds: dict[int, float] = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            parents[int(entry)], seconds[int(entry)] = _cpu_seconds(Path(f"/proc/{entry}/stat"))
        except OSError:  # it ended meanwhile
            continue
    tree, grew = {pid}, True
    while grew:
        more = {child for child, parent in parents.items() if parent in tree} - tree
        tree |= more
        grew = bool(more)
    return {member: seconds.get(member, 0.0) for member in tree}


def _event_loop_seconds(pid: int) -> float:
    """The main thread of `pid` when it is a server (not a cosigning worker): where its event loop runs."""
    try:
        if b"witness.workerprocess" in Path(f"/proc/{pid}/cmdline").read_bytes():
            return 0.0
        return _cpu_seconds(Path(f"/proc/{pid}/task/{pid}/stat"))[1]
    except OSError:
        return 0.0


def process_cpu(pid: int) -> tuple[float, float]:
    """CPU seconds used by `pid` and the processes under it still running (the witness's server processes and
    their workers), and by the servers' main threads alone (the event loops, one core bounding each), from /proc
    (Linux; zeros elsewhere)."""
    if not os.path.isdir("/proc"):
        return 0.0, 0.0
    tree = _tree(pid)
    return sum(tree.values()), sum(_event_loop_seconds(member) for member in tree)


def cpu_since(pid: int, before: tuple[float, float]) -> tuple[float, float]:
    now = process_cpu(pid)
    return now[0] - before[0], now[1] - before[1]


def cpu_bound(cpu: tuple[float, float], answers: float, pairs: float | None) -> str:
    """The share of the ceiling the server would reach with every core of the machine busy at this row's CPU per
    answer (clients given nothing): what stops the row once it is above its figure, the CPU the server spends per
    cosignature rather than waiting. Under the row's share, the rest is idle time or the client's CPU."""
    if answers <= 0 or cpu[0] <= 0 or not pairs:
        return "    -"
    return f"{(os.cpu_count() or 1) * answers / cpu[0] / pairs:5.2f}"


def per_answer(cpu: tuple[float, float], answers: float) -> str:
    """'all/loop' µs of CPU per answer."""
    if answers <= 0:
        return f"{'-':>9}"
    return f"{cpu[0] * 1e6 / answers:4.0f}/{cpu[1] * 1e6 / answers:<4.0f}"


def row(name: str, tally: Tally, elapsed: float, ceiling_pairs: float | None, cpu: tuple[float, float]) -> None:
    ok = len(tally.latencies)
    rate = ok / elapsed
    lat = sorted(tally.latencies) or [0.0]
    p50, p99 = statistics.median(lat) * 1000, lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000
    others = [f"{s}: {n}" for s, n in sorted(tally.statuses.items()) if s != 200]
    if tally.exhausted:
        others.append(f"{tally.exhausted} senders ran out of requests")
    share = f"{rate / ceiling_pairs:5.2f}" if ceiling_pairs else "    -"
    print(
        f"  {name:<54} {ok:>8,} {rate:>8,.0f}/s {p50:>7.1f} {p99:>7.1f} {per_answer(cpu, ok)}   {share}   "
        f"{cpu_bound(cpu, ok, ceiling_pairs)}   "
        f"{', '.join(others) or '-'}"
    )


Scenario = tuple[str, Bodies, float | None]  # name, what each sender posts, the ceiling its rate is compared with


def run_rows(url: str, pid: int, kind: str, tasks: int, seconds: float, scenarios: list[Scenario]) -> None:
    """Each scenario for `seconds` through client `kind`, one row each, with the server's CPU per answer."""
    for name, bodies, ceiling_pairs in scenarios:
        cpu_before = process_cpu(pid)
        tally, elapsed = asyncio.run(DRIVERS[kind](url, bodies, tasks, seconds))
        row(f"{kind} ({tasks}): {name}", tally, elapsed, ceiling_pairs, cpu_since(pid, cpu_before))


def print_ceiling() -> float:
    signs, verifies, pairs = ceiling()
    print("\nceiling (this process, one core)")
    print(f"  {'raw Ed25519 sign calls':<54} {signs:>19,.0f}/s")
    print(f"  {'raw Ed25519 verify calls':<54} {verifies:>19,.0f}/s")
    print(f"  {'sign + verify (one cosignature of work)':<54} {pairs:>19,.0f}/s")
    return pairs


WRK_POST = """-- POST the file named by WRK_BODY with every request
local file = io.open(os.getenv("WRK_BODY"), "rb")
wrk.method, wrk.body = "POST", file:read("*a")
file:close()
"""


def wrk_rows(url: str, pid: int, body: bytes, connections: int, seconds: float, pairs: float, what: str) -> None:
    """wrk (C; a few µs a request, so nearly both cores stay the server's) POSTing `body` again and again, and
    GET /healthz, on one thread; skipped with a line when wrk is not installed."""
    if not Path(WRK).exists():
        print(f"  wrk: {WRK} is missing (apt-get install wrk): its rows are skipped")
        return
    with tempfile.TemporaryDirectory(prefix="witness-wrk-") as directory:
        lua, body_file = Path(directory) / "post.lua", Path(directory) / "body"
        lua.write_text(WRK_POST)
        body_file.write_bytes(body)
        for name, script, target in [(what, ["-s", str(lua)], "/add-checkpoint"), ("GET /healthz", [], "/healthz")]:
            before = process_cpu(pid)
            command = [WRK, "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency", *script, url + target]
            done = subprocess.run(command, capture_output=True, text=True, check=True, env={"WRK_BODY": str(body_file)})
            result, cpu = parse_wrk(done.stdout), cpu_since(pid, before)
            share = f"{result.rate / pairs:5.2f}" if target != "/healthz" else "    -"
            print(
                f"  {f'wrk ({connections}): {name}':<54} {'':>8} {result.rate:>8,.0f}/s {result.p50_ms:>7.1f} "
                f"{result.p99_ms:>7.1f} {per_answer(cpu, result.rate * seconds)}   {share}   "
                f"{cpu_bound(cpu, result.rate * seconds, pairs if target != '/healthz' else None)}   "
                f"{f'errors or non-200: {result.errors}' if result.errors else '-'}"
            )


def measure_bare(directory: Path, body: bytes, tasks: int, seconds: float, pairs: float) -> None:
    """The no-work bound: the witness's HTTP stack alone, POSTed the same body by the raw client and by wrk."""
    port = free_port()
    process = start_server([sys.executable, "-m", "loadtest.witness_bench", "--bare-server", str(port)], port)
    try:
        url = f"http://{LOCALHOST}:{port}"
        scenario: Scenario = ("POST, same body, no work (the HTTP stack's bound)", repeat(body), pairs)
        run_rows(url, process.pid, "raw", tasks, seconds, [scenario])
        wrk_rows(url, process.pid, body, tasks, seconds, pairs, "POST, same body, no work (the HTTP bound)")
    finally:
        process.terminate()
        process.wait(10)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 s per row (for `dev.py bench --quick`)")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each row")
    parser.add_argument("--concurrency", type=int, default=32, help="connections of the raw client")
    parser.add_argument("--httpx-concurrency", type=int, default=8, help="connections of the httpx client")
    parser.add_argument(
        "--setups",
        type=parse_setups,
        default=parse_setups(SETUPS),
        help=f"the witness's `processes`x`workers` for each run (default {SETUPS}: the shipped default, then two "
        "servers signing in their own event loops)",
    )
    parser.add_argument("--phases", type=int, metavar="N", help="only time a worker's steps, each over N bodies")
    parser.add_argument("--write-lock", type=float, metavar="SECONDS", help="only loadtest/witness_writers.py")
    parser.add_argument("--bare-server", type=int, metavar="PORT", help=argparse.SUPPRESS)  # the no-work server
    args = parser.parse_args(argv)
    if args.bare_server is not None:
        serve_app(bare_app(), (LOCALHOST, args.bare_server))
        return
    if args.quick:
        args.seconds = 3.0
    if args.write_lock:
        witness_writers.compare_writers(args.write_lock)
        return
    if args.phases:
        print_ceiling()
        print_phases(args.phases)
        return

    print(
        f"machine: {platform.machine()}, {platform.processor() or 'cpu'}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    pairs = print_ceiling()
    tasks = {"httpx": args.httpx_concurrency, "raw": args.concurrency}
    rate_cap = {"httpx": 1500, "raw": 8000}  # advance requests prepared per second of run
    steps = {kind: int(rate_cap[kind] * args.seconds * 1.2 / tasks[kind]) + 2 for kind in DRIVERS}
    hashes = stored_hashes(max(*steps.values(), FIXED_SIZE) + 2)

    def make_log(name: str, seed: int) -> BenchLog:
        origin = f"bench.example/{name}"
        return BenchLog(origin, Ed25519Signer(origin, seed.to_bytes(32, "big")), hashes)

    growing = {
        kind: [make_log(f"{kind}-grow-{i}", 1000 * k + i + 1) for i in range(tasks[kind])]
        for k, kind in enumerate(DRIVERS)
    }
    fixed = {kind: make_log(f"{kind}-fixed", 999_000 + k) for k, kind in enumerate(DRIVERS)}
    print(f"\nbuilding {sum(tasks[k] * steps[k] for k in DRIVERS):,} advance requests…", flush=True)
    advance = {
        kind: [[log.body(0, 1)] + [log.body(n, n + 1) for n in range(1, steps[kind])] for log in logs]
        for kind, logs in growing.items()
    }
    with tempfile.TemporaryDirectory(prefix="witness-bench-") as directory:
        every_log = [log for logs in growing.values() for log in logs] + list(fixed.values())
        for processes, workers in args.setups:  # each on a fresh database: the advance bodies start at size 0
            place = Path(directory) / f"p{processes}w{workers}"
            place.mkdir()
            port = free_port()
            process = start_witness(place, every_log, port, processes, workers)
            try:
                drive_witness(
                    f"http://{LOCALHOST}:{port}",
                    process,
                    processes,
                    workers,
                    fixed,
                    advance,
                    tasks,
                    args.seconds,
                    pairs,
                )
            finally:
                process.terminate()
                process.wait(10)
        measure_bare(Path(directory), fixed["raw"].body(FIXED_SIZE, FIXED_SIZE), tasks["raw"], args.seconds, pairs)
    print("\nCPU µs: the server's CPU per answer, all (its worker processes included) / its event loop's thread alone")
    print("(/proc; the clients' not counted); CPU bound: the share of the ceiling with every core busy at that CPU")
    print("per answer: near 'of ceiling', the server's CPU per cosignature is what stops the rate; the 4-connection")
    print("wrk row shows that CPU growing as the batches (per worker hand-off and per commit) shrink")
    print("wrk rows: a C client on one thread, so the server has nearly both cores (the rate wrk_reads.py reports)")
    print("anchor: a Go witness (litewitness) ~250-290 req/s published; goal here >= 0.5 of the sign + verify ceiling")


def drive_witness(
    url: str,
    process: "subprocess.Popen[bytes]",
    processes: int,
    workers: int,
    fixed: dict[str, BenchLog],
    advance: dict[str, list[list[bytes]]],
    tasks: dict[str, int],
    seconds: float,
    pairs: float,
) -> None:
    """Every row against one running witness (`processes` servers on its port, `workers` each)."""
    print(
        f"\nwitness over HTTP on 127.0.0.1: processes = {processes} (uvicorn on uvloop, httptools), workers = "
        f"{workers} each (verify and cosign), SQLite WAL, group commit (every cosignature fsynced before it is "
        f"answered); {seconds:g} s per row"
    )
    print(
        f"  {'client (connections): scenario':<54} {'200 OK':>8} {'rate':>10} {'p50 ms':>7} {'p99 ms':>7}"
        " CPU µs all/loop  of ceiling  CPU bound  other"
    )
    for kind in DRIVERS:
        asyncio.run(first_checkpoint(url, fixed[kind], FIXED_SIZE))
        same = fixed[kind].body(FIXED_SIZE, FIXED_SIZE)
        scenarios: list[Scenario] = [
            ("GET /healthz (HTTP stack, no work)", repeat(b""), None),
            ("advance: +1 entry, valid proof, log/conn", per_sender(advance[kind]), pairs),
            ("resubmit: same size, empty proof, 1 log", repeat(same), pairs),
        ]
        run_rows(url, process.pid, kind, tasks[kind], seconds, scenarios)
    same = fixed["raw"].body(FIXED_SIZE, FIXED_SIZE)
    for connections in (tasks["raw"], 4):  # 4: small batches, each hand-off and commit shared by few
        wrk_rows(url, process.pid, same, connections, seconds, pairs, "resubmit: same size, empty proof")


def parse_setups(text: str) -> list[tuple[int, int]]:
    """ "1x2,2x0" → [(1, 2), (2, 0)]: the witness's `processes` and `workers` for each run."""
    try:
        pairs = [tuple(int(n) for n in item.split("x")) for item in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: want PROCESSESxWORKERS[,…], e.g. 1x2,2x0") from None
    if not all(len(pair) == 2 and pair[0] >= 1 and pair[1] >= 0 for pair in pairs):
        raise argparse.ArgumentTypeError(f"{text!r}: want PROCESSESxWORKERS[,…], e.g. 1x2,2x0")
    return [(pair[0], pair[1]) for pair in pairs]


async def first_checkpoint(url: str, log: BenchLog, size: int) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        response = await http.post("/add-checkpoint", content=request_body(0, [], log.checkpoint(size)))
        if response.status_code != 200:
            raise SystemExit(f"could not start log {log.origin} at size {size}: {response.status_code} {response.text}")


# --- --phases: where a worker's CPU goes, step by step, in this process -----------------------------------------


def phase_costs(count: int) -> list[tuple[str, float]]:
    """µs of this thread's CPU per cosignature in each step a worker takes (witness/cosigner.py `check_and_cosign`,
    then the answer's pickle both ways), each step run over `count` advance bodies against a real SQLite head."""
    log = BenchLog("bench.example/phases", Ed25519Signer("bench.example/phases", b"\x05" * 32), stored_hashes(12))
    trusted = {log.origin: [log.key.verifier()]}
    signers = [CosignatureV1Signer("bench.witness", b"\x06" * 32, time.time)]
    with tempfile.TemporaryDirectory(prefix="witness-phases-") as directory:
        database = str(Path(directory) / "witness.db")
        first = parse_request(log.body(0, 10)).checkpoint
        asyncio.run(store_head(database, log.origin, LogState(first.size, first.root, log.checkpoint(10))))
        reader = connect(database)
        costs: list[tuple[str, float]] = []
        values: list[Any] = [log.body(10, 11)] * count

        def run(name: str, step: Callable[[Any], Any]) -> None:
            nonlocal values
            start = time.thread_time_ns()
            values = [step(value) for value in values]
            costs.append((name, (time.thread_time_ns() - start) / count / 1000))

        run("parse the body (request, note, checkpoint)", parse_request)
        run("verify the log signature", lambda request: (request, verify_log_signature(request, trusted)))
        run("read the stored head (SQLite, WAL)", lambda pair: (*pair, stored_head(reader, log.origin)))
        run("check the old size and the consistency proof", checked)
        run(
            "cosign (sign, lines, the note to keep)",
            lambda t: Signed(t[0].old_size, t[0].checkpoint, t[2], cosign(t[1], signers, t[0].note_bytes)),
        )
        run("pickle the outcome (in the worker)", lambda signed: pickle.dumps([signed], pickle.HIGHEST_PROTOCOL))
        run("unpickle it (in the event loop)", pickle.loads)
        reader.close()
    return costs


def checked(
    values: tuple[AddCheckpoint, OpenedNote, TreeHead | None],
) -> tuple[AddCheckpoint, OpenedNote, TreeHead | None]:
    check_update(values[0], values[2])
    return values


async def store_head(database: str, origin: str, state: LogState) -> None:
    storage = await SQLiteStorage.open(database)
    try:
        await storage.compare_and_swap(origin, None, state)
    finally:
        await storage.close()


def print_phases(count: int) -> None:
    costs = phase_costs(count)
    print(f"\none worker's steps, µs of CPU per cosignature ({count:,} advance bodies each, this process):")
    for name, micros in costs:
        print(f"  {name:<54} {micros:>8.1f}")
    print(f"  {'all steps':<54} {sum(micros for _, micros in costs):>8.1f}")


if __name__ == "__main__":
    main()
