"""The real log app in-process, reached through httpx's ASGITransport (fast, no ports), for the protocol and
tools tests; and a way to make it lie in one answer."""

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from logserver.app import LogState, build_app
from logserver.client import LogClient
from logserver.sequencer import Sequencer, SequencerConfig
from logserver.sqlite import SQLiteStorage
from logserver.statusindexer import StatusIndexer, logged_by
from logserver.statusstore import SQLiteStatusStore
from logserver.submission import SubmissionRules
from tests.log_harness import seed
from tlogcore.keys import Ed25519Signer
from tlogcore.statement import Statement, sign_statement

ORIGIN = "api.example/log"
LOG_KEY = Ed25519Signer(ORIGIN, seed(201))
REGISTRY_KEY = Ed25519Signer(ORIGIN + "/registry", seed(202))
ISSUER = Ed25519Signer("issuer.api.example", seed(203))


@asynccontextmanager
async def app_client(
    tmp_path: Path,
    wrap: Callable[[Any], Any] = lambda app: app,
    reads: Callable[[Any], Any] = lambda storage: storage,
    indexed: bool = False,
    indexer_class: type[StatusIndexer] = StatusIndexer,
) -> AsyncIterator[tuple[LogClient, httpx.AsyncClient]]:
    """The log as `tlog-server serve` wires it (SQLite, the sequencer running), reached through ASGITransport by
    the project's client and by a plain HTTP client (for requests the project's client never sends). `reads` may
    put a view in front of the storage the handlers read (the sequencer keeps the real one), to stage races.
    With `indexed`, the status indexer runs too (logserver/statusindexer.py) and lookups carry status proofs;
    `indexer_class` may state its roots otherwise (a log from before the key index: v1 roots)."""
    storage = await SQLiteStorage.open(tmp_path / "log.db", 5000)
    registry = REGISTRY_KEY.verifier().vkey
    sequencer = Sequencer(
        storage, LOG_KEY, SequencerConfig(ORIGIN, frozenset([registry]), publish_without_witnesses=True)
    )
    await sequencer.load()
    if not await sequencer.take_lease():
        raise RuntimeError("a fresh database must give the lease")
    state = LogState(reads(storage), sequencer, SubmissionRules(ORIGIN, 300), LOG_KEY.verifier().vkey, [registry])
    tasks = [asyncio.create_task(sequencer.run())]
    if indexed:
        state.status = await SQLiteStatusStore.open(tmp_path / "log.db.status", log_path=tmp_path / "log.db")
        indexer = indexer_class(storage, state.status, REGISTRY_KEY, ORIGIN, logged_by(sequencer), interval=0.02)
        tasks.append(asyncio.create_task(indexer.run()))
    transport = httpx.ASGITransport(app=wrap(build_app(state)))
    try:
        async with (
            LogClient("http://log.test", 10, transport) as client,
            httpx.AsyncClient(transport=transport, base_url="http://log.test") as raw,
        ):
            yield client, raw
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if state.status is not None:
            await state.status.close()
        await storage.close()


def statement(kind: str, signer: Ed25519Signer, **fields: Any) -> bytes:
    return sign_statement(Statement(ORIGIN, kind, signer.verifier().vkey, int(time.time()), **fields), signer)


def corrupting(path: str, change: Callable[[bytes], bytes]) -> Callable[[Any], Any]:
    """A log that lies in one answer: the real app, with the body of every response to `path` rewritten."""

    def wrap(app: Any) -> Any:
        async def lying(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] != "http" or scope["path"] != path:
                await app(scope, receive, send)
                return

            async def rewrite(message: Any) -> None:
                if message["type"] == "http.response.body" and message.get("body"):
                    message = {**message, "body": change(message["body"])}
                if message["type"] == "http.response.start":
                    message = {**message, "headers": [h for h in message["headers"] if h[0] != b"content-length"]}
                await send(message)

            await app(scope, receive, rewrite)

        return lying

    return wrap
