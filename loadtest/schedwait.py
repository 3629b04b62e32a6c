"""How long a process's threads were ready to run but waited for a CPU: Linux's scheduler statistics.

A process that falls behind on a busy machine either has no work ready (it waits for a lock, a reply, a disk) or
has work ready that no core runs. CPU seconds cannot tell the two apart; `/proc/<pid>/task/<tid>/schedstat` can.
Its three fields are the time the thread ran, the time it spent runnable in a run queue waiting for a core (both
in nanoseconds), and the number of times it ran. Summed over a process's threads, the second is "thread-seconds
of ready work that waited for a core": over a window of W seconds, W x 0.3 means that on average 0.3 of a thread
was ready and not running. The keep-up benchmark prints it for each party (status_keepup.py), issue 19's question
being whether the indexer is short of cores or short of work it can do at once (docs/status-proofs.md §11
"Fifteenth round").

Beside it, what the machine's cores did over the same window (`machine_times`, /proc/stat): a core that no party
used was idle, ran the kernel for all of them (softirq: the network and disk completions), or was taken by the
hypervisor for another guest (steal), which a virtual machine's "2 cores" can hide.

Only live threads are counted: the waits of a thread or a child process that ended inside a window are lost (the
kernel keeps no cumulative figure for them, unlike CPU time's cutime). Needs a kernel with schedstats (every
Debian and Ubuntu kernel): RunQueueWait.available says whether this one has them.
"""

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunQueueWait:
    """The threads' waiting for a core, so far: seconds summed over threads (`waited`) and involuntary context
    switches (the times a running thread was taken off its core for another)."""

    waited: float = 0.0
    preempted: int = 0

    def __sub__(self, before: "RunQueueWait") -> "RunQueueWait":
        return RunQueueWait(self.waited - before.waited, self.preempted - before.preempted)

    def __add__(self, other: "RunQueueWait") -> "RunQueueWait":
        return RunQueueWait(self.waited + other.waited, self.preempted + other.preempted)

    @staticmethod
    def available() -> bool:
        return Path(f"/proc/{os.getpid()}/schedstat").exists()


def thread_waits(pid: int) -> dict[int, RunQueueWait]:
    """Each live thread of `pid`, by thread id ({} if the process has ended)."""
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return {}
    waits = {}
    for task in tasks:
        try:
            waited_ns = int((task / "schedstat").read_text().split()[1])
            status = (task / "status").read_text()
        except (OSError, IndexError, ValueError):  # the thread ended meanwhile
            continue
        waits[int(task.name)] = RunQueueWait(waited_ns / 1e9, _preempted(status))
    return waits


def _preempted(status: str) -> int:
    """The `nonvoluntary_ctxt_switches` of a /proc status file (0 if the kernel does not count them)."""
    _, found, rest = status.partition("nonvoluntary_ctxt_switches:")
    return int(rest.split(None, 1)[0]) if found else 0


# /proc/stat's first line: the machine's time in each state, all cores together (proc(5)); "steal" is time the
# hypervisor ran something else while this guest's virtual core had work.
MACHINE_STATES = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def machine_times() -> dict[str, float]:
    """Seconds spent so far by all cores together in each of MACHINE_STATES."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    tick = os.sysconf("SC_CLK_TCK")
    return {state: int(value) / tick for state, value in zip(MACHINE_STATES, fields, strict=False)}


def waits_by_thread(pids: Iterable[int]) -> dict[int, RunQueueWait]:
    """The live threads of these processes, by thread id (thread ids are unique on the machine)."""
    return {tid: wait for pid in pids for tid, wait in thread_waits(pid).items()}


def waited_between(before: dict[int, RunQueueWait], after: dict[int, RunQueueWait]) -> RunQueueWait:
    """What the threads alive at `after` waited since `before` (a thread born meanwhile: all its life; one that
    ended meanwhile is left out, not subtracted)."""
    total = RunQueueWait()
    for tid, now in after.items():
        total += now - before.get(tid, RunQueueWait())
    return total
