"""A log with two real witnesses that cosign with Ed25519 and ML-DSA-44 (issue 22): the log collects both lines,
keeps only those that verify with the keys it was configured with, and publishes checkpoints that a policy requiring
a quorum of post-quantum witnesses accepts — in the core, in `tlog verify` (offline and online) and in the monitor."""

import asyncio
import base64
import hashlib
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from log_harness import LogProcess, free_port, issue, post_statements, register_issuer, seed
from monitor_helpers import monitor_cli, monitor_config, read_alerts
from test_witnessing_e2e import wait_published
from tools_stack import tlog
from witness_helpers import WitnessProcess

from loadtest.localproc import log_identity
from logserver.config import WitnessConfig, config_from_toml
from logserver.witnessing import Witnessing, WitnessState
from tlogcore.bundle import parse_tlog_proof, verify_bundle
from tlogcore.checkpoint import Checkpoint
from tlogcore.cosignature import CosignatureV1Signer
from tlogcore.errors import MalformedError
from tlogcore.keys import Ed25519Signer
from tlogcore.mldsa import MLDSA44CosignatureSigner
from tlogcore.note import parse_note, sign_note
from tlogcore.policy import parse_policy
from witness.client import WitnessClient

ISSUER = Ed25519Signer("moeys.gov.kh", seed(61))
DOCUMENT = b"%PDF-1.4 diploma of Sok Dara, 2026\n"


@dataclass
class PQStack:
    server: LogProcess
    origin: str
    policy_text: str


def pq_policy(log_vkey: str, vkeys: list[list[str]]) -> str:
    """Every witness's two keys under names of their own; the quorum is both post-quantum keys."""
    lines = [f"log {log_vkey}"]
    for i, (ed_vkey, pq_vkey) in enumerate(vkeys):
        lines += [f"witness E{i} {ed_vkey}", f"witness P{i} {pq_vkey}"]
    lines += ["group classic any E0 E1", "group post-quantum 2 P0 P1", "quorum post-quantum"]
    return "\n".join(lines) + "\n"


@pytest.fixture
def pq_stack(tmp_path: Path) -> Iterator[PQStack]:
    ident = log_identity(tmp_path / "log")
    witnesses: list[WitnessProcess] = []
    try:
        for i in range(2):
            config = tmp_path / f"w{i}.toml"
            config.write_text(
                f'name = "pq{i}.witness.example.org"\nalgorithms = ["ed25519", "ml-dsa-44"]\n'
                f'[[log]]\norigin = "{ident.origin}"\nvkey = "{ident.log_vkey}"\n',
                encoding="utf-8",
            )
            witnesses.append(WitnessProcess(tmp_path / f"w{i}", config))
            witnesses[-1].start()
        vkeys = [
            [line[5:] for line in w.stdout_path.read_text().splitlines() if line.startswith("vkey ")] for w in witnesses
        ]
        log_config = tmp_path / "log.toml"
        log_config.write_text(
            "[witnessing]\nwitness_timeout_ms = 2000\nwitness_retries = 1\n"
            + "".join(
                f'[[witness]]\nurl = "{w.url}"\nvkey = ["{vkeys[i][0]}", "{vkeys[i][1]}"]\n'
                for i, w in enumerate(witnesses)
            )
        )
        server = LogProcess(tmp_path / "log", free_port(), config=log_config).start()
        try:
            yield PQStack(server, ident.origin, pq_policy(ident.log_vkey, vkeys))
        finally:
            server.stop()
    finally:
        for w in witnesses:
            w.stop()


def test_a_pq_quorum_is_met_by_the_log_and_checked_by_the_core_the_tools_and_the_monitor(
    pq_stack: PQStack, tmp_path: Path
) -> None:
    policy = parse_policy(pq_stack.policy_text)
    policy_file = tmp_path / "pq.policy"
    policy_file.write_text(pq_stack.policy_text, encoding="utf-8")
    document = tmp_path / "diploma.pdf"
    document.write_bytes(DOCUMENT)
    with httpx.Client(base_url=pq_stack.server.url, timeout=20) as client:
        register_issuer(client, pq_stack.server, ISSUER)
        response = post_statements(client, [issue(pq_stack.origin, ISSUER, hashlib.sha256(DOCUMENT).digest())])
        assert response.status_code == 200, response.text
        index = response.json()["entries"][0]["index"]
        trusted = wait_published(client, policy, index + 1, timeout=30)
        assert trusted.witnesses == {"E0", "E1", "P0", "P1"}
        bundle_text = client.get(f"/api/v1/bundle/{index}").content
    assert verify_bundle(parse_tlog_proof(bundle_text), policy, now=time.time()).trusted.witnesses >= {"P0", "P1"}
    bundle = tmp_path / "diploma.pdf.tlog-proof"
    bundle.write_bytes(bundle_text)
    offline = tlog("verify", str(document), "--policy", str(policy_file))
    assert offline.exit_code == 0 and offline.stdout.startswith("GENUINE"), offline.output
    online = tlog("verify", str(document), "--policy", str(policy_file), "--log", pq_stack.server.url)
    assert online.exit_code == 0 and online.stdout.startswith("GENUINE"), online.output
    # One ML-DSA line changed: the known key's signature fails, so the bundle is refused (never "genuine").
    lines = bundle_text.decode().split("\n")
    pq_at = max(i for i, line in enumerate(lines) if line.startswith("\u2014 pq0.witness.example.org"))
    blob = bytearray(base64.b64decode(lines[pq_at].rsplit(" ", 1)[1]))
    blob[100] ^= 1
    lines[pq_at] = lines[pq_at].rsplit(" ", 1)[0] + " " + base64.b64encode(bytes(blob)).decode()
    bundle.write_text("\n".join(lines), encoding="utf-8")
    mutated = tlog("verify", str(document), "--policy", str(policy_file))
    assert mutated.exit_code != 0 and not mutated.stdout.startswith("GENUINE"), mutated.output
    monitor = monitor_config(tmp_path / "m.toml", pq_stack.server.url, pq_stack.policy_text)
    audited = monitor_cli("audit-once", "--config", str(monitor))
    assert audited.returncode == 0, audited.stderr
    assert [a["rule"] for a in read_alerts(tmp_path / "alerts.jsonl") if a["category"] != "registry"] == []


def test_the_log_keeps_only_cosignature_lines_its_configured_keys_verify() -> None:
    """A witness answering with two lines, of which the log was told only the Ed25519 key: the ML-DSA line is
    dropped, not published unchecked (before, every line of a witness whose first key verified was kept)."""
    origin = "log.example.test/pq-lines"
    log_key = Ed25519Signer(origin, seed(62))
    checkpoint = sign_note(Checkpoint(origin, 3, hashlib.sha256(b"r").digest()).text, [log_key])
    ed = CosignatureV1Signer("pq.witness.test", seed(63), lambda: 1_800_000_000)
    pq = MLDSA44CosignatureSigner("pq.witness.test", seed(64), lambda: 1_800_000_000)
    signed = sign_note(Checkpoint(origin, 3, hashlib.sha256(b"r").digest()).text, [ed, pq])
    lines = [s.line for s in parse_note(signed).signatures]
    only_ed = WitnessState(WitnessConfig("w", "http://127.0.0.1:9", ed.verifier().vkey), WitnessClient("http://x", 1))
    both = WitnessState(
        WitnessConfig("w", "http://127.0.0.1:9", ed.verifier().vkey, (pq.verifier().vkey,)), WitnessClient("x", 1)
    )
    head = type("Head", (), {"checkpoint": checkpoint})()
    assert Witnessing._genuine(only_ed, head, lines) == [lines[0]]
    assert Witnessing._genuine(both, head, lines) == lines
    asyncio.run(only_ed.client.aclose())
    asyncio.run(both.client.aclose())


@pytest.mark.parametrize(
    ("vkey_toml", "message"),
    [
        ("[]", "needs url and vkey"),
        ('["{a}", "{a}"]', "different keys of one witness"),
        ('["{a}", "{other}"]', "different keys of one witness"),
        ("[1]", "needs url and vkey"),
    ],
)
def test_a_witness_with_several_keys_is_configured_strictly(vkey_toml: str, message: str) -> None:
    a = CosignatureV1Signer("pq.witness.test", seed(63), time.time).verifier().vkey
    other = CosignatureV1Signer("other.witness.test", seed(65), time.time).verifier().vkey
    text = f'[[witness]]\nurl = "http://127.0.0.1:9"\nvkey = {vkey_toml.format(a=a, other=other)}\n'
    with pytest.raises(MalformedError, match=message):
        config_from_toml(tomllib.loads(text))
