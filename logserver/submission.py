"""Checks on a submitted statement before it joins the pool (pure; the signature check is the costly part).

Order: size, canonical form and the statement's own signature (tlogcore), the
log it names, its time (all in a worker process for big batches), then whether
its signer may write (the registry, in the server process: it is state).
"""

import functools
import gc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from logserver.sequencer import Submission
from tlogcore.encoding import HASH_SIZE
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
    statements = checked_statements(datas, rules, now)
    return [Submission(data, s, leaf_hash(data)) for data, s in zip(datas, statements, strict=True)]


def checked_statements(datas: Sequence[bytes], rules: SubmissionRules, now: float) -> list[Statement]:
    """Each statement parsed, its signature checked, and the log it names and its time checked."""
    statements = parse_statements(datas)
    for position, statement in enumerate(statements):
        try:
            check_origin_and_time(statement, rules, now)
        except TlogError as exc:
            raise PositionedError(position, exc) from None
    return statements


# --- in a signature worker process (logserver/workerpool.py) ---------------------------------------------------

# A part's answer: each statement's fields (its own `__dict__`), and their leaf hashes end to end (32 bytes each).
# Builtins only: a pickled dataclass is a class reference and a dict per statement, read back through copyreg,
# which cost the worker about 1 µs per statement to write and the server 1.4 to read; the field dicts alone cost
# 0.45 and 0.7 (sixth round; tuples of the fields had cost 0.9 and 1.0: the worker built each tuple, and the
# server zipped each back into a dict).
Checked = tuple[list[dict[str, Any]], bytes]


def batch_checker(
    rules: SubmissionRules,
) -> Callable[[tuple[float, Sequence[bytes]]], "Checked | PositionedError | RuntimeError"]:
    """In a worker, once: `check_part` bound to the log's rules. What the import left is frozen out of the
    collector's sight: full collections then scan only what the parts create."""
    gc.collect()
    gc.freeze()
    return functools.partial(check_part, rules)


def check_part(
    rules: SubmissionRules, request: tuple[float, Sequence[bytes]]
) -> "Checked | PositionedError | RuntimeError":
    """`checked_statements` on one part of a batch, `(now, statements)`, and their leaf hashes: only what the
    server does not hold already (it keeps the bytes). A refusal is a value, and so is an unexpected error
    (a RuntimeError naming it: any exception class might not survive the pickle back), so the worker goes on."""
    now, datas = request
    try:
        statements = checked_statements(datas, rules, now)
        return [vars(s) for s in statements], b"".join(map(leaf_hash, datas))
    except PositionedError as exc:
        return exc
    except Exception as error:  # a bug: its request alone fails, as it would in-process; the worker goes on
        return RuntimeError(f"checking statements failed: {error!r}"[:500])


def statements_from(rows: Sequence[dict[str, Any]]) -> list[Statement]:
    """In the server: the statements a worker parsed and checked, each given the field dict the worker sent, as
    unpickling rebuilds a dataclass (its checks ran in the worker, on the bytes the server keeps). Frozen: the
    dict is set past its `__setattr__`."""
    new, put, out = object.__new__, object.__setattr__, []
    for fields in rows:
        statement = new(Statement)
        put(statement, "__dict__", fields)
        out.append(statement)
    return out


def leaf_hashes(joined: bytes) -> list[bytes]:
    return [joined[i : i + HASH_SIZE] for i in range(0, len(joined), HASH_SIZE)]


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
