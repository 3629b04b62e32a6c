"""The stolen-key marker end to end (issue 22), on a real log: `tlog issuer retire --unsafe-from N`; a document the
key signed before N stays genuine (retire is not revoke), one signed at N or later is flagged by `tlog verify` (exit
9), `tlog issuer list` shows the marker, and the monitor alerts on the marker and on each entry the key signed from N
on — and on nothing before N."""

import hashlib
import time
from pathlib import Path

import httpx
from log_harness import issue, post_statements, register_issuer, running_log, seed
from monitor_helpers import monitor_cli, monitor_config, read_alerts
from tools_stack import tlog

from tlogcore.keys import Ed25519Signer

ISSUER = Ed25519Signer("moeys.gov.kh", seed(81))
BEFORE, AFTER = b"diploma issued while the key was safe\n", b"diploma signed after the theft\n"


def wait_published(client: httpx.Client, size: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.get("/api/v1/log").json()["published_size"] >= size:
            return
        time.sleep(0.05)
    raise AssertionError(f"size {size} was not published in {timeout} s")


def test_a_key_reported_stolen_flags_what_it_signed_from_n_on(tmp_path: Path) -> None:
    with running_log(tmp_path) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        register_issuer(client, server, Ed25519Signer("other.gov.kh", seed(82)))  # so ISSUER's entry is not 0
        added_at = register_issuer(client, server, ISSUER)
        origin = client.get("/api/v1/log").json()["origin"]
        signed = [issue(origin, ISSUER, hashlib.sha256(doc).digest()) for doc in (BEFORE, AFTER)]
        indexes = [post_statements(client, [s]).json()["entries"][0]["index"] for s in signed]
        assert indexes == [added_at + 1, added_at + 2]
        registry_key = server.data / "registry.key"
        vkey = ISSUER.verifier().vkey
        early = tlog("issuer", "retire", "--log", server.url, "--registry-key", str(registry_key), "--issuer", vkey,
                     "--unsafe-from", str(added_at - 1), "--reason", "stolen")  # fmt: skip
        # A marker before the key's registration is refused in one line, and nothing is logged.
        assert early.exit_code != 0 and "before the key was registered" in early.output, early.output
        assert len(early.output.strip().splitlines()) == 1 and "Traceback" not in early.output
        retired = tlog("issuer", "retire", "--log", server.url, "--registry-key", str(registry_key), "--issuer", vkey,
                       "--unsafe-from", str(indexes[1]), "--reason", "laptop stolen")  # fmt: skip
        assert retired.exit_code == 0, retired.output
        size = client.get("/api/v1/log").json()["size"]
        wait_published(client, size)
        listed = tlog("issuer", "list", "--log", server.url)
        assert f"reported stolen: unsafe from entry {indexes[1]}" in listed.stdout, listed.output
        log_vkey = client.get("/api/v1/log").json()["log_vkey"]
    policy_text = f"log {log_vkey}\nquorum none\n"
    policy = tmp_path / "trust.policy"
    policy.write_text(policy_text, encoding="utf-8")
    verdicts = {}
    for name, content in (("before.pdf", BEFORE), ("after.pdf", AFTER)):
        (tmp_path / name).write_bytes(content)
        with running_log(tmp_path) as again:  # the same data directory: the log, restarted
            verdicts[name] = tlog("verify", str(tmp_path / name), "--policy", str(policy), "--log", again.url)
    assert verdicts["before.pdf"].exit_code == 0, verdicts["before.pdf"].output
    assert verdicts["before.pdf"].stdout.startswith("GENUINE"), verdicts["before.pdf"].output
    after = verdicts["after.pdf"]
    assert after.exit_code == 10 and after.stdout.startswith("SIGNED WITH A STOLEN KEY"), after.output
    assert f"unsafe from entry {indexes[1]}" in after.stdout and f"signed in entry {indexes[1]}" in after.stdout
    with running_log(tmp_path) as again:
        config = monitor_config(tmp_path / "m.toml", again.url, policy_text)
        audited = monitor_cli("audit-once", "--config", str(config))
    assert audited.returncode == 3, audited.stderr  # 3: new alerts
    stolen = [a for a in read_alerts(tmp_path / "alerts.jsonl") if a["rule"] == "issuer-key-stolen"]
    flagged = sorted(a["evidence"]["index"] for a in stolen if "leaf_hash" in a["evidence"])
    assert flagged == [indexes[1]]  # the entry at N, not the one before it
    assert any(a["evidence"].get("unsafe_from") == indexes[1] and "retired as stolen" in a["summary"] for a in stolen)
