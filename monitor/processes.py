"""The monitor's worker processes (the statement checks, audit.py) and its status process (statusworker.py).

Forkserver: each process is forked from a clean server process, not from the threaded main process. The modules the
processes run are imported once, in that server (`set_forkserver_preload`), so every process forked from it starts
with them: without it, a monitor started other than through its `tlog-monitor` script (`python -c`, whose
`__main__` the forkserver cannot re-import) had each process import monitor and tlogcore itself, 0.1-0.25 CPU s
apiece, about a quarter of a 2*10^4-entry audit's CPU with 2 workers and the status process (loadtest/monitor_bench.py).
The processes are started at once, from a thread, so they start while the main process reads the checkpoint and the
first tiles.
"""

import contextlib
import multiprocessing
import multiprocessing.forkserver
import os
import select
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor

# The check workers' niceness: CFS then gives the main and status processes (niceness 0) about three times their
# weight. Those two are serial stages that feed the workers and keep up with them; the workers are throughput, and
# take whatever CPU the others leave. Without it, at 10^6 entries the status process fell behind on its share of
# the cores and the audit ended on it alone, a core idle (docs/performance.md, "The monitor", fifty-third round).
CHECK_WORKER_NICENESS = 5
PRELOAD = ["monitor.audit", "monitor.statusworker"]  # what they run: verify_packed, check_packed, audit_chunk


def start_forkserver() -> None:
    """Start the forkserver now, without waiting for it: it imports PRELOAD while this process goes on (cli.py)."""
    multiprocessing.set_forkserver_preload(PRELOAD)
    multiprocessing.forkserver.ensure_running()


def process_pool(processes: int, initializer: "Callable[[int], None] | None" = None) -> ProcessPoolExecutor:
    """A pool of `processes` processes forked from the preloaded forkserver, started now. Each runs `initializer`
    (default `exit_with`) with the monitor's process id."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)  # takes effect when the server starts: the first pool of this process
    pool = ProcessPoolExecutor(
        processes, mp_context=context, initializer=initializer or exit_with, initargs=(os.getpid(),)
    )
    threading.Thread(target=_start, args=(pool, processes), daemon=True, name="start-processes").start()
    return pool


def _start(pool: ProcessPoolExecutor, processes: int) -> None:
    """Start the pool's processes, in a thread: each start waits for the forkserver, which first imports PRELOAD
    (~0.2-0.3 CPU s); meanwhile the main process reads its state and the first tiles (a 2*10^4-entry audit waited
    ~0.28 s for it here). A task submitted before they are up waits for them, as it would have."""
    with contextlib.suppress(Exception):  # shut down before all started; or a start failed: the first task says so
        for _ in range(processes):  # each submit with no idle process starts one (forkserver pools start them lazily)
            pool.submit(os.getpid)


def start_check_worker(monitor: int) -> None:
    """A worker's initializer (commands.py): it exits with the monitor, and yields the cores to the main and status
    processes while they have work (CHECK_WORKER_NICENESS)."""
    exit_with(monitor)
    with contextlib.suppress(OSError):  # raising one's own niceness needs no privilege; a sandbox may refuse all
        os.nice(CHECK_WORKER_NICENESS)


def exit_with(monitor: int) -> None:
    """In each process: exit when the monitor's main process is gone. After a kill -9 nobody shuts the pool down; a
    worker blocked on its task pipe (it holds that pipe's write end too) never sees EOF, and the forkserver stays as
    long as any process it forked does (each holds its liveness pipe): four processes for ever per kill with
    `workers = 2`, as the log's signature workers once did (logserver/cli.py: exit_with_parent). Their parent is
    the forkserver, so `getppid` cannot tell; a pidfd can."""

    def watch() -> None:
        try:
            handle = os.pidfd_open(monitor)
        except ProcessLookupError:
            os._exit(0)
        except OSError:  # no pidfd (old kernel): ask every second
            while _alive(monitor):
                time.sleep(1)
            os._exit(0)
        select.select([handle], [], [])  # readable once the process has exited
        os._exit(0)

    threading.Thread(target=watch, daemon=True, name="exit-with-monitor").start()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
