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
