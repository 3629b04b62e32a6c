"""The `tlog` tool through click's runner, against a real local log."""

import hashlib
import os
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from log_harness import log_verifier, running_log

from tlogcore.bundle import parse_tlog_proof, verify_bundle
from tlogcore.errors import ProofError
from tlogcore.policy import parse_policy
from tools.cli import main


def test_keygen_issuer_add_submit_and_bundles_verify(tmp_path: Path) -> None:
    runner = CliRunner()
    key = tmp_path / "issuer.key"
    made = runner.invoke(main, ["keygen", "--name", "moeys.gov.kh", "--out", str(key)])
    assert made.exit_code == 0, made.output
    vkey = made.output.strip()
    assert vkey.startswith("moeys.gov.kh+") and os.stat(key).st_mode & 0o777 == 0o600
    again = runner.invoke(main, ["keygen", "--name", "moeys.gov.kh", "--out", str(key)])
    assert again.exit_code != 0 and "refusing to overwrite" in again.output
    os.chmod(key, 0o644)
    docs = []
    for i in range(3):
        doc = tmp_path / f"diploma-{i}.pdf"
        doc.write_bytes(b"%PDF-1.7 diploma " + bytes([i]) * 100)
        docs.append(doc)
    with running_log(tmp_path) as server, httpx.Client(base_url=server.url) as client:
        loose = runner.invoke(main, ["submit", "--log", server.url, "--key", str(key), str(docs[0])])
        assert loose.exit_code != 0 and "chmod 600" in loose.output
        os.chmod(key, 0o600)
        refused = runner.invoke(main, ["submit", "--log", server.url, "--key", str(key), str(docs[0])])
        assert refused.exit_code != 0 and "not registered" in refused.output and "Traceback" not in refused.output
        added = runner.invoke(
            main,
            [
                "issuer",
                "add",
                "--log",
                server.url,
                "--registry-key",
                str(server.data / "registry.key"),
                "--issuer",
                vkey,
                "--label",
                "Ministry",
            ],
        )
        assert added.exit_code == 0, added.output
        submitted = runner.invoke(main, ["submit", "--log", server.url, "--key", str(key), *map(str, docs)])
        assert submitted.exit_code == 0, submitted.output
        policy = parse_policy(f"log {log_verifier(client).vkey}\nquorum none\n")
    for doc in docs:
        bundle = parse_tlog_proof((doc.parent / (doc.name + ".tlog-proof")).read_bytes())
        digest = hashlib.sha256(doc.read_bytes()).digest()
        assert verify_bundle(bundle, policy, document=digest).statement.document == digest
    wrong = hashlib.sha256(docs[0].read_bytes() + b"x").digest()
    with pytest.raises(ProofError):
        verify_bundle(parse_tlog_proof((tmp_path / "diploma-0.pdf.tlog-proof").read_bytes()), policy, document=wrong)
