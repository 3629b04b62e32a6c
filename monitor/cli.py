"""`tlog-monitor`'s entry point: the commands are in commands.py; this module starts the worker processes' forkserver
before importing them, when the command will audit with worker processes.

Why: the commands' imports (httpx, the state, tlogcore: ~0.25 CPU s) and the forkserver's own (PRELOAD in
processes.py, ~0.2 CPU s) ran one after the other, and a 2*10^4-entry audit waited for both before the first check
(docs/performance.md, "The monitor", sixth round). Started here, the forkserver imports on the other core meanwhile.
Only the config's `workers` is read here, leniently: anything unexpected just skips the early start, and
commands.py reads and checks the whole config as before.
"""

import sys
import tomllib
from pathlib import Path

AUDITING = ("run", "audit-once")  # the commands that start worker processes (commands.py: Runtime)


def main() -> None:
    if wants_workers(sys.argv[1:]):
        from monitor.processes import start_forkserver

        start_forkserver()
    from monitor.commands import main as commands

    commands()


def wants_workers(args: list[str]) -> bool:
    """Whether these arguments run an auditing command whose config asks for worker processes."""
    if not args or args[0] not in AUDITING:
        return False
    path = next((a.split("=", 1)[1] for a in args if a.startswith("--config=")), None)
    if path is None and "--config" in args[:-1]:
        path = args[args.index("--config") + 1]
    if path is None:
        return False
    try:
        workers = tomllib.loads(Path(path).read_text(encoding="utf-8")).get("workers", 1)
    except (OSError, ValueError, RecursionError):  # commands.py says what is wrong with the file
        return False
    return isinstance(workers, int) and workers > 1
