"""API fuzzing with schemathesis against REAL servers on 127.0.0.1: the log server and the witness.

Each server runs as its own process (tests/log_harness.py, tests/witness_helpers.py)
and serves its own OpenAPI description at /openapi.json; schemathesis generates
requests from it, valid and invalid (positive and negative modes), and checks
every response: no 5xx, a documented status code, the documented content type,
and a body that conforms to the documented schema.
"""

import hashlib
import os
from collections import Counter
from collections.abc import Callable, Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from hypothesis.strategies import SearchStrategy
from log_harness import issue, post_statements, register_issuer, running_log
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from witness_helpers import WitnessProcess, tiny_log, write_config, write_key

from tlogcore.keys import Ed25519Signer

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# Per operation and generation mode; the local long run sets TLOG_API_FUZZ_EXAMPLES (RELIABILITY.md "API fuzzing").
EXAMPLES_PER_OPERATION = int(os.environ.get("TLOG_API_FUZZ_EXAMPLES", "40"))
API_FUZZ = settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,  # the same requests on every run: a failure here is reproducible
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(scope="module")
def log_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real log server holding an issuer and a few statements, so proofs, bundles and documents exist."""
    with running_log(tmp_path_factory.mktemp("api-fuzz-log")) as server:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            issuer = Ed25519Signer("moeys.gov.kh", b"\x07" * 32)
            register_issuer(client, server, issuer)
            origin = client.get("/api/v1/log").json()["origin"]
            documents = [hashlib.sha256(bytes([i])).digest() for i in range(5)]
            post_statements(client, [issue(origin, issuer, d, ref=f"No. {i}") for i, d in enumerate(documents)])
        yield server.url


@pytest.fixture(scope="module")
def log_schema(log_url: str) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{log_url}/openapi.json")


@pytest.fixture(scope="module")
def witness_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real witness process configured for one log (a TinyLog with a few cosigned sizes)."""
    tmp = tmp_path_factory.mktemp("api-fuzz-witness")
    log = tiny_log()
    config = write_config(tmp / "witness.toml", "witness.example.org", [(log.origin, log.vkey)])
    data = tmp / "data"
    write_key(data, "witness.example.org", bytes(range(32)))
    with WitnessProcess(data, config) as witness:
        with httpx.Client(base_url=witness.url, timeout=30) as client:
            log.grow(4)
            assert client.post("/add-checkpoint", content=log.body(0, 2)).status_code == 200
        yield witness.url


@pytest.fixture(scope="module")
def witness_schema(witness_url: str) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{witness_url}/openapi.json")


def fuzz_operations(schema: schemathesis.BaseSchema, base_url: str, seen: Counter[tuple[str, int]]) -> list[str]:
    """Every operation, positive then negative mode, EXAMPLES_PER_OPERATION each; the failures, reproducible.

    `seen` counts (operation, status) so a test can tell the fuzzer reached both the answers and the refusals.
    """
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            run = _fuzz_one(operation.as_strategy(generation_mode=mode), operation.label, base_url, seen)
            try:
                run()
            except Unsatisfiable:
                if mode is GenerationMode.POSITIVE:
                    raise
                # nothing to make invalid: no parameters and no body
            except Exception as failure:  # collect them all, then fail with every one named
                failures.append(f"{operation.label} ({mode.value}): {failure}")
    return failures


def _fuzz_one(
    strategy: SearchStrategy[schemathesis.Case], label: str, base_url: str, seen: Counter[tuple[str, int]]
) -> Callable[[], None]:
    @API_FUZZ
    @given(case=strategy)
    def one_request(case: schemathesis.Case) -> None:
        response = case.call_and_validate(base_url=base_url, checks=CHECKS, timeout=30)
        seen[label, response.status_code] += 1

    return one_request


def statuses(seen: Counter[tuple[str, int]], label: str) -> set[int]:
    return {status for (operation, status), count in seen.items() if operation == label and count}


def test_log_api(log_schema: schemathesis.BaseSchema, log_url: str) -> None:
    seen: Counter[tuple[str, int]] = Counter()
    failures = fuzz_operations(log_schema, log_url, seen)
    assert not failures, "\n\n".join(failures)
    # The fuzzer got past validation to real answers, and its invalid requests were refused as documented.
    assert 200 in statuses(seen, "GET /api/v1/bundle/{index}"), seen
    assert {400, 415} & statuses(seen, "POST /api/v1/entries"), seen
    assert 400 in statuses(seen, "GET /api/v1/proof/inclusion"), seen


def test_witness_api(witness_schema: schemathesis.BaseSchema, witness_url: str) -> None:
    seen: Counter[tuple[str, int]] = Counter()
    failures = fuzz_operations(witness_schema, witness_url, seen)
    assert not failures, "\n\n".join(failures)
    assert 400 in statuses(seen, "POST /add-checkpoint"), seen
    assert 404 in statuses(seen, "GET /{origin_hash}/checkpoint"), seen


def test_the_checks_can_fail(log_schema: schemathesis.BaseSchema, log_url: str) -> None:
    """A description that lies about a response (here: /api/v1/log said to return an array) is caught."""
    description = httpx.get(f"{log_url}/openapi.json").json()
    description["paths"]["/api/v1/log"]["get"]["responses"]["200"]["content"]["application/json"]["schema"] = {
        "type": "array"
    }
    lying = schemathesis.openapi.from_dict(description)
    case = lying["/api/v1/log"]["GET"].Case()
    with pytest.raises(BaseExceptionGroup) as caught:
        case.call_and_validate(base_url=log_url, checks=CHECKS, timeout=30)
    assert any("violates schema" in str(failure) for failure in caught.value.exceptions), caught.value


def test_openapi_descriptions_are_served(log_url: str, witness_url: str) -> None:
    """Both services describe themselves; every route the fuzzer should reach is in the description."""
    log_paths = set(httpx.get(f"{log_url}/openapi.json").json()["paths"])
    assert {"/api/v1/entries", "/api/v1/proof/inclusion", "/checkpoint", "/api/v1/bundle/{index}"} <= log_paths
    witness_paths = set(httpx.get(f"{witness_url}/openapi.json").json()["paths"])
    assert {"/add-checkpoint", "/{origin_hash}/checkpoint", "/healthz"} <= witness_paths
