"""Checks on a submitted statement before it joins the pool (pure; the signature check is the costly part).

Order: size, canonical form and the statement's own signature (tlogcore), the
log it names, its time, then whether its signer may write (the registry).
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
    """The costly, stateless half: canonical form and signature. Runs in worker processes for big batches,
    so it must stay a module-level function of picklable values."""
    statements = []
    for position, data in enumerate(datas):
        try:
            if len(data) > MAX_STATEMENT_SIZE:
                raise MalformedError(f"statement is {len(data)} bytes, more than {MAX_STATEMENT_SIZE}")
            statements.append(parse_statement(data))
        except TlogError as exc:
            raise PositionedError(position, exc) from None
    return statements


class PositionedError(Exception):
    """A TlogError on the statement at `position` of a batch (picklable across processes)."""

    def __init__(self, position: int, error: TlogError) -> None:
        super().__init__(position, error)
        self.position, self.error = position, error


def check_submission(
    data: bytes, statement: Statement, rules: SubmissionRules, registry: Registry, now: float
) -> Submission:
    """The stateful half, in the server process: the log it names, its time, and the registry."""
    if statement.origin != rules.origin:
        raise WrongLogError(f"statement is for log {statement.origin!r}, this log is {rules.origin!r}")
    if statement.time > now + rules.max_future_seconds:
        raise ClockError(f"statement time {statement.time} is more than {rules.max_future_seconds} s in the future")
    registry.check(statement)
    return Submission(data, statement, leaf_hash(data))
