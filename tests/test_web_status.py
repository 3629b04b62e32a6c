"""The page's status rule (`documentStatus` in logserver/web/verify.js) on the same vectors as tlogcore/status.py
(tests/vectors/status/status.json), run in headless Chromium on the page as the log serves it. The page takes the
vectors' key tokens as the keys themselves: two tokens that share a key name are still two keys."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import load_vectors
from log_harness import running_log
from web_browser import chromium

CASES = load_vectors("status/status.json")["cases"]


@pytest.fixture(scope="module")
def statuses(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """What the page's function answers for each case, in order (one page load for the whole file)."""
    tmp: Path = tmp_path_factory.mktemp("web-status")
    with running_log(tmp) as server, chromium(tmp / "profile") as context:
        page = context.new_page()
        page.goto(f"{server.url}/verify")
        page.wait_for_selector("body[data-done='1']")
        answers = page.evaluate(
            "(cases) => cases.map((c) => window.TLOG_STATUS.documentStatus(c.statements, c.continues))", CASES
        )
        yield [str(a) for a in answers]


@pytest.mark.parametrize("position", range(len(CASES)), ids=[case["why"] for case in CASES])
def test_the_page_gives_each_vectors_status(statuses: list[str], position: int) -> None:
    assert statuses[position] == CASES[position]["status"]
