"""A log with three real witnesses: every published checkpoint satisfies a 2-of-3 policy held as public keys only,
and witnesses that die, lag or come back never stop the log."""

import time
from pathlib import Path

import httpx
import pytest
from log_harness import LogProcess, free_port, issue, post_statements, register_issuer, seed
from witness_helpers import WitnessProcess, write_config

from loadtest.localproc import log_identity
from tlogcore.bundle import parse_tlog_proof, verify_bundle
from tlogcore.errors import UnverifiedError
from tlogcore.keys import Ed25519Signer
from tlogcore.policy import Policy, TrustedCheckpoint, parse_policy

ISSUER = Ed25519Signer("civil-registry.example.gov.kh", seed(41))


def wait_published(client: httpx.Client, policy: Policy, size: int, timeout: float = 10) -> TrustedCheckpoint:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        response = client.get("/checkpoint")
        if response.status_code == 404:  # nothing published yet (a JSON `no_checkpoint`): on a busy machine, at start
            last = AssertionError(response.text)
            time.sleep(0.05)
            continue
        try:
            trusted = policy.verify_checkpoint(response.content, now=time.time())
            if trusted.checkpoint.size >= size:
                return trusted
        except UnverifiedError as exc:
            last = exc
        time.sleep(0.05)
    raise AssertionError(f"no checkpoint of size >= {size} met the policy: {last}")


@pytest.fixture
def stack(tmp_path: Path):  # type: ignore[no-untyped-def]
    ident = log_identity(tmp_path / "log")
    origin, log_vkey = ident.origin, ident.log_vkey
    witnesses = []
    for i in range(3):
        config = write_config(tmp_path / f"w{i}.toml", f"witness{i}.example.org", [(origin, log_vkey)])
        witness = WitnessProcess(tmp_path / f"w{i}", config)
        witness.start()
        witnesses.append(witness)
    log_config = tmp_path / "log.toml"
    log_config.write_text(
        "[witnessing]\nwitness_timeout_ms = 500\nwitness_retries = 1\n"
        + "".join(f'[[witness]]\nurl = "{w.url}"\nvkey = "{w.vkey}"\n' for w in witnesses)
    )
    server = LogProcess(tmp_path / "log", free_port(), config=log_config).start()
    policy = parse_policy(
        f"log {log_vkey}\n"
        + "".join(f"witness W{i} {w.vkey}\n" for i, w in enumerate(witnesses))
        + "group two-of-three 2 W0 W1 W2\nquorum two-of-three\n"
    )
    try:
        yield server, witnesses, policy, origin
    finally:
        server.stop()
        for w in witnesses:
            w.stop()


def test_every_published_checkpoint_meets_two_of_three(stack) -> None:  # type: ignore[no-untyped-def]
    server, _witnesses, policy, origin = stack
    with httpx.Client(base_url=server.url, timeout=10) as client:
        assert wait_published(client, policy, 0).witnesses == {"W0", "W1", "W2"}
        register_issuer(client, server, ISSUER)
        for round_ in range(5):
            statements = [issue(origin, ISSUER, bytes([round_, i]) * 16) for i in range(10)]
            assert post_statements(client, statements).status_code == 200
            size = client.get("/api/v1/log").json()["size"]
            trusted = wait_published(client, policy, size)
            assert trusted.witnesses == {"W0", "W1", "W2"}
        status = client.get("/api/v1/log").json()["witnesses"]
        assert [w["last_cosigned_size"] for w in status] == [size] * 3
        assert 'tlog_witness_cosign_seconds_count{witness="witness0.example.org"}' in client.get("/metrics").text
        # A bundle fetched from the log carries the cosignatures and verifies offline under the policy.
        bundle = parse_tlog_proof(client.get("/api/v1/bundle/3").content)
        assert verify_bundle(bundle, policy, now=time.time()).trusted.witnesses == {"W0", "W1", "W2"}


def test_witnesses_down_never_stop_the_log_and_catch_up(stack) -> None:  # type: ignore[no-untyped-def]
    server, witnesses, policy, origin = stack
    with httpx.Client(base_url=server.url, timeout=10) as client:
        register_issuer(client, server, ISSUER)
        witnesses[0].kill9()
        for i in range(3):  # one witness down: quorum still met
            assert post_statements(client, [issue(origin, ISSUER, bytes([1, i]) * 16)]).status_code == 200
            size = client.get("/api/v1/log").json()["size"]
            assert wait_published(client, policy, size).witnesses == {"W1", "W2"}
        witnesses[1].kill9()
        started = time.monotonic()
        for i in range(5):  # two down: the log goes on, fast, but cannot show a quorum
            assert post_statements(client, [issue(origin, ISSUER, bytes([2, i]) * 16)]).status_code == 200
        assert time.monotonic() - started < 3, "a dead witness slowed sequencing"
        size = client.get("/api/v1/log").json()["size"]
        with pytest.raises(AssertionError):
            wait_published(client, policy, size, timeout=2)
        witnesses[0].start()
        witnesses[1].start()
        assert post_statements(client, [issue(origin, ISSUER, b"\x03" * 32)]).status_code == 200
        trusted = wait_published(client, policy, size + 1)
        assert trusted.witnesses == {"W0", "W1", "W2"}  # both came back and caught up through 409 + proofs
