"""Freshness (tlogcore/freshness.py, docs/trust.md "Freshness"): a checkpoint's own signature has no time, so a proxy
could answer today with an older checkpoint its witnesses cosigned back then, and with that time's answers: a
revocation logged since would not show. The witnesses' signed times say how recent it is:

- the rule: the latest time the policy's quorum vouched for the checkpoint, and when that is too old;
- an idle log keeps its checkpoint's cosignatures fresh: it sends the same checkpoint to its witnesses again, and
  signs nothing new (a real log and three real witnesses);
- `tlog verify` online under a proxy replaying the checkpoint with two-hour-old cosignatures (signed by the
  witnesses' own keys, as a genuine replay is): the status is no longer called proven; and the CLI's --max-age."""

import asyncio
import base64
import hashlib
import json
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import Result
from cryptography.hazmat.primitives.asymmetric import mldsa
from log_harness import issue, post_statements
from log_harness import register_issuer as register_key
from monitor_helpers import MonitorProcess, monitor_config, read_alerts, state_progress
from tools_stack import Stack, local_http_server, reply, tlog, wait_for, witnessed_log

from logserver.client import LogClient
from tlogcore.checkpoint import parse_checkpoint
from tlogcore.cosignature import CosignatureV1Signer, signature_timestamp, subtree_message
from tlogcore.freshness import is_stale, vouched_at
from tlogcore.keys import Ed25519Signer, Signer
from tlogcore.mldsa import MLDSA44CosignatureSigner
from tlogcore.note import Note, Signature, parse_note, sign_note, signature_for
from tlogcore.policy import Policy, parse_policy
from tools.verdict import GENUINE, NOT_LOGGED, Outcome
from tools.verify import check_online, newest_cosignature, relied_on, stale_words
from witness.config import ED25519
from witness.keyfiles import existing_keys, read_key
from witness.witness import parse_request

ORIGIN = "freshness.example/log"
LOG = Ed25519Signer(ORIGIN, b"\x31" * 32)
TEXT = f"{ORIGIN}\n7\n{base64.b64encode(b'r' * 32).decode()}\n"
ISSUER = Ed25519Signer("moeys.gov.kh", b"\x32" * 32)
DOCUMENT = hashlib.sha256(b"a licence").digest()
NEVER = hashlib.sha256(b"never issued").digest()
TWO_HOURS = 7200


def witness(i: int, at: float) -> CosignatureV1Signer:
    return CosignatureV1Signer(f"w{i}.example", bytes([0x40 + i]) * 32, lambda: at)


def policy_text(quorum: str) -> str:
    witnesses = "".join(f"witness W{i} {witness(i, 1).verifier().vkey}\n" for i in range(3))
    return f"log {LOG.verifier().vkey}\n{witnesses}group two 2 W0 W1 W2\ngroup one any W0 W1 W2\nquorum {quorum}\n"


def cosigned(times: dict[int, int]) -> bytes:
    return sign_note(TEXT, [LOG, *(witness(i, at) for i, at in times.items())])


@pytest.mark.parametrize(
    ("quorum", "times", "expected"),
    [
        ("two", {0: 100, 1: 200, 2: 300}, 200),  # two of three: the second newest
        ("two", {0: 300, 2: 100}, 100),
        ("one", {0: 100, 1: 200, 2: 300}, 300),
        ("W1", {0: 900, 1: 200}, 200),  # a witness outside the quorum does not make it fresher
    ],
)
def test_the_quorum_vouches_as_of_its_oldest_needed_cosignature(
    quorum: str, times: dict[int, int], expected: int
) -> None:
    policy = parse_policy(policy_text(quorum))
    trusted = policy.verify_checkpoint(cosigned(times), now=1000)
    assert vouched_at(policy, trusted) == expected
    assert not is_stale(policy, trusted, now=expected + 60, max_age=60)
    assert is_stale(policy, trusted, now=expected + 61, max_age=60)
    assert not is_stale(policy, trusted, now=expected + 10**6, max_age=0)  # 0: not checked


def test_a_future_cosignature_does_not_count_and_quorum_none_vouches_no_time() -> None:
    policy = parse_policy(policy_text("one"))
    trusted = policy.verify_checkpoint(cosigned({0: 100, 1: 10**6}), now=1000)  # W1 dated far ahead: not counted
    assert vouched_at(policy, trusted) == 100
    none = parse_policy(f"log {LOG.verifier().vkey}\nquorum none\n")
    alone = none.verify_checkpoint(sign_note(TEXT, [LOG]), now=1000)
    assert vouched_at(none, alone) is None and not is_stale(none, alone, now=10**9, max_age=60)


INDEXED = "[status_index]\nindex_interval_ms = 100\n"


@pytest.fixture
def refreshing(tmp_path: Path) -> Iterator[Stack]:
    """Sent again to the witnesses after one idle second (no status index: nothing else is logged meanwhile)."""
    with witnessed_log(tmp_path, witnessing="witness_refresh_seconds = 1\n") as found:
        yield found


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    """With its status index; sent again to the witnesses every 300 s (the default): its checkpoint ages while a
    test waits."""
    with witnessed_log(tmp_path, more_config=INDEXED) as found:
        yield found


def cosigned_note(stack: Stack, wanted: Callable[[list[int]], bool]) -> bytes | None:
    note = published(stack.url)
    return note if wanted(cosignature_times(note, stack.origin)) else None


async def settled(client: LogClient, policy: Policy) -> Outcome:
    """The honest verdict once the status index covers the document (bounded)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        outcome = await check_online(client, DOCUMENT, policy, time.time())
        if outcome.status_proven:
            return outcome
        await asyncio.sleep(0.1)
    raise AssertionError(f"the status was never proven: {outcome.message}")


def proven_json(result: Result) -> dict[str, Any] | None:
    found = json.loads(result.stdout)
    return dict(found) if found.get("status_proven") else None


class Replay(httpx.AsyncBaseTransport):
    """A proxy in front of the real log: every answer passed through, but the newest checkpoint's cosignatures
    replaced by ones its witnesses' own keys made two hours ago, as a replay of a genuine old checkpoint is."""

    def __init__(self, inner: httpx.AsyncBaseTransport, origin: str, signers: list[list[Signer]]) -> None:
        self.inner, self.origin, self.signers = inner, origin, signers

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.url.path != "/checkpoint":
            return response
        note = parse_note(await response.aread())
        own = [s for s in note.signatures if s.name == self.origin]
        body = sign_note(note.text, [key for keys in self.signers for key in keys], existing=own)
        return httpx.Response(response.status_code, content=body, headers={"content-type": "text/plain"})

    async def aclose(self) -> None:
        await self.inner.aclose()


def published(url: str) -> bytes:
    return httpx.get(f"{url}/checkpoint", timeout=10).content


def cosignature_times(note: bytes, origin: str) -> list[int]:
    return sorted(signature_timestamp(s.signature) for s in parse_note(note).signatures if s.name != origin)


def test_an_idle_log_has_its_checkpoint_cosigned_again_and_signs_nothing_new(refreshing: Stack) -> None:
    stack = refreshing
    with httpx.Client(base_url=stack.url, timeout=20) as client:
        register_key(client, stack.server, ISSUER)
    first = wait_for(lambda: cosigned_note(stack, lambda times: len(times) == 3))
    newest = max(cosignature_times(first, stack.origin))
    later = wait_for(lambda: cosigned_note(stack, lambda times: len(times) == 3 and min(times) > newest))
    before, after = parse_note(first), parse_note(later)
    assert after.text == before.text  # the same tree, the same size: the log signed no other tree
    assert [s for s in after.signatures if s.name == stack.origin] == [
        s for s in before.signatures if s.name == stack.origin
    ]
    assert len(cosignature_times(later, stack.origin)) == 3


def test_tlog_verify_does_not_call_a_status_proven_on_a_replayed_old_checkpoint(stack: Stack) -> None:
    with httpx.Client(base_url=stack.url, timeout=20) as client:
        register_key(client, stack.server, ISSUER)
        post_statements(client, [issue(stack.origin, ISSUER, DOCUMENT)]).raise_for_status()
    policy = parse_policy(stack.policy_text)
    signers = [existing_keys(w.data, lambda: time.time() - TWO_HOURS) for w in stack.witnesses]

    async def scenario() -> None:
        async with LogClient(stack.url, timeout=20) as honest:
            fresh = await settled(honest, policy)
            assert fresh.verdict == GENUINE and fresh.status_proven, fresh.message
            assert "not proven current" not in fresh.message
        replaying = httpx.AsyncHTTPTransport()
        async with LogClient(stack.url, timeout=20, transport=Replay(replaying, stack.origin, signers)) as lied_to:
            old = await check_online(lied_to, DOCUMENT, policy, time.time())
            assert old.verdict == GENUINE and not old.status_proven, old.message
            assert "not proven current" in old.message and "2 hours ago" in old.message, old.message
            never = await check_online(lied_to, NEVER, policy, time.time())
            assert never.verdict == NOT_LOGGED and not never.status_proven, never.message
            assert "not proven current" in never.message
            unchecked = await check_online(lied_to, DOCUMENT, policy, time.time(), max_age=0)
            assert unchecked.status_proven, unchecked.message  # --max-age 0 checks nothing

    asyncio.run(scenario())


def test_the_cli_max_age_option(stack: Stack, tmp_path: Path) -> None:
    """The real log's own checkpoint, a few seconds old: proven within the default hour, not within one second."""
    document = tmp_path / "licence.pdf"
    document.write_bytes(b"a licence")
    policy = tmp_path / "trust.policy"
    policy.write_text(stack.policy_text)
    with httpx.Client(base_url=stack.url, timeout=20) as client:
        register_key(client, stack.server, ISSUER)
        post_statements(client, [issue(stack.origin, ISSUER, DOCUMENT)]).raise_for_status()
    args = ["verify", str(document), "--policy", str(policy), "--log", stack.url, "--json"]

    def proven_on_the_published() -> tuple[dict[str, Any], bytes] | None:
        found, note = proven_json(tlog(*args)), published(stack.url)
        size = int(parse_note(note).text.split("\n")[1])
        return (found, note) if found is not None and found["checkpoint"]["size"] == size else None

    found, note = wait_for(proven_on_the_published)
    assert found["verdict"] == "genuine"
    times = cosignature_times(note, stack.origin)
    assert found["checkpoint"]["vouched_at"] == times[1], (found, times)  # two of three: the second newest
    time.sleep(2.5)  # older than one second, whatever the refresh did meanwhile
    strict = json.loads(tlog(*args, "--max-age", "1").stdout)
    assert strict["verdict"] == "genuine" and not strict["status_proven"], strict
    assert "not proven current" in strict["message"]
    refused = tlog(*args, "--max-age", "-1")
    assert refused.exit_code == 6, refused.output


def watched(stack: Stack, tmp_path: Path, unvouched_after: float) -> MonitorProcess:
    config = monitor_config(
        tmp_path / "m.toml", stack.url, stack.policy_text, extra=f"unvouched_after_seconds = {unvouched_after}"
    )
    return MonitorProcess(config).start()


def test_a_monitor_alerts_once_when_the_witnesses_stop_vouching_for_the_newest_checkpoint(
    stack: Stack, tmp_path: Path
) -> None:
    """The log's cosignatures are not refreshed here (every 300 s): past two seconds, verifiers online would say
    "not proven current", and the monitor says why, with the checkpoint."""
    with httpx.Client(base_url=stack.url, timeout=20) as client:
        register_key(client, stack.server, ISSUER)
    monitor, alerts = watched(stack, tmp_path, 2), tmp_path / "alerts.jsonl"
    try:
        found = wait_for(lambda: [a for a in read_alerts(alerts) if a["rule"] == "log-unvouched"] or None)
        time.sleep(1.0)  # several more rounds: nothing repeats
    finally:
        assert monitor.stop() == 0, monitor.stderr()
    assert len([a for a in read_alerts(alerts) if a["rule"] == "log-unvouched"]) == 1
    evidence = found[0]["evidence"]
    assert found[0]["category"] == "availability" and evidence["checkpoint"] == published(stack.url).decode()
    assert evidence["vouched_at"] == sorted(cosignature_times(published(stack.url), stack.origin))[1]  # 2 of 3


def test_an_idle_log_whose_cosignatures_are_refreshed_raises_no_such_alert(refreshing: Stack, tmp_path: Path) -> None:
    with httpx.Client(base_url=refreshing.url, timeout=20) as client:
        register_key(client, refreshing.server, ISSUER)
    monitor, alerts = watched(refreshing, tmp_path, 4), tmp_path / "alerts.jsonl"
    try:
        wait_for(lambda: state_progress(tmp_path / "state.db")[0] or None)  # it verified the log
        time.sleep(8.0)  # twice the bound, the checkpoint's size unchanged all along
        assert parse_note(published(refreshing.url)).text.split("\n")[1] == "1"
    finally:
        assert monitor.stop() == 0, monitor.stderr()
    assert not [a for a in read_alerts(alerts) if a["rule"] == "log-unvouched"], read_alerts(alerts)


class SlowClockWitness:
    """A witness whose clock runs two hours behind: an HTTP front that answers add-checkpoint with a cosignature by
    the real witness's own key (read from its data directory) dated by that clock. Its cosignatures are genuine, and
    every checkpoint the quorum needs it for is two hours old, however often the log asks."""

    def __init__(self, data: Path) -> None:
        signer = read_key(data, ED25519, lambda: time.time() - TWO_HOURS)

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                request = parse_request(self.rfile.read(int(self.headers.get("content-length") or 0)))
                reply(self, 200, "text/plain", signature_for(request.note.text, signer).line.encode())

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server, self.url = local_http_server(Handler)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_witnesses_whose_clocks_run_behind_raise_one_alert_not_one_per_refresh(tmp_path: Path) -> None:
    """Two of three witnesses two hours behind: each refresh (every second here) moves the vouched time, and the
    checkpoint stays two hours old at every poll. One alert for that (before: one per refresh, as the alert's key
    held the time)."""
    fronts: list[SlowClockWitness] = []

    def route(i: int, url: str) -> str:  # called once witness i has started: its key exists
        if i == 0:
            return url
        fronts.append(SlowClockWitness(tmp_path / f"w{i}"))
        return fronts[-1].url

    try:
        with witnessed_log(tmp_path, witnessing="witness_refresh_seconds = 1\n", route=route) as stack:
            with httpx.Client(base_url=stack.url, timeout=20) as client:
                register_key(client, stack.server, ISSUER)
            first = wait_for(lambda: cosigned_note(stack, lambda times: len(times) == 3))
            monitor, alerts = watched(stack, tmp_path, 3600), tmp_path / "alerts.jsonl"
            try:
                wait_for(lambda: [a for a in read_alerts(alerts) if a["rule"] == "log-unvouched"] or None)
                behind = sorted(cosignature_times(first, stack.origin))[1]
                wait_for(lambda: cosigned_note(stack, lambda times: len(times) == 3 and sorted(times)[1] > behind + 2))
                time.sleep(1.0)  # the monitor polls every 0.2 s: it has seen the moved times
            finally:
                assert monitor.stop() == 0, monitor.stderr()
    finally:
        for front in fronts:
            front.close()
    found = [a for a in read_alerts(alerts) if a["rule"] == "log-unvouched"]
    assert len(found) == 1 and found[0]["evidence"]["vouched_at"] < time.time() - 7000, found


def mldsa_at_zero(seed: bytes) -> tuple[str, Signature]:
    """A witness's ML-DSA-44 vkey and its cosignature of TEXT with timestamp 0: no "latest" claim
    (c2sp.org/tlog-cosignature, subtree/v1), as a multi-year certificate's cosigner sends."""
    signer = MLDSA44CosignatureSigner("pq.example", seed, lambda: 1)
    checkpoint = parse_checkpoint(TEXT)
    stamp = bytes(8)
    message = subtree_message(signer.name, stamp, checkpoint.origin, checkpoint.size, checkpoint.root)
    assert message is not None
    signature = stamp + mldsa.MLDSA44PrivateKey.from_seed_bytes(seed).sign(message)
    return signer.verifier().vkey, Signature(signer.name, signer.key_id, signature)


def test_a_cosignature_at_time_zero_counts_for_the_quorum_but_vouches_for_no_time() -> None:
    vkey, line = mldsa_at_zero(b"\x51" * 32)
    policy = parse_policy(f"log {LOG.verifier().vkey}\nwitness PQ {vkey}\nquorum PQ\n")
    note = parse_note(sign_note(TEXT, [LOG]))
    trusted = policy.verify_checkpoint(Note(note.text, (*note.signatures, line)).to_bytes(), now=1000)
    assert trusted.witnesses == {"PQ"} and vouched_at(policy, trusted) is None  # before: 0, "1970"
    words = stale_words(policy, trusted, now=10**9, max_age=3600)
    assert words is not None and "carries a time" in words and "1970" not in words, words


def test_a_witness_clock_far_ahead_is_neither_counted_nor_shown() -> None:
    """A cosignature dated beyond the allowed skew is not counted for the quorum; its time was still shown as the
    time of the checkpoint the verdict relied on (a day ahead: wrong; at 2^62 s: a traceback, no verdict)."""
    policy = parse_policy(policy_text("one"))
    for ahead in (86_400, 2**62 - 2_000):
        trusted = policy.verify_checkpoint(cosigned({0: 900, 1: 1000 + ahead}), now=1000)
        assert newest_cosignature(trusted) == 900 and "1970-01-01 00:15 UTC" in relied_on(trusted)


def test_an_age_under_two_minutes_is_said_in_seconds() -> None:
    policy = parse_policy(policy_text("one"))
    trusted = policy.verify_checkpoint(cosigned({0: 900}), now=1000)
    words = stale_words(policy, trusted, now=1000, max_age=1)
    assert words is not None and "100 seconds ago" in words and "the 1 second this" in words, words


def test_a_second_outage_of_the_same_checkpoint_raises_a_second_alert(refreshing: Stack, tmp_path: Path) -> None:
    """One alert per episode: the witnesses go, come back (the refresh vouches for the checkpoint again), and go
    again, the log's size unchanged throughout. Before, the alert's key was the size alone, and the second outage
    was never said."""
    with httpx.Client(base_url=refreshing.url, timeout=20) as client:
        register_key(client, refreshing.server, ISSUER)
    wait_for(lambda: cosigned_note(refreshing, lambda times: len(times) == 3))
    monitor, alerts = watched(refreshing, tmp_path, 3), tmp_path / "alerts.jsonl"

    def unvouched() -> list[dict[str, Any]]:
        return [a for a in read_alerts(alerts) if a["rule"] == "log-unvouched"]

    try:
        wait_for(lambda: state_progress(tmp_path / "state.db")[0] or None)
        for outage in (1, 2):
            for witness in refreshing.witnesses[1:]:
                witness.stop()
            wait_for(lambda n=outage: len(unvouched()) == n or None)
            for witness in refreshing.witnesses[1:]:
                witness.start()
            back = int(time.time())
            wait_for(lambda at=back: cosigned_note(refreshing, lambda times: len(times) == 3 and min(times) > at))
            time.sleep(1.0)  # the monitor sees the checkpoint vouched for again: the episode ends
    finally:
        assert monitor.stop() == 0, monitor.stderr()
    found = unvouched()
    assert len(found) == 2 and {a["evidence"]["size"] for a in found} == {1}, found
