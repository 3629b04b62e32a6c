"""Run in a monitor worker process by tests/test_monitor_processes.py: nothing here imports the monitor."""

import sys


def loaded(names: list[str]) -> list[str]:
    """Which of `names` the process had imported before this task came."""
    return [name for name in names if name in sys.modules]
