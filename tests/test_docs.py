"""The documentation cannot drift: every ```sh block in docs/*.md and README.md is run, in order per page, in a
temporary directory, by bash with `set -euo pipefail`, against a real log with three real witnesses on free ports.
The pages get `LOG` (the log's URL), `LOG_DATA` (its data directory) and `.venv/bin` first on `PATH`. Blocks that
show commands with placeholders are fenced `text`, never `sh`."""

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from log_harness import REPO
from tools_stack import Stack, witnessed_log

FENCE = re.compile(r"^```sh\n(.*?)^```$", re.MULTILINE | re.DOTALL)
PAGES = sorted([REPO / "README.md", *(REPO / "docs").glob("*.md")])


def sh_blocks(page: Path) -> list[str]:
    return FENCE.findall(page.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with witnessed_log(tmp_path_factory.mktemp("docs-log")) as stack:
        yield stack


def test_the_pages_that_show_commands_have_sh_blocks() -> None:
    counts = {page.name: len(sh_blocks(page)) for page in PAGES}
    for name in ("issuing.md", "verifying.md", "monitoring.md", "operating.md"):
        assert counts.get(name, 0) >= 3, counts  # the guard itself: a renamed fence would silently test nothing


@pytest.mark.parametrize("page", [p for p in PAGES if sh_blocks(p)], ids=lambda p: p.name)
def test_every_sh_block_runs(page: Path, stack: Stack, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "LOG": stack.url,
        "LOG_DATA": str(stack.server.data),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    for number, block in enumerate(sh_blocks(page), start=1):
        result = subprocess.run(
            ["bash", "-c", "set -euo pipefail\n" + block],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert result.returncode == 0, f"{page.name} block {number} failed:\n{block}\n{result.stdout}{result.stderr}"
