"""Small helpers for starting the project's own processes on 127.0.0.1, shared by benchmarks and tests."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def children(pid: int) -> list[int]:
    """The live child processes of `pid` (Linux /proc), [] once it is gone."""
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            found += [int(child) for child in (task / "children").read_text().split()]
    return found


def bytes_written(pid: int | str = "self") -> int:
    """Bytes a process has passed to write() and pwrite() so far, to files and pipes alike (Linux: /proc/<pid>/io
    `wchar`); OSError once it is gone."""
    with open(f"/proc/{pid}/io") as io:
        return next(int(line.split()[1]) for line in io if line.startswith("wchar:"))


def rss_kib(pid: int) -> int:
    """Resident memory of one process, from /proc (0 once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class LogIdentity:
    origin: str
    log_vkey: str
    registry_vkey: str


def log_identity(data: Path) -> LogIdentity:
    """Run `tlog-server init --data DATA` (keys generated on first use) and read back what it prints."""
    out = subprocess.run(
        [sys.executable, "-c", "from logserver.cli import main; main()", "init", "--data", str(data)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    fields = {key.strip(): value.strip() for key, value in (line.split(":", 1) for line in out.splitlines())}
    return LogIdentity(fields["origin"], fields["log key"], fields["registry key"])
