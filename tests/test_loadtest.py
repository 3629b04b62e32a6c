"""The locust load tests, run briefly against a real log: every scenario sends requests, none fails, and what the
issuer scenario submitted is really in the log (the signed tree grew and each recorded entry's inclusion proof,
fetched by leaf hash, verifies against the signed root)."""

import base64
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from loadtest.log_bench import log_key
from loadtest.run_locust import SCENARIOS, LoadLog, run_scenario, started_log
from tlogcore.checkpoint import Checkpoint, parse_checkpoint
from tlogcore.merkle import verify_inclusion
from tlogcore.note import open_note

PRELOADED = 3000
SECONDS = 5
USERS = {"issuer": 3, "verifier": 4, "monitor": 4, "mix": 20}  # the mix needs 20 users to hold one issuer
# What each kind of user must have sent in a few seconds (request names as the locustfile gives them; rarer request
# types are left out, since a loaded machine may not reach them in 5 s)
EXPECTED = {
    "issuer": {"POST /api/v1/entries"},
    "verifier": {"GET /api/v1/bundle/", "GET /api/v1/documents/", "GET /api/v1/proof/"},
    "monitor": {"GET /tile/0/", "GET /tile/entries/"},
}
EXPECTED["mix"] = EXPECTED["issuer"] | EXPECTED["verifier"] | EXPECTED["monitor"]


@pytest.fixture(scope="module")
def load_log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoadLog]:
    with started_log(tmp_path_factory.mktemp("locust"), PRELOADED) as log:
        yield log


def signed_checkpoint(url: str) -> Checkpoint:
    verifier = log_key().verifier()
    opened = open_note(httpx.get(url + "/checkpoint", timeout=10).content, [verifier])
    assert opened.verified_by(verifier) is not None, "the checkpoint is not signed by the log key"
    return parse_checkpoint(opened.text)


def assert_submitted_entries_are_logged(log: LoadLog, before: int) -> None:
    checkpoint = signed_checkpoint(log.server.url)
    submitted = log.submitted()
    assert submitted, "the issuer scenario recorded no entries"
    assert checkpoint.size > before
    assert checkpoint.size >= before + len(submitted)
    for leaf, index in submitted:
        response = httpx.get(
            log.server.url + "/api/v1/proof/inclusion",
            params={"leaf_hash": leaf.hex(), "size": checkpoint.size},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["index"] == index
        proof = [base64.b64decode(h) for h in body["proof"]]
        verify_inclusion(leaf, index, checkpoint.size, proof, checkpoint.root)  # raises ProofError if not


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_scenario_runs_without_failures(load_log: LoadLog, scenario: str) -> None:
    for path in Path(load_log.folder).glob("submitted-*.txt"):
        path.unlink()  # each scenario checks only what it submitted itself
    before = signed_checkpoint(load_log.server.url).size
    result = run_scenario(load_log, scenario, USERS[scenario], SECONDS)
    by_name = {s.name: s for s in result.stats}
    missing = {p for p in EXPECTED[scenario] if not any(n.startswith(p) and s.requests for n, s in by_name.items())}
    assert not missing, f"{scenario} sent no {sorted(missing)}"
    assert result.total.requests > 0
    assert result.total.failures == 0, result.failure_lines
    assert result.exit_code == 0
    if "IssuerUser" in SCENARIOS[scenario]:
        assert_submitted_entries_are_logged(load_log, before)
    else:
        assert not load_log.submitted()
