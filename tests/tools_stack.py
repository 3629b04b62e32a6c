"""For the `tlog` tool's tests: a real log with three real witnesses on 127.0.0.1, the 2-of-3 policy file a
verifier holds, and running the tool through click's runner or as a real process."""

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from click.testing import CliRunner, Result
from log_harness import REPO, LogProcess, free_port
from witness_helpers import WitnessProcess, write_config

from loadtest.localproc import log_identity
from tlogcore.tiles import decode_entry_bundle, entry_bundle_for
from tools.cli import main


@dataclass
class Stack:
    server: LogProcess
    witnesses: list[WitnessProcess]
    origin: str
    log_vkey: str
    policy_text: str

    @property
    def url(self) -> str:
        return self.server.url


@contextmanager
def witnessed_log(tmp: Path) -> Iterator[Stack]:
    ident = log_identity(tmp / "log")
    origin, log_vkey = ident.origin, ident.log_vkey
    witnesses: list[WitnessProcess] = []
    try:
        for i in range(3):
            config = write_config(tmp / f"w{i}.toml", f"witness{i}.example.org", [(origin, log_vkey)])
            witness = WitnessProcess(tmp / f"w{i}", config)
            witness.start()
            witnesses.append(witness)
        log_config = tmp / "log.toml"
        log_config.write_text(
            "[witnessing]\nwitness_timeout_ms = 500\nwitness_retries = 1\n"
            + "".join(f'[[witness]]\nurl = "{w.url}"\nvkey = "{w.vkey}"\n' for w in witnesses)
        )
        server = LogProcess(tmp / "log", free_port(), config=log_config).start()
        policy = (
            f"log {log_vkey}\n"
            + "".join(f"witness W{i} {w.vkey}\n" for i, w in enumerate(witnesses))
            + "group two-of-three 2 W0 W1 W2\nquorum two-of-three\n"
        )
        try:
            yield Stack(server, witnesses, origin, log_vkey, policy)
        finally:
            server.stop()
    finally:
        for w in witnesses:
            w.stop()


def tlog(*args: str) -> Result:
    """`tlog ARGS` through click's runner (stdout and stderr kept apart)."""
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def register_issuer(stack: Stack, key: Path, name: str = "moeys.gov.kh", label: str | None = None) -> str:
    """`tlog keygen` an issuer key into `key` and `tlog issuer add` it to the stack's log with its registry key; the
    issuer's verifier key."""
    made = tlog("keygen", "--name", name, "--out", str(key))
    assert made.exit_code == 0, made.output
    vkey = made.stdout.strip()
    registry = str(stack.server.data / "registry.key")
    labelled = ["--label", label] if label else []
    added = tlog("issuer", "add", "--log", stack.url, "--registry-key", registry, "--issuer", vkey, *labelled)
    assert added.exit_code == 0, added.output
    return vkey


def tlog_process(*args: str) -> subprocess.Popen[bytes]:
    """`tlog ARGS` as a real process (to be killed mid-way); its output is not kept."""
    return subprocess.Popen(
        [sys.executable, "-c", "from tools.cli import main; main()", *args],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )


def all_entries(url: str) -> list[bytes]:
    """Every leaf of the log, read from its entry tiles (what a monitor reads)."""
    with httpx.Client(base_url=url, timeout=20) as client:
        size = int(client.get("/api/v1/log").json()["size"])
        entries: list[bytes] = []
        for start in range(0, size, 256):
            tile = entry_bundle_for(start, size)
            response = client.get("/" + tile.path)
            response.raise_for_status()
            entries.extend(decode_entry_bundle(response.content, tile.width))
        return entries
