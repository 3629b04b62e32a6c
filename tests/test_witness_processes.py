"""`processes = N` (witness/processes.py): several witness servers, each with its own event loop and group commit,
on one port or on one database. The attack first: processes racing different checkpoints of one size for one log
cosign at most one of them, many times over, through real `tlog-witness serve` processes on 127.0.0.1; a process
killed with -9 while the others serve loses no acknowledged state, and the state survives a restart."""

import asyncio
import base64
import hashlib
import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from test_witness_workers import alive, children, wait_until
from witness_helpers import TinyLog, WitnessProcess, tiny_log, write_config, write_key

from tlogcore import merkle
from tlogcore.errors import MalformedError
from tlogcore.note import open_note
from tlogcore.vkeys import parse_verifier_key
from witness.config import parse_config
from witness.storage import WRITE_LOCK_SUFFIX, LogState, SQLiteStorage

NAME = "witness.processes.test"
LOG = tiny_log("log.example.test/processes", 0x31)
ROUNDS = 60


@dataclass
class Branch(TinyLog):
    """A log whose leaf at each index in `labels` is that label: branches of one log share every other leaf, so a
    branch made at size s is consistent with the log at s and differs from its siblings from s on."""

    labels: dict[int, bytes] = field(default_factory=dict)

    def leaf(self, i: int) -> bytes:
        return merkle.leaf_hash(self.labels.get(i, b"entry %d" % i))

    def branch(self, at: int, label: bytes) -> "Branch":
        self.grow(at)
        return Branch(self.origin, self.key, None, list(self.stored), self.size, {**self.labels, at: label})


def trunk() -> Branch:
    return Branch(LOG.origin, LOG.key)


def witness_with(tmp_path: Path, processes: int, workers: int = 0, port: int | None = None) -> WitnessProcess:
    data = tmp_path / "data"
    write_key(data, NAME, b"\x45" * 32)
    config = write_config(tmp_path / f"w{processes}-{workers}.toml", NAME, [(LOG.origin, LOG.vkey)])
    config.write_text(f"processes = {processes}\nworkers = {workers}\n" + config.read_text())
    return WitnessProcess(data, config, port)


def servers(witness: WitnessProcess) -> set[int]:
    """The supervisor's server processes (its direct children)."""
    assert witness.process is not None
    return children(witness.process.pid, workers_only=False)


def cosigned(witness_vkey: str, log: TinyLog, body: bytes, response: httpx.Response) -> bool:
    if response.status_code != 200:
        return False
    key = parse_verifier_key(witness_vkey)
    return (
        open_note(body.split(b"\n\n", 1)[1] + response.content, [log.key.verifier(), key]).verified_by(key) is not None
    )


def stored_checkpoint(url: str) -> tuple[int, bytes]:
    answer = httpx.get(f"{url}/{hashlib.sha256(LOG.origin.encode()).hexdigest()}/checkpoint", timeout=10)
    assert answer.status_code == 200, answer.text
    lines = answer.content.split(b"\n")
    return int(lines[1]), lines[2]


async def post_fresh(url: str, body: bytes) -> httpx.Response:
    """On a new connection: SO_REUSEPORT spreads connections, not requests."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        return await http.post("/add-checkpoint", content=body)


async def race(urls: list[str], vkey: str, rounds: int, contenders: int) -> Branch:
    """Each round, `contenders` branches of the log at the stored size s post their own size s + 1 at once (round
    robin over `urls`): exactly one is cosigned, the others get 409 with s + 1; the winner's branch goes on."""
    log = trunk()
    first = log.body(0, 1)
    assert cosigned(vkey, log, first, await post_fresh(urls[0], first))
    for size in range(1, rounds + 1):
        branches = [log.branch(size, b"round %d contender %d" % (size, i)) for i in range(contenders)]
        bodies = [branch.body(size, size + 1) for branch in branches]
        answers = await asyncio.gather(*(post_fresh(urls[i % len(urls)], b) for i, b in enumerate(bodies)))
        winners = [i for i, (b, a) in enumerate(zip(bodies, answers, strict=True)) if cosigned(vkey, branches[i], b, a)]
        assert len(winners) == 1, f"round {size}: {[a.status_code for a in answers]}"
        for i, answer in enumerate(answers):
            if i != winners[0]:
                assert (answer.status_code, answer.text) == (409, f"{size + 1}\n"), f"round {size}"
        log = branches[winners[0]]
        for url in urls:  # every process serves the one root the winner got
            assert stored_checkpoint(url) == (size + 1, base64.b64encode(log.root(size + 1)))
    return log


def test_two_witnesses_on_one_database_race_one_size_and_cosign_one_root(tmp_path: Path) -> None:
    """Two whole `serve` processes on one data directory, each its own port: the compare-and-swap is the
    database's, across processes."""
    one = witness_with(tmp_path, 1)
    other = WitnessProcess(one.data, one.config)
    with one, other:
        asyncio.run(race([one.url, other.url], one.vkey, ROUNDS, 2))


def test_processes_on_one_port_race_one_size_and_cosign_one_root(tmp_path: Path) -> None:
    with witness_with(tmp_path, 2, workers=1) as witness:
        assert wait_until(lambda: len(servers(witness)) == 2)
        asyncio.run(race([witness.url], witness.vkey, ROUNDS, 4))


def socket_count(pid: int) -> int:
    return sum(os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:") for fd in os.listdir(f"/proc/{pid}/fd"))


def test_every_process_takes_connections_on_the_one_port(tmp_path: Path) -> None:
    with witness_with(tmp_path, 2) as witness:
        assert wait_until(lambda: len(servers(witness)) == 2)
        before = {pid: socket_count(pid) for pid in servers(witness)}
        clients = [httpx.Client(base_url=witness.url, timeout=10) for _ in range(24)]
        try:
            for client in clients:  # held open: each connection stays in the process that accepted it
                assert client.get("/healthz").status_code == 200
            gained = {pid: socket_count(pid) - count for pid, count in before.items()}
        finally:
            for client in clients:
                client.close()
        assert sum(gained.values()) == 24 and all(n > 0 for n in gained.values()), gained


async def advance(url: str, vkey: str, log: TinyLog, until: int, acknowledged: list[int]) -> None:
    """Grow the log one entry at a time to `until` over new connections, retrying what a dying process dropped
    (a 409 names the size it had stored before it died): every 200 is recorded."""
    size = stored = 0
    for _ in range(until * 20):  # bounded: a witness that stopped answering fails the test, not hangs it
        if size >= until:
            return
        body = log.body(stored, size + 1)
        try:
            answer = await post_fresh(url, body)
        except httpx.TransportError:
            await asyncio.sleep(0.05)
            continue
        if answer.status_code == 409:
            stored = size = int(answer.text)
            continue
        assert cosigned(vkey, log, body, answer), answer.text
        stored = size = size + 1
        acknowledged.append(size)
    assert size >= until, f"the log reached only size {size} of {until}"


def test_a_process_killed_with_9_loses_nothing_acknowledged_and_is_replaced(tmp_path: Path) -> None:
    witness = witness_with(tmp_path, 2, workers=1)
    log, acknowledged = tiny_log(LOG.origin, 0x31), list[int]()

    async def stream_and_kill(victim: int) -> None:
        task = asyncio.create_task(advance(witness.url, witness.vkey, log, 120, acknowledged))
        while len(acknowledged) < 30 and not task.done():
            await asyncio.sleep(0.01)
        os.kill(victim, signal.SIGKILL)
        await task

    with witness:
        first = servers(witness)
        assert len(first) == 2
        victim = min(first)
        asyncio.run(stream_and_kill(victim))
        assert max(acknowledged) >= 119 and len(acknowledged) > 60  # it went on after the kill, at 30
        assert wait_until(lambda: len(servers(witness)) == 2 and victim not in servers(witness))
    witness.start()  # and the state survives a restart
    try:
        assert stored_checkpoint(witness.url) == (120, base64.b64encode(log.root(120)))
        body = log.body(120, 121)
        assert cosigned(witness.vkey, log, body, httpx.post(f"{witness.url}/add-checkpoint", content=body))
    finally:
        witness.stop()


def test_the_processes_leave_with_the_supervisor_even_after_kill_9(tmp_path: Path) -> None:
    witness = witness_with(tmp_path, 2, workers=1)
    witness.start()
    try:
        assert wait_until(lambda: len(servers(witness)) == 2)
        everyone = {p for server in servers(witness) for p in children(server, workers_only=False)} | servers(witness)
        assert len(everyone) == 4  # two servers, a cosigning worker each
        witness.kill9()
        assert wait_until(lambda: not any(alive(pid) for pid in everyone)), "a process outlived the supervisor"
        witness.start()  # the port is free again
        assert wait_until(lambda: len(servers(witness)) == 2)
    finally:
        witness.stop()


def test_a_taken_port_is_one_line(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        witness = witness_with(tmp_path, 2, port=taken.getsockname()[1])
        with pytest.raises(RuntimeError, match="witness exited with 1") as refused:
            witness.start()
    err = witness.stderr_path.read_text().strip()
    assert err.startswith("Error: cannot listen on 127.0.0.1:") and "choose another --listen" in err, err
    assert len(err.splitlines()) == 1 and "Traceback" not in str(refused.value)


@pytest.mark.parametrize("value", ["0", "65", "true", '"2"', "1.5"])
def test_processes_must_be_a_whole_number_from_1_to_64(value: str) -> None:
    with pytest.raises(MalformedError, match="processes must be a whole number from 1 to 64"):
        parse_config(f'processes = {value}\n[[log]]\norigin = "{LOG.origin}"\nvkey = "{LOG.vkey}"\n')
    assert parse_config(f'[[log]]\norigin = "{LOG.origin}"\nvkey = "{LOG.vkey}"\n').processes == 1


def test_a_writer_waits_for_the_write_lock_another_process_holds(tmp_path: Path) -> None:
    """The flock beside the database (witness/storage.py `_holding`) orders the processes' commits: while another
    process holds it, a compare-and-swap waits and stores nothing; once it is let go, the swap commits."""
    database = str(tmp_path / "witness.sqlite")
    log = trunk()
    new = LogState(1, log.root(1), log.checkpoint(1))

    async def run() -> None:
        storage = await SQLiteStorage.open(database)
        try:
            holder = subprocess.Popen(
                [sys.executable, "-c", HOLD_LOCK, database + WRITE_LOCK_SUFFIX], stdout=subprocess.PIPE
            )
            try:
                assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
                swap = asyncio.create_task(storage.compare_and_swap(LOG.origin, None, new))
                await asyncio.sleep(0.5)
                assert not swap.done() and await storage.latest(LOG.origin) is None
            finally:
                holder.kill()
                holder.wait(10)
                if holder.stdout is not None:
                    holder.stdout.close()
            await asyncio.wait_for(swap, 10)
            assert await storage.latest(LOG.origin) == new
        finally:
            await storage.close()

    asyncio.run(run())


HOLD_LOCK = """
import fcntl, os, sys, time
lock = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(lock, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(60)
"""
