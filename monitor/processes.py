"""The monitor's worker processes (the statement checks, audit.py) and its status process (statusworker.py).

Forkserver: each process is forked from a clean server process, not from the threaded main process. The modules the
processes run are imported once, in that server (`set_forkserver_preload`), so every process forked from it starts
with them: without it, a monitor started other than through its `tlog-monitor` script (`python -c`, whose
`__main__` the forkserver cannot re-import) had each process import monitor and tlogcore itself, 0.1-0.25 CPU s
apiece, about a quarter of a 2*10^4-entry audit's CPU with 2 workers and the status process (loadtest/monitor_bench.py).
The processes are started at once, so they are up while the main process reads the checkpoint and the first tiles.
"""

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

PRELOAD = ["monitor.audit", "monitor.statusworker"]  # what the processes run: check_packed, audit_chunk


def process_pool(processes: int) -> ProcessPoolExecutor:
    """A pool of `processes` processes forked from the preloaded forkserver, started now."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)  # takes effect when the server starts: the first pool of this process
    pool = ProcessPoolExecutor(processes, mp_context=context)
    for _ in range(processes):  # each submit with no idle process starts one (forkserver pools start them lazily)
        pool.submit(os.getpid)
    return pool
