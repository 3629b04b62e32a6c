"""`[server] workers = 2` (logserver/workers.py), a real `tlog-server serve` on 127.0.0.1: both processes answer on
the one port; a submission that lands on the process that does not sequence is forwarded and acknowledged only once
it is in the log; a worker killed with kill -9 is started again (the sequencer's role passes to the survivor); and
SIGTERM stops every process cleanly."""

import base64
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from log_harness import LogProcess, issue, post_statements, register_issuer, running_log, seed
from proctree import children

from logserver.workers import serving_socket
from tlogcore.keys import Ed25519Signer
from tlogcore.merkle import leaf_hash

ISSUER = Ed25519Signer("issuer.workers.example", seed(71))
CONFIG = "[server]\nworkers = 2\n\n[sequencer]\nlease_ttl_seconds = 1.0\n"


def workers_of(server: LogProcess) -> set[int]:
    """The supervisor's worker processes (not the signature-check pools, which are their children)."""
    assert server.process is not None
    return children(server.process.pid)


def sequencing_seen(url: str, tries: int = 400) -> set[bool]:
    """The `sequencing` answers seen over fresh connections (each may land on either process)."""
    seen: set[bool] = set()
    for _ in range(tries):
        with httpx.Client(base_url=url, timeout=10) as fresh:
            seen.add(bool(fresh.get("/api/v1/log").json()["sequencing"]))
        if len(seen) == 2:
            break
    return seen


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[LogProcess]:
    with running_log(tmp_path, config_text=CONFIG) as server:
        deadline = time.monotonic() + 30
        while len(workers_of(server)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        yield server


FORWARDED: list[bool] = []  # per submission: did the answer come through the other process


def submit_fresh(url: str, origin: str, count: int) -> list[tuple[bytes, int]]:
    """`count` statements, each on a new connection; returns (statement, acknowledged index)."""
    acknowledged = []
    for _ in range(count):
        statement = issue(origin, ISSUER, os.urandom(32))
        with httpx.Client(base_url=url, timeout=30) as fresh:
            answer = post_statements(fresh, [statement])
        assert answer.status_code == 200, answer.text
        FORWARDED.append(answer.headers.get("x-tlog-forwarded") == "1")
        acknowledged.append((statement, int(answer.json()["entries"][0]["index"])))
    return acknowledged


def assert_in_log(url: str, acknowledged: list[tuple[bytes, int]]) -> None:
    with httpx.Client(base_url=url, timeout=30) as client:
        for statement, index in acknowledged:
            proof = client.get("/api/v1/proof/inclusion", params={"leaf_hash": leaf_hash(statement).hex()})
            assert proof.status_code == 200, proof.text
            assert proof.json()["index"] == index


def test_two_processes_serve_one_port_and_every_acknowledgement_is_in_the_log(two_workers: LogProcess) -> None:
    server = two_workers
    assert len(workers_of(server)) == 2
    assert sequencing_seen(server.url) == {True, False}  # one sequences, the other serves reads: both answer
    with httpx.Client(base_url=server.url, timeout=30) as client:
        register_issuer(client, server, ISSUER)
        origin = client.get("/api/v1/log").json()["origin"]
    FORWARDED.clear()
    acknowledged = submit_fresh(server.url, origin, 40)
    assert len({index for _, index in acknowledged}) == 40
    assert_in_log(server.url, acknowledged)
    assert set(FORWARDED) == {True, False}  # some landed on the process that does not sequence, and were forwarded
    assert "Traceback" not in server.output()


def test_a_killed_worker_is_restarted_and_submissions_go_on(two_workers: LogProcess) -> None:
    server = two_workers
    with httpx.Client(base_url=server.url, timeout=30) as client:
        register_issuer(client, server, ISSUER)
        origin = client.get("/api/v1/log").json()["origin"]
    before = workers_of(server)
    for victim in sorted(before):  # each in turn: the sequencing one and the other
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            now = workers_of(server)
            if len(now) == 2 and victim not in now:
                break
            time.sleep(0.2)
        assert len(workers_of(server)) == 2 and victim not in workers_of(server)
        deadline = time.monotonic() + 60  # the survivor takes the lease once the dead one's lock is free
        while time.monotonic() < deadline and sequencing_seen(server.url, 50) != {True, False}:
            time.sleep(0.5)
        assert sequencing_seen(server.url) == {True, False}
        acknowledged = submit_fresh(server.url, origin, 10)
        assert_in_log(server.url, acknowledged)


def test_sigterm_stops_every_process(two_workers: LogProcess) -> None:
    server = two_workers
    assert server.process is not None
    workers = workers_of(server)
    assert len(workers) == 2
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(30) == 0
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers)
    assert "Traceback" not in server.output()


@pytest.mark.parametrize("reuse_port", [False, True])
def test_served_connections_send_at_once(reuse_port: bool) -> None:
    """TCP_NODELAY on every connection the server accepts: without it a response written in two parts waited for
    the client's delayed ACK (40 ms; wrk measured ~20 answers/s per keep-alive connection)."""
    listener = serving_socket(("127.0.0.1", 0), reuse_port=reuse_port)
    with listener, socket.create_connection(listener.getsockname()[:2], timeout=5) as _client:
        accepted, _ = listener.accept()
        with accepted:
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def test_an_answer_without_proofs_is_the_same_whichever_process_takes_it(two_workers: LogProcess) -> None:
    """`"inclusion_proofs": false` (what `tlog submit` sends) crosses the forwarding between processes intact: every
    answer, forwarded or not, is the receipt without proofs, and each acknowledged entry is in the log."""
    server = two_workers
    with httpx.Client(base_url=server.url, timeout=30) as client:
        register_issuer(client, server, ISSUER)
        origin = client.get("/api/v1/log").json()["origin"]
    forwarded, acknowledged = set(), []
    for _ in range(40):
        statement = issue(origin, ISSUER, os.urandom(32))
        body = {"statements": [base64.b64encode(statement).decode()], "inclusion_proofs": False}
        with httpx.Client(base_url=server.url, timeout=30) as fresh:
            answer = fresh.post("/api/v1/entries", json=body)
        assert answer.status_code == 200, answer.text
        forwarded.add(answer.headers.get("x-tlog-forwarded") == "1")
        entry = answer.json()["entries"][0]
        assert set(entry) == {"index", "leaf_hash", "duplicate"}, entry  # no inclusion_proof
        assert bytes.fromhex(entry["leaf_hash"]) == leaf_hash(statement)
        acknowledged.append((statement, int(entry["index"])))
    assert forwarded == {True, False}
    assert_in_log(server.url, acknowledged)
