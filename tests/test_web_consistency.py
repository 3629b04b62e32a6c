"""The page's RFC 9162 consistency check (`consistent` in logserver/web/verify.js, the twin of
tlogcore/merkle.py verify_consistency, used to refresh old proofs), in headless Chromium on the page as the log
serves it: the shared transparency-dev vectors (tests/vectors/merkle/consistency_probes.json), then every pair of
sizes up to 24 with the core's own proofs, each also with one hash changed."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import load_vectors
from corefixtures import mini_log
from log_harness import running_log
from playwright.sync_api import Page
from web_browser import chromium

from tlogcore import merkle

VECTORS = load_vectors("merkle/consistency_probes.json")["vectors"]

CHECK = """(vectors) => Promise.all(vectors.map((v) => {
  const bytes = (h) => Uint8Array.from(h.match(/../g) || [], (x) => parseInt(x, 16));
  return window.TLOG_MERKLE.consistent(BigInt(v.size1), BigInt(v.size2), bytes(v.root1), bytes(v.root2),
    v.proof.map(bytes));
}))"""


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Page]:
    tmp: Path = tmp_path_factory.mktemp("web-consistency")
    with running_log(tmp) as server, chromium(tmp / "profile") as context:
        page = context.new_page()
        page.goto(f"{server.url}/verify")
        page.wait_for_selector("body[data-done='1']")
        yield page


@pytest.fixture(scope="module")
def answers(page: Page) -> list[bool]:
    """What the page answers for each shared vector, in order."""
    return [bool(a) for a in page.evaluate(CHECK, VECTORS)]


@pytest.mark.parametrize("position", range(len(VECTORS)), ids=[v["name"] for v in VECTORS])
def test_the_page_agrees_with_each_consistency_vector(answers: list[bool], position: int) -> None:
    assert answers[position] is VECTORS[position]["expect_valid"]


def _core_cases(limit: int) -> list[dict[str, Any]]:
    log = mini_log(limit)

    def hashes(plan: merkle.HashPlan) -> list[bytes]:
        return plan.assemble([log.stored[i] for i in plan.stored_indexes])

    cases = []
    for new in range(1, limit + 1):
        for old in range(1, new + 1):
            proof = hashes(merkle.consistency_plan(old, new))
            roots = hashes(merkle.root_plan(old))[0], hashes(merkle.root_plan(new))[0]
            merkle.verify_consistency(old, new, *roots, proof)  # the core agrees it is valid
            good = {"size1": old, "size2": new, "root1": roots[0].hex(), "root2": roots[1].hex()}
            cases.append({**good, "proof": [h.hex() for h in proof], "expect_valid": True})
            if proof:
                changed = [bytes([proof[0][0] ^ 1]) + proof[0][1:], *proof[1:]]
                cases.append({**good, "proof": [h.hex() for h in changed], "expect_valid": False})
            else:
                cases.append({**good, "root2": bytes(32).hex(), "proof": [], "expect_valid": False})
    return cases


def test_the_page_accepts_the_cores_proofs_and_refuses_each_with_one_hash_changed(page: Page) -> None:
    cases = _core_cases(24)
    found = page.evaluate(CHECK, cases)
    wrong = [
        (c["size1"], c["size2"], c["expect_valid"])
        for c, a in zip(cases, found, strict=True)
        if a is not c["expect_valid"]
    ]
    assert len(cases) == 2 * 24 * 25 // 2 and wrong == []
