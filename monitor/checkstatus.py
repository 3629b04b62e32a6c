"""`tlog-monitor check-status`: a status proof someone was shown, checked against the index this monitor recomputed
from the entries it audited (docs/status-proofs.md §9 "Monitor").

The file is a log's answer to `GET /api/v1/documents/<sha256>` (what the page and `tlog verify` were given). If its
proof verifies against an `index-root` signed by the log's registry key, the log stands behind it; if it then says
something else than the monitor's own index (records only grow with the entry index, so the monitor's record cut
below the proof's size is what the proof must show, whole: an entry at or past that size, which no index over those
entries can list, is a lie too), the log signed a lie: an alert with the evidence is stored
(and sent by the running monitor), exit 3. Consistent: exit 0. Not audited that far yet: exit 2. A file that proves
nothing (malformed, unsigned, not verifying): one line, exit 1.
"""

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from logserver import api
from monitor import alerts as A
from monitor.state import State
from monitor.statusaudit import RULE_STATUS_INDEX, StatusAudit
from tlogcore.errors import TlogError
from tlogcore.indexroot import parse_index_root
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
    finally:
        audit.close()
    if size is None or size < statement.size:
        return Checked(NOT_AUDITED, f"{path}: this monitor has not audited entries up to {statement.size} yet")
    shown, computed = _cut(record, None), _cut(own, statement.size)
    if shown == computed:
        return Checked(CONSISTENT, f"{path}: consistent with the {statement.size} entries this monitor audited")
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
    key = f"status proof {answer.document.hex()} {statement.size}"
    state.add_alerts([A.Alert(RULE_STATUS_INDEX, A.MISBEHAVIOUR, statement.origin, key, summary, int(now), evidence)])
    return Checked(CONTRADICTS, f"{path}: CONTRADICTS the log's entries: {summary} (alert stored)")
