"""Watch rules: which audited statements someone asked to hear about. Pure.

Issuer rules ("someone used our key", USERS.md): a statement signed by a
watched key (listed by vkey, or by key name) about a document that is not in
the issuer's expected documents; with `revocations`, every revocation by the
key; and any registry statement that adds or retires the key. With no expected
list at all, every use of the key matches.

Registry rules: every issuer-add and issuer-retire in the log; with
`revocations`, every revocation too.

Expected documents are text: one lowercase hex SHA-256 per line, `#` comments
and blank lines ignored, anything else an error naming the line.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from monitor.audit import Checked
from monitor.config import WatchRule
from tlogcore.errors import MalformedError
from tlogcore.statement import ISSUE, ISSUER_ADD, ISSUER_RETIRE, REVOKE, Statement

UNEXPECTED, REVOCATION, ISSUER_ADDED, ISSUER_RETIRED = "unexpected", "revocation", "issuer-added", "issuer-retired"


@dataclass(frozen=True)
class Match:
    rule: str
    what: str  # UNEXPECTED, REVOCATION, ISSUER_ADDED, ISSUER_RETIRED
    summary: str

    def key(self, item: Checked) -> str:
        """What makes the alert unique under (rule, log): the entry and what matched."""
        return f"entry {item.index} {item.leaf_hash.hex()} {self.what}"


def parse_expected(text: str, where: str) -> frozenset[bytes]:
    found = set()
    for number, raw in enumerate(text.split("\n"), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if len(line) != 64 or any(c not in "0123456789abcdef" for c in line):
            raise MalformedError(f"{where} line {number}: want 64 lowercase hex digits (a SHA-256), got {line[:70]!r}")
        found.add(bytes.fromhex(line))
    return frozenset(found)


def key_name(vkey: str) -> str:
    return vkey.split("+", 1)[0]


def describe(statement: Statement) -> str:
    if statement.document is not None:
        return f"{statement.kind} statement by {key_name(statement.signer)} about document {statement.document.hex()}"
    return f"{statement.kind} statement for issuer key {key_name(statement.issuer or '')}"


def match_rule(rule: WatchRule, expected: frozenset[bytes] | None, item: Checked) -> list[Match]:
    statement = item.statement
    if statement is None or item.problem is not None:
        return []
    what = _matched(rule, expected, statement)
    if what is None:
        return []
    return [Match(rule.name, what[0], f"entry {item.index}: {describe(statement)}{what[1]}")]


def _matched(rule: WatchRule, expected: frozenset[bytes] | None, statement: Statement) -> tuple[str, str] | None:
    """What the rule matches in the statement, and the end of its summary; None for most entries of a log, so
    the summary is written only for a match (the monitor asks this of every entry)."""
    if rule.registry:
        if statement.kind == ISSUER_ADD:
            return ISSUER_ADDED, f" (label {statement.ref!r}): a new issuer key"
        if statement.kind == ISSUER_RETIRE:
            return ISSUER_RETIRED, ": an issuer key was retired"
        if statement.kind == REVOKE and rule.revocations:
            return REVOCATION, ": a revocation"
        return None
    if statement.kind in (ISSUER_ADD, ISSUER_RETIRE):
        if statement.issuer is not None and rule.watches_key(statement.issuer):
            what = ISSUER_ADDED if statement.kind == ISSUER_ADD else ISSUER_RETIRED
            return what, f": a watched key was {what.split('-')[1]}"
        return None
    if not rule.watches_key(statement.signer) or statement.document is None:
        return None
    unexpected = expected is None or statement.document not in expected
    if statement.kind == REVOKE and rule.revocations:
        note = "not in the expected documents" if unexpected else "an expected document"
        return REVOCATION, f": a revocation by a watched key ({note})"
    if unexpected and statement.kind in (ISSUE, REVOKE):
        why = "no expected documents are configured" if expected is None else "not in the expected documents"
        return UNEXPECTED, f": signed by a watched key, {why}"
    return None


def match_all(
    rules: Sequence[WatchRule], expected: Mapping[str, frozenset[bytes] | None], origin: str, item: Checked
) -> list[Match]:
    """Every rule's matches for one audited entry of log `origin`."""
    return [m for rule in rules if rule.applies_to(origin) for m in match_rule(rule, expected.get(rule.name), item)]


def match_chunk(
    rules: Sequence[WatchRule], expected: Mapping[str, frozenset[bytes] | None], origin: str, items: Sequence[Checked]
) -> dict[int, list[Match]]:
    """`match_all` for a chunk of audited entries of log `origin`: their matches by entry index, entries that
    nothing matched left out. The same matches in the same order; the rules' loop is outside the entries' loop and
    no list is made for the many entries nothing matches (the monitor asks this of every entry it audits)."""
    found: dict[int, list[Match]] = {}
    for rule in rules:
        if not rule.applies_to(origin):
            continue
        listed = expected.get(rule.name)
        for item in items:
            if item.statement is not None and item.problem is None:
                what = _matched(rule, listed, item.statement)
                if what is not None:
                    summary = f"entry {item.index}: {describe(item.statement)}{what[1]}"
                    found.setdefault(item.index, []).append(Match(rule.name, what[0], summary))
    return found
