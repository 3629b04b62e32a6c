"""Shared test helpers: the public vectors in tests/vectors (copies with provenance), loaded loudly."""

import json
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
VECTORS = REPO / "tests" / "vectors"

pytest_plugins = ["pg_cluster"]  # the throwaway PostgreSQL cluster fixtures (tests/pg_cluster.py)

if not (VECTORS / "README.md").is_file():  # fail the whole run, never skip
    raise RuntimeError(f"test vectors not found at {VECTORS}: the checkout is incomplete")


def load_vectors(relative: str) -> Any:
    return json.loads((VECTORS / relative).read_text(encoding="utf-8"))
