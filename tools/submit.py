"""`tlog submit`: sign `issue` statements for hashed documents and log them, resumably; then fetch their bundles.

Exactly once, across interruptions (kill -9 included):

1. A state (cli.py keeps it in a JSON file) maps each logged document's SHA-256 to its entry index; those are
   skipped at once.
2. With `lookup` (cli.py: when there is no state to resume from), every other document is first looked up in
   the log (`GET /api/v1/documents/<sha256>`): an issue statement by this issuer key already there is recorded,
   not submitted again.
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

from logserver.client import LogClient, LogClientError
from tlogcore.bundle import TlogProof, parse_tlog_proof, verify_bundle
from tlogcore.checkpoint import parse_checkpoint
from tlogcore.errors import MalformedError
from tlogcore.keys import Ed25519Signer
from tlogcore.note import parse_note
from tlogcore.policy import Policy
from tlogcore.statement import ISSUE, REVOKE, Statement, sign_statement
from tools.hashing import Item

BATCH = 1000
CONCURRENCY = 16
STATE_VERSION = 1


@dataclass
class SubmitState:
    origin: str
    signer: str  # the issuer vkey this state is about
    logged: dict[str, int] = field(default_factory=dict)  # hex SHA-256 -> entry index
    pending_time: int | None = None

    def to_text(self) -> str:
        return (
            json.dumps(
                {
                    "version": STATE_VERSION,
                    "origin": self.origin,
                    "signer": self.signer,
                    "pending_time": self.pending_time,
                    "logged": self.logged,
                },
                indent=0,
            )
            + "\n"
        )

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


async def find_logged(client: LogClient, document: bytes, origin: str, signer: str) -> int | None:
    """The index of an issue statement by `signer` about `document` already in the log, if any."""
    for item in (await client.document(document)).statements:
        if item.kind == ISSUE and item.signer == signer:
            return item.index
    return None


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
    lookup: bool = True,
) -> SubmitState:
    """Log every item once; `save` is called with the state before and after each batch."""
    vkey = signer.verifier().vkey
    skipped = submitted = 0
    for start in range(0, len(items), batch):
        chunk = [i for i in items[start : start + batch] if i.sha256.hex() not in state.logged]
        skipped += min(batch, len(items) - start) - len(chunk)
        if lookup and chunk:
            found = await _gather_limited([partial(find_logged, client, i.sha256, state.origin, vkey) for i in chunk])
            for item, index in zip(chunk, found, strict=True):
                if index is not None:
                    state.logged[item.sha256.hex()] = index
            skipped += sum(index is not None for index in found)
            chunk = [i for i, index in zip(chunk, found, strict=True) if index is None]
        if chunk:
            if state.pending_time is None:
                state.pending_time = int(clock())
                save(state)
            statements = [
                sign_statement(
                    Statement(state.origin, ISSUE, vkey, state.pending_time, document=i.sha256, ref=i.ref or ref),
                    signer,
                )
                for i in chunk
            ]
            result = await client.submit(statements)
            for item, entry in zip(chunk, result.entries, strict=True):
                state.logged[item.sha256.hex()] = entry.index
            submitted += len(chunk)
            save(state)
        progress(Progress(min(start + batch, len(items)), len(items), skipped, submitted))
    if state.pending_time is not None:
        state.pending_time = None
        save(state)
    return state


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


def revoke_statement(origin: str, signer: Ed25519Signer, document: bytes, reason: str | None, when: int) -> bytes:
    return sign_statement(
        Statement(origin, REVOKE, signer.verifier().vkey, when, document=document, reason=reason), signer
    )
