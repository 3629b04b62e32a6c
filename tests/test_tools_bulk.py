"""Bulk submit of 10,000 documents (a CSV of precomputed hashes) killed mid-way and re-run: each logged exactly once."""

import hashlib
import signal
import time
from pathlib import Path

import httpx
from click.testing import CliRunner
from log_harness import running_log
from proctree import alive, children
from tools_stack import all_entries, tlog, tlog_process

from tlogcore.statement import ISSUE, parse_statement
from tools.cli import main

COUNT = 10_000


def test_bulk_submit_interrupted_and_rerun_logs_each_document_once(tmp_path: Path) -> None:
    key = tmp_path / "bulk.key"
    vkey = tlog("keygen", "--name", "civil-registry.example.gov.kh", "--out", str(key)).stdout.strip()
    hashes = [hashlib.sha256(b"certificate %d" % i).hexdigest() for i in range(COUNT)]
    csv = tmp_path / "hashes.csv"
    csv.write_text("sha256,ref\n" + "".join(f"{h},Birth certificate {i}\n" for i, h in enumerate(hashes)))
    with running_log(tmp_path) as server:
        added = tlog(
            "issuer", "add", "--log", server.url, "--registry-key", str(server.data / "registry.key"), "--issuer", vkey
        )
        assert added.exit_code == 0, added.output
        first = tlog_process("submit", "--log", server.url, "--key", str(key), "--csv", str(csv), "--batch", "250")
        deadline = time.monotonic() + 30
        size = 0
        while size < 3000 and time.monotonic() < deadline and first.poll() is None:
            size = int(httpx.get(server.url + "/api/v1/log").json()["size"])
            time.sleep(0.02)
        assert first.poll() is None, "the first run finished before it could be interrupted"
        signing_workers = children(first.pid)
        assert signing_workers, "the run signs in worker processes (tools/signing.py): none found"
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        deadline = time.monotonic() + 10  # they notice within a second (witness/processes.py: exit_with_parent)
        while any(alive(pid) for pid in signing_workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(alive(pid) for pid in signing_workers), "signing workers outlived the killed tlog submit"
        interrupted_at = int(httpx.get(server.url + "/api/v1/log").json()["size"])
        assert 1 < interrupted_at < COUNT + 1, interrupted_at
        state = csv.with_name(csv.name + ".tlog-submit.json")
        assert state.exists()
        started = time.monotonic()
        rerun = CliRunner().invoke(
            main, ["submit", "--log", server.url, "--key", str(key), "--csv", str(csv)], catch_exceptions=False
        )
        assert rerun.exit_code == 0, rerun.output
        assert f"{COUNT} documents: all logged" in rerun.stdout
        assert time.monotonic() - started < 40
        again = tlog("submit", "--log", server.url, "--key", str(key), "--csv", str(csv), "--no-lookup")
        assert again.exit_code == 0, again.output  # a finished state: nothing to do, nothing sent
        entries = all_entries(server.url)
    assert len(entries) == 1 + COUNT  # the issuer-add, then each document once
    issued: dict[str, int] = {}
    for entry in entries[1:]:
        statement = parse_statement(entry)
        assert statement.kind == ISSUE and statement.document is not None
        issued[statement.document.hex()] = issued.get(statement.document.hex(), 0) + 1
    assert issued == dict.fromkeys(hashes, 1)
