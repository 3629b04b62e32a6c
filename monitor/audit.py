"""Auditing entries that are already authenticated against the tree: the statement rules every entry must keep.

Pure. For each entry, in log order (DESIGN.md "Statements"):

1. it is a canonical signed statement, and (mode `signatures`) its signature
   verifies with its own signer key — `tlogcore.statement.parse_statement`;
2. it names this log (`log <origin>`);
3. its signer was allowed to write it at that point: `Registry.apply`, the very
   rules the log applies, replayed from the log's own history.

An entry that fails any of these is log misbehaviour: the log must have refused
it. Steps 1-2 are independent per entry, so `check_packed` runs in worker
processes (each statement parsed there, once); step 3 runs in order in
`apply_registry`.

Modes: `signatures` (everything), `parse` (skip the Ed25519 check: trusts that
the log verified signatures; for fast catch-up), `tree` (no statement checks:
only that every entry is in the tree; no registry, no watch rules).
"""

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

from monitor.indexroots import index_root_problem
from monitor.logkeyentry import log_key_problem
from monitor.modes import PARSE, SIGNATURES, TREE
from tlogcore.errors import NotAllowedError, TlogError
from tlogcore.indexroot import is_index_root
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


# What a worker sends back per entry: the statement's fields (or None) and the problem (or None). Plain tuples
# pickle in a quarter of the time of Statement objects, and the leaf hash is not sent: the caller has it in the
# entry's authenticated level-0 tile.
Packed = list[tuple[tuple[object, ...] | None, str | None]]
_FIELDS = tuple(f.name for f in dataclasses.fields(Statement))


def check_packed(entries: Sequence[bytes], first: int, origin: str, mode: str) -> Packed:
    """Steps 1-2 for entries first, first+1, …, in a worker process: each statement parsed once, here."""
    out: Packed = []
    for offset, data in enumerate(entries):
        if is_index_root(data):  # the log's status index root (indexroots.py), not a statement
            out.append((None, index_root_problem(data, first + offset, origin, mode == SIGNATURES)[1]))
            continue
        if is_log_key(data):  # a log key rotation (logkeyentry.py), not a statement
            out.append((None, log_key_problem(data, origin)))
            continue
        try:
            statement = parse_statement(data) if mode == SIGNATURES else parse_unsigned(data)
        except TlogError as exc:
            out.append((None, f"not a valid signed statement: {exc}"))
            continue
        fields = tuple(getattr(statement, name) for name in _FIELDS)
        if statement.origin != origin:
            out.append((fields, f"statement is for log {statement.origin!r}, not this one"))
            continue
        out.append((fields, None))
    return out


def _statement(fields: tuple[object, ...]) -> Statement:
    """The Statement a worker parsed and checked, rebuilt as unpickling would (no second validation)."""
    statement = object.__new__(Statement)
    statement.__dict__.update(zip(_FIELDS, fields, strict=True))
    return statement


def unpack(packed: Packed, first: int, leaf_hashes: Sequence[bytes]) -> list[Checked]:
    return [
        Checked(first + offset, leaf, _statement(fields) if fields is not None else None, problem)
        for offset, ((fields, problem), leaf) in enumerate(zip(packed, leaf_hashes, strict=True))
    ]


def check_statements(entries: Sequence[bytes], first: int, origin: str, mode: str) -> list[Checked]:
    """Steps 1-2 for entries first, first+1, …, in this process."""
    leaves = [leaf_hash(data) for data in entries]
    if mode == TREE:
        return [Checked(first + offset, leaf, None) for offset, leaf in enumerate(leaves)]
    return unpack(check_packed(entries, first, origin, mode), first, leaves)


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
