"""Checks on a submitted statement before it joins the pool (pure; the signature check is the costly part).

Order: size, canonical form and the statement's own signature (tlogcore), the
log it names, its time, then whether its signer may write (the registry).
"""

from dataclasses import dataclass

from logserver.sequencer import Submission
from tlogcore.errors import MalformedError, TlogError
from tlogcore.merkle import leaf_hash
from tlogcore.registry import Registry
from tlogcore.statement import MAX_STATEMENT_SIZE, parse_statement


class WrongLogError(TlogError):
    """The statement was made for another log (its `log` line names another origin)."""


class ClockError(TlogError):
    """The statement's time is too far in the future."""


@dataclass(frozen=True)
class SubmissionRules:
    origin: str
    max_future_seconds: int = 300


def check_submission(data: bytes, rules: SubmissionRules, registry: Registry, now: float) -> Submission:
    """A checked submission, or a TlogError naming the problem."""
    if len(data) > MAX_STATEMENT_SIZE:
        raise MalformedError(f"statement is {len(data)} bytes, more than {MAX_STATEMENT_SIZE}")
    statement = parse_statement(data)
    if statement.origin != rules.origin:
        raise WrongLogError(f"statement is for log {statement.origin!r}, this log is {rules.origin!r}")
    if statement.time > now + rules.max_future_seconds:
        raise ClockError(f"statement time {statement.time} is more than {rules.max_future_seconds} s in the future")
    registry.check(statement)
    return Submission(data, statement, leaf_hash(data))
