"""Commands the docs show with placeholders (```text blocks, which test_docs.py cannot run) still exist as written.

Every line of a non-`sh` block that starts with one of the project's programs (`tlog`, `tlog-server`, `tlog-witness`,
`tlog-monitor`, or `python -m loadtest.<script>`) names a subcommand whose `--help` works, and every `--option` it
shows is one that subcommand's help lists. A renamed option or command fails here, not in a reader's terminal."""

import re
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest
from log_harness import REPO

PROGRAMS = ("tlog", "tlog-server", "tlog-witness", "tlog-monitor")
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
WORD = re.compile(r"^[a-z][a-z0-9-]*$")
PAGES = sorted([REPO / "README.md", *(REPO / "docs").glob("*.md")])
BIN = Path(sys.executable).parent


def command_lines(page: Path) -> list[str]:
    """Each command line of the page's non-`sh` blocks (continuations joined, comments and `.venv/bin/` dropped)."""
    found = []
    for language, body in BLOCK.findall(page.read_text(encoding="utf-8")):
        if language == "sh":
            continue  # run for real by test_docs.py
        for line in body.replace("\\\n", " ").splitlines():
            words = line.split(" #", 1)[0].replace(".venv/bin/", "").split()
            if words[:1] and (words[0] in PROGRAMS or words[:3][:2] == ["python", "-m"]):
                found.append(" ".join(words))
    return found


@cache
def help_text(command: tuple[str, ...]) -> str | None:
    """The command's --help output, or None when it is not a command."""
    program, *rest = command
    argv = [sys.executable, *rest] if program == "python" else [str(BIN / program), *rest]
    result = subprocess.run([*argv, "--help"], capture_output=True, text=True, timeout=60, check=False, cwd=REPO)
    return result.stdout if result.returncode == 0 else None


def resolve(words: list[str]) -> tuple[tuple[str, ...], str]:
    """The longest leading run of subcommand words whose --help works, with that help."""
    if words[0] == "python":
        command = ("python", "-m", words[2])
        text = help_text(command)
        assert text is not None, f"python -m {words[2]} --help fails"
        return command, text
    leading = [words[0]]
    for word in words[1:]:
        if not WORD.match(word):
            break
        leading.append(word)
    for end in range(len(leading), 0, -1):
        text = help_text(tuple(leading[:end]))
        if text is not None:
            return tuple(leading[:end]), text
    raise AssertionError(f"{words[0]} --help fails")


def options_of(line: str) -> list[str]:
    return [m.split("=")[0] for m in re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", line)]


LINES = [(page.name, line) for page in PAGES for line in command_lines(page)]


def test_the_docs_show_placeholder_commands_to_check() -> None:
    assert len(LINES) >= 10, LINES  # the guard: a changed fence or prefix would silently check nothing


@pytest.mark.parametrize(("page", "line"), LINES, ids=[f"{p}:{i}" for i, (p, _) in enumerate(LINES)])
def test_a_documented_command_and_its_options_exist(page: str, line: str) -> None:
    command, text = resolve(line.split())
    if command[0] != "python":
        assert len(command) > 1 or "Commands:" not in text, f"{page}: `{line}` names no subcommand of {command[0]}"
    for option in options_of(line):
        assert option in text, f"{page}: `{line}`: {' '.join(command)} has no option {option}"
