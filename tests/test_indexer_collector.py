"""The indexer process's garbage collector (logserver/indexerprocess.py, tlogcore/gcpause.py FrozenSurvivors): what an
update leaves (the kept top of the tree) is out of the collector's sight once the update ends, and cyclic garbage is
still collected once the process is at rest. The worker runs as the child runs it (IndexWorker.open, its requests),
in a thread of this process: the collector's state is the process's, so the fixture gives it back."""

import asyncio
import gc
import os
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from logserver.config import ServerConfig
from logserver.indexerprocess import IndexerSettings, IndexWorker
from logserver.statusindexer import KEEP_FROM, Advanced
from tests.api_helpers import ISSUER, REGISTRY_KEY, statement
from tests.test_statusstore import Parts, doc, log, run_engine
from tlogcore.statement import ISSUE, ISSUER_ADD


@pytest.fixture
def collector_given_back() -> Iterator[None]:
    threshold, enabled = gc.get_threshold(), gc.isenabled()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)
    if enabled:
        gc.enable()


def worker_on(data: Path, collect_every: int = 256) -> IndexWorker:
    # exit_with_parent watches our own parent: this process goes on as before
    return IndexWorker.open(IndexerSettings(data, ServerConfig(), os.getppid()), collect_every)


def pages_in_sight() -> list[dict[Any, Any]]:
    """The index pages (position -> (is a leaf, bytes): statusindex_pages.py) the collector's generations hold."""
    return [
        obj
        for obj in gc.get_objects()
        if isinstance(obj, dict)
        and obj
        and all(type(value) is tuple and len(value) == 2 and type(value[0]) is bool for value in obj.values())
    ]


def logged_documents(tmp_path: Path, request: pytest.FixtureRequest, count: int, then: Any) -> None:
    """A log of `count` issued documents, then `then(data)` in a thread (the worker's own loop)."""

    async def body(parts: Parts) -> None:
        sequencer = parts[2]
        await log(sequencer, statement(ISSUER_ADD, REGISTRY_KEY, issuer=ISSUER.verifier().vkey, ref="Ministry"))
        await log(sequencer, *(statement(ISSUE, ISSUER, document=doc(i)) for i in range(count)))
        await asyncio.to_thread(then, tmp_path)

    run_engine("sqlite", tmp_path, request, body)


def test_the_pages_an_update_keeps_are_out_of_the_collectors_sight(
    tmp_path: Path, request: pytest.FixtureRequest, collector_given_back: None
) -> None:
    """Before, they stayed in its generations, and the collection after each update walked them (and the next
    update, already prepared) to find nothing: 0.23-0.34 s per update of 50,000 at 10^6 (collected 0)."""

    def update(data: Path) -> None:
        worker = worker_on(data)
        try:
            assert isinstance(worker(("advance", 0)), Advanced)  # the top of the tree kept (KEEP_FROM documents)
            assert not pages_in_sight()
        finally:
            worker.close()

    logged_documents(tmp_path, request, KEEP_FROM + 200, update)


def test_cyclic_garbage_frozen_with_an_update_is_collected_once_the_indexer_is_at_rest(
    tmp_path: Path, request: pytest.FixtureRequest, collector_given_back: None
) -> None:
    class Cycle:
        me: "Cycle"

    def made() -> "weakref.ref[Cycle]":
        cycle = Cycle()
        cycle.me = cycle
        return weakref.ref(cycle)

    def update(data: Path) -> None:
        worker = worker_on(data, collect_every=1)
        try:
            gc.disable()  # nothing collects the cycle before the worker's own steps do
            cycle = made()
            assert isinstance(worker(("advance", 0)), Advanced)
            gc.collect()
            assert cycle() is not None  # frozen with what the update left
            assert worker(("advance", None)) is None
            assert cycle() is not None  # not at rest yet
            assert worker(("prune",)) is None  # the cycle's end: at rest, one update made since the last collection
            assert cycle() is None
        finally:
            worker.close()

    logged_documents(tmp_path, request, 50, update)
