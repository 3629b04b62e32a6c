"""The witness verifies and cosigns in worker processes (witness/cosigner.py, config `workers`), against the real
`tlog-witness serve`: requests batched together keep their own outcomes, a worker killed with -9 is replaced and
what it held is signed again, and the workers leave with the witness, even after a kill -9 of the witness."""

import asyncio
import functools
import hashlib
import os
import pickle
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import proctree
from proctree import alive
from witness_helpers import TinyLog, WitnessProcess, tiny_log, write_config, write_key

from tlogcore.cosignature import CosignatureV1Signer
from tlogcore.note import open_note
from tlogcore.vkeys import parse_verifier_key
from witness.cosigner import MIN_SHARE, check_and_cosign, split_batches
from witness.witness import TreeHead
from witness.workerprocess import _frame

LOGS = [tiny_log(f"log.example.test/workers-{i}", 0x60 + i) for i in range(6)]
UNKNOWN = tiny_log("log.example.test/not-configured", 0x70)
NAME = "witness.example.test"


def children(pid: int, workers_only: bool = True) -> set[int]:
    """The processes whose parent is `pid`: the workers only, or any."""
    return proctree.children(pid, b"witness.workerprocess" if workers_only else b"")


def wait_until(condition: object, seconds: float = 20) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def witness_for(tmp_path: Path, workers: int | None = None) -> WitnessProcess:
    for log in [*LOGS, UNKNOWN]:
        log.grow(12)
    data = tmp_path / "data"
    write_key(data, NAME, b"\x44" * 32)
    config = write_config(tmp_path / "w.toml", NAME, [(log.origin, log.vkey) for log in LOGS])
    if workers is not None:
        config.write_text(f"workers = {workers}\n" + config.read_text())
    return WitnessProcess(data, config)


def forged(log: TinyLog, size: int) -> bytes:
    """A body whose log signature does not verify (one byte of the signature changed)."""
    body = log.body(0, size)
    head, _, tail = body.rpartition(b" ")
    return head + b" " + (b"B" if tail[:1] != b"B" else b"C") + tail[1:]


async def post_all(url: str, bodies: list[bytes]) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=url, timeout=20) as http:
        return list(await asyncio.gather(*(http.post("/add-checkpoint", content=body) for body in bodies)))


def check_cosigned(witness: WitnessProcess, log: TinyLog, body: bytes, response: httpx.Response) -> None:
    assert response.status_code == 200, response.text
    key = parse_verifier_key(witness.vkey)
    assert open_note(body.split(b"\n\n", 1)[1] + response.content, [log.key.verifier(), key]).verified_by(key)


def test_requests_sent_together_keep_their_own_outcomes(tmp_path: Path) -> None:
    """Good and bad bodies in flight at once, so they share batches: each gets exactly its own answer."""
    with witness_for(tmp_path) as witness:
        assert witness.process is not None and len(children(witness.process.pid)) == 2
        good = [log.body(0, 5) for log in LOGS]
        bad = [forged(LOGS[0], 7), b"old 0\nnot base64\n\nx\n", UNKNOWN.body(0, 3), LOGS[1].body(0, 9)]
        responses = asyncio.run(post_all(witness.url, [*good, *bad]))
        for log, body, response in zip(LOGS, good, responses, strict=False):
            if log is not LOGS[1]:  # LOGS[1] races two bodies from size 0: checked below
                check_cosigned(witness, log, body, response)
        # a forged signature, a malformed body, an unknown log, a stale old size (the log is at 5 by now, or
        # at 9 if this one won the race against the good body: then that one got the 409)
        statuses = [r.status_code for r in responses[len(good) :]]
        assert statuses[:3] == [403, 400, 404]
        assert sorted([statuses[3], responses[1].status_code]) == [200, 409]


def test_a_killed_worker_is_replaced_and_the_witness_keeps_cosigning(tmp_path: Path) -> None:
    with witness_for(tmp_path) as witness:
        assert witness.process is not None
        pid = witness.process.pid
        first = children(pid)
        assert len(first) == 2
        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        bodies = [log.body(0, 6) for log in LOGS]
        responses = asyncio.run(post_all(witness.url, bodies))
        for log, body, response in zip(LOGS, bodies, responses, strict=True):
            check_cosigned(witness, log, body, response)
        assert wait_until(lambda: len(children(pid)) == 2 and victim not in children(pid))
        later = [log.body(6, 8) for log in LOGS]
        for log, body, response in zip(LOGS, later, asyncio.run(post_all(witness.url, later)), strict=True):
            check_cosigned(witness, log, body, response)


def test_workers_leave_with_the_witness_even_after_kill_9(tmp_path: Path) -> None:
    witness = witness_for(tmp_path)
    witness.start()
    try:
        assert witness.process is not None
        assert len(children(witness.process.pid)) == 2
        everyone = children(witness.process.pid, workers_only=False)
        witness.kill9()
        assert wait_until(lambda: not any(alive(pid) for pid in everyone)), "a child outlived the witness"
        witness.start()  # and a restart starts fresh ones
        assert witness.process is not None and len(children(witness.process.pid)) == 2
    finally:
        witness.stop()


def test_workers_0_signs_in_the_server_itself(tmp_path: Path) -> None:
    with witness_for(tmp_path, workers=0) as witness:
        assert witness.process is not None and not children(witness.process.pid, workers_only=False)
        body = LOGS[2].body(0, 4)
        check_cosigned(witness, LOGS[2], body, asyncio.run(post_all(witness.url, [body]))[0])


def test_a_worker_killed_mid_stream_loses_no_request(tmp_path: Path) -> None:
    """Six logs advancing one entry at a time, concurrently; a worker is killed -9 once the streams are under way:
    whatever it held is signed again, so every request is answered 200 and every log reaches its end."""
    steps = 10

    async def stream(url: str, log: TinyLog, statuses: list[int], started: asyncio.Event) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=20) as http:
            for size in range(1, steps + 1):
                response = await http.post("/add-checkpoint", content=log.body(size - 1, size))
                statuses.append(response.status_code)
                if size == 2:
                    started.set()

    async def run(witness: WitnessProcess, pid: int) -> list[int]:
        statuses: list[int] = []
        started = asyncio.Event()
        streams = [asyncio.create_task(stream(witness.url, log, statuses, started)) for log in LOGS]
        await started.wait()
        os.kill(min(children(pid)), signal.SIGKILL)
        await asyncio.gather(*streams)
        return statuses

    with witness_for(tmp_path) as witness:
        assert witness.process is not None
        statuses = asyncio.run(run(witness, witness.process.pid))
        assert statuses == [200] * (steps * len(LOGS))
        for log in LOGS:
            head = httpx.get(f"{witness.url}/{hashlib.sha256(log.origin.encode()).hexdigest()}/checkpoint", timeout=10)
            assert head.status_code == 200 and head.content.split(b"\n")[1] == str(steps).encode()


def test_when_no_worker_can_start_the_answer_is_503_and_the_witness_recovers(tmp_path: Path) -> None:
    """Workers killed while their key file is away cannot be replaced: requests get 503 with a JSON reason and
    Retry-After (not a hang, not a 500); with the file back, the next request starts a worker and is cosigned."""
    with witness_for(tmp_path) as witness:
        assert witness.process is not None
        pid = witness.process.pid
        key, away = witness.data / "witness.key", witness.data / "witness.key.away"
        key.rename(away)
        for worker in children(pid):
            os.kill(worker, signal.SIGKILL)
        refused = httpx.post(f"{witness.url}/add-checkpoint", content=LOGS[3].body(0, 2), timeout=60)
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"] == "workers_unavailable" and refused.headers["retry-after"]
        away.rename(key)
        deadline = time.monotonic() + 60
        while True:  # a start begun while the file was away may still fail once
            response = httpx.post(f"{witness.url}/add-checkpoint", content=LOGS[3].body(0, 2), timeout=60)
            if response.status_code != 503 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        check_cosigned(witness, LOGS[3], LOGS[3].body(0, 2), response)


def stored(head: TreeHead | None, origin: str) -> TreeHead | None:
    return head


def test_a_cosignature_crosses_from_a_worker_as_builtins_and_arrives_whole() -> None:
    """What a worker sends back names no class: a dataclass graph pickled each class by name, 15-20 µs per answer
    on each side (loadtest/witness_bench.py --phases); the event loop gets every field back."""
    log = LOGS[0]
    log.grow(12)
    signer = CosignatureV1Signer(NAME, b"\x61" * 32, lambda: 1_750_000_000)
    trusted = {log.origin: [parse_verifier_key(log.vkey)]}
    for head in (None, TreeHead(5, log.root(5))):
        old = head.size if head is not None else 0
        signed = check_and_cosign(log.body(old, 9), functools.partial(stored, head), trusted, [signer])
        wire = pickle.dumps([signed], pickle.HIGHEST_PROTOCOL)
        assert b"witness.witness" not in wire and b"tlogcore" not in wire and b"Cosigned" not in wire
        assert pickle.loads(wire) == [signed]
        assert signed.old_size == old and signed.checkpoint.size == 9 and signed.head == head


def test_a_turns_bodies_are_split_over_the_workers_only_in_shares_worth_a_hand_off() -> None:
    """Each batch costs a worker wake-up and a pickle each way (docs/performance.md, "The witness", third round):
    a few bodies go to one worker whole; a turn of many is split, one share per worker, order kept."""
    assert split_batches([], 2) == []
    assert split_batches(list(range(5)), 2) == [list(range(5))]
    assert split_batches(list(range(MIN_SHARE * 2 - 1)), 2) == [list(range(MIN_SHARE * 2 - 1))]
    assert split_batches(list(range(32)), 2) == [list(range(16)), list(range(16, 32))]
    assert split_batches(list(range(33)), 2) == [list(range(17)), list(range(17, 33))]
    assert split_batches(list(range(32)), 3) == [list(range(11)), list(range(11, 22)), list(range(22, 32))]
    assert split_batches(list(range(7)), 1) == [list(range(7))] and split_batches(list(range(3)), 0) == [[0, 1, 2]]
    for count in range(1, 80):
        for workers in (1, 2, 3):
            batches = split_batches(list(range(count)), workers)
            assert [item for batch in batches for item in batch] == list(range(count))
            assert len(batches) == max(1, min(workers, count // MIN_SHARE))
            assert len(batches) == 1 or min(map(len, batches)) >= MIN_SHARE
            assert max(map(len, batches)) - min(map(len, batches)) <= 1


def test_a_worker_whose_caller_is_gone_mid_request_exits_quietly() -> None:
    """The caller killed while a worker computes (the indexer's process replaced while its shards work): the
    worker's answer meets a closed socket. It once died on a BrokenPipeError with a traceback on stderr, in the
    server's log, for what is the normal end of its life."""
    ours, theirs = socket.socketpair()
    command = [sys.executable, "-m", "witness.workerprocess", str(theirs.fileno())]
    process = subprocess.Popen(command, pass_fds=(theirs.fileno(),), stderr=subprocess.PIPE)
    theirs.close()
    with ours:
        ours.sendall(_frame(functools.partial(functools.partial, time.sleep)))  # the handler: time.sleep
        assert ours.recv(4096)  # ready
        ours.sendall(_frame(0.5))  # a request taking half a second
    _, stderr = process.communicate(timeout=20)  # our side closed while it sleeps: its answer has nowhere to go
    assert (process.returncode, stderr) == (0, b"")
