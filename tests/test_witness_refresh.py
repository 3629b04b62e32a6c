"""An idle log's cosignatures kept fresh (logserver/witnessing.py `Witnessing.refresh`) against witnesses that fail,
found by an adversarial review of the freshness feature (docs/trust.md "Freshness"). A real log, three real witness
processes, and in front of one of them a proxy that can answer with bytes no HTTP client decodes:

- a refresh while two of three witnesses are down kept only the one that answered: the checkpoint, cosigned by the
  quorum minutes before, lost its quorum and every verifier refused the log until the next refresh;
- one undecodable answer ended the refresh task for good, without a word (and held back a commit's publication)."""

import asyncio
import re
import time
import tomllib
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx
import pytest
from log_harness import LogProcess, free_port, issue, post_statements
from log_harness import register_issuer as register_key
from tools_stack import Stack, local_http_server, reply, wait_for, witnessed_log
from witness_helpers import WitnessProcess, write_config

from loadtest.localproc import log_identity
from logserver.config import config_from_toml
from logserver.metrics import Metrics
from logserver.sqlite import SQLiteStorage
from logserver.storage import Head
from logserver.witnessing import Witnessing
from tlogcore.checkpoint import parse_checkpoint
from tlogcore.cosignature import signature_timestamp
from tlogcore.keys import Ed25519Signer
from tlogcore.note import Note, parse_note
from tlogcore.policy import parse_policy

ISSUER = Ed25519Signer("moeys.gov.kh", b"\x33" * 32)


class Garbling:
    """A pass-through proxy in front of one witness; while `garble` is set, each POST is answered 200 with
    `Content-Encoding: gzip` and a body that is not gzip (a broken middlebox, or a witness operator's mischief)."""

    def __init__(self) -> None:
        self.upstream, self.garble, self.garbled = "", False, 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                if proxy.garble:
                    proxy.garbled += 1
                    self.answer(200, "text/plain", b"not gzip at all", {"Content-Encoding": "gzip"})
                    return
                self.forward(lambda: httpx.post(proxy.upstream + self.path, content=body, timeout=10))

            def do_GET(self) -> None:
                self.forward(lambda: httpx.get(proxy.upstream + self.path, timeout=10))

            def forward(self, send: Callable[[], httpx.Response]) -> None:
                try:
                    found = send()
                except httpx.HTTPError:  # the witness behind is down
                    self.answer(502, "text/plain", b"witness down", {})
                    return
                self.answer(found.status_code, found.headers.get("content-type", ""), found.content, {})

            def answer(self, status: int, media: str, body: bytes, headers: dict[str, str]) -> None:
                reply(self, status, media, body, **headers)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server, self.url = local_http_server(Handler)

    def route(self, upstream: str) -> str:
        self.upstream = upstream
        return self.url


@pytest.fixture
def garbling() -> Iterator[Garbling]:
    proxy = Garbling()
    try:
        yield proxy
    finally:
        proxy.server.shutdown()
        proxy.server.server_close()


@pytest.fixture
def stack(tmp_path: Path, garbling: Garbling) -> Iterator[Stack]:
    """Refreshed after one idle second; witness 2 reached through the proxy."""

    def route(i: int, url: str) -> str:
        return garbling.route(url) if i == 2 else url

    with witnessed_log(tmp_path, witnessing="witness_refresh_seconds = 1\n", route=route) as found:
        with httpx.Client(base_url=found.url, timeout=20) as client:
            register_key(client, found.server, ISSUER)
        yield found


def cosignatures(stack: Stack) -> dict[str, list[int]]:
    return cosignature_times(stack.url, stack.origin)


def cosignature_times(url: str, origin: str) -> dict[str, list[int]]:
    """The published checkpoint's cosignature times, by witness key name (a list: a key must appear once)."""
    found: dict[str, list[int]] = {}
    for line in parse_note(httpx.get(f"{url}/checkpoint", timeout=10).content).signatures:
        if line.name != origin:
            found.setdefault(line.name, []).append(signature_timestamp(line.signature))
    return found


def names(stack: Stack) -> list[str]:
    return key_names(stack.witnesses)


def key_names(witnesses: list[WitnessProcess]) -> list[str]:
    return [w.vkey.split("+")[0] for w in witnesses]


def all_after(stack: Stack, which: list[str], after: int) -> dict[str, list[int]] | None:
    return times_after(stack.url, stack.origin, which, after)


def test_a_refresh_while_two_witnesses_are_down_keeps_the_quorum_the_checkpoint_had(stack: Stack) -> None:
    every = names(stack)
    wait_for(lambda: all_after(stack, every, 0))
    stack.witnesses[1].stop()
    stack.witnesses[2].stop()
    mark = max(t for times in cosignatures(stack).values() for t in times)
    held = wait_for(lambda: all_after(stack, every[:1], mark))  # a refresh that only witness 0 answered
    assert set(held) == set(every), held  # before: witness 0's line alone
    again = wait_for(lambda: all_after(stack, every[:1], held[every[0]][0]))  # and another
    assert again[every[1]] == held[every[1]] and again[every[2]] == held[every[2]], (held, again)
    assert all(len(times) == 1 for times in again.values()), again  # never two lines of one key
    body = httpx.get(f"{stack.url}/checkpoint", timeout=10).content
    trusted = parse_policy(stack.policy_text).verify_checkpoint(body, now=time.time())
    assert trusted.witnesses == {"W0", "W1", "W2"}  # before: W0 alone, "witness quorum not met"


def test_an_undecodable_witness_answer_neither_ends_the_refresh_nor_holds_back_a_commit(
    stack: Stack, garbling: Garbling
) -> None:
    every = names(stack)
    wait_for(lambda: all_after(stack, every, 0))
    garbling.garble = True
    wait_for(lambda: garbling.garbled or None)
    mark = max(cosignatures(stack)[every[0]])
    wait_for(lambda: all_after(stack, every[:2], mark + 1))  # refreshed twice more (before: never again)
    with httpx.Client(base_url=stack.url, timeout=20) as client:
        post_statements(client, [issue(stack.origin, ISSUER, b"d" * 32)]).raise_for_status()
    body = wait_for(lambda: published_at_least(stack, 2))  # before: the new checkpoint was never published
    trusted = parse_policy(stack.policy_text).verify_checkpoint(body, now=time.time())
    assert trusted.witnesses >= {"W0", "W1"}
    status = httpx.get(f"{stack.url}/api/v1/log", timeout=10).json()["witnesses"]
    assert any("unreadable answer" in (w["last_error"] or "") for w in status), status


def published_at_least(stack: Stack, size: int) -> bytes | None:
    body = httpx.get(f"{stack.url}/checkpoint", timeout=10).content
    return body if int(parse_note(body).text.split("\n")[1]) >= size else None


def test_the_metrics_say_when_each_witness_last_cosigned(stack: Stack) -> None:
    """What the TlogCosignaturesGrowingOld alert reads (contrib/prometheus/tlog-alerts.yml): a series per witness,
    its last cosignature's time, moving with each refresh."""
    every = names(stack)
    times = wait_for(lambda: all_after(stack, every, 0))
    wait_for(lambda: all_after(stack, every, max(t for found in times.values() for t in found)))  # a refresh later

    def exported() -> dict[str, float]:
        text = httpx.get(f"{stack.url}/metrics", timeout=10).text
        found = re.findall(r'^tlog_witness_last_cosigned_timestamp_seconds\{witness="([^"]+)"\} (\d+)$', text, re.M)
        return {name: float(at) for name, at in found}

    first = wait_for(lambda: exported() if len(exported()) == 3 else None)
    assert set(first) == set(every) and all(abs(at - time.time()) < 60 for at in first.values()), first
    later = wait_for(lambda: exported() if min(exported().values()) > max(first.values()) else None)
    assert set(later) == set(every)


def published_note(url: str) -> bytes:
    return httpx.get(f"{url}/checkpoint", timeout=10).content


def test_a_process_that_lost_the_lease_unawares_does_not_strip_an_older_checkpoints_cosignatures(
    stack: Stack,
) -> None:
    """A sequencing process paused past its lease (PostgreSQL: its session ended) wakes with its old head while
    another process has published a newer checkpoint: its round's witnesses all answer that they know a larger tree,
    and it stored the older checkpoint again with no cosignature (found by a review of the refresh across
    processes). Here the stale process is a Witnessing of this test's own on the log's database."""
    every = names(stack)
    wait_for(lambda: all_after(stack, every, 0))
    first = published_note(stack.url)
    with httpx.Client(base_url=stack.url, timeout=20) as client:
        post_statements(client, [issue(stack.origin, ISSUER, b"e" * 32)]).raise_for_status()
    wait_for(lambda: published_at_least(stack, 2))
    own = tuple(s for s in parse_note(first).signatures if s.name == stack.origin)
    checkpoint = parse_checkpoint(parse_note(first).text)
    stale = Head(checkpoint.size, checkpoint.root, Note(parse_note(first).text, own).to_bytes())
    config = config_from_toml(tomllib.loads((stack.server.data.parent / "log.toml").read_text()))

    async def stale_round() -> bytes | None:
        storage = await SQLiteStorage.open(stack.server.data / "log.db", 5000)
        witnessing = Witnessing.create(storage, list(config.witnesses), Metrics(), 2.0, 1)
        try:
            await witnessing.on_checkpoint(stale)
            return await storage.checkpoint_at(checkpoint.size)
        finally:
            await witnessing.close()
            await storage.close()

    kept = asyncio.run(stale_round())
    assert kept is not None and len(parse_note(kept).signatures) == len(parse_note(first).signatures), kept


def sequencing(url: str) -> bool:
    try:
        return bool(httpx.get(url + "/api/v1/log", timeout=2).json()["sequencing"])
    except httpx.HTTPError:
        return False


def test_a_server_taking_the_lease_over_has_its_checkpoint_cosigned_at_once(tmp_path: Path, pg_database: Any) -> None:
    """Two servers on one PostgreSQL database; kill -9 the sequencing one. Its successor took the lease and waited
    a whole refresh period (300 s) before asking the witnesses: a head its predecessor committed unpublished stayed
    unpublished that long (found by a review of the refresh across processes). It now asks within seconds."""
    ident = log_identity(tmp_path / "log")
    witnesses = []
    for i in range(3):
        config = write_config(tmp_path / f"w{i}.toml", f"witness{i}.example.org", [(ident.origin, ident.log_vkey)])
        witnesses.append(WitnessProcess(tmp_path / f"w{i}", config))
    log_config = tmp_path / "log.toml"
    servers = [LogProcess(tmp_path / "log", free_port(), config=log_config, dsn=pg_database.dsn) for _ in range(2)]
    try:
        for witness in witnesses:
            witness.start()
        log_config.write_text(
            "[witnessing]\nwitness_timeout_ms = 500\nwitness_retries = 1\n"
            + "".join(f'[[witness]]\nurl = "{w.url}"\nvkey = "{w.vkey}"\n' for w in witnesses)
        )
        for server in servers:
            server.start()
        assert [sequencing(s.url) for s in servers] == [True, False]
        with httpx.Client(base_url=servers[0].url, timeout=20) as client:
            register_key(client, servers[0], ISSUER)
        every = key_names(witnesses)
        before = wait_for(lambda: times_after(servers[1].url, ident.origin, every, 0))
        mark = max(t for found in before.values() for t in found)
        time.sleep(1.1)  # a later second: the successor's cosignatures must be newer
        servers[0].kill()
        wait_for(lambda: sequencing(servers[1].url) or None, 10)
        wait_for(lambda: times_after(servers[1].url, ident.origin, every, mark), 20)  # before: only after 300 s
    finally:
        for process in (*servers, *witnesses):
            process.stop()


def times_after(url: str, origin: str, which: list[str], after: int) -> dict[str, list[int]] | None:
    found = cosignature_times(url, origin)
    return found if all(found.get(n) and found[n][0] > after for n in which) else None
