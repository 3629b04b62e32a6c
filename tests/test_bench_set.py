"""`python3 dev.py bench` (loadtest/bench_set.py): it answers --help, and it forgets no benchmark — every loadtest
script with a main() is in the set or listed with the reason it is not. No figure is asserted here (BENCHMARKS.md:
figures come from the scripts, beside their ceilings, never from timed tests)."""

import ast
import subprocess
import sys
from pathlib import Path

from loadtest.bench_set import BENCHES, NOT_IN_THE_SET, Bench, Outcome, chosen, summary

REPO = Path(__file__).resolve().parent.parent


def scripts_with_main() -> set[str]:
    found = set()
    for path in (REPO / "loadtest").glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if any(isinstance(node, ast.FunctionDef) and node.name == "main" for node in tree.body):
            found.add(path.stem)
    return found


def test_dev_bench_help_works() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "dev.py"), "bench", "--help"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "--quick" in done.stdout and "--only" in done.stdout


def test_every_loadtest_script_with_a_main_is_in_the_set_or_says_why_not() -> None:
    listed = {b.module for b in BENCHES} | set(NOT_IN_THE_SET)
    assert scripts_with_main() - listed == set(), "add it to BENCHES in loadtest/bench_set.py"
    assert listed - scripts_with_main() == set(), "a listed benchmark has no script"
    assert {"wrk_reads", "submit_bench", "log_bench", "monitor_bench", "witness_bench"} <= set(scripts_with_main())


def test_the_quick_set_and_a_chosen_few() -> None:
    quick = {b.module for b in chosen(True, [])}
    assert "storage_bench" not in quick and "submit_bench" in quick
    assert [b.module for b in chosen(False, ["qr_sizes", "core_bench"])] == ["core_bench", "qr_sizes"]


def test_the_summary_names_each_run_and_gathers_its_rows() -> None:
    ok = Outcome(Bench("submit_bench", ()), "python -m loadtest.submit_bench", 12.4, 0, ["| tool | 5,000/s | x |"])
    failed = Outcome(Bench("qr_sizes", ()), "python -m loadtest.qr_sizes", 1.0, 1, [])
    text = summary([ok, failed])
    assert "| submit_bench | `python -m loadtest.submit_bench` | 12 | ok |" in text
    assert "| qr_sizes | `python -m loadtest.qr_sizes` | 1 | FAILED |" in text
    assert "submit_bench:\n| tool | 5,000/s | x |" in text
