"""Shared test helpers: the public vectors in tests/vectors (copies with provenance), loaded loudly."""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page
from web_browser import checked_page

REPO = Path(__file__).resolve().parent.parent
VECTORS = REPO / "tests" / "vectors"

pytest_plugins = ["pg_cluster"]  # the throwaway PostgreSQL cluster fixtures (tests/pg_cluster.py)

if not (VECTORS / "README.md").is_file():  # fail the whole run, never skip
    raise RuntimeError(f"test vectors not found at {VECTORS}: the checkout is incomplete")


def load_vectors(relative: str) -> Any:
    return json.loads((VECTORS / relative).read_text(encoding="utf-8"))


@pytest.fixture
def page(browser: BrowserContext) -> Iterator[Page]:
    """A fresh page in the module's `browser` fixture; fails the test on a CSP violation or a script error."""
    with checked_page(browser) as page:
        yield page


@pytest.fixture
def apply_each_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    """The monitor's status index applies each chunk's documents as the chunk ends, as it did for a log with no
    index root before monitor/statusaudit.py APPLY_EVERY: for tests about one update's work, or about roots that
    find the head past their size. The batches themselves: tests/test_monitor_status_batches.py."""
    import monitor.statusaudit as statusaudit  # here, not at the top: only the tests that use it import it

    monkeypatch.setattr(statusaudit, "APPLY_EVERY", 1)
