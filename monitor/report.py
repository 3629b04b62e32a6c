"""`tlog-monitor report`: per log, the last verified checkpoint, issuer keys with their history and counts,
revocations, and the alerts raised. Built from the state alone (no network)."""

import base64
from collections import Counter
from collections.abc import Callable
from typing import Any

from monitor.state import State


def log_report(state: State, origin: str, indexed: Callable[[str], int] | None = None) -> dict[str, Any]:
    """`indexed`: how many entries the monitor's status index covers, per origin (None: the monitor keeps none,
    as with `verify = "tree"`)."""
    row = state.log(origin)
    if row is None:
        return {"origin": origin, "verified": None, "note": "not followed yet"}
    counts = state.issuer_counts(origin)
    counters = state.counters(origin)
    issuers = []
    for key in sorted(row.registry.keys.values(), key=lambda k: k.added_index):
        issued, revoked = counts.get(key.vkey, (0, 0))
        issuers.append(
            {
                "name": key.vkey.split("+", 1)[0],
                "vkey": key.vkey,
                "label": key.label,
                "active": key.active,
                "added": {"index": key.added_index, "time": key.added_time},
                "retired": None
                if key.active
                else {"index": key.retired_index, "time": key.retired_time, "reason": key.retire_reason},
                "issued": issued,
                "revoked": revoked,
            }
        )
    alerts = state.alerts(origin)
    verified = row.verified
    return {
        "origin": origin,
        "verified": None
        if verified is None
        else {
            "size": verified.size,
            "root": base64.b64encode(verified.root).decode(),
            "checkpoint": verified.note.decode("utf-8", "replace"),
        },
        "target_size": row.target.size if row.target else None,
        "next_index": row.next_index,
        "audited_from": row.audited_from,
        "entries_audited": counters.get("entries", 0),
        "bad_entries": counters.get("bad_entries", 0),
        "registry_keys": list(row.registry_vkeys),
        "issuers": issuers,
        "revocations": sum(r for _, r in counts.values()),
        # The recomputed status index (statusaudit.py): None when not kept (tree mode, or --start-at-end).
        "status_index": None if indexed is None or row.audited_from else {"size": indexed(origin)},
        "alerts": dict(sorted(Counter(a["rule"] for a in alerts).items())),
    }


def report(state: State, origins: list[str], indexed: Callable[[str], int] | None = None) -> dict[str, Any]:
    return {"logs": [log_report(state, origin, indexed) for origin in origins]}


def render_text(data: dict[str, Any]) -> str:
    lines = []
    for item in data["logs"]:
        lines.append(f"log {item['origin']}")
        verified = item.get("verified")
        if verified is None:
            lines.append("  no verified checkpoint yet")
            if "next_index" not in item:
                continue
        else:
            lines.append(f"  last verified checkpoint: size {verified['size']:,}, root {verified['root']}")
        if item.get("target_size") is not None:
            lines.append(f"  auditing towards size {item['target_size']:,}: next entry {item['next_index']:,}")
        if item["audited_from"]:
            lines.append(f"  history before entry {item['audited_from']:,} not audited (--start-at-end)")
        lines.append(
            f"  entries audited: {item['entries_audited']:,}; the log should have refused: "
            f"{item['bad_entries']:,}; revocations: {item['revocations']:,}"
        )
        lines.append(status_index_line(item))
        lines.append(f"  issuer keys ({len(item['issuers'])}):")
        for key in item["issuers"]:
            state = "active" if key["active"] else f"retired at entry {key['retired']['index']:,}"
            label = f" ({key['label']})" if key["label"] else ""
            lines.append(
                f"    {key['name']}{label}: added at entry {key['added']['index']:,}, {state}; "
                f"issued {key['issued']:,}, revoked {key['revoked']:,}"
            )
            lines.append(f"      {key['vkey']}")
        alerts = ", ".join(f"{rule} {count}" for rule, count in item["alerts"].items()) or "none"
        lines.append(f"  alerts: {alerts}")
    return "\n".join(lines) + "\n"


def status_index_line(item: dict[str, Any]) -> str:
    """How far the monitor's recomputed status index covers the entries audited (statusaudit.py)."""
    index = item.get("status_index")
    if index is None:
        return "  status index: not recomputed (tree mode, or history not audited)"
    if index["size"] < item["next_index"]:
        return (
            f"  status index: covers {index['size']:,} of the {item['next_index']:,} entries audited (its file lost,"
            " or restored from an older backup): the next round rebuilds it from entry 0"
        )
    if not index["size"]:
        return "  status index: empty"
    return f"  status index: recomputed over entries 0-{index['size'] - 1:,}"
