"""`tlog-monitor check-status`: a status proof someone was shown, checked against the index this monitor recomputed
from the entries it audited (docs/status-proofs.md §9 "Monitor").

The file is a log's answer to `GET /api/v1/documents/<sha256>` (what the page and `tlog verify` were given). If its
proof verifies against an `index-root` signed by the log's registry key, the log stands behind it; if it then says
something else than the monitor's own index (records only grow with the entry index, so the monitor's record cut
below the proof's size is what the proof must show, whole: an entry at or past that size, which no index over those
entries can list, is a lie too), the log signed a lie: an alert with the evidence is stored
(and sent by the running monitor), exit 3. Consistent: exit 0. Not audited that far yet: exit 2. A file that proves
nothing (malformed, unsigned, not verifying): one line, exit 1.

Under a `tlog-index-root/v2` statement the answer also carries key proofs (`index.keys`, §12): each signer key's
record in the key index, proven against the statement's `keys` root. One that verifies must equal the monitor's own
record of that key (its issuer-add and issuer-retire entries below the size, keyaudit.py), whole; otherwise the
log signed a lie about a registration or a stolen-key report: an alert of its own, exit 3. A key proof that does
not verify proves nothing and is named in the line; a monitor whose file keeps no complete key index (one from
before it, not rebuilt yet) says the keys were not checked.
"""

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from logserver import api
from monitor import alerts as A
from monitor.keyaudit import audited_key_records, record_json
from monitor.state import State
from monitor.statusaudit import RULE_STATUS_INDEX, StatusAudit
from tlogcore.errors import TlogError
from tlogcore.indexroot import IndexRoot, parse_index_root
from tlogcore.keystatus import verify_key_status
from tlogcore.statusindex import verify_status
from tlogcore.statusrecord import StatusRecord, parse_record

CONSISTENT, PROVES_NOTHING, NOT_AUDITED, CONTRADICTS = 0, 1, 2, 3


@dataclass(frozen=True)
class Checked:
    code: int
    line: str


def _cut(record: StatusRecord | None, size: int | None) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The record's (issued, revoked) entries below `size` (None: all of them)."""
    if record is None:
        return (), ()
    end = size if size is not None else 1 << 63
    return tuple(i for i in record.issued if i < end), tuple(i for i in record.revoked if i < end)


Found = tuple[str, str, dict[str, Any]]  # a contradiction: its alert's key, summary and evidence


def check_status_file(path: Path, state: State, state_path: Path, now: float) -> Checked:
    try:
        answer = api.DocumentHistory.from_json(orjson.loads(path.read_bytes()))
    except (OSError, orjson.JSONDecodeError, TlogError) as exc:
        return Checked(PROVES_NOTHING, f"{path}: not a document lookup answer ({exc}); save the log's JSON answer")
    served = answer.index
    if served is None:
        return Checked(PROVES_NOTHING, f"{path}: the answer carries no status proof, so it proves nothing")
    try:
        statement = parse_index_root(served.index_root.statement)
        record = parse_record(served.record) if served.record is not None else None
        verify_status(answer.document, record, served.proof, statement.root)
    except TlogError as exc:
        return Checked(PROVES_NOTHING, f"{path}: the status proof does not verify ({exc}), so it proves nothing")
    row = state.log(statement.origin)
    if row is None or statement.signer not in row.registry_vkeys:
        return Checked(PROVES_NOTHING, f"{path}: not signed by the registry key of a log this monitor audits")
    audit = StatusAudit(state_path, statement.origin)
    try:
        own, size = audit.record(answer.document)
        keys = audited_key_records(audit.db, statement.origin, statement.size) if served.keys else None
    finally:
        audit.close()
    if size is None or size < statement.size:
        return Checked(NOT_AUDITED, f"{path}: this monitor has not audited entries up to {statement.size} yet")
    found: list[Found] = []
    shown, computed = _cut(record, None), _cut(own, statement.size)
    if shown != computed:
        found.append(_document_found(answer, served, statement, shown, computed))
    key_found, note = _check_keys(served, statement, keys)
    found += key_found
    if not found:
        line = f"{path}: consistent with the {statement.size} entries this monitor audited{note}"
        return Checked(CONSISTENT, line)
    alerts = [A.Alert(RULE_STATUS_INDEX, A.MISBEHAVIOUR, statement.origin, key, summary, int(now), evidence)
              for key, summary, evidence in found]  # fmt: skip
    state.add_alerts(alerts)
    summaries = "; ".join(summary for _, summary, _ in found)
    return Checked(CONTRADICTS, f"{path}: CONTRADICTS the log's entries: {summaries} (alert stored)")


def _document_found(
    answer: api.DocumentHistory,
    served: api.StatusIndexProof,
    statement: IndexRoot,
    shown: tuple[tuple[int, ...], tuple[int, ...]],
    computed: tuple[tuple[int, ...], tuple[int, ...]],
) -> Found:
    evidence: dict[str, Any] = {
        "document": answer.document.hex(),
        "index_root_entry": served.index_root.index,
        "index_root": base64.b64encode(served.index_root.statement).decode(),
        "proof": base64.b64encode(served.proof).decode(),
        "shown": {"issued": list(shown[0]), "revoked": list(shown[1])},
        "computed": {"issued": list(computed[0]), "revoked": list(computed[1])},
    }
    summary = f"a status proof signed by the log says document {answer.document.hex()[:16]}… has entries {shown}, "
    summary += f"but entries 0-{statement.size - 1} hold {computed}"
    return f"status proof {answer.document.hex()} {statement.size}", summary, evidence


def _check_keys(
    served: api.StatusIndexProof, statement: IndexRoot, own: dict[str, StatusRecord] | None
) -> tuple[list[Found], str]:
    """The served key proofs (§12) that verify against the statement's `keys` root, each compared with the monitor's
    record of that key below the size: the contradictions, and a note for the line (what was not checked)."""
    if not served.keys:
        return [], ""
    if statement.keys is None:
        return [], "; its key proofs prove nothing (a v1 index-root states no key index)"
    if own is None:
        return [], "; its key proofs were not checked (this monitor's key index is being rebuilt)"
    found: list[Found] = []
    unproven = []
    for item in served.keys:
        try:
            record = parse_record(item.record) if item.record is not None else None
            verify_key_status(item.key, record, item.proof, statement.keys)
        except TlogError:
            unproven.append(item.key.split("+")[0])
            continue
        shown, computed = _cut(record, None), _cut(own.get(item.key), None)
        if shown == computed:
            continue
        evidence: dict[str, Any] = {
            "key": item.key,
            "index_root_entry": served.index_root.index,
            "index_root": base64.b64encode(served.index_root.statement).decode(),
            "record": base64.b64encode(item.record).decode() if item.record is not None else None,
            "proof": base64.b64encode(item.proof).decode(),
            "shown": record_json(record),
            "computed": record_json(own.get(item.key)),
        }
        summary = f"a key proof signed by the log says key {item.key.split('+')[0]} was added in entries "
        summary += f"{list(shown[0])} and retired in {list(shown[1])}, but entries 0-{statement.size - 1} add it in "
        summary += f"{list(computed[0])} and retire it in {list(computed[1])}"
        found.append((f"key proof {item.key} {statement.size}", summary, evidence))
    note = f"; the key proofs of {', '.join(unproven)} do not verify and prove nothing" if unproven else ""
    return found, f", its {len(served.keys) - len(unproven)} key proofs too{note}"
