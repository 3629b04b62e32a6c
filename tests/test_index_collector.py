"""The garbage collector of the processes that update a status index (tlogcore/gcpause.py CollectorAtRest): the log's
indexer process (logserver/indexerprocess.py) and the monitor's status process (monitor/statusworker.py). What an
update leaves (the kept top of the tree) is out of the collector's sight once the update ends, and cyclic garbage is
still collected once the process is at rest. Each runs here as the process runs it (IndexWorker.open and its
requests; the status process's initializer and its calls), in this process: the collector's state is the process's,
so the fixture gives it back.

Before, the collection that followed each update (at the first allocation after `paused_gc` gave the collector back)
walked all it left, to find nothing: 0.23-0.34 s per update of 50,000 at 10^6 (collected 0, gc.callbacks)."""

import asyncio
import contextlib
import gc
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from logserver.config import ServerConfig
from logserver.indexerprocess import IndexerSettings, IndexWorker
from logserver.statusindexer import KEEP_FROM, Advanced
from monitor import statusworker
from monitor.statusworker import audit_chunk, close_index, start_status_process
from tests.api_helpers import ISSUER, REGISTRY_KEY, statement
from tests.test_gcpause import cyclic_garbage
from tests.test_statusstore import Parts, doc, log, run_engine
from tlogcore.statement import ISSUE, ISSUER_ADD


@pytest.fixture
def collector_given_back() -> Iterator[None]:
    threshold, enabled = gc.get_threshold(), gc.isenabled()
    yield
    statusworker._COLLECTOR.clear()  # start_status_process's, if a test made one
    gc.unfreeze()
    gc.set_threshold(*threshold)
    if enabled:
        gc.enable()


def worker_on(data: Path, collect_every: int = 256) -> IndexWorker:
    # exit_with_parent watches our own parent: this process goes on as before
    return IndexWorker.open(IndexerSettings(data, ServerConfig(), os.getppid()), collect_every)


@contextlib.contextmanager
def collections_made() -> Iterator[list[dict[str, int]]]:
    """The collections the collector runs meanwhile (their gc.callbacks info)."""
    made: list[dict[str, int]] = []

    def record(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            made.append(info)

    gc.callbacks.append(record)
    try:
        yield made
    finally:
        gc.callbacks.remove(record)


def logged_documents(tmp_path: Path, request: pytest.FixtureRequest, count: int, then: Any) -> None:
    """A log of `count` issued documents, then `then(data)` in a thread (the worker's own loop)."""

    async def body(parts: Parts) -> None:
        sequencer = parts[2]
        await log(sequencer, statement(ISSUER_ADD, REGISTRY_KEY, issuer=ISSUER.verifier().vkey, ref="Ministry"))
        await log(sequencer, *(statement(ISSUE, ISSUER, document=doc(i)) for i in range(count)))
        await asyncio.to_thread(then, tmp_path)

    run_engine("sqlite", tmp_path, request, body)


def test_no_collection_walks_what_an_update_of_the_indexer_process_leaves(
    tmp_path: Path, request: pytest.FixtureRequest, collector_given_back: None
) -> None:
    def update(data: Path) -> None:
        worker = worker_on(data)
        try:
            with collections_made() as made:
                assert isinstance(worker(("advance", 0, None)), Advanced)  # the top kept (KEEP_FROM documents)
                fresh = [object() for _ in range(10_000)]  # what the process does between updates
            assert made == [] and fresh
        finally:
            worker.close()

    logged_documents(tmp_path, request, KEEP_FROM + 200, update)


def test_cyclic_garbage_frozen_with_an_update_is_collected_once_the_indexer_is_at_rest(
    tmp_path: Path, request: pytest.FixtureRequest, collector_given_back: None
) -> None:
    def update(data: Path) -> None:
        worker = worker_on(data, collect_every=1)
        try:
            cycle = cyclic_garbage()
            assert isinstance(worker(("advance", 0, None)), Advanced)
            assert cycle() is not None  # garbage, but no collection has run
            assert worker(("advance", None, None)) is None
            assert cycle() is not None  # not at rest yet
            assert worker(("prune",)) is None  # the cycle's end: at rest, one update made since the last collection
            assert cycle() is None
        finally:
            worker.close()

    logged_documents(tmp_path, request, 50, update)


def test_the_monitors_status_process_keeps_its_collector_off_what_a_chunk_leaves(
    tmp_path: Path, collector_given_back: None
) -> None:
    """The same in the monitor's status process: before, the collection after each chunk walked the pages it kept.
    Cyclic garbage is collected at the end of a round (`close_index`) once enough chunks have been audited."""
    start_status_process(os.getppid())  # as its pool's initializer does (it exits with the given process)
    statusworker._COLLECTOR[0].collect_every = 2
    state = str(tmp_path / "monitor.db")
    try:
        cycle = cyclic_garbage()
        with collections_made() as collections:
            for first in (0, 3000):
                documents = [(first + index, "issue", doc(first + index)) for index in range(3000)]
                assert audit_chunk(state, "example.org/log", documents, (first, first + 3000), frozenset()) == []
        assert collections == [] and cycle() is not None
    finally:
        close_index(state, "example.org/log")
    assert cycle() is None
