"""The monitor's processes (monitor/processes.py) start with the modules they run already imported from the
forkserver, however the monitor was started: here with `python -c`, as loadtest/monitor_bench.py starts it, where
the forkserver has no `__main__` script to import."""

import json
import subprocess
import sys
from pathlib import Path

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
