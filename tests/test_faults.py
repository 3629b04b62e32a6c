"""Faults on the SQLite side of the log (RELIABILITY.md "Faults"), with real storage and real servers, no mocks.

(a) the database is full during a commit (SQLite's real `max_page_count` limit): 503 for that batch, nothing
    acknowledged that was not stored, no fork, writes accepted again once there is room;
(b) another process holds the write lock beyond busy_timeout: the same promises;
(c) a witness that accepts connections and never answers: sequencing keeps its speed, checkpoints are still
    published with the other witness's cosignature, the hanging witness's timeout is respected;
(d) the clocks jump backwards (the log's and a witness's): no checkpoint goes back, sequencing continues, every
    published cosignature still verifies under a trust policy.
"""

import asyncio
import base64
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from logserver.app import LogState, build_app
from logserver.config import WitnessConfig as LogWitnessConfig
from logserver.metrics import Metrics
from logserver.sequencer import Sequencer, SequencerConfig
from logserver.sqlite import SQLiteStorage
from logserver.storage import StorageError
from logserver.submission import SubmissionRules
from logserver.witnessing import Witnessing
from tests.log_harness import REPO, LogProcess, issue, post_statements, register_issuer, running_log, seed
from tests.witness_helpers import WitnessProcess, serve_in_process, write_config
from tlogcore.checkpoint import parse_checkpoint
from tlogcore.cosignature import CosignatureV1Signer, signature_timestamp
from tlogcore.keys import Ed25519Signer, Verifier
from tlogcore.merkle import leaf_hash, verify_consistency
from tlogcore.note import open_note, parse_note
from tlogcore.policy import parse_policy
from tlogcore.statement import ISSUE, ISSUER_ADD, Statement, sign_statement
from witness.app import create_app
from witness.config import LogConfig, WitnessConfig
from witness.storage import SQLiteStorage as WitnessSQLite

ORIGIN = "faults.example/log"
LOG_KEY = Ed25519Signer(ORIGIN, seed(101))
REGISTRY_KEY = Ed25519Signer(ORIGIN + "/registry", seed(102))
ISSUER = Ed25519Signer("issuer.faults.example", seed(103))


class SteppableClock:
    """Wall time plus an offset the test moves (backwards, too)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@asynccontextmanager
async def log_in_process(
    data: Path, clock: Callable[[], float] = time.time, witnesses: Sequence[LogWitnessConfig] = ()
) -> AsyncIterator[tuple[str, SQLiteStorage]]:
    """The log as `tlog-server serve` wires it, in this process so the test holds its clock and its database."""
    storage = await SQLiteStorage.open(data / "log.db", 5000)
    metrics = Metrics()
    witnessing = Witnessing.create(storage, list(witnesses), metrics, 1.0, 1, clock=clock)
    registry_vkey = REGISTRY_KEY.verifier().vkey
    sequencer = Sequencer(
        storage,
        LOG_KEY,
        SequencerConfig(ORIGIN, frozenset([registry_vkey]), publish_without_witnesses=not witnesses),
        clock=clock,
        on_checkpoint=witnessing.on_checkpoint if witnesses else None,
    )
    await sequencer.load()
    assert await sequencer.take_lease()
    state = LogState(
        storage,
        sequencer,
        SubmissionRules(ORIGIN, 300),
        LOG_KEY.verifier().vkey,
        [registry_vkey],
        metrics=metrics,
        clock=clock,
        witness_status=witnessing.status,
    )
    task = asyncio.create_task(sequencer.run())
    try:
        async with serve_in_process(build_app(state)) as url:
            yield url, storage
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await witnessing.close()
        await storage.close()


def statement_body(statements: Sequence[bytes]) -> dict[str, list[str]]:
    return {"statements": [base64.b64encode(s).decode() for s in statements]}


def documents(start: int, count: int, when: float | None = None) -> list[bytes]:
    moment = int(when or time.time())
    return [
        sign_statement(Statement(ORIGIN, ISSUE, ISSUER.verifier().vkey, moment, document=i.to_bytes(32, "big")), ISSUER)
        for i in range(start, start + count)
    ]


async def register(client: httpx.AsyncClient, when: float | None = None) -> None:
    add = Statement(
        ORIGIN, ISSUER_ADD, REGISTRY_KEY.verifier().vkey, int(when or time.time()), issuer=ISSUER.verifier().vkey
    )
    (await client.post("/api/v1/entries", json=statement_body([sign_statement(add, REGISTRY_KEY)]))).raise_for_status()


def assert_consistent(
    notes: Sequence[bytes], final: bytes, proof_for: Callable[[int, int], list[bytes]], log_key: Verifier
) -> None:
    """Every checkpoint seen is a prefix of the final tree, and no size has two roots."""
    end = parse_checkpoint(parse_note(final).text)
    roots: dict[int, bytes] = {}
    for note in notes:
        checkpoint = parse_checkpoint(open_note(note, [log_key]).text)
        assert roots.setdefault(checkpoint.size, checkpoint.root) == checkpoint.root, "two roots for one size"
    for size, root in roots.items():
        verify_consistency(size, end.size, root, end.root, proof_for(size, end.size))


async def check_consistent(client: httpx.AsyncClient, old_note: bytes, new_note: bytes) -> None:
    old = parse_checkpoint(open_note(old_note, [LOG_KEY.verifier()]).text)
    end = parse_checkpoint(open_note(new_note, [LOG_KEY.verifier()]).text)
    answer = (await client.get("/api/v1/proof/consistency", params={"old": old.size, "new": end.size})).json()
    verify_consistency(old.size, end.size, old.root, end.root, [base64.b64decode(h) for h in answer["proof"]])


def consistency_from(client: httpx.Client) -> Callable[[int, int], list[bytes]]:
    def proof(old: int, new: int) -> list[bytes]:
        answer = client.get("/api/v1/proof/consistency", params={"old": old, "new": new}).json()
        return [base64.b64decode(h) for h in answer["proof"]]

    return proof


# --- (a) the database is full ---------------------------------------------------------------------------------


def test_database_full_during_a_commit(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with log_in_process(tmp_path) as (url, storage), httpx.AsyncClient(base_url=url, timeout=30) as client:
            await register(client)
            first = await client.post("/api/v1/entries", json=statement_body(documents(0, 10)))
            assert first.status_code == 200
            for _ in range(100):  # the lookup merger idle (it writes too): the page limit below is the commit's alone
                if not await storage.merge_pending():
                    break
                await asyncio.sleep(0.05)
            writer = storage._writer  # the server's own connection (idle now): the limit applies to its commits
            pages = (writer.execute("PRAGMA page_count").fetchone() or [0])[0]
            writer.execute(f"PRAGMA max_page_count = {pages + 2}")  # "the disk is full"
            big = documents(100, 500)
            full = await client.post("/api/v1/entries", json=statement_body(big))
            assert full.status_code == 503, full.text
            assert full.json()["error"] == "storage_unavailable" and "full" in full.json()["message"]
            assert "retry-after" in full.headers
            log_info = (await client.get("/api/v1/log")).json()
            assert log_info["size"] == 11  # nothing of the refused batch was stored...
            found = await storage.find_leaves([leaf_hash(s) for s in big])
            assert found == {}  # ...not even partly
            reads = await client.get("/api/v1/bundle/5")
            assert reads.status_code == 200  # reads go on
            writer.execute("PRAGMA max_page_count = 1073741823")  # room again
            for _ in range(50):  # the sequencer reloads after a failed commit, then takes writes again
                again = await client.post("/api/v1/entries", json=statement_body(big))
                if again.status_code == 200:
                    break
                await asyncio.sleep(0.1)
            assert again.status_code == 200
            assert [e["index"] for e in again.json()["entries"]] == list(range(11, 511))
            await check_consistent(client, first.json()["checkpoint"].encode(), again.json()["checkpoint"].encode())
            assert await storage.checkpoint_at(11) is not None and await storage.checkpoint_at(12) is None

    asyncio.run(scenario())


# --- (b) the database is locked by another process ------------------------------------------------------------

HOLD_LOCK = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")  # the write lock, as another writer (or a backup tool) would hold it
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("ROLLBACK")
"""


def test_database_locked_by_another_process(tmp_path: Path) -> None:
    config = "[storage]\nsqlite_busy_timeout_ms = 300\n"
    with running_log(tmp_path, config_text=config) as log, httpx.Client(base_url=log.url, timeout=30) as client:
        issuer = Ed25519Signer("issuer.example", seed(7))
        register_issuer(client, log, issuer)
        origin = client.get("/api/v1/log").json()["origin"]
        before = post_statements(client, [issue(origin, issuer, bytes(32))])
        assert before.status_code == 200
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLD_LOCK, str(log.data / "log.db"), "3"], cwd=REPO, stdout=subprocess.PIPE
        )
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == b"locked"
            blocked = [issue(origin, issuer, i.to_bytes(32, "big")) for i in range(1, 4)]
            started = time.monotonic()
            refused = post_statements(client, blocked)
            assert time.monotonic() - started < 2.5  # answered after busy_timeout, not held until the lock goes
            assert refused.status_code == 503 and "retry-after" in refused.headers, refused.text
            assert refused.json()["error"] in ("storage_unavailable", "not_sequencing")
            assert client.get("/checkpoint").status_code == 200  # WAL: readers are not blocked
            assert client.get("/api/v1/log").json()["size"] == 2
            for statement in blocked:
                lookup = client.get("/api/v1/proof/inclusion", params={"leaf_hash": leaf_hash(statement).hex()})
                assert lookup.status_code == 404  # refused means not stored
        finally:
            holder.wait(10)
            if holder.stdout is not None:
                holder.stdout.close()
        for _ in range(50):
            accepted = post_statements(client, blocked)
            if accepted.status_code == 200:
                break
            time.sleep(0.1)
        assert accepted.status_code == 200
        assert [e["index"] for e in accepted.json()["entries"]] == [2, 3, 4]
        notes = [
            before.json()["checkpoint"].encode(),
            accepted.json()["checkpoint"].encode(),
            client.get("/checkpoint").content,
        ]
        assert_consistent(notes, notes[-1], consistency_from(client), log.key("log.key").verifier())


def test_a_pooled_submission_is_answered_when_the_lease_cannot_be_renewed(tmp_path: Path) -> None:
    """The database goes away while a submission waits in the pool for its flush, and the lease renewal due before
    that flush fails: the submission is refused at once (503, retry), not held until the database is back. Before,
    the sequencer skipped the flush and left the pool waiting: on PostgreSQL a stream's request was held for the
    whole 15 s outage (tests/test_faults_postgres.py)."""

    async def scenario() -> None:
        clock = SteppableClock()
        async with (
            log_in_process(tmp_path, clock) as (url, storage),
            httpx.AsyncClient(base_url=url, timeout=10) as client,
        ):
            await register(client)

            async def unavailable(*_: object) -> None:
                raise StorageError("sequencer lease: [Errno 111] Connection refused")

            storage.acquire_lease = unavailable  # type: ignore[method-assign]
            clock.offset += 10  # the lease (5 s) is due for renewal before the next flush
            refused = await client.post("/api/v1/entries", json=statement_body(documents(0, 3)))
            assert refused.status_code == 503 and refused.json()["error"] == "storage_unavailable", refused.text
            assert "retry-after" in refused.headers
            assert (await client.get("/api/v1/log")).json()["size"] == 1  # only the registration: nothing stored

    asyncio.run(scenario())


# --- (c) a witness that never answers ---------------------------------------------------------------------------


class HangingWitness:
    """Accepts TCP connections, reads the request and never answers; records how long each client waited."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.waits: list[float] = []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.hold, args=(conn,), daemon=True).start()

    def hold(self, conn: socket.socket) -> None:
        opened = time.monotonic()
        with conn:
            conn.settimeout(30)
            try:
                while conn.recv(65536):
                    pass
            except OSError:
                pass
        self.waits.append(time.monotonic() - opened)

    def close(self) -> None:
        self.sock.close()


def test_a_hanging_witness_slows_nothing(tmp_path: Path) -> None:
    hanging = HangingWitness()
    probe = LogProcess(tmp_path / "log", 0)
    subprocess.run(
        [sys.executable, "-c", "from logserver.cli import main; main()", "init", "--data", str(probe.data)],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    origin, log_vkey = probe.key("log.key").name, probe.key("log.key").verifier().vkey
    config = write_config(tmp_path / "w.toml", "witness.faults", [(origin, log_vkey)])
    try:
        with WitnessProcess(tmp_path / "w", config) as good:
            hanging_vkey = CosignatureV1Signer("witness.hanging", seed(7), time.time).verifier().vkey
            log_config = (
                "[witnessing]\nwitness_timeout_ms = 500\nwitness_retries = 1\n"
                f'[[witness]]\nurl = "{good.url}"\nvkey = "{good.vkey}"\n'
                f'[[witness]]\nurl = "http://127.0.0.1:{hanging.port}"\nvkey = "{hanging_vkey}"\n'
            )
            with running_log(tmp_path, config_text=log_config) as log, httpx.Client(base_url=log.url) as client:
                issuer = Ed25519Signer("issuer.example", seed(8))
                register_issuer(client, log, issuer)
                latencies = []
                for i in range(20):
                    started = time.monotonic()
                    response = post_statements(client, [issue(origin, issuer, i.to_bytes(32, "big"))])
                    latencies.append(time.monotonic() - started)
                    assert response.status_code == 200
                # Sequencing never waits for witnesses: every submission is well under one witness timeout.
                assert max(latencies) < 0.5, latencies
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    note = parse_note(client.get("/checkpoint").content)
                    if parse_checkpoint(note.text).size == 21 and len(note.signatures) == 2:
                        break
                    time.sleep(0.1)
                assert parse_checkpoint(note.text).size == 21 and len(note.signatures) == 2  # log + good witness
                status = {w["name"]: w for w in client.get("/api/v1/log").json()["witnesses"]}
                assert status["witness.faults"]["last_cosigned_size"] == 21
                hung = status["witness.hanging"]
                assert hung["last_cosigned_size"] is None and hung["last_error"]
        assert hanging.waits, "the log never reached the hanging witness"
        assert max(hanging.waits) < 0.5 + 1.0  # each request was given up after the configured 500 ms
    finally:
        hanging.close()


# --- (d) the clocks jump backwards --------------------------------------------------------------------------------


@asynccontextmanager
async def witness_in_process(data: Path, clock: Callable[[], float]) -> AsyncIterator[tuple[str, str]]:
    data.mkdir()
    storage = await WitnessSQLite.open(str(data / "witness.db"))
    signer = CosignatureV1Signer("witness.faults.example", seed(104), clock)
    config = WitnessConfig("witness.faults.example", "127.0.0.1:0", (LogConfig(ORIGIN, LOG_KEY.verifier()),))
    try:
        async with serve_in_process(create_app(config, storage, signer, clock)) as url:
            yield url, signer.verifier().vkey
    finally:
        await storage.close()


def test_clocks_jumping_backwards(tmp_path: Path) -> None:
    log_clock, witness_clock = SteppableClock(), SteppableClock()

    async def scenario() -> None:
        async with witness_in_process(tmp_path / "w", witness_clock) as (witness_url, witness_vkey):
            witnesses = [LogWitnessConfig("w", witness_url, witness_vkey)]
            async with (
                log_in_process(tmp_path, log_clock, witnesses) as (url, _storage),
                httpx.AsyncClient(base_url=url, timeout=30) as client,
            ):
                await publish_through_a_jump(client, witness_vkey)

    async def published(client: httpx.AsyncClient, size: int) -> bytes:
        for _ in range(100):
            note = (await client.get("/checkpoint")).content
            if parse_checkpoint(parse_note(note).text).size >= size and len(parse_note(note).signatures) == 2:
                return note
            await asyncio.sleep(0.05)
        raise AssertionError(f"no cosigned checkpoint of size {size}")

    async def publish_through_a_jump(client: httpx.AsyncClient, witness_vkey: str) -> None:
        policy = parse_policy(f"log {LOG_KEY.verifier().vkey}\nwitness W {witness_vkey}\nquorum W\n")
        await register(client)
        notes = []
        acknowledged = await client.post("/api/v1/entries", json=statement_body(documents(0, 5)))
        assert acknowledged.status_code == 200
        notes.append(await published(client, 6))
        log_clock.offset = witness_clock.offset = -3600.0  # both step back an hour (NTP correction, VM restore)
        # Statements dated by the (now earlier) clock of their issuer's world are sequenced on.
        behind = await client.post("/api/v1/entries", json=statement_body(documents(5, 5, when=log_clock())))
        assert behind.status_code == 200, behind.text
        notes.append(await published(client, 11))
        # One dated by true time is now "in the future" for the log: refused clearly, nothing stored.
        ahead = await client.post("/api/v1/entries", json=statement_body(documents(10, 1)))
        assert ahead.status_code == 422 and ahead.json()["error"] == "time_in_future"
        log_clock.offset = witness_clock.offset = 0.0  # and forward again
        again = await client.post("/api/v1/entries", json=statement_body(documents(10, 5)))
        assert again.status_code == 200
        notes.append(await published(client, 16))
        sizes = [parse_checkpoint(parse_note(n).text).size for n in notes]
        assert sizes == sorted(sizes) and sizes[-1] == 16  # no checkpoint went back
        stamps = [signature_timestamp(parse_note(n).signatures[1].signature) for n in notes]
        assert stamps[1] < stamps[0]  # the witness's clock did go back...
        for note in notes:  # ...and every cosignature still verifies and meets the policy, today
            trusted = policy.verify_checkpoint(note, now=time.time())
            assert trusted is not None
        for note in notes[:-1]:
            await check_consistent(client, note, notes[-1])

    asyncio.run(scenario())
