"""`tlog submit`: sign `issue` statements for hashed documents and log them, resumably; then fetch their bundles.

Exactly once, across interruptions (kill -9 included):

1. A state (cli.py keeps it in a JSON file) maps each logged document's SHA-256 to its entry index; those are
   skipped at once.
2. With `lookup` (cmd_submit.py: when there is no state to resume from), every other document is first looked
   up in the log (`POST /api/v1/documents:lookup`, a batch per request) before it is submitted: an issue
   statement by this issuer already there is recorded, not submitted again; a document this issuer revoked is refused:
   a revocation is final under the one status rule (tlogcore/status.py), so a new issue statement would change
   nothing but the log's size (docs/printed-code.md).
3. Before a batch is sent, the statement time it uses is saved as `pending_time`; a re-run after an interruption
   signs with that same time, so a statement the log took in a batch whose answer never arrived is the identical
   statement, and the log answers with its first entry (Ed25519 is deterministic) instead of adding a second.
"""

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import orjson

from logserver import api
from logserver.client import LogClient, LogClientError
from tlogcore.bundle import TlogProof, parse_tlog_proof, verify_bundle
from tlogcore.checkpoint import parse_checkpoint
from tlogcore.errors import MalformedError
from tlogcore.keys import Ed25519Signer, Signer
from tlogcore.merkle import leaf_hash
from tlogcore.note import parse_note
from tlogcore.policy import Policy
from tlogcore.statement import ISSUE, REVOKE, Statement, sign_statement
from tools.hashing import Item
from tools.signing import BatchSigner, worker_count

BATCH = 1000
CONCURRENCY = 16
PIPELINE = 4  # batches in flight: the log sequences one while the next ones travel and are signed
STATE_VERSION = 1


@dataclass
class SubmitState:
    origin: str
    signer: str  # the issuer vkey this state is about
    logged: dict[str, int] = field(default_factory=dict)  # hex SHA-256 -> entry index
    pending_time: int | None = None

    def to_text(self) -> str:
        # orjson: the state is saved after every batch, and json's pure-Python indenting encoder took 1.8 s of
        # a 20,000-document run (issue 20's profile)
        data = {
            "version": STATE_VERSION,
            "origin": self.origin,
            "signer": self.signer,
            "pending_time": self.pending_time,
            "logged": self.logged,
        }
        return orjson.dumps(data, option=orjson.OPT_APPEND_NEWLINE).decode()

    @classmethod
    def from_text(cls, text: str, origin: str, signer: str) -> "SubmitState":
        try:
            data = json.loads(text)
            if data["version"] != STATE_VERSION:
                raise MalformedError(f"state file version {data['version']} is not {STATE_VERSION}")
            if (data["origin"], data["signer"]) != (origin, signer):
                return cls(origin, signer)  # another log or key: start afresh (lookups still prevent duplicates)
            logged = {str(k): int(v) for k, v in data["logged"].items()}
            pending = data["pending_time"]
            return cls(origin, signer, logged, None if pending is None else int(pending))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise MalformedError(f"state file is not valid: {exc!r}") from exc


@dataclass(frozen=True)
class Progress:
    done: int
    total: int
    skipped: int
    submitted: int


async def _gather_limited(jobs: Sequence[Callable[[], Awaitable[Any]]], limit: int = CONCURRENCY) -> list[Any]:
    semaphore = asyncio.Semaphore(limit)

    async def one(job: Callable[[], Awaitable[Any]]) -> Any:
        async with semaphore:
            return await job()

    return list(await asyncio.gather(*(one(job) for job in jobs)))


@dataclass(frozen=True)
class Logged:
    """What the log holds about one document from this issuer (by key name, the log's status rule)."""

    index: int | None  # its latest issue statement
    revoked_at: int | None  # its latest revoke statement, if any: a revocation is final, whatever came after


def logged_of(summary: api.DocumentSummary, issuer_name: str) -> Logged:
    """This issuer's latest issue of the document and a later revoke, from the log's lookup answer."""
    issue = revoke = None
    for item in summary.statements:
        if item.issuer != issuer_name:
            continue
        if item.kind == ISSUE and (issue is None or item.index > issue):
            issue = item.index
        elif item.kind == REVOKE:
            revoke = item.index if revoke is None else max(revoke, item.index)
    return Logged(issue, revoke)


@dataclass
class Lookup:
    revoked: list[tuple[Item, int]]  # refused: (document, revoke index)


async def lookup_logged(client: LogClient, items: Sequence[Item], state: SubmitState, issuer_name: str) -> Lookup:
    """Ask the log about every document not in `state` (one request per api.MAX_LOOKUP documents) before they
    are submitted: record those already issued; collect the revoked ones, which are never issued again."""
    todo = [i for i in items if i.sha256.hex() not in state.logged]
    result = Lookup([])
    for start in range(0, len(todo), api.MAX_LOOKUP):
        chunk = todo[start : start + api.MAX_LOOKUP]
        answer = await client.lookup([i.sha256 for i in chunk])
        if [d.document for d in answer.documents] != [i.sha256 for i in chunk]:
            raise MalformedError("the log's lookup answer is not about the documents asked, in order")
        for item, summary in zip(chunk, answer.documents, strict=True):
            logged = logged_of(summary, issuer_name)
            if logged.revoked_at is not None:
                result.revoked.append((item, logged.revoked_at))
            elif logged.index is not None:
                state.logged[item.sha256.hex()] = logged.index
    return result


Lookup_ = Callable[[list[Item]], Awaitable["Lookup"]]


async def submit_items(
    client: LogClient,
    signer: Ed25519Signer,
    items: Sequence[Item],
    state: SubmitState,
    save: Callable[[SubmitState], None],
    progress: Callable[[Progress], None],
    ref: str | None = None,
    clock: Callable[[], float] = time.time,
    batch: int = BATCH,
    lookup: Lookup_ | None = None,
) -> list[tuple[Item, int]]:
    """Log every item not yet in `state`, once, in batches of which PIPELINE are in flight at a time; each batch
    is first looked up when `lookup` is given (so logging starts at once). `save` is called with the state before
    a batch is signed with a new time and after each batch. Returns the documents refused as revoked (with the
    revoke's index); the others are logged."""
    batch_signer = BatchSigner(signer, state.origin, worker_count(len(items), batch))
    sender = _Sender(client, batch_signer, state, save, progress, ref, len(items))
    refused: list[tuple[Item, int]] = []
    try:
        for start in range(0, len(items), batch):
            chunk = [i for i in items[start : start + batch] if i.sha256.hex() not in state.logged]
            sender.skipped += min(batch, len(items) - start) - len(chunk)
            if lookup is not None and chunk:
                found = await lookup(chunk)
                refused += found.revoked
                no = {i.sha256 for i, _ in found.revoked} | {i.sha256 for i in chunk if i.sha256.hex() in state.logged}
                sender.skipped += len(no)
                chunk = [i for i in chunk if i.sha256 not in no]
            if state.pending_time is None and chunk:
                state.pending_time = int(clock())
                save(state)
            await sender.send(chunk, state.pending_time or 0, min(start + batch, len(items)))
        await sender.drain()
    finally:
        sender.cancel()
    if state.pending_time is not None:
        state.pending_time = None
        save(state)
    return refused


class _Sender:
    """Signs and submits batches, PIPELINE at a time; records each answer in the state as it comes."""

    def __init__(
        self,
        client: LogClient,
        signer: BatchSigner,
        state: SubmitState,
        save: Callable[[SubmitState], None],
        progress: Callable[[Progress], None],
        ref: str | None,
        total: int,
    ) -> None:
        self.client, self.signer, self.state, self.save, self.progress, self.ref = (
            client,
            signer,
            state,
            save,
            progress,
            ref,
        )
        self.total = total
        self.skipped = self.submitted = 0
        self.slots = asyncio.Semaphore(PIPELINE)
        self.tasks: set[asyncio.Task[None]] = set()

    async def send(self, chunk: list[Item], when: int, done: int) -> None:
        for task in [t for t in self.tasks if t.done()]:
            self.tasks.discard(task)
            task.result()  # a failed batch stops the run here
        if not chunk:
            self.progress(Progress(done, self.total, self.skipped, self.submitted))
            return
        await self.slots.acquire()
        self.tasks.add(asyncio.create_task(self._submit(chunk, when, done)))

    async def _submit(self, chunk: list[Item], when: int, done: int) -> None:
        try:
            statements = await self.signer.sign(when, [(i.sha256, i.ref or self.ref) for i in chunk])
            result = await self.client.submit_receipt(statements)
        finally:
            self.slots.release()
        if len(result.entries) != len(chunk):
            raise MalformedError(f"the log answered {len(result.entries)} entries for {len(chunk)} statements")
        for item, statement, entry in zip(chunk, statements, result.entries, strict=True):
            if entry.leaf_hash != leaf_hash(statement):  # the log took exactly the statement signed here
                raise MalformedError(f"the log's entry {entry.index} for {item.shown} is not the statement sent")
            self.state.logged[item.sha256.hex()] = entry.index
        self.submitted += len(chunk)
        self.save(self.state)
        self.progress(Progress(done, self.total, self.skipped, self.submitted))

    async def drain(self) -> None:
        tasks, self.tasks = self.tasks, set()
        await asyncio.gather(*tasks)

    def cancel(self) -> None:
        for task in self.tasks:
            task.cancel()
        self.signer.close()


async def wait_for_checkpoint(
    client: LogClient,
    size: int,
    policy: Policy | None,
    timeout: float,
    clock: Callable[[], float] = time.time,
    poll: float = 0.1,
) -> int:
    """Wait until the published checkpoint covers `size` entries (and meets `policy`); return its size."""
    deadline = clock() + timeout
    last = "no checkpoint yet"
    while True:
        note = await client.checkpoint()
        try:
            current = (
                policy.verify_checkpoint(note, clock()).checkpoint
                if policy is not None
                else parse_checkpoint(parse_note(note).text)
            )
            if current.size >= size:
                return current.size
            last = f"the published checkpoint has size {current.size}, want {size}"
        except MalformedError:
            raise
        except Exception as exc:  # UnverifiedError while witnesses are slow: keep waiting
            last = str(exc)
        if clock() >= deadline:
            raise LogClientError(
                f"no published checkpoint covers the entries after {timeout:.0f} s: {last}; "
                "re-run later to write the bundles"
            )
        await asyncio.sleep(poll)


async def fetch_bundles(
    client: LogClient, indexes: Sequence[int], policy: Policy | None, clock: Callable[[], float] = time.time
) -> list[TlogProof]:
    """The log's bundle for each index, each checked (under `policy` when given) before it is written."""

    async def one(index: int) -> TlogProof:
        bundle = parse_tlog_proof(await client.bundle(index))
        if bundle.index != index:
            raise MalformedError(f"the log sent the bundle of entry {bundle.index} for entry {index}")
        if policy is not None:
            verify_bundle(bundle, policy, clock())
        return bundle

    return await _gather_limited([partial(one, i) for i in indexes])


def revoke_statement(origin: str, signer: Signer, document: bytes, reason: str | None, when: int) -> bytes:
    return sign_statement(
        Statement(origin, REVOKE, signer.verifier().vkey, when, document=document, reason=reason), signer
    )
