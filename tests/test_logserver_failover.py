"""Three tlog-server processes on one PostgreSQL database: all accept submissions, one sequences; kill -9 it.

Another process must take over within 5 s, every acknowledged entry must be in the log at its acknowledged index
with a verifying inclusion proof, and every checkpoint any server handed out must be consistent with the final one.
"""

import asyncio
import random
import threading
import time
from pathlib import Path

import httpx
import pytest
from log_harness import LogProcess, free_port, log_verifier, register_issuer, seed
from pg_cluster import PgDatabase
from test_logserver_crash import Submitter, check_log

from logserver.keyguard import KeyGuard
from logserver.postgres import PostgresStorage
from logserver.sequencer import Sequencer, SequencerConfig, Submission
from logserver.storage import Head
from tlogcore import merkle
from tlogcore.errors import NotAllowedError
from tlogcore.keys import Ed25519Signer
from tlogcore.statement import ISSUE, ISSUER_ADD, ISSUER_RETIRE, Statement, parse_statement, sign_statement

ISSUER = Ed25519Signer("registry-office.example.gov.kh", seed(21))  # the one Submitter signs with
TAKEOVER_LIMIT = 5.0


def sequencing(server: LogProcess) -> bool:
    try:
        return bool(httpx.get(server.url + "/api/v1/log", timeout=2).json()["sequencing"])
    except httpx.HTTPError:
        return False


def wait_until(predicate, timeout: float) -> float:  # type: ignore[no-untyped-def]
    """Seconds until predicate() held; TimeoutError after `timeout`."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"not within {timeout} s")
        time.sleep(0.02)
    return time.monotonic() - started


def test_kill_9_the_sequencer_another_takes_over_nothing_lost_no_fork(tmp_path: Path, pg_database: PgDatabase) -> None:
    data = tmp_path / "log"  # the keys, shared by the three processes; the log itself is in PostgreSQL
    servers = [LogProcess(data, free_port(), dsn=pg_database.dsn) for _ in range(3)]
    acked: dict[bytes, int] = {}
    checkpoints: dict[int, set[bytes]] = {}
    lock = threading.Lock()
    submitters: list[Submitter] = []
    try:
        for server in servers:  # the first one generates the keys and sequences
            server.start()
        assert [sequencing(s) for s in servers] == [True, False, False]
        with httpx.Client(base_url=servers[0].url, timeout=30) as client:
            log_key = log_verifier(client)
            register_issuer(client, servers[0], ISSUER)
            info = client.get("/api/v1/log").json()
            origin = info["origin"]
        for server in servers[1:]:  # standbys follow the log (and its issuer registry) within a flush interval
            wait_until(lambda s=server: httpx.get(s.url + "/api/v1/log").json()["size"] >= info["size"], 5)
        rng = random.Random(7)
        per_server: dict[str, dict[bytes, int]] = {s.url: {} for s in servers}
        for server in servers:
            submitter = Submitter(
                server.url, origin, log_key, random.Random(rng.random()), per_server[server.url], checkpoints, lock
            )
            submitters.append(submitter)
            submitter.start()
        time.sleep(2.0)
        servers[0].kill()
        takeover = wait_until(lambda: any(sequencing(s) for s in servers[1:]), TAKEOVER_LIMIT)
        before = {url: len(entries) for url, entries in per_server.items()}
        time.sleep(2.0)
        for submitter in submitters:
            submitter.stop.set()
            submitter.join(40)  # a standby's submitter may be waiting for its queued entries
        assert not any(s.is_alive() for s in submitters)
        counts = {url: len(entries) for url, entries in per_server.items()}
        print(f"takeover after kill -9: {takeover:.2f} s; acknowledged per server before {before}, in all {counts}")
        # Every process accepted submissions, the standbys through the shared queue, before and after the kill.
        assert all(count > 0 for count in before.values()), before
        for server in servers[1:]:
            assert len(per_server[server.url]) > before[server.url], "a surviving server stopped accepting"
        for entries in per_server.values():
            for leaf, index in entries.items():
                assert acked.setdefault(leaf, index) == index, "one statement acknowledged at two indexes"
        survivor = next(s for s in servers[1:] if sequencing(s))
        with httpx.Client(base_url=survivor.url, timeout=30) as client:
            check_log(client, log_key, acked, checkpoints)
        # Both survivors serve the same log.
        other = next(s for s in servers[1:] if s is not survivor)
        with httpx.Client(base_url=other.url, timeout=30) as client:
            check_log(client, log_key, acked, checkpoints)
        assert len(acked) > 100, "the stream was too thin to mean anything"
    finally:
        for submitter in submitters:
            submitter.stop.set()
        for server in servers:
            server.stop()


def submission(statement: Statement, signer: Ed25519Signer) -> Submission:
    data = sign_statement(statement, signer)
    return Submission(data, parse_statement(data), merkle.leaf_hash(data))


def test_a_standby_queues_submissions_the_sequencer_logs_or_refuses(pg_database: PgDatabase) -> None:
    """Two Sequencers on one database in one process (two sessions): the standby's path through the shared queue."""
    origin = "queue.log.example"
    log_key, registry = Ed25519Signer(origin, seed(51)), Ed25519Signer(origin + "/registry", seed(52))
    issuer = Ed25519Signer("school.example.gov.kh", seed(53))
    now = int(time.time())

    def issue_of(document: bytes) -> Submission:
        return submission(Statement(origin, ISSUE, issuer.verifier().vkey, now, document=document), issuer)

    def registry_change(kind: str) -> Submission:
        reason = "key rotated" if kind == ISSUER_RETIRE else None
        statement = Statement(origin, kind, registry.verifier().vkey, now, issuer=issuer.verifier().vkey, reason=reason)
        return submission(statement, registry)

    async def scenario() -> None:
        stores = [await PostgresStorage.open(pg_database.dsn, pool_size=2) for _ in range(2)]
        config = {"flush_interval": 0.02, "queue_poll": 0.01, "queue_timeout": 20.0}
        active, standby = (
            Sequencer(
                store, log_key, SequencerConfig(origin, frozenset([registry.verifier().vkey]), owner=name, **config)
            )
            for store, name in zip(stores, ["active", "standby"], strict=True)
        )
        tasks: list[asyncio.Task[None]] = []
        try:
            assert await active.take_lease()
            await standby.load()
            assert not await standby.take_lease() and "active" in (standby.not_sequencing or "")
            assert standby.accepts_submissions
            tasks = [asyncio.create_task(s.run()) for s in (active, standby)]
            await active.submit([registry_change(ISSUER_ADD)])
            first = issue_of(b"\x01" * 32)
            [queued] = await standby.submit([first])
            assert (queued.index, queued.duplicate) == (1, False)
            assert standby.head is not None and standby.head.size >= 2  # its answer's checkpoint covers the entry
            [again] = await standby.submit([first])
            [there] = await active.submit([first])
            assert (again.index, again.duplicate, there.index, there.duplicate) == (1, True, 1, True)
            # The standby checks nothing itself: the sequencer refuses a retired issuer and the standby says so.
            await active.submit([registry_change(ISSUER_RETIRE)])
            with pytest.raises(NotAllowedError, match="retired"):
                await standby.submit([issue_of(b"\x02" * 32)])
            assert await stores[1].queued(10) == []
            assert active.size == 3 and (await stores[1].head()) == active.head
        finally:
            for task in tasks:
                task.cancel()
            for store in stores:
                await store.close()

    asyncio.run(scenario())


class HeldCommitRecord(KeyGuard):
    """The key guard's record of a commit, held until released: the window, after the commit, in which the entries
    are in the database but the sequencer's head has not moved yet (its fsync is slow on a loaded machine)."""

    def __init__(self, origin: str, signer: Ed25519Signer) -> None:
        super().__init__(origin, signer.verifier())
        self.reached, self.release = asyncio.Event(), asyncio.Event()

    async def committed(self, new: Head) -> None:
        if new.size > 0:
            self.reached.set()
            await self.release.wait()
        await super().committed(new)


async def answered_with_head(sequencer: Sequencer, submissions: list[Submission]) -> tuple[int, int]:
    """(the entry's index, the size of the head the response's checkpoint would come from) as intake.py takes them."""
    [sequenced] = await sequencer.submit(submissions)
    return sequenced.index, sequencer.size


def test_an_answer_found_in_the_database_during_a_commit_waits_for_the_head_covering_it(
    pg_database: PgDatabase,
) -> None:
    """Found in the database before the sequencer moved its head (a statement queued while this process did not
    sequence, or resubmitted): the answer waits for the head that proves it. Before, the index was past the head
    and intake.py answered 400 'index n is not in a tree of size n' for a valid submission (seen under load)."""
    origin = "window.log.example"
    log_key, registry = Ed25519Signer(origin, seed(61)), Ed25519Signer(origin + "/registry", seed(62))

    def issuer_add() -> Submission:
        issuer = Ed25519Signer("office.example.gov.kh", seed(70)).verifier().vkey
        statement = Statement(origin, ISSUER_ADD, registry.verifier().vkey, int(time.time()), issuer=issuer)
        return submission(statement, registry)

    async def scenario() -> None:
        store = await PostgresStorage.open(pg_database.dsn, pool_size=4)
        guard = HeldCommitRecord(origin, log_key)
        config = SequencerConfig(origin, frozenset([registry.verifier().vkey]), flush_interval=0.02, queue_poll=0.01)
        sequencer = Sequencer(store, log_key, config, guard=guard)
        task = None
        try:
            await sequencer.load()
            assert sequencer.not_sequencing is not None  # accepted as a standby: queued for whoever sequences
            first = issuer_add()
            queued = asyncio.create_task(answered_with_head(sequencer, [first]))
            await asyncio.sleep(0.2)
            task = asyncio.create_task(sequencer.run())  # this process sequences now, and drains the queue
            await asyncio.wait_for(guard.reached.wait(), 20)
            again = asyncio.create_task(answered_with_head(sequencer, [first]))  # a resubmission
            await asyncio.sleep(0.3)  # the queued submission polls the database meanwhile and finds its entry
            guard.release.set()
            answers = await asyncio.wait_for(asyncio.gather(queued, again), 20)
            assert answers == [(0, 1), (0, 1)], answers  # (index, head size): before, the head was size 0
        finally:
            guard.release.set()
            if task is not None:
                task.cancel()
            await store.close()

    asyncio.run(scenario())
