"""A newcomer's first minutes, for real: `python3 dev.py run` (free ports, a temporary data directory) says where
the home page and verifier are and how to issue a first document; `python3 dev.py demo` issues one whose QR codes
decode and verify; SIGTERM stops everything with exit 0 and no warnings. `tlog-server info --json` is parseable."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from log_harness import REPO, free_port
from qr_scan import scanned_text
from web_browser import chromium, open_verdict, screenshot

TLOG = Path(sys.executable).parent / "tlog"


@dataclass
class Run:
    process: subprocess.Popen[str]
    data: Path
    url: str
    printed: list[str]
    drain: threading.Thread | None = None


def start_run(data: Path, *extra: str) -> Run:
    port, witness_port = free_port(), free_port()
    args = [sys.executable, str(REPO / "dev.py"), "run", "--data", str(data), "--port", str(port)]
    args += ["--witness-port", str(witness_port), *extra]
    with (data.parent / "run.stderr").open("w") as stderr:
        process = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=stderr, text=True)
    printed: list[str] = []
    deadline = time.monotonic() + 120
    assert process.stdout is not None
    for line in process.stdout:  # ends when the process exits; bounded by the deadline check
        printed.append(line.rstrip("\n"))
        if line.startswith("Stop with Ctrl-C") or time.monotonic() > deadline:
            break
    assert printed and printed[-1].startswith("Stop with Ctrl-C"), (printed, read_stderr(data))
    # Keep reading what the server prints later, so a full pipe never blocks it.
    drain = threading.Thread(target=lambda: [printed.append(line) for line in process.stdout or []], daemon=True)
    drain.start()
    return Run(process, data, f"http://127.0.0.1:{port}", printed, drain)


def finish(run: Run) -> None:
    """SIGTERM first (dev.py then stops the log and witness it started); SIGKILL only if that fails."""
    if run.process.poll() is None:
        run.process.terminate()
        try:
            run.process.wait(30)
        except subprocess.TimeoutExpired:
            run.process.kill()
            run.process.wait(10)
    if run.drain is not None:
        run.drain.join(10)
    if (run.drain is None or not run.drain.is_alive()) and run.process.stdout is not None:
        run.process.stdout.close()


def read_stderr(data: Path) -> str:
    return (data.parent / "run.stderr").read_text()


def stop(run: Run) -> str:
    """SIGTERM, as a service manager stops it; returns what it wrote to stderr."""
    run.process.send_signal(signal.SIGTERM)
    try:
        assert run.process.wait(30) == 0
    except subprocess.TimeoutExpired:
        run.process.kill()
        raise
    return read_stderr(run.data)


@pytest.fixture(scope="module")
def local_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    run = start_run(tmp_path_factory.mktemp("devrun") / "data")
    try:
        yield run
    finally:
        finish(run)


def test_run_prints_the_next_step_and_the_pages_answer(local_run: Run) -> None:
    text = "\n".join(local_run.printed)
    assert f"home page:  {local_run.url}/\n" in text
    assert f"verifier:   {local_run.url}/verify\n" in text
    assert f"python3 dev.py demo --log {local_run.url} --data {local_run.data}" in text
    home = httpx.get(local_run.url + "/")
    assert home.status_code == 200 and "Document transparency log" in home.text
    assert httpx.get(local_run.url + "/verify").status_code == 200
    info = httpx.get(local_run.url + "/api/v1/log").json()
    assert [w["name"] for w in info["witnesses"]] == ["witness.localhost"]  # named by the witness key's name


def test_demo_issues_a_certificate_whose_qr_codes_verify(local_run: Run) -> None:
    args = [sys.executable, str(REPO / "dev.py"), "demo", "--log", local_run.url, "--data", str(local_run.data)]
    done = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "registered the demo issuer" in done.stdout
    demo = local_run.data / "demo"
    pdf, paper = demo / "certificate-1.pdf", demo / "certificate-1.fields.json"
    assert pdf.read_bytes().startswith(b"%PDF-1.4\n") and b"Sok Dara" in pdf.read_bytes()
    assert json.loads(paper.read_text())["fields"]["ឈ្មោះ"] == "សុខ ដារា"
    for made in (pdf, paper):
        for suffix in (".tlog-proof", ".qr.png", ".qr.svg", ".label.pdf", ".label.svg"):
            assert Path(f"{made}{suffix}").stat().st_size > 0, suffix
    links = [scanned_text(Path(f"{made}.qr.png")) for made in (pdf, paper)]
    for link in links:
        assert link.startswith(f"{local_run.url}/verify#") and link in done.stdout
    policy = demo / "trust-policy.txt"
    verdict = subprocess.run(
        [str(TLOG), "verify", str(pdf), "--policy", str(policy), "--qr-image", f"{pdf}.qr.png"], capture_output=True
    )
    assert verdict.returncode == 0, verdict.stdout + verdict.stderr
    with chromium(local_run.data.parent / "profile") as context:  # what a phone does with the scanned links
        page = context.new_page()
        assert [open_verdict(page, link) for link in links] == ["genuine", "genuine"]
        screenshot(page, "demo-paper-verified")
    again = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=180)  # a second certificate
    assert again.returncode == 0 and "registered" not in again.stdout, again.stdout + again.stderr
    assert (demo / "certificate-2.pdf.qr.png").exists()
    issuers = httpx.get(local_run.url + "/api/v1/issuers").json()["issuers"]
    assert [len(i["keys"]) for i in issuers] == [1]


def test_sigterm_stops_run_cleanly(local_run: Run) -> None:
    stderr = stop(local_run)
    assert "leaked semaphore" not in stderr and "Traceback" not in stderr and "Warning" not in stderr, stderr
    with pytest.raises(httpx.TransportError):
        httpx.get(local_run.url + "/healthz", timeout=2)


def test_run_on_a_throwaway_postgresql(tmp_path: Path) -> None:
    run = start_run(tmp_path / "data", "--engine", "postgresql")
    try:
        assert any(line.startswith("PostgreSQL: a throwaway cluster at postgresql://") for line in run.printed)
        scratch = next(p for p in run.printed if "PostgreSQL:" in p).split("state in ")[1].split(" (removed")[0]
        assert Path(scratch).is_dir()
        assert httpx.get(run.url + "/api/v1/log").json()["size"] == 0
        assert httpx.get(run.url + "/").status_code == 200
        assert "leaked semaphore" not in stop(run)
        assert not Path(scratch).exists()  # throwaway: keys, state and cluster are gone
    finally:
        finish(run)


def test_server_identity_as_json(tmp_path: Path) -> None:
    cli = [sys.executable, "-c", "from logserver.cli import main; main()"]
    made = subprocess.run([*cli, "init", "--data", str(tmp_path / "d"), "--json"], capture_output=True, text=True)
    identity = json.loads(made.stdout)
    assert set(identity) == {"origin", "log_vkey", "registry_vkey"}
    assert identity["log_vkey"].startswith(identity["origin"] + "+")
    shown = subprocess.run([*cli, "info", "--data", str(tmp_path / "d"), "--json"], capture_output=True, text=True)
    assert json.loads(shown.stdout) == identity
    text = subprocess.run([*cli, "info", "--data", str(tmp_path / "d")], capture_output=True, text=True).stdout
    assert f"log key:      {identity['log_vkey']}" in text
    assert os.stat(tmp_path / "d" / "log.key").st_mode & 0o077 == 0
