"""The log server end to end: a real uvicorn process, a client holding only the log's public key."""

import base64
import random
import time
from pathlib import Path

import httpx
import pytest
from log_harness import issue, log_verifier, post_statements, register_issuer, running_log, seed
from log_verifier import verified_checkpoint, verify_proofs, verify_tiles

from tlogcore import merkle
from tlogcore.checkpoint import parse_checkpoint
from tlogcore.keys import Ed25519Signer
from tlogcore.note import open_note
from tlogcore.statement import REVOKE, Statement, sign_statement


def submit_and_check(client: httpx.Client, log_key, statements: list[bytes]) -> list[int]:  # type: ignore[no-untyped-def]
    response = post_statements(client, statements)
    assert response.status_code == 200, response.text
    body = response.json()
    checkpoint = parse_checkpoint(open_note(body["checkpoint"].encode(), [log_key]).text)
    indexes = []
    for statement, entry in zip(statements, body["entries"], strict=True):
        leaf = merkle.leaf_hash(statement)
        assert entry["leaf_hash"] == leaf.hex()
        proof = [base64.b64decode(h) for h in entry["inclusion_proof"]]
        merkle.verify_inclusion(leaf, entry["index"], checkpoint.size, proof, checkpoint.root)
        indexes.append(entry["index"])
    return indexes


def test_everything_served_verifies_across_tile_boundaries(tmp_path: Path, log_dsn: str | None) -> None:
    issuer = Ed25519Signer("ministry.example.gov.kh", seed(1))
    with running_log(tmp_path, dsn=log_dsn) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        log_key = log_verifier(client)
        empty = verified_checkpoint(client, log_key)
        assert empty.size == 0 and empty.root == merkle.EMPTY_ROOT
        register_issuer(client, server, issuer)
        origin = empty.origin
        roots = {0: empty.root}
        rng = random.Random(3)
        submitted = 1
        for target in (255, 256, 257, 1000, 65_537):
            while submitted < target:
                count = min(target - submitted, rng.choice([1, 3, 254, 1000]))
                statements = [issue(origin, issuer, rng.randbytes(32), ref=f"#{submitted + i}") for i in range(count)]
                assert submit_and_check(client, log_key, statements) == list(range(submitted, submitted + count))
                submitted += count
            checkpoint = verified_checkpoint(client, log_key)
            assert checkpoint.size == target
            entries = verify_tiles(client, checkpoint)
            sample = sorted({0, 1, target - 1, target // 2, rng.randrange(target)})
            verify_proofs(client, log_key, checkpoint, entries, sample, roots)
            roots[target] = checkpoint.root
        metrics = client.get("/metrics").text
        assert "tlog_tree_size 65537" in metrics and "tlog_submissions_accepted_total" in metrics


def test_resubmission_returns_the_original_entry_and_lookup_reports_status(tmp_path: Path, log_dsn: str | None) -> None:
    issuer = Ed25519Signer("court.example.gov.kh", seed(2))
    other = Ed25519Signer("impostor.example", seed(3))
    with running_log(tmp_path, dsn=log_dsn) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        log_key = log_verifier(client)
        register_issuer(client, server, issuer, "Supreme Court")
        register_issuer(client, server, other, "Another issuer")
        origin = client.get("/api/v1/log").json()["origin"]
        document = bytes(range(32))
        statement = issue(origin, issuer, document, ref="Judgment 12/2026")
        first = submit_and_check(client, log_key, [statement])
        again = post_statements(client, [statement, statement]).json()["entries"]
        assert [e["index"] for e in again] == first * 2 and all(e["duplicate"] for e in again)
        assert client.get(f"/api/v1/documents/{document.hex()}").json()["status"] == "valid"
        unknown = client.get(f"/api/v1/documents/{bytes(32).hex()}").json()
        expected = {"document": bytes(32).hex(), "status": "unknown", "statements": [], "registrations": []}
        assert unknown == expected | {"index": None, "retirements": []}  # index None: no status index on this log
        # A revocation by another issuer is listed but does not revoke.
        foreign = Statement(origin, REVOKE, other.verifier().vkey, int(time.time()), document=document)
        submit_and_check(client, log_key, [sign_statement(foreign, other)])
        assert client.get(f"/api/v1/documents/{document.hex()}").json()["status"] == "valid"
        revoke = Statement(
            origin, REVOKE, issuer.verifier().vkey, int(time.time()), document=document, reason="appeal granted"
        )
        submit_and_check(client, log_key, [sign_statement(revoke, issuer)])
        result = client.get(f"/api/v1/documents/{document.hex()}").json()
        assert result["status"] == "revoked"
        assert [s["kind"] for s in result["statements"]] == ["issue", "revoke", "revoke"]
        assert result["statements"][0]["ref"] == "Judgment 12/2026"
        issuers = client.get("/api/v1/issuers").json()["issuers"]
        assert {i["name"] for i in issuers} == {"court.example.gov.kh", "impostor.example"}


def test_issuer_registry_is_rebuilt_from_the_log_on_restart(tmp_path: Path, log_dsn: str | None) -> None:
    from log_harness import LogProcess

    issuer = Ed25519Signer("university.example.edu.kh", seed(4))
    with running_log(tmp_path, dsn=log_dsn) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        origin = client.get("/api/v1/log").json()["origin"]
        refused = post_statements(client, [issue(origin, issuer, bytes(32))])
        assert refused.status_code == 403 and refused.json()["error"] == "signer_not_allowed"
        added_at = register_issuer(client, server, issuer, "Royal University")
        assert post_statements(client, [issue(origin, issuer, bytes(32))]).status_code == 200
        registry = server.key("registry.key")
        retire = Statement(
            origin,
            "issuer-retire",
            registry.verifier().vkey,
            int(time.time()),
            issuer=issuer.verifier().vkey,
            reason="key rotated",
        )
        assert post_statements(client, [sign_statement(retire, registry)]).status_code == 200
        server.stop()
        restarted = LogProcess(server.data, server.port, dsn=log_dsn).start()
        try:
            retired = post_statements(client, [issue(origin, issuer, b"\x01" * 32)])
            assert retired.status_code == 403 and "retired" in retired.json()["message"]
            keys = client.get("/api/v1/issuers").json()["issuers"][0]["keys"]
            assert keys[0]["added"]["index"] == added_at and keys[0]["retired"]["reason"] == "key rotated"
            assert keys[0]["label"] == "Royal University" and keys[0]["active"] is False
        finally:
            restarted.stop()


@pytest.mark.parametrize("name", ["info"])
def test_cli_info_prints_the_identity(tmp_path: Path, name: str) -> None:
    import subprocess
    import sys

    with running_log(tmp_path) as server, httpx.Client(base_url=server.url) as client:
        vkey = client.get("/api/v1/log").json()["log_vkey"]
    out = subprocess.run(
        [sys.executable, "-c", "from logserver.cli import main; main()", name, "--data", str(server.data)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert vkey in out and "registry key:" in out
    missing = subprocess.run(
        [sys.executable, "-c", "from logserver.cli import main; main()", name, "--data", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert missing.returncode != 0 and "Traceback" not in missing.stderr and "does not exist" in missing.stderr
