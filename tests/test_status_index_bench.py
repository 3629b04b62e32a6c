"""The status index benchmark runs end to end at a small size, and its shape model agrees with the real proofs."""

import re
import subprocess
import sys

from conftest import REPO


def test_the_benchmark_runs_small_and_its_shape_model_matches_real_proofs() -> None:
    command = [sys.executable, "-m", "loadtest.status_index_bench", "--sizes", "3000,6000", "--batch", "1000"]
    command += ["--batches", "100,1000", "--probes", "50", "--shape-size", "20000"]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.count("shape model gives the same sizes as the real proofs: yes") == 2, out
    assert "ceiling: raw hashlib.sha256" in out and "SQLite file bytes per entry" in out
    assert "Proof sizes at 20,000 documents" in out
    assert out.count("one batch of 1,000 new documents at this size") == 2


def test_the_benchmark_runs_the_indexers_loop_through_sqlite() -> None:
    """--store: the indexer's update loop (UpperLevels kept from 1,024 documents) through real SQLite, each phase
    timed, beside the hashing bound and the storage-alone bound (the last update's page rows, as stored)."""
    command = [sys.executable, "-m", "loadtest.status_index_bench", "--store", "sqlite", "--sizes", "5000"]
    command += ["--batches", "1100", "--updates", "1"]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Index of 5,000 documents in sqlite" in out and "bytes on disk per document" in out
    for phase in ("parse", "read", "apply", "commit", "prune"):
        assert f"    {phase} " in out, out
    assert "ceiling: raw SHA-256/s" in out and "ceiling: the storage alone" in out
    assert "ceiling: the indexer's Python alone" in out
    assert "rows (pages of 4 levels) written per document" in out
    assert "in SQLite pages of 65,536 bytes)" in out  # as the server makes the file (4,096 before: WAL set first)
    (volume,) = re.findall(r"page rows ([\d.]+) MB .*; SQLite \(its WAL, then copied into the file\) ([\d.]+) MB", out)
    rows, written = (float(figure) for figure in volume)
    assert rows > 0 and written >= 2 * rows  # each row's page goes to the WAL, then into the file
