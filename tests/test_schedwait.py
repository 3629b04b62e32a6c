"""loadtest/schedwait.py: a process's ready work that waited for a core, from Linux's scheduler statistics."""

import os
import subprocess
import sys
import time

from loadtest.log_bench import process_cpu_seconds
from loadtest.schedwait import (
    MACHINE_STATES,
    RunQueueWait,
    machine_times,
    thread_waits,
    waited_between,
    waits_by_thread,
)

WINDOW = 0.9  # seconds
LIFE = 60  # seconds a child lives at most: the test ends them once the window is read
# CPU-bound children pinned to one core (one this test may use): three of them share it, so each runs about a third
# of the time and is ready and waiting for about two thirds; a sleeping child is neither. Each child says so once
# started: an interpreter starting on a busy machine is itself ready work waiting, and must stay out of the window.
BURNER = "import os,time; os.sched_setaffinity(0,{%d}); print(flush=True); t=time.time()+%d\nwhile time.time()<t: pass"
SLEEPER = "import time; print(flush=True); time.sleep(%d)"


def spawn(code: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)


def started(children: list[subprocess.Popen[bytes]]) -> None:
    for child in children:
        assert child.stdout is not None and child.stdout.readline() == b"\n"


def test_the_kernel_keeps_scheduler_statistics() -> None:
    # Every Debian and Ubuntu kernel does; without them the benchmark's line would read 0 and mean nothing.
    assert RunQueueWait.available()


def test_processes_sharing_one_core_wait_for_it_longer_than_they_run_and_a_sleeping_one_does_not() -> None:
    core = min(os.sched_getaffinity(0))
    children = [*(spawn(BURNER % (core, LIFE)) for _ in range(3)), spawn(SLEEPER % LIFE)]
    try:
        started(children)
        pids = [child.pid for child in children]
        before, cpu_before = waits_by_thread(pids), [process_cpu_seconds(pid) for pid in pids]
        time.sleep(WINDOW)
        after, cpu_after = waits_by_thread(pids), [process_cpu_seconds(pid) for pid in pids]
    finally:
        for child in children:
            child.kill()
            child.wait(timeout=30)
            if child.stdout is not None:
                child.stdout.close()
    waited = [after[pid] - before[pid] for pid in pids]
    ran = [later - earlier for later, earlier in zip(cpu_after, cpu_before, strict=True)]
    for burner, its_cpu in zip(waited[:3], ran[:3], strict=True):
        # ready about twice as long as it ran (the run queue's wait, not the time on the core: the second field)
        assert burner.waited >= 1.3 * its_cpu and burner.preempted > 0, (waited, ran)
    assert waited[3].waited < 0.02, waited


def test_a_window_counts_the_difference_a_thread_born_inside_it_whole_and_one_that_ended_not_at_all() -> None:
    before = {1: RunQueueWait(2.0, 5), 3: RunQueueWait(4.0, 8)}  # thread 3 ends inside the window
    after = {1: RunQueueWait(2.5, 9), 2: RunQueueWait(0.25, 3)}
    assert waited_between(before, after) == RunQueueWait(0.75, 7)


def test_waits_are_read_thread_by_thread() -> None:
    # Per thread, not per process: a process's total would fall when one of its threads ends, and the window's
    # difference would subtract that thread's past waits from the others'.
    second = f"threading.Thread(target=time.sleep, args=({LIFE},)).start()"
    child = spawn(f"import threading,time; {second}; print(flush=True); time.sleep({LIFE})")
    try:
        started([child])
        threads = waits_by_thread([child.pid])
    finally:
        child.kill()
        child.communicate(timeout=30)
    assert len(threads) == 2 and child.pid in threads, threads


def test_an_ended_process_reads_as_no_wait() -> None:
    child = spawn("pass")
    child.communicate(timeout=30)  # its end, and its pipe closed
    assert thread_waits(child.pid) == {}


def test_the_machines_cores_account_for_the_window_and_a_burn_shows_as_user_time() -> None:
    cores = os.cpu_count() or 1
    before, started, cpu = machine_times(), time.monotonic(), time.process_time()
    while time.process_time() - cpu < 0.5:  # half a second on a core, however busy the machine is
        pass
    after, window = machine_times(), time.monotonic() - started
    spent = {state: after[state] - before[state] for state in MACHINE_STATES}
    assert abs(sum(spent.values()) - window * cores) <= 0.1 * window * cores + 0.05, (spent, window)
    assert spent["user"] + spent["nice"] + spent["system"] >= 0.45, spent
