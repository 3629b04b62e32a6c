"""The monitor's processes (monitor/processes.py) start with the modules they run already imported from the
forkserver, however the monitor was started: here with `python -c`, as loadtest/monitor_bench.py starts it, where
the forkserver has no `__main__` script to import."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from monitor.cli import wants_workers
from monitor.processes import CHECK_WORKER_NICENESS, process_pool, start_check_worker
from monitor.statusworker import start_status_process

REPO = Path(__file__).resolve().parent.parent
PROBE = """
import json
from monitor.processes import PRELOAD, process_pool
from tests.worker_probe import loaded
pool = process_pool(2)
found = [pool.submit(loaded, PRELOAD).result(timeout=60) for _ in range(4)]
pool.shutdown()
print(json.dumps(found))
"""


def test_worker_processes_start_with_the_monitor_modules_imported() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout)
    assert found == [["monitor.audit", "monitor.statusworker"]] * 4


KILLED = """
import os, time
from monitor.processes import process_pool
pool = process_pool(2)
[pool.submit(os.getpid).result(timeout=60) for _ in range(4)]
for _ in range(600):  # both started (process_pool starts them at once)
    if len(pool._processes) == 2:
        break
    time.sleep(0.1)
pids = set(pool._processes)
print(" ".join(map(str, sorted(pids))), flush=True)
time.sleep(120)
"""


def _parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _gone(pids: set[int]) -> bool:
    return not any(Path(f"/proc/{pid}").exists() for pid in pids)


def test_the_processes_exit_when_the_monitor_is_killed() -> None:
    """kill -9 of the monitor's main process: its worker processes and their forkserver exit within seconds.
    (Before, the workers waited on their task pipe for ever and kept the forkserver alive: the e2e kill -9 test left
    four processes behind at each run.)"""
    probe = subprocess.Popen([sys.executable, "-c", KILLED], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert probe.stdout is not None
        workers = {int(p) for p in probe.stdout.readline().split()}
        assert len(workers) == 2, workers
        forkservers = {_parent_of(pid) for pid in workers}
        assert probe.pid not in forkservers  # forked from the forkserver, not from the monitor
    finally:
        probe.kill()
        probe.wait(10)
        if probe.stdout is not None:
            probe.stdout.close()
    deadline = time.monotonic() + 20
    while not _gone(workers | forkservers) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = {pid for pid in workers | forkservers if Path(f"/proc/{pid}").exists()}
    for pid in left:  # the test's own leftovers, by id
        os.kill(pid, signal.SIGKILL)
    assert not left, f"still running after the monitor was killed: {sorted(left)}"


@pytest.mark.parametrize(
    "args, config, want",
    [
        (["audit-once", "--config", "{path}"], "workers = 2\n", True),
        (["run", "--config={path}"], "workers = 4\n", True),
        (["audit-once", "--config", "{path}"], "workers = 1\n", False),
        (["audit-once", "--config", "{path}"], "", False),  # the default: one process
        (["report", "--config", "{path}"], "workers = 2\n", False),  # not an auditing command
        (["audit-once", "--config", "{path}"], "workers = [\n", False),  # not TOML: commands.py says so
        (["audit-once", "--config", "{path}"], 'workers = "2"\n', False),  # wrong type: likewise
        (["audit-once", "--config", "{missing}"], "", False),
        (["audit-once", "--config"], "", False),
        ([], "", False),
    ],
)
def test_the_forkserver_starts_before_the_imports_only_for_an_audit_with_workers(
    tmp_path: Path, args: list[str], config: str, want: bool
) -> None:
    """cli.py starts the forkserver early only when the command will start worker processes; any doubt about the
    config skips it (the command itself then reports the problem)."""
    path = tmp_path / "monitor.toml"
    path.write_text(config, encoding="utf-8")
    filled = [a.format(path=path, missing=tmp_path / "none.toml") for a in args]
    assert wants_workers(filled) is want


def test_the_forkserver_preload_stays_free_of_the_main_process_modules() -> None:
    """What the forkserver imports before the first worker can start (processes.py: PRELOAD) leaves out the HTTP
    client (httpx, and rich and click through it) and the config's parsers: 290 -> 182 ms of imports here."""
    probe = "import json, sys, monitor.audit, monitor.statusworker; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = set(json.loads(done.stdout))
    assert {"monitor.audit", "monitor.statusworker", "tlogcore.statement"} <= loaded
    assert not loaded & {"httpx", "rich", "click", "tlogcore.policy", "monitor.config", "monitor.logcontext"}


def test_the_check_workers_yield_the_cores_to_the_main_and_status_processes() -> None:
    """monitor/processes.py CHECK_WORKER_NICENESS: the signature workers run CHECK_WORKER_NICENESS nicer than the
    monitor, the status index's process as nice as the monitor (its stages are serial; the workers take the rest)."""
    own = os.nice(0)
    with process_pool(2, start_check_worker) as workers, process_pool(1, start_status_process) as status:
        worker_niceness = {workers.submit(os.nice, 0).result(timeout=60) for _ in range(4)}
        status_niceness = status.submit(os.nice, 0).result(timeout=60)
    assert worker_niceness == {min(19, own + CHECK_WORKER_NICENESS)}
    assert status_niceness == own
