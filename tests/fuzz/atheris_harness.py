"""The one atheris (libFuzzer) entry point behind every `atheris_<parser>.py` harness.

Coverage feedback comes from instrumenting the parsers' own modules; the
property checked for each input is the very function the hypothesis tests use
(`properties.TARGETS`), so both fuzzers hold the parsers to one contract.
"""

import os
import sys

import atheris

with atheris.instrument_imports(include=["tlogcore", "witness", "logserver.config", "monitor.config", "tomllib"]):
    from . import properties


def main(parser: str) -> None:
    check = properties.TARGETS[parser]

    def one_input(data: bytes) -> None:
        check(bytes(data))

    # libFuzzer's -merge re-runs argv[0] as a program; under `python -m` that is a .py file, so the runner
    # passes an executable wrapper instead (run_atheris.merge_into_corpus).
    argv = [os.environ.get("TLOG_FUZZ_ARGV0", sys.argv[0]), *sys.argv[1:]]
    atheris.Setup(argv, one_input)
    atheris.Fuzz()
