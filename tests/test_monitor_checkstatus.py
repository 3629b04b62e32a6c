"""`tlog-monitor check-status` on signed status proofs built here (a real registry key, the slow reference index of
tests/statusindex_reference.py), against the monitor's own recomputed index: what the proof shows must be exactly
what the monitor computed for entries [0, size), nothing cut away first."""

import hashlib
import json
import time
from pathlib import Path

import pytest
import statusindex_reference as reference

from logserver import api
from monitor.checkstatus import CONSISTENT, CONTRADICTS, check_status_file
from monitor.state import LogRow, State
from monitor.statusaudit import StatusAudit
from tlogcore.indexroot import IndexRoot, sign_index_root
from tlogcore.keys import Ed25519Signer
from tlogcore.registry import Registry
from tlogcore.statement import ISSUE

ORIGIN = "log.example"
REGISTRY = Ed25519Signer("log.example/registry", b"\x01" * 32)
KEYS = frozenset([REGISTRY.verifier().vkey])
DOCUMENT = hashlib.sha256(b"a diploma").digest()
SIZE = 5  # the signed root covers entries [0, 5); the monitor has audited [0, 10), the document issued in entry 2


@pytest.fixture
def state(tmp_path: Path) -> State:
    opened = State.open(tmp_path / "state.db")
    opened.create_log(LogRow(ORIGIN, None, None, 10, tuple(KEYS), Registry(KEYS), 0, 0.0), time.time())
    # The log's own index-root for [0, 9) in entry 9, as an honest log would state it: the monitor's index reaches 9
    root = reference.root({DOCUMENT: reference.record_bytes([2], [])})
    logged = sign_index_root(IndexRoot(ORIGIN, REGISTRY.verifier().vkey, 1_800_000_000, 9, root), REGISTRY)
    audit = StatusAudit(tmp_path / "state.db", ORIGIN)
    try:
        assert audit.chunk_items([(2, ISSUE, DOCUMENT), (9, None, logged)], 0, 10, KEYS) == []
    finally:
        audit.close()
    return opened


def signed_answer(tmp_path: Path, issued: list[int], revoked: list[int]) -> Path:
    """A log's lookup answer whose proof verifies under an index root for SIZE signed by the registry key."""
    record = reference.record_bytes(issued, revoked)
    root, proof = reference.root({DOCUMENT: record}), reference.proof({DOCUMENT: record}, DOCUMENT)
    signed = sign_index_root(IndexRoot(ORIGIN, REGISTRY.verifier().vkey, 1_800_000_000, SIZE, root), REGISTRY)
    index = api.StatusIndexProof(SIZE, root, record, proof, api.IndexRootEntry(8, signed))
    answer = api.DocumentHistory(DOCUMENT, "revoked" if revoked else "valid", (), (), index)
    path = tmp_path / f"answer-{len(list(tmp_path.iterdir()))}.json"
    path.write_text(json.dumps(answer.to_json()))
    return path


@pytest.mark.parametrize(
    ("issued", "revoked", "code"),
    [
        ([2], [], CONSISTENT),
        ([2], [3], CONTRADICTS),  # a revocation the entries do not hold
        ([2], [7], CONTRADICTS),  # an entry past the root's size: no index over [0, 5) can list it
        ([2, 6], [], CONTRADICTS),
    ],
)
def test_what_a_signed_proof_shows_must_be_what_the_monitor_computed(
    tmp_path: Path, state: State, issued: list[int], revoked: list[int], code: int
) -> None:
    checked = check_status_file(signed_answer(tmp_path, issued, revoked), state, tmp_path / "state.db", time.time())
    assert checked.code == code, checked.line
