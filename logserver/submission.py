"""Checks on a submitted statement before it joins the pool (pure; the signature check is the costly part).

Order: size, canonical form and the statement's own signature (tlogcore), the
log it names, its time (all in a worker process for big batches), then whether
its signer may write (the registry, in the server process: it is state).
"""

from collections.abc import Sequence
from dataclasses import dataclass

from logserver.sequencer import Submission
from tlogcore.errors import MalformedError, TlogError
from tlogcore.merkle import leaf_hash
from tlogcore.registry import Registry
from tlogcore.statement import MAX_STATEMENT_SIZE, Statement, parse_statement


class WrongLogError(TlogError):
    """The statement was made for another log (its `log` line names another origin)."""


class ClockError(TlogError):
    """The statement's time is too far in the future."""


@dataclass(frozen=True)
class SubmissionRules:
    origin: str
    max_future_seconds: int = 300


def parse_statements(datas: Sequence[bytes]) -> list[Statement]:
    """Canonical form and signature of each statement (PositionedError names the first bad one)."""
    statements = []
    for position, data in enumerate(datas):
        try:
            if len(data) > MAX_STATEMENT_SIZE:
                raise MalformedError(f"statement is {len(data)} bytes, more than {MAX_STATEMENT_SIZE}")
            statements.append(parse_statement(data))
        except TlogError as exc:
            raise PositionedError(position, exc) from None
    return statements


def prepare_submissions(datas: Sequence[bytes], rules: SubmissionRules, now: float) -> list[Submission]:
    """The costly, stateless half, done once per statement: canonical form, signature, the log it names, its
    time, and its leaf hash (PositionedError names the first bad one)."""
    checked = check_statements(datas, rules, now)
    return [Submission(data, statement, digest) for data, (statement, digest) in zip(datas, checked, strict=True)]


def check_statements(datas: Sequence[bytes], rules: SubmissionRules, now: float) -> list[tuple[Statement, bytes]]:
    """`prepare_submissions` as the worker processes run it for big batches (a module-level function of picklable
    values): each statement and its leaf hash, not the bytes, which the caller holds already. The answer crossing
    back is then about half as big, and the event loop is left with the registry check alone (issue 20)."""
    statements = parse_statements(datas)
    out = []
    for position, (data, statement) in enumerate(zip(datas, statements, strict=True)):
        try:
            check_origin_and_time(statement, rules, now)
        except TlogError as exc:
            raise PositionedError(position, exc) from None
        out.append((statement, leaf_hash(data)))
    return out


class PositionedError(Exception):
    """A TlogError on the statement at `position` of a batch (picklable across processes)."""

    def __init__(self, position: int, error: TlogError) -> None:
        super().__init__(position, error)
        self.position, self.error = position, error


def check_origin_and_time(statement: Statement, rules: SubmissionRules, now: float) -> None:
    if statement.origin != rules.origin:
        raise WrongLogError(f"statement is for log {statement.origin!r}, this log is {rules.origin!r}")
    if statement.time > now + rules.max_future_seconds:
        raise ClockError(f"statement time {statement.time} is more than {rules.max_future_seconds} s in the future")


def check_submission(
    data: bytes, statement: Statement, rules: SubmissionRules, registry: Registry, now: float
) -> Submission:
    """Every check on one parsed statement (tests and callers without worker processes)."""
    check_origin_and_time(statement, rules, now)
    registry.check(statement)
    return Submission(data, statement, leaf_hash(data))
