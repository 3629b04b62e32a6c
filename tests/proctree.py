"""Processes by their parent (Linux /proc): for the tests that kill a process with -9 and check that its children
leave with it."""

from pathlib import Path


def children(pid: int, command_has: bytes = b"") -> set[int]:
    """The processes whose parent is `pid` (zombies too), and whose command line holds `command_has`."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                command = (entry / "cmdline").read_bytes() if command_has else b""
            except OSError:
                continue
            if int(stat[1]) == pid and command_has in command:
                found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
