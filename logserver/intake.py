"""POST /api/v1/entries: a batch of signed statements, checked in order, then durably sequenced.

Order (DESIGN.md "The write path"): media type, body size and time, JSON shape (`api.SubmitRequest`), batch size,
this process may sequence, canonical form and signatures (worker processes for big batches), the log named and
the time, the registry, the issuer's rate limit; then the sequencer, which answers once the entries are durable.
"""

import asyncio
import time
from collections.abc import Sequence

import orjson
from starlette.requests import Request
from starlette.responses import Response

from logserver import api, proofs
from logserver.httpkit import JSON, HTTPError, error_for, json_response, read_body, read_json
from logserver.logstate import LogState, state_of
from logserver.sequencer import NotSequencingError, Sequenced, Submission
from logserver.submission import PositionedError, leaf_hashes, prepare_submissions, statements_from
from logserver.workerpool import WorkersUnavailable
from tlogcore.errors import TlogError
from tlogcore.statement import DOCUMENT_KINDS, Statement

PARALLEL_FROM = 64  # batches at least this big are verified in the worker processes


async def submit(request: Request) -> Response:
    state = state_of(request)
    if request.headers.get("content-type", "").split(";")[0].strip() != JSON:
        raise HTTPError(415, "unsupported_media_type", 'send application/json: {"statements": [base64, ...]}')
    body = await read_body(request, state.limits.max_body, state.limits.body_timeout)
    asked = api.SubmitRequest.from_json(read_json(body))
    datas = asked.statements
    if len(datas) > state.limits.max_batch:
        raise HTTPError(
            413, "batch_too_large", f"{len(datas)} statements; at most {state.limits.max_batch} per request"
        )
    started = time.perf_counter()
    try:
        sequenced = await _sequence(state, datas)
    except Exception as exc:
        state.metrics.refused[error_for(exc).code] += len(datas)
        raise
    state.metrics.accepted += len(sequenced)
    state.metrics.sequencing_latency.observe(time.perf_counter() - started)
    head = state.sequencer.head
    if head is None:
        raise HTTPError(503, "not_sequencing", "no checkpoint yet")
    if not asked.inclusion_proofs:  # a SubmitReceipt, written from `sequenced` itself
        return Response(orjson.dumps(api.SubmitReceipt.json_of(head.checkpoint, sequenced)), media_type=JSON)
    return json_response(await _with_proofs(state, sequenced, head.size, head.checkpoint))


async def _with_proofs(state: LogState, sequenced: Sequence[Sequenced], size: int, note: bytes) -> api.SubmitResponse:
    """The default answer: each entry with its inclusion proof in the checkpoint `note` of tree size `size`."""
    proofs_for = await proofs.inclusion_proofs(state.storage, [s.index for s in sequenced], size)
    entries = tuple(
        api.SubmittedEntry(s.index, s.leaf_hash, s.duplicate, tuple(proof))
        for s, proof in zip(sequenced, proofs_for, strict=True)
    )
    return api.SubmitResponse(note, entries)


async def _sequence(state: LogState, datas: Sequence[bytes]) -> list[Sequenced]:
    if not state.sequencer.accepts_submissions:  # a standby on PostgreSQL accepts (sequencer.py)
        raise NotSequencingError(state.sequencer.not_sequencing or "not sequencing")
    submissions = await _prepare_all(state, datas)
    statements = [s.statement for s in submissions if isinstance(s.statement, Statement)]  # all of them: parsed here
    _check_registry(state, statements)
    _limit_issuers(state, statements)  # after the checks: only real issuers have budgets
    return await state.sequencer.submit(submissions)


async def _prepare_all(state: LogState, datas: Sequence[bytes]) -> list[Submission]:
    """Each statement parsed and checked once: in the worker processes (all cores) for big batches, cut in one
    part per worker, inline for small ones. The event loop gets Submissions back, ready to sequence."""
    pool, now = state.parse_pool, state.clock()
    if pool is None or len(datas) < PARALLEL_FROM:
        try:
            return prepare_submissions(datas, state.rules, now)
        except PositionedError as exc:
            raise positioned(exc, len(datas), 0) from None
    step = -(-len(datas) // state.parse_workers)
    starts = range(0, len(datas), step)
    try:
        parts = await asyncio.gather(*(pool.call((now, datas[i : i + step])) for i in starts))
    except WorkersUnavailable as exc:
        raise HTTPError(503, "workers_unavailable", f"{exc}; retry", {"Retry-After": "1"}) from None
    submissions: list[Submission] = []
    for start, part in zip(starts, parts, strict=True):
        if isinstance(part, PositionedError):
            raise positioned(part, len(datas), start)
        if isinstance(part, RuntimeError):  # a bug in the checks, not the client's doing
            raise part
        rows, hashes = part
        chunk = datas[start : start + step]  # the bytes stayed here: the worker sent back what it parsed from them
        submissions += map(Submission, chunk, statements_from(rows), leaf_hashes(hashes))
    return submissions


def _limit_issuers(state: LogState, statements: Sequence[Statement]) -> None:
    limiter = state.limits.issuer_limiter
    if limiter is None:
        return
    costs: dict[str, float] = {}
    for statement in statements:
        costs[statement.signer] = costs.get(statement.signer, 0) + 1
    refusal = limiter.take_many(costs)
    if refusal is None:
        return
    if refusal.impossible:  # waiting never helps: 413, not 429 with a Retry-After (issue 18, item 14)
        message = f"{int(costs[refusal.key])} statements from {refusal.key} in one request: at most "
        message += f"{limiter.burst:g} per request for one issuer (limits.issuer_burst); split the batch"
        raise HTTPError(413, "issuer_burst_exceeded", message)
    else:
        message = f"issuer {refusal.key} is over its rate limit (limits.issuer_statements_per_second = "
        message += f"{limiter.rate:g}); retry after {refusal.retry_after} s"
    raise HTTPError(429, "issuer_rate_limited", message, {"Retry-After": str(refusal.retry_after)})


def _check_registry(state: LogState, statements: Sequence[Statement]) -> None:
    """Whether each signer may write: state, so in the server process (the rest was checked in _prepare_all).
    An issue or revoke statement is decided by its signer's key alone (Registry.check), so each key is looked up
    once per request: a bulk request from one issuer pays one check, not one per statement (issue 20)."""
    registry = state.sequencer.registry
    allowed: set[str] = set()  # keys whose document statements passed: nothing here changes the registry
    for position, statement in enumerate(statements):
        documents = statement.kind in DOCUMENT_KINDS
        if documents and statement.signer in allowed:
            continue
        try:
            registry.check(statement)
        except TlogError as exc:
            raise positioned(PositionedError(position, exc), len(statements), 0) from None
        if documents:
            allowed.add(statement.signer)


def positioned(exc: PositionedError, count: int, offset: int) -> TlogError:
    """The error, its message naming the statement's position when the batch has more than one."""
    prefix = f"statement {offset + exc.position}: " if count > 1 else ""
    return type(exc.error)(prefix + str(exc.error))
