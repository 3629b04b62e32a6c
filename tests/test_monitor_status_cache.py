"""The monitor's status index kept open across chunks (monitor/statusaudit.py): the top of the tree held in memory
reaches the same root as the index computed from scratch, stays equal to the file, and a chunk with no document
only moves the index's size."""

import hashlib
import random
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from monitor.statusaudit import CACHE_FROM, UPPER_DEPTH, StatusAudit
from tlogcore.statement import ISSUE, REVOKE
from tlogcore.statusindex import KEY_BITS
from tlogcore.statusindex_nodes import PathPlan, read_paths
from tlogcore.statusindex_pages import STRIDE

pytestmark = pytest.mark.usefixtures("apply_each_chunk")  # each chunk applied as it ends (conftest.py)


def statements(start: int, count: int, documents: list[bytes], rng: random.Random) -> dict[int, Any]:
    """`count` issue/revoke statements from index `start`, naming documents new and already seen."""
    out: dict[int, Any] = {}
    for index in range(start, start + count):
        document = rng.choice(documents) if documents and rng.random() < 0.2 else rng.randbytes(32)
        documents.append(document)
        out[index] = SimpleNamespace(kind=REVOKE if rng.random() < 0.1 else ISSUE, document=document)
    return out


def from_scratch(all_statements: dict[int, Any]) -> PathPlan:
    entries = [(i, s.kind, s.document) for i, s in sorted(all_statements.items())]
    plan = read_paths(PathPlan([d for _, _, d in entries]), {})
    update = plan.apply_entries(entries)
    return read_paths(PathPlan([d for _, _, d in entries]), update.writes)


def test_chunks_through_one_open_index_reach_the_root_computed_from_scratch(tmp_path: Path) -> None:
    rng = random.Random(19)
    documents: list[bytes] = []
    state = tmp_path / "state.db"
    audit = StatusAudit(state, "log.example/a")
    seen: dict[int, Any] = {}
    start = 0
    sizes = [CACHE_FROM + 300, 40, CACHE_FROM * 2, 0, CACHE_FROM + 7]  # small and empty chunks between big ones
    for count in sizes:
        chunk = statements(start, count, documents, rng)
        seen |= chunk
        width = max(count, 5)  # the empty chunk: five entries that are no statement about a document
        assert audit.chunk([b"not an index root"] * width, chunk, start, frozenset()) == []
        start += width
    expected = from_scratch(seen)
    head = audit._head(0)
    assert head is not None and (head.size, head.root) == (start, expected.root_hash())
    held = audit._held.pages
    audit.close()  # the journal folded into the pages: the file then holds what the memory held
    fresh = StatusAudit(state, "log.example/a")
    try:
        stored = fresh._pages.upper(KEY_BITS)  # every page
        assert {page for page in stored if page[0] <= UPPER_DEPTH - STRIDE + 1} <= held.keys()  # the top, whole
        assert {page: nodes for page, nodes in held.items() if nodes} == {
            page: stored[page] for page in held if page in stored
        }
        for document in rng.sample(documents, 50) + [hashlib.sha256(b"never logged").digest()]:
            assert fresh.record(document) == (expected.record(document), start)
    finally:
        fresh.close()


def test_a_reopened_index_holding_its_top_reads_below_it_and_reaches_the_root_computed_from_scratch(
    tmp_path: Path,
) -> None:
    """Reopened over stored pages (not all held), a big chunk loads the top whole and the read plan starts below
    it (PageUpdate held_above): chunk after chunk, the root is the one computed from scratch."""
    rng = random.Random(23)
    documents: list[bytes] = []
    state = tmp_path / "state.db"
    seen: dict[int, Any] = {}
    start = 0
    for sizes in ([6000], [CACHE_FROM + 50, CACHE_FROM * 3, 30]):  # built from empty, then reopened
        audit = StatusAudit(state, "log.example/a")
        try:
            for count in sizes:
                chunk = statements(start, count, documents, rng)
                seen |= chunk
                assert audit.chunk([b"not an index root"] * count, chunk, start, frozenset()) == []
                start += count
                head = audit._head(0)
                assert head is not None and (head.size, head.root) == (start, from_scratch(seen).root_hash())
            assert audit._held.upper == (sizes[0] != 6000)  # the reopened one held its top, whole
        finally:
            audit.close()
