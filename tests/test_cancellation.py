"""Loops that wait on an event must stop when cancelled (SIGTERM). On Python 3.11, `asyncio.wait_for(event.wait(),
t)` returns normally and drops a cancellation that lands as the event is set, so the loop runs on and the process
has to be killed (seen in `tlog-monitor`; tests/test_monitor_cli.py shows it deterministically). The same pattern
in any service loop is the same bug: this walk finds it."""

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("logserver", "witness", "monitor", "tools")


def waits_on_an_event_with_wait_for(path: Path) -> list[int]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "wait_for"):
            continue
        first = node.args[0] if node.args else None
        if isinstance(first, ast.Call) and isinstance(first.func, ast.Attribute) and first.func.attr == "wait":
            found.append(node.lineno)
    return found


def test_no_service_loop_waits_on_an_event_with_wait_for() -> None:
    found = [
        f"{path.relative_to(REPO)}:{line}"
        for package in PACKAGES
        for path in sorted((REPO / package).rglob("*.py"))
        for line in waits_on_an_event_with_wait_for(path)
    ]
    assert found == [], f"use `async with asyncio.timeout(t): await event.wait()` instead: {found}"


def test_the_walk_finds_the_pattern(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import asyncio\nasync def f(e):\n    await asyncio.wait_for(e.wait(), 1)\n", encoding="utf-8")
    assert waits_on_an_event_with_wait_for(sample) == [3]
