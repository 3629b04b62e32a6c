"""`processes = N` (config): N witness servers on one port, each with its own event loop, cosigning workers and
group commit, so the HTTP and event-loop part of a cosignature runs on every core, not only its signatures.

- Each process listens on the port with SO_REUSEPORT; the kernel spreads new connections over them by a hash of
  the connection (as `tlog-server`'s `[server] workers`, logserver/workers.py, which the witness may not import).
  The supervisor holds the port bound but not listening from the start, so it is given no connection and no other
  program takes the port while a process restarts.
- The promise stays the database's: every process commits its compare-and-swaps with `UPDATE … WHERE origin = ?
  AND size = ? AND root = ?` inside `BEGIN IMMEDIATE` (witness/storage.py), and SQLite lets one writer at a time
  into a database file, whichever process it is. A checkpoint checked against a head another process moved
  meanwhile loses (409) and its cosignature is dropped unseen: never two roots for one size, durable before 200.
- The keys and the database are made once, by `serve` before any process starts (witness/cli.py).
- SIGTERM or SIGINT to the supervisor: every process gets SIGTERM and shuts down as one `serve` does. A process
  that dies otherwise (kill -9) is started again; the processes exit when the supervisor dies, even by kill -9.
"""

import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from multiprocessing.process import BaseProcess

log = logging.getLogger("witness.processes")

STOP_SECONDS = 20.0  # a process's clean shutdown; then it is killed
RESTART_PAUSE = 1.0  # between a process's death and its restart

Run = Callable[[socket.socket], None]  # one process's whole life, given its listening socket (cli.py)


def reserve_port(address: tuple[str, int]) -> socket.socket:
    """The port, bound with SO_REUSEPORT but not listening: held for the processes, given no connection."""
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def shared_listener(address: tuple[str, int]) -> socket.socket:
    """This process's own listening socket on the shared port. TCP_NODELAY on the listener is inherited by the
    accepted sockets (Linux); asyncio sets it itself only on sockets it creates with proto IPPROTO_TCP."""
    sock = socket.create_server(
        address, family=socket.AF_INET6 if ":" in address[0] else socket.AF_INET, reuse_port=True
    )
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def exit_with_parent(parent: int) -> None:
    """Exit when the supervisor dies: after a kill -9 nobody would stop this process, and it would keep the port.
    `tlog-server`'s worker processes use it too (logserver/cli.py), as the log may import from witness/."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, daemon=True, name="exit-with-parent").start()


def _process_main(run: Run, address: tuple[str, int], parent: int) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # uvicorn installs its own handlers for a clean stop
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    exit_with_parent(parent)
    run(shared_listener(address))


def supervise(run: Run, address: tuple[str, int], count: int) -> int:
    """Run `count` processes on `address` (held by `reserve_port`) until SIGTERM or SIGINT; start again any that
    dies meanwhile. Returns 0."""
    context = multiprocessing.get_context("fork")  # nothing runs here but this thread: the fork is clean
    signals = StopSignals()

    def start(i: int) -> BaseProcess:
        process = context.Process(target=_process_main, args=(run, address, os.getpid()), name=f"witness-{i}")
        process.start()
        return process

    return restart_until_stopped(signals, [start(i) for i in range(count)], start, "witness process")


class StopSignals:
    """SIGTERM and SIGINT set `stopping`; made before any process starts, so that neither is lost meanwhile."""

    def __init__(self) -> None:
        self.stopping = False
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)

    def _stop(self, *_: object) -> None:
        self.stopping = True


def restart_until_stopped(
    signals: StopSignals, processes: list[BaseProcess], start: Callable[[int], BaseProcess], what: str
) -> int:
    """Until `signals` says stop: start process i again with `start(i)` whenever it has died; then `stop_all`.
    Both servers' supervisors (this module's and logserver/workers.py's) run their processes so."""
    log.info("serving with %d processes: %s", len(processes), ", ".join(str(p.pid) for p in processes))
    while not signals.stopping:
        time.sleep(0.2)
        for i, process in enumerate(processes):
            if not process.is_alive() and not signals.stopping:
                log.warning("%s %d (pid %s) exited with %s: starting it again", what, i, process.pid, process.exitcode)
                time.sleep(RESTART_PAUSE)
                processes[i] = start(i)
    return stop_all(processes)


def stop_all(processes: list[BaseProcess]) -> int:
    """SIGTERM to every process, then SIGKILL to any still alive after STOP_SECONDS in all; returns 0."""
    for process in processes:
        if process.is_alive() and process.pid is not None:
            os.kill(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_SECONDS
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join()
    return 0
