"""The monitor's own key index (docs/status-proofs.md §12): the root each `tlog-index-root/v2` entry states as
`keys`, recomputed from the registry statements the monitor audited, and the records `check-status` compares a
served key proof with.

What it holds is what the log's key index holds (tlogcore/keystatus.py): for each issuer key, the entries whose
statement is an `issuer-add` naming it (`issuer K`) and those that are an `issuer-retire` naming it, below the
root's size N, whoever signed them (as the status index takes every `issue` and `revoke`: a statement the checks
refuse is a `log-bad-entry` alert of its own). A v1 statement states no key index: nothing to check.

Kept: the (entry, kind, key) of every registry statement, in the status index's file (table `keys`,
statusfile.py), written in the same transaction as the head that moves past their entries (statusaudit.py
`_commit`), so a crash or a restart loses none and keeps none twice: the next root is checked from the file. Not
re-read from the log: registries are small (one row per registration and retirement), so the rows cost nothing,
while reading them again would mean fetching and authenticating entries scattered over the whole log each round.
A file from before the key index did not keep them: its head says `keys_from` > 0 and the file is rebuilt from
entry 0 (statusaudit.py "Rebuilt"); until then no v2 root is checked against it.

Cost: a v2 root's check builds the key map of the statements below N (about n log2 n hashes for n keys), once per
distinct set: roots whose sizes hold the same registry statements share the root computed for the first.
"""

import base64
import sqlite3
from bisect import bisect_left
from collections.abc import Sequence
from typing import Any, Protocol

from tlogcore.errors import TlogError
from tlogcore.indexroot import IndexRoot
from tlogcore.keystatus import KeyMap, RegistryItem, key_records
from tlogcore.statement import ISSUER_ADD, ISSUER_RETIRE
from tlogcore.statusrecord import StatusRecord

_KINDS = (ISSUER_ADD, ISSUER_RETIRE)
EXPLAIN = 64  # a mismatch: the latest registry statements tried one by one as the one the log left out
KEPT_ROOTS = 64  # key index roots remembered, by the number of registry statements below the size


class KeyHead(Protocol):
    """What the key index needs of the status index's head (statusaudit.py `_Head`)."""

    keys_from: int  # registry statements of entries [0, keys_from) were not kept (a file from before: rebuilt)
    keys_checked: int  # v2 roots whose key index root was checked
    keys_size: int | None  # the largest size whose logged key index root was the monitor's


def append_keys(db: sqlite3.Connection, origin: str, items: Sequence[RegistryItem]) -> None:
    """Keep these registry statements (inside the caller's transaction)."""
    db.executemany(
        "INSERT OR REPLACE INTO keys (origin, idx, kind, vkey) VALUES (?, ?, ?, ?)",
        [(origin, index, _KINDS.index(kind), vkey) for index, kind, vkey in items],
    )


def read_keys(db: sqlite3.Connection, origin: str, below: int | None = None) -> list[RegistryItem]:
    """The kept registry statements (of entries below `below`), in log order."""
    rows = db.execute(
        "SELECT idx, kind, vkey FROM keys WHERE origin = ? AND idx < ? ORDER BY idx",
        (origin, (1 << 63) - 1 if below is None else below),
    )
    return [(int(index), _KINDS[kind], str(vkey)) for index, kind, vkey in rows]


def record_json(record: StatusRecord | None) -> dict[str, list[int]]:
    if record is None:
        return {"added": [], "retired": []}
    return {"added": list(record.issued), "retired": list(record.revoked)}


def audited_key_records(db: sqlite3.Connection, origin: str, size: int) -> dict[str, StatusRecord] | None:
    """The key records of entries [0, size) as this monitor audited them (check-status; the file is only read):
    None when it has not audited that far, or keeps no complete key index (a file from before it)."""
    db.execute("BEGIN")
    try:
        head = db.execute("SELECT size, keys_from FROM head WHERE origin = ?", (origin,)).fetchone()
        if head is None or head[0] < size or head[1]:
            return None
        return key_records(read_keys(db, origin, size))
    finally:
        db.execute("COMMIT")


class KeyLedger:
    """The registry statements of entries [0, head.size), as the file keeps them, in memory while a round lasts
    (loaded at the first v2 root; `committed` after each commit, never ahead of the file)."""

    def __init__(self, db: sqlite3.Connection, origin: str) -> None:
        self.items = read_keys(db, origin)
        self._roots: dict[int, bytes] = {}

    def committed(self, items: Sequence[RegistryItem]) -> None:
        self.items += items

    def _below(self, size: int, pending: Sequence[RegistryItem]) -> list[RegistryItem]:
        """The statements of entries [0, size): the kept ones, then those of the commit being made."""
        every = self.items + [item for item in pending if item[0] < size]
        return every[: bisect_left([index for index, _, _ in every], size)]

    def root(self, items: Sequence[RegistryItem]) -> bytes:
        """The key index root over `items` (a prefix of the log's registry statements: their count names it)."""
        found = self._roots.get(len(items))
        if found is None:
            if len(self._roots) >= KEPT_ROOTS:
                self._roots.clear()
            found = self._roots[len(items)] = KeyMap(key_records(items)).root
        return found

    def check(
        self, head: KeyHead, statement: IndexRoot, pending: Sequence[RegistryItem], index: int
    ) -> tuple[str, dict[str, Any]] | None:
        """A v2 root at entry `index`: None when its key index root is the monitor's (or it states none, or the
        file keeps no complete key index); else the finding's summary and evidence (§12)."""
        if statement.keys is None or head.keys_from:
            return None
        size = statement.size
        items = self._below(size, pending)
        head.keys_checked += 1
        try:
            root = self.root(items)
        except TlogError as exc:  # a key named by more entries than a record holds: no key index has them all
            summary = f"entry {index}: the log states a key index root for entries 0-{size - 1}, whose registry "
            return summary + f"entries no key index can hold ({exc})", {"entries": [0, size]}
        if root == statement.keys:
            head.keys_size = max(head.keys_size or 0, size)
            return None
        evidence: dict[str, Any] = {
            "logged_keys_root": _b64(statement.keys),
            "monitor_keys_root": _b64(root),
            "entries": [0, size],
            "registry_entries": [item[0] for item in items],
        }
        summary = f"entry {index}: the log's key index root for entries 0-{size - 1} is not the one the monitor "
        summary += "computes from the issuer-add and issuer-retire entries among them: its proofs of which keys were "
        summary += "added and retired (stolen-key reports) cannot be trusted"
        latest = items[-EXPLAIN:]  # an old retirement may be the one left out: not only those since the last root
        left_out = next((item for item in reversed(latest) if self._without(items, item) == statement.keys), None)
        if left_out is not None:
            evidence["left_out"] = {"index": left_out[0], "kind": left_out[1], "key": left_out[2]}
            summary += f" (the log's root is the monitor's without entry {left_out[0]}, the {left_out[1]} of "
            summary += f"{left_out[2].split('+')[0]})"
        records = key_records(items)
        named = list(dict.fromkeys(vkey for _, _, vkey in reversed(latest)))
        evidence["key_records"] = {vkey: record_json(records.get(vkey)) for vkey in named}
        return summary, evidence

    @staticmethod
    def _without(items: Sequence[RegistryItem], left_out: RegistryItem) -> bytes:
        return KeyMap(key_records(item for item in items if item != left_out)).root


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
