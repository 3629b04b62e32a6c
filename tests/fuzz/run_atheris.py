"""Run the atheris (libFuzzer) harnesses: `python -m tests.fuzz.run_atheris --parser NAME --runs N`.

Each parser runs in its own process (libFuzzer exits when done) over two
corpus directories: a scratch one that grows during the run, then the
committed `tests/fuzz/corpus/<parser>/` (read only unless `--merge`). One line
per parser is printed: executions, seconds, coverage and features, crashes.

    python -m tests.fuzz.run_atheris --parser all --runs 1000000      # the long local run
    python -m tests.fuzz.run_atheris --parser note --runs 200000 --merge  # keep new coverage
    python -m tests.fuzz.run_atheris --seed                           # (re)write the seed inputs
    python -m tests.fuzz.run_atheris --parser note --merge-from DIR   # merge a past run's DIR/note
"""

import argparse
import hashlib
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
CORPUS = HERE / "corpus"
PER_INPUT_TIMEOUT_SECONDS = 5  # an input that takes longer is a hang: libFuzzer reports it as a crash
MAX_INPUT_BYTES = 8192


def parser_names() -> list[str]:
    return sorted(p.stem.removeprefix("atheris_") for p in HERE.glob("atheris_*.py") if p.stem != "atheris_harness")


@dataclass(frozen=True)
class RunResult:
    parser: str
    executions: int
    seconds: float
    coverage: int
    features: int
    returncode: int
    crash_files: tuple[Path, ...]
    output_tail: str

    @property
    def crashed(self) -> bool:
        return self.returncode != 0 or bool(self.crash_files)

    def line(self) -> str:
        crashes = ", ".join(str(p) for p in self.crash_files) or "none"
        return (
            f"{self.parser:17} executions={self.executions} seconds={self.seconds:.0f} "
            f"cov={self.coverage} ft={self.features} exit={self.returncode} crashes={crashes}"
        )


def _last_int(pattern: str, text: str) -> int:
    found = re.findall(pattern, text)
    return int(found[-1]) if found else 0


def run_parser(
    parser: str, runs: int, work_dir: Path, artifacts: Path, max_seconds: int = 0, merge: bool = False
) -> RunResult:
    committed = CORPUS / parser
    committed.mkdir(parents=True, exist_ok=True)
    scratch = work_dir / parser
    scratch.mkdir(parents=True, exist_ok=True)
    artifacts.mkdir(parents=True, exist_ok=True)
    flags = [
        f"-runs={runs}",
        f"-timeout={PER_INPUT_TIMEOUT_SECONDS}",
        f"-max_len={MAX_INPUT_BYTES}",
        "-rss_limit_mb=2048",
        f"-artifact_prefix={artifacts}/{parser}-",
        "-print_final_stats=1",
    ]
    if max_seconds:
        flags.append(f"-max_total_time={max_seconds}")
    command = [sys.executable, "-m", f"tests.fuzz.atheris_{parser}", *flags, str(scratch), str(committed)]
    started = time.monotonic()
    before = set(artifacts.glob(f"{parser}-*"))
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, errors="replace")
    seconds = time.monotonic() - started
    output = done.stdout + done.stderr
    if merge and done.returncode == 0:
        merge_into_corpus(parser, scratch)
    return RunResult(
        parser=parser,
        executions=_last_int(r"Done (\d+) runs", output)
        or _last_int(r"stat::number_of_executed_units:\s*(\d+)", output),
        seconds=seconds,
        coverage=_last_int(r"cov: (\d+)", output),
        features=_last_int(r"ft: (\d+)", output),
        returncode=done.returncode,
        crash_files=tuple(sorted(set(artifacts.glob(f"{parser}-*")) - before)),
        output_tail="\n".join(output.splitlines()[-40:]),
    )


def merge_into_corpus(parser: str, scratch: Path) -> int:
    """Add to the committed corpus only the scratch inputs that bring new coverage (libFuzzer -merge=1).

    libFuzzer runs the merge in a child it starts from argv[0], so that must be a program: a wrapper script.
    Returns how many files were added.
    """
    committed = CORPUS / parser
    before = len(list(committed.iterdir()))
    with tempfile.TemporaryDirectory(prefix="tlog-fuzz-merge-") as temporary:
        wrapper = Path(temporary) / f"atheris_{parser}"
        wrapper.write_text(f'#!/bin/sh\ncd "{REPO}" && exec "{sys.executable}" -m tests.fuzz.atheris_{parser} "$@"\n')
        wrapper.chmod(0o700)
        subprocess.run(
            [str(wrapper), "-merge=1", f"-max_len={MAX_INPUT_BYTES}", str(committed), str(scratch)],
            cwd=REPO,
            env={**os.environ, "TLOG_FUZZ_ARGV0": str(wrapper)},
            capture_output=True,
            check=True,
        )
    return len(list(committed.iterdir())) - before


def write_seeds() -> int:
    """Write every valid sample (samples.py) into its committed corpus, named by content hash."""
    from .samples import all_samples

    written = 0
    for parser, items in all_samples().items():
        target = CORPUS / parser
        target.mkdir(parents=True, exist_ok=True)
        for item in items:
            path = target / f"seed-{hashlib.sha1(item).hexdigest()[:16]}"
            if not path.exists():
                path.write_bytes(item)
                written += 1
    return written


def main(argv: list[str] | None = None) -> int:
    options = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    options.add_argument("--parser", default="all", help=f"one of {', '.join(parser_names())}, or all")
    options.add_argument("--runs", type=int, default=100_000, help="executions per parser")
    options.add_argument("--max-seconds", type=int, default=0, help="stop a parser after this long (0: no limit)")
    options.add_argument("--work-dir", type=Path, help="scratch corpus (default: a fresh temporary directory)")
    options.add_argument("--artifacts", type=Path, default=Path(tempfile.gettempdir()) / "tlog-fuzz-artifacts")
    options.add_argument("--merge", action="store_true", help="add inputs with new coverage to tests/fuzz/corpus")
    options.add_argument("--seed", action="store_true", help="write the valid samples into the corpora and exit")
    options.add_argument("--merge-from", type=Path, help="merge DIR/<parser> into the committed corpus and exit")
    args = options.parse_args(argv)
    if args.seed:
        print(f"wrote {write_seeds()} seed inputs under {CORPUS}")
        return 0
    names = parser_names() if args.parser == "all" else [args.parser]
    unknown = [n for n in names if n not in parser_names()]
    if unknown:
        print(f"unknown parser {unknown[0]!r}; known: {', '.join(parser_names())}", file=sys.stderr)
        return 2
    if args.merge_from:
        for name in names:
            print(f"{name}: {merge_into_corpus(name, args.merge_from / name)} inputs added to {CORPUS / name}")
        return 0
    failed = False
    with tempfile.TemporaryDirectory(prefix="tlog-fuzz-") as temporary:
        work_dir = args.work_dir or Path(temporary)
        for name in names:
            result = run_parser(name, args.runs, work_dir, args.artifacts, args.max_seconds, args.merge)
            print(result.line(), flush=True)
            if result.crashed:
                failed = True
                print(result.output_tail, file=sys.stderr, flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
