"""kill -9 at every step of a status index update leaves the index consistent with the log after restart, on
both engines (docs/status-proofs.md §9): each logged index-root states the root of exactly the entries below its
size, the stored head is such a root, and the next run brings the index up to the log."""

import asyncio
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from logserver.postgres import PostgresStorage
from logserver.sqlite import SQLiteStorage
from logserver.statusindexer import document_entries, is_index_root
from logserver.statusstore import PostgresStatusStore, SQLiteStatusStore
from tests.status_crash_child import STEPS
from tlogcore.indexroot import parse_index_root
from tlogcore.statusindex import verify_status
from tlogcore.statusindex_nodes import PathPlan, read_paths

CHILD = Path(__file__).resolve().parent / "status_crash_child.py"


def run_child(where: str, step: str, round_number: int) -> int:
    done = subprocess.run(
        [sys.executable, str(CHILD), where, step, str(round_number)], timeout=120, capture_output=True
    )
    return done.returncode


def root_of(datas: list[bytes], size: int) -> bytes:
    entries, _ = document_entries(datas[:size], 0)
    return read_paths(PathPlan([d for _, _, d in entries]), {}).apply_entries(entries).root


async def check_consistent(where: str) -> tuple[int, int]:
    """Every logged index root and the stored head agree with the log; (index size, log size)."""
    pg = where.startswith("postgresql://")
    storage: Any = await (PostgresStorage.open(where, 2) if pg else SQLiteStorage.open(Path(where), 5000))
    log_file, beside = Path(where), Path(where + ".status")  # the index has its own SQLite file (opening.py)
    store: Any = await (PostgresStatusStore.open(where, 1) if pg else SQLiteStatusStore.open(beside, log_path=log_file))
    try:
        head, log_head = await store.head(), await storage.head()
        datas = await storage.get_entries(0, log_head.size)
        for index, data in enumerate(datas):
            if is_index_root(data):
                logged = parse_index_root(data)
                assert logged.size <= index and logged.root == root_of(datas, logged.size), f"entry {index}"
        if head is not None:
            assert head.root == root_of(datas, head.size)
            entries, _ = document_entries(datas[: head.size], 0)
            keys = sorted({key for _, _, key in entries})
            plan = PathPlan(keys, head.size)
            while wanted := plan.wanted():
                plan.supply(await store.read_nodes(wanted, head.size))
            assert plan.root_hash() == head.root  # the stored rows at the head's version hash to its root
            for key in keys:  # and every document's rows are there (a compaction moves them)
                record, proof = plan.lookup(key)
                verify_status(key, record, proof.to_bytes(), head.root)
        return (head.size if head else 0), log_head.size
    finally:
        await store.close()
        await storage.close()


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_kill_9_at_every_step_of_an_index_update(engine: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    where = request.getfixturevalue("pg_database").dsn if engine == "postgresql" else str(tmp_path / "log.db")
    for number, step in enumerate(STEPS[:-1]):
        assert run_child(where, step, number) == -signal.SIGKILL, step
        asyncio.run(check_consistent(where))
    assert run_child(where, "none", len(STEPS)) == 0
    index_size, log_size = asyncio.run(check_consistent(where))
    assert log_size - index_size == 1  # only the last index-root itself is after the index
