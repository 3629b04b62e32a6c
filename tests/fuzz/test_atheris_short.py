"""A short coverage-guided run of every atheris harness, the committed corpora replayed, and the bugs found.

The long runs (10^6 executions per parser) are local: RELIABILITY.md "Fuzzing".
"""

import subprocess
import sys
from pathlib import Path

import pytest

from tlogcore.errors import MalformedError
from tlogcore.policy import parse_policy
from tlogcore.vkeys import parse_verifier_key

from .properties import TARGETS
from .run_atheris import CORPUS, REPO, parser_names, run_parser
from .samples import LOG_KEY, WITNESS_KEYS

SHORT_RUNS = 2000
RUN_TIMEOUT_SECONDS = 120


def test_every_parser_has_a_harness_and_a_seeded_corpus() -> None:
    assert parser_names() == sorted(TARGETS)
    for name in parser_names():
        assert any((CORPUS / name).iterdir()), f"corpus/{name} is empty"


@pytest.mark.parametrize("parser", sorted(TARGETS))
def test_corpus_replays_clean(parser: str) -> None:
    """Seeds and every crashing input found so far (crash-*) pass the parser's property check."""
    files = sorted((CORPUS / parser).iterdir())
    assert files
    for path in files:
        TARGETS[parser](path.read_bytes())


def test_short_atheris_run_of_every_parser(tmp_path: Path) -> None:
    """libFuzzer runs each harness in its own process; any crash, hang or undocumented exception fails here."""
    for name in parser_names():
        result = run_parser(name, SHORT_RUNS, tmp_path / "work", tmp_path / "artifacts", max_seconds=30)
        assert not result.crashed, f"{result.line()}\n{result.output_tail}"
        assert result.executions >= SHORT_RUNS or result.seconds >= 30, result.line()
        assert result.coverage > 0, result.line()


def test_runner_command_line_rejects_an_unknown_parser() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tests.fuzz.run_atheris", "--parser", "nope", "--runs", "1"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_SECONDS,
    )
    assert done.returncode == 2 and "unknown parser 'nope'" in done.stderr


# --- regressions: the parser bugs fuzzing found ------------------------------------------


def test_ecdsa_vkey_with_an_unsupported_key_algorithm_is_malformed() -> None:
    """atheris (vkey): a type 0x02 key whose DER names DSA raised cryptography's UnsupportedAlgorithm."""
    crash = (CORPUS / "vkey" / "crash-unsupported-der-key-oid").read_text()
    with pytest.raises(MalformedError, match="not a DER public key"):
        parse_verifier_key(crash)


def test_policy_threshold_in_superscript_digits_is_malformed() -> None:
    """'²'.isdigit() is true but int('²') raises ValueError: the policy parser let it escape."""
    witness = WITNESS_KEYS[0].verifier().vkey
    for threshold in ("²", "١", "１"):
        text = f"log {LOG_KEY.verifier().vkey}\nwitness w0 {witness}\ngroup g {threshold} w0\nquorum g\n"
        with pytest.raises(MalformedError, match="threshold"):
            parse_policy(text)
