"""Every verdict of `tlog verify` has its own exit code, and the help and the docs list each one.

Two lanes once gave exit code 9 to two different verdicts ("log misbehaved" and "signed with a stolen key"): a
script branching on the code could not tell a forked log from a stolen key."""

import re
from pathlib import Path

from click.testing import CliRunner

from tools.cli import main
from tools.verdict import EXIT_CODES

ROOT = Path(__file__).resolve().parent.parent


def test_each_verdict_has_its_own_exit_code() -> None:
    assert len(set(EXIT_CODES.values())) == len(EXIT_CODES), EXIT_CODES


def test_the_help_names_every_exit_code() -> None:
    text = " ".join(CliRunner().invoke(main, ["verify", "--help"], terminal_width=400).output.split())
    for verdict, code in EXIT_CODES.items():
        words = "usage or input error" if verdict == "error" else verdict
        assert f"{code} {words}" in text, (verdict, text)


def test_the_docs_tables_list_every_exit_code() -> None:
    for doc in ("docs/verifying.md", "docs/reference.md"):
        rows = dict(re.findall(r"^\| (\d+) \| ([^|]+?) \|", (ROOT / doc).read_text(), re.M))
        for verdict, code in EXIT_CODES.items():
            assert rows.get(str(code)) == verdict, (doc, code, verdict, rows)
