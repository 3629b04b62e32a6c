"""A child process for tests/test_status_crash.py: log a batch, update the status index, and kill itself with
SIGKILL at the named step of the update (nothing is flushed or cleaned up: it is kill -9)."""

import asyncio
import hashlib
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg  # type: ignore[import-untyped]

from logserver.postgres import PostgresStorage
from logserver.sequencer import Sequencer, SequencerConfig
from logserver.sqlite import SQLiteStorage
from logserver.statusindexer import StatusIndexer, logged_by
from logserver.statusstore import PostgresStatusStore, SQLiteStatusStore
from logserver.submission import SubmissionRules, check_submission
from tests.api_helpers import ISSUER, LOG_KEY, ORIGIN, REGISTRY_KEY, statement
from tlogcore.statement import ISSUE, ISSUER_ADD, REVOKE, parse_statement

STEPS = ("read", "before-commit", "mid-commit", "mid-compaction", "after-commit", "after-log", "none")


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class Crashing:
    """The real store, killing the process at one step of the update."""

    def __init__(self, store: Any, step: str) -> None:
        self.store, self.step = store, step

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    async def read_nodes(self, ids: Any, version: int, *pages: Any) -> Any:
        if self.step == "read":
            die()
        return await self.store.read_nodes(ids, version, *pages)

    async def read_pages(self, pages: Any, version: int, *known: Any) -> Any:
        if self.step == "read":
            die()
        return await self.store.read_pages(pages, version, *known)

    async def commit(self, old: Any, new: Any, writes: Any, *pages: Any) -> None:
        if self.step == "before-commit":
            die()
        await self.store.commit(old, new, writes, *pages)
        if self.step == "after-commit":
            die()

    async def set_entry(self, size: int, entry: int) -> None:
        if self.step == "after-log":
            die()
        await self.store.set_entry(size, entry)


def crash_mid_commit(store: Any, after: str = "INSERT OR REPLACE INTO status_page") -> None:
    """Kill after the rows are written inside the transaction, before its COMMIT: SQLite, after a statement that
    starts with `after`; PostgreSQL, after its COPY or, with `after` a DELETE, after a statement that starts so."""
    if isinstance(store, SQLiteStatusStore):
        written = [False]

        def killing(sql: str) -> None:  # SQLite calls it as each statement starts, on the writer's thread
            written[0] = written[0] or sql.startswith(after)
            if written[0] and sql == "COMMIT":
                die()

        store._writer.set_trace_callback(killing)
    elif after.startswith("DELETE"):
        execute = asyncpg.Connection.execute

        async def killing_execute(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
            done = await execute(self, query, *args, **kwargs)
            if query.startswith("DELETE FROM status_page"):
                die()
            return done

        asyncpg.Connection.execute = killing_execute
    else:
        copy = asyncpg.Connection.copy_records_to_table

        async def killing_copy(self: Any, *args: Any, **kwargs: Any) -> Any:
            await copy(self, *args, **kwargs)
            die()

        asyncpg.Connection.copy_records_to_table = killing_copy


async def main(where: str, step: str, round_number: int) -> None:
    pg = where.startswith("postgresql://")
    storage: Any = await (PostgresStorage.open(where, 3) if pg else SQLiteStorage.open(Path(where), 5000))
    log_file, beside = Path(where), Path(where + ".status")  # the index has its own SQLite file (opening.py)
    store: Any = await (PostgresStatusStore.open(where, 2) if pg else SQLiteStatusStore.open(beside, log_path=log_file))
    if step == "mid-commit":
        crash_mid_commit(store)
    if step == "mid-compaction":  # SQLite's compaction (statuscompaction.py) moved rows, PostgreSQL's prune deleted
        crash_mid_commit(store, "DELETE FROM status_page")
    registry = REGISTRY_KEY.verifier().vkey
    config = SequencerConfig(ORIGIN, frozenset([registry]), flush_interval=0.02)
    sequencer = Sequencer(storage, LOG_KEY, config)
    await sequencer.load()
    if not await sequencer.take_lease():
        raise SystemExit("no lease")
    task = asyncio.create_task(sequencer.run())
    datas = [] if sequencer.registry.keys else [statement(ISSUER_ADD, REGISTRY_KEY, issuer=ISSUER.verifier().vkey)]
    docs = [hashlib.sha256(b"doc %d %d" % (round_number, i)).digest() for i in range(40)]
    datas += [statement(ISSUE, ISSUER, document=d) for d in docs]
    datas += [statement(REVOKE, ISSUER, document=hashlib.sha256(b"doc %d 0" % max(0, round_number - 1)).digest())]
    rules = SubmissionRules(ORIGIN, 300)
    indexer = StatusIndexer(storage, Crashing(store, step), REGISTRY_KEY, ORIGIN, logged_by(sequencer))
    indexer.prune_grace = 0.0  # each version noted twice below is due at the next commit: its rows are pruned
    for part in (datas[:20], datas[20:]):  # two updates: the second prunes what the first superseded
        for data in part:  # one at a time: an issuer-add must be applied before the issues it allows
            checked = check_submission(data, parse_statement(data), rules, sequencer.registry, time.time())
            await sequencer.submit([checked])
        while await indexer.step():
            for _ in range(2):
                indexer.note_served((await store.head()).size)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await store.close()
    await storage.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
