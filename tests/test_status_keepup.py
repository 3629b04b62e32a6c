"""The keep-up harness of loadtest/status_http_bench.py (--preload, loadtest/status_keepup.py): it paces what it
submits, every entry it reports is in the log, and the lag it reports is the one a client sees. No figure is
asserted (figures come from the script beside their ceiling, docs/status-proofs.md §11)."""

import math
from pathlib import Path
from typing import Any

import httpx
import pytest

from loadtest import status_keepup
from loadtest.status_keepup import BATCH, covers, growth, keep_up


def test_growth_is_the_lags_slope_over_the_second_half() -> None:
    steady = [(t / 10, 1000) for t in range(0, 101)]
    rising = [(t / 10, 500 * t // 10) for t in range(0, 101)]  # 500 entries/s more behind every second
    assert growth(steady, 10.0) == 0.0
    assert math.isclose(growth(rising, 10.0), 500.0, rel_tol=0.02)
    early_burst = [(t / 10, 5000 if t < 50 else 100) for t in range(0, 101)]  # caught up by the second half
    assert growth(early_burst, 10.0) == 0.0
    assert math.isnan(growth([(1.0, 3)], 10.0))


def test_a_root_covers_the_log_up_to_its_own_statement() -> None:
    assert covers((100, 100), 100)  # its statement not yet in the log
    assert covers((100, 100), 101)  # its statement is the last entry: a root cannot cover it
    assert not covers((100, 100), 102)  # one entry after it is not covered
    assert not covers((100, 150), 101)  # an older root's statement was logged later: the entry at 100 is not covered
    assert not covers((0, -1), 1)


def test_a_small_keep_up_run_sequences_all_it_reports_and_the_index_covers_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes: list[int] = []
    real_wait = status_keepup.wait_indexed

    def wait_and_note(client: httpx.Client, limit: float) -> float:
        seconds = real_wait(client, limit)
        sizes.append(status_keepup.log_size(client))
        return seconds

    monkeypatch.setattr(status_keepup, "wait_indexed", wait_and_note)
    # The slow phase's first request is one the server refuses (400 malformed): counted apart, the run goes on.
    bodies: list[bytes] = []
    real_body = status_keepup.entries_body

    def one_refused(submissions: Any, inclusion_proofs: bool) -> bytes:
        bodies.append(b"{" if len(bodies) == 4 else real_body(submissions, inclusion_proofs))
        return bodies[-1]

    monkeypatch.setattr(status_keepup, "entries_body", one_refused)
    fast, slow = keep_up("sqlite", tmp_path, 3000, [2000.0, 1000.0], 2.0)
    assert (fast.submitted, slow.submitted) == (4 * BATCH, BATCH)  # accepted entries only
    assert (fast.refused, slow.refused) == ([], ["400 malformed"])
    assert any(line.endswith("refused requests (not counted as submitted): 1; 400 malformed x1") for line in
               slow.report("sqlite"))  # fmt: skip
    figures = fast
    assert figures.submit_seconds >= 1.5  # paced: 4 requests scheduled 0.5 s apart, not sent at once
    assert not math.isnan(figures.settle_seconds)  #: the index covered the last entry
    # every paced entry is in the log: the preload, the 4,000, and the index-root statements the indexer logged
    assert slow.submit_seconds >= 0.9  # 2 requests, 1 s apart
    assert sizes[-1] >= 3000 + 5 * BATCH
    assert figures.samples.direct and all(lag >= 0 for _, lag in figures.samples.direct)
    lines = figures.report("sqlite")
    assert any("achieved" in line for line in lines) and any("lag, direct" in line for line in lines)
