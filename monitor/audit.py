"""Auditing entries that are already authenticated against the tree: the statement rules every entry must keep.

Pure. For each entry, in log order (DESIGN.md "Statements"):

1. it is a canonical signed statement, and (mode `signatures`) its signature
   verifies with its own signer key — `tlogcore.statement.parse_statement`;
2. it names this log (`log <origin>`);
3. its signer was allowed to write it at that point: `Registry.apply`, the very
   rules the log applies, replayed from the log's own history.

An entry that fails any of these is log misbehaviour: the log must have refused
it. Step 1 is independent per entry, so `check_statements` can run in worker
processes; steps 2-3 run in order in `apply_registry`.

Modes: `signatures` (everything), `parse` (skip the Ed25519 check: trusts that
the log verified signatures; for fast catch-up), `tree` (no statement checks:
only that every entry is in the tree; no registry, no watch rules).
"""

from collections.abc import Sequence
from dataclasses import dataclass, field

from monitor.config import PARSE, SIGNATURES, TREE
from monitor.indexroots import index_root_problem, is_index_root
from monitor.logkeyentry import log_key_problem
from tlogcore.errors import NotAllowedError, TlogError
from tlogcore.logkey import is_log_key
from tlogcore.merkle import leaf_hash
from tlogcore.registry import Registry
from tlogcore.statement import ISSUE, REVOKE, Statement, parse_statement


@dataclass(frozen=True)
class Checked:
    """One entry after the checks that need no history."""

    index: int
    leaf_hash: bytes
    statement: Statement | None
    problem: str | None = None  # why the log should have refused it


def parse_unsigned(data: bytes) -> Statement:
    """`parse_statement` without the Ed25519 verification: canonical form, one signature line by the signer."""
    return parse_statement(data, check_signature=False)


def check_statements(entries: Sequence[bytes], first: int, origin: str, mode: str) -> list[Checked]:
    """Steps 1-2 for entries first, first+1, …  (a top-level function, so worker processes can run it)."""
    out = []
    for offset, data in enumerate(entries):
        index, leaf = first + offset, leaf_hash(data)
        if mode == TREE:
            out.append(Checked(index, leaf, None))
            continue
        if is_index_root(data):  # the log's status index root (indexroots.py), not a statement
            out.append(Checked(index, leaf, None, index_root_problem(data, index, origin, mode == SIGNATURES)[1]))
            continue
        if is_log_key(data):  # a log key rotation (logkeyentry.py), not a statement
            out.append(Checked(index, leaf, None, log_key_problem(data, origin)))
            continue
        try:
            statement = parse_statement(data) if mode == SIGNATURES else parse_unsigned(data)
        except TlogError as exc:
            out.append(Checked(index, leaf, None, f"not a valid signed statement: {exc}"))
            continue
        if statement.origin != origin:
            out.append(Checked(index, leaf, statement, f"statement is for log {statement.origin!r}, not this one"))
            continue
        out.append(Checked(index, leaf, statement))
    return out


def apply_registry(registry: Registry, checked: Sequence[Checked]) -> list[Checked]:
    """Step 3, in log order: the registry advances; entries the registry refuses get their problem."""
    out = []
    for item in checked:
        if item.statement is not None and item.problem is None:
            try:
                registry.apply(item.statement, item.index)
            except NotAllowedError as exc:
                item = Checked(item.index, item.leaf_hash, item.statement, f"signer not allowed: {exc}")
        out.append(item)
    return out


@dataclass
class Tally:
    """Counts for the report: statements per signer key, and revocations."""

    issued: dict[str, int] = field(default_factory=dict)
    revoked: dict[str, int] = field(default_factory=dict)
    bad_entries: int = 0

    def add(self, items: Sequence[Checked]) -> None:
        for item in items:
            if item.problem is not None:
                self.bad_entries += 1
            elif item.statement is not None and item.statement.kind in (ISSUE, REVOKE):
                counts = self.issued if item.statement.kind == ISSUE else self.revoked
                counts[item.statement.signer] = counts.get(item.statement.signer, 0) + 1


MODES = (SIGNATURES, PARSE, TREE)
