"""Auditing entries that are already authenticated against the tree: the statement rules every entry must keep.

Pure. For each entry, in log order (DESIGN.md "Statements"):

1. it is a canonical signed statement, and (mode `signatures`) its signature
   verifies with its own signer key — `tlogcore.statement.parse_statement`;
2. it names this log (`log <origin>`);
3. its signer was allowed to write it at that point: `Registry.apply`, the very
   rules the log applies, replayed from the log's own history.

An entry that fails any of these is log misbehaviour: the log must have refused
it. Steps 1-2 are independent per entry: each statement is parsed once
(`parse_checked` in the process that keeps the result, `parse_packed` in a worker
that sends it back) and its Ed25519 signature verified (`verify_packed`);
checkstages.py says which process does which. Step 3 runs in order in
`apply_registry`.

Modes: `signatures` (everything), `parse` (skip the Ed25519 check: trusts that
the log verified signatures; for fast catch-up), `tree` (no statement checks:
only that every entry is in the tree; no registry, no watch rules).
"""

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from monitor.indexroots import index_root_problem
from monitor.logkeyentry import log_key_problem
from monitor.modes import PARSE, SIGNATURES, TREE
from tlogcore.errors import NotAllowedError, TlogError
from tlogcore.indexroot import is_index_root
from tlogcore.logkey import is_log_key
from tlogcore.merkle import leaf_hash
from tlogcore.registry import Registry
from tlogcore.statement import (
    ISSUE,
    REVOKE,
    Statement,
    parse_signed_statement,
    parse_statement,
    parse_statement_key,
    require_signature,
)


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
# A statement whose signature is still to verify (mode `signatures`): (its offset in the entries, its signer's
# vkey, its signed text, the signature).
Unverified = list[tuple[int, str, bytes, bytes]]
_FIELDS = tuple(f.name for f in dataclasses.fields(Statement))


def check_packed(entries: Sequence[bytes], first: int, origin: str, mode: str) -> Packed:
    """Steps 1-2 for entries first, first+1, …, in a worker process: `parse_packed`, then `verify_packed`, here."""
    packed, unverified = parse_packed(entries, first, origin, mode)
    return with_failures(packed, verify_packed(unverified))


def parse_packed(entries: Sequence[bytes], first: int, origin: str, mode: str) -> tuple[Packed, Unverified]:
    """Steps 1-2 for entries first, first+1, …, each statement parsed once, in a worker process; but the Ed25519
    verifications of mode `signatures` are returned, to be made by `verify_packed`."""
    unverified: Unverified = []
    checks = _parsed(entries, first, origin, mode, unverified)
    packed: Packed = [
        (None if statement is None else tuple(getattr(statement, name) for name in _FIELDS), problem)
        for statement, problem in checks
    ]
    return packed, unverified


def parse_checked(
    entries: Sequence[bytes], first: int, leaf_hashes: Sequence[bytes], origin: str, mode: str
) -> tuple[list[Checked], Unverified]:
    """`parse_packed` in this process, its statements kept as they are parsed (no fields to pack and unpack):
    the main process's, when the workers only verify (checkstages.py)."""
    unverified: Unverified = []
    checks = _parsed(entries, first, origin, mode, unverified)
    checked = [
        Checked(first + offset, leaf, statement, problem)
        for offset, ((statement, problem), leaf) in enumerate(zip(checks, leaf_hashes, strict=True))
    ]
    return checked, unverified


def _parsed(
    entries: Sequence[bytes], first: int, origin: str, mode: str, unverified: Unverified
) -> Iterator[tuple[Statement | None, str | None]]:
    """Each entry's statement (None if it is none) and problem (None if none), but the Ed25519 verifications of
    mode `signatures`, added to `unverified` instead. Those of index-root and log-key entries are rare: made here."""
    signers: dict[str, str] = {}  # one string per signer: each pickles once per batch (pickle's memo), not per entry
    for offset, data in enumerate(entries):
        if is_index_root(data):  # the log's status index root (indexroots.py), not a statement
            yield None, index_root_problem(data, first + offset, origin, mode == SIGNATURES)[1]
            continue
        if is_log_key(data):  # a log key rotation (logkeyentry.py), not a statement
            yield None, log_key_problem(data, origin)
            continue
        try:
            statement, _, text, signature = parse_signed_statement(data)
        except TlogError as exc:
            yield None, f"not a valid signed statement: {exc}"
            continue
        if mode == SIGNATURES:
            unverified.append((offset, signers.setdefault(statement.signer, statement.signer), text, signature))
        if statement.origin != origin:
            yield statement, f"statement is for log {statement.origin!r}, not this one"
            continue
        yield statement, None


def verify_packed(unverified: Sequence[tuple[int, str, bytes, bytes]]) -> list[tuple[int, str]]:
    """The Ed25519 verifications `parse_packed` left: (offset, problem) for each that fails."""
    failed = []
    for offset, signer, text, signature in unverified:
        try:
            require_signature(parse_statement_key(signer, "statement signer"), text, signature)
        except TlogError as exc:
            failed.append((offset, f"not a valid signed statement: {exc}"))
    return failed


def with_failures(packed: Packed, failed: Sequence[tuple[int, str]]) -> Packed:
    """A statement whose signature fails is not one (`parse_statement` refuses it), whatever else is wrong."""
    out = list(packed)
    for offset, problem in failed:
        out[offset] = (None, problem)
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
    return checked_here(entries, first, leaves, origin, mode)


def checked_here(
    entries: Sequence[bytes], first: int, leaf_hashes: Sequence[bytes], origin: str, mode: str
) -> list[Checked]:
    """Steps 1-2 in this process (a thread of it, with no workers: checkstages.py), nothing packed."""
    checked, unverified = parse_checked(entries, first, leaf_hashes, origin, mode)
    return with_failed(checked, verify_packed(unverified))


def with_failed(checked: Sequence[Checked], failed: Sequence[tuple[int, str]]) -> list[Checked]:
    """`with_failures` for entries already unpacked (a copy: `checked` stays as it was parsed)."""
    out = list(checked)
    for offset, problem in failed:
        out[offset] = Checked(out[offset].index, out[offset].leaf_hash, None, problem)
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
