"""The monitor's durable state (SQLite, WAL, synchronous=FULL): what it verified, what it must still send.

Per log: the last verified checkpoint (every entry up to its size audited), the
target checkpoint being audited (signature, quorum, root from tiles and
consistency already checked) with the next entry to audit, the issuer registry
as of that entry, pinned registry keys, and per-issuer counts. Besides: full
tiles verified before (they never change; only a download saver, since every
tile is linked to the root again), every checkpoint seen (size, root), alerts
with their delivery to each sink, and entries marked known-good.

Crash safety: alerts are inserted in the same transaction that advances the
next entry (`commit_chunk`), and sent only after that commit; a delivery is
recorded after the sink accepted it. A kill -9 at any point therefore loses no
alert (an uncommitted chunk is audited again and yields the same alert ids),
and repeats none that was recorded as delivered (ids are primary keys; sinks
see a repeat only if killed between accepting and the record, and can
deduplicate on the id; the file sink does).
"""

import json
import sqlite3
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monitor import daily
from monitor.alerts import Alert
from tlogcore.registry import IssuerKey, Registry

SCHEMA = """
CREATE TABLE IF NOT EXISTS logs (
    origin TEXT PRIMARY KEY,
    verified_size INTEGER, verified_root BLOB, verified_note BLOB, verified_at REAL,
    target_size INTEGER, target_root BLOB, target_note BLOB,
    next_index INTEGER NOT NULL,
    registry_vkeys TEXT NOT NULL,
    registry TEXT NOT NULL,
    audited_from INTEGER NOT NULL,
    last_growth_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS tiles (origin TEXT NOT NULL, path TEXT NOT NULL, body BLOB NOT NULL,
                                  PRIMARY KEY (origin, path)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoints (origin TEXT NOT NULL, size INTEGER NOT NULL, root BLOB NOT NULL,
                                        note BLOB NOT NULL, source TEXT NOT NULL, seen REAL NOT NULL,
                                        PRIMARY KEY (origin, size, root));
CREATE TABLE IF NOT EXISTS alerts (id TEXT PRIMARY KEY, origin TEXT NOT NULL, rule TEXT NOT NULL,
                                   category TEXT NOT NULL, time INTEGER NOT NULL, body TEXT NOT NULL,
                                   done INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS alerts_pending ON alerts(done) WHERE done = 0;
CREATE TABLE IF NOT EXISTS deliveries (alert_id TEXT NOT NULL, sink TEXT NOT NULL, time REAL NOT NULL,
                                       PRIMARY KEY (alert_id, sink));
CREATE TABLE IF NOT EXISTS known_good (origin TEXT NOT NULL, idx INTEGER, leaf_hash BLOB, note TEXT,
                                       added REAL NOT NULL);
CREATE TABLE IF NOT EXISTS issuer_counts (origin TEXT NOT NULL, signer TEXT NOT NULL, issued INTEGER NOT NULL,
                                          revoked INTEGER NOT NULL, PRIMARY KEY (origin, signer));
CREATE TABLE IF NOT EXISTS counters (origin TEXT NOT NULL, name TEXT NOT NULL, value INTEGER NOT NULL,
                                     PRIMARY KEY (origin, name));
"""
KEEP_CHECKPOINTS = 1000  # per log: the newest sizes seen, for "one size, two roots"


class StateError(Exception):
    """The state database cannot be opened or written."""


@dataclass(frozen=True)
class Signed:
    """A checkpoint the monitor verified: its size, root and the signed note as received."""

    size: int
    root: bytes
    note: bytes


@dataclass(frozen=True)
class AuditedChunk:
    """What auditing one chunk of entries found; `State.commit_chunk` stores it in one transaction."""

    next_index: int  # the first entry not yet audited
    registry: Registry | None = None  # as of next_index; None: not tracked (mode tree)
    issued: Mapping[str, int] = field(default_factory=dict)  # per signer vkey
    revoked: Mapping[str, int] = field(default_factory=dict)
    counters: Mapping[str, int] = field(default_factory=dict)  # added to the per-log counters
    alerts: Sequence[Alert] = ()
    tiles: Mapping[str, bytes] = field(default_factory=dict)  # authenticated full tiles worth keeping
    verified: Signed | None = None  # the target, once its last entry is audited
    days: daily.Days = field(default_factory=dict)  # issued and revoked per signer and day (monitor/daily.py)


@dataclass
class LogRow:
    origin: str
    verified: Signed | None
    target: Signed | None
    next_index: int
    registry_vkeys: tuple[str, ...]
    registry: Registry
    audited_from: int  # 0, or the size --start-at-end started from (history before it not audited)
    last_growth_at: float


def registry_to_json(registry: Registry) -> str:
    return json.dumps([vars(key) for key in registry.keys.values()], sort_keys=True)


def registry_from_json(registry_vkeys: Iterable[str], text: str) -> Registry:
    registry = Registry(frozenset(registry_vkeys))
    for item in json.loads(text):
        key = IssuerKey(**item)
        registry.keys[key.vkey] = key
    return registry


def _signed(size: int | None, root: bytes | None, note: bytes | None) -> Signed | None:
    return Signed(size, root, note) if size is not None and root is not None and note is not None else None


class State:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    @classmethod
    def open(cls, path: Path) -> "State":
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(path, isolation_level=None, timeout=10.0)
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = FULL")
            db.executescript(SCHEMA + daily.SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise StateError(f"cannot open the state database {path}: {exc}") from None
        return cls(db)

    def close(self) -> None:
        self._db.close()

    def _transaction(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> None:
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                for sql, params in statements:
                    db.execute(sql, params)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise StateError(f"state database: {exc}") from None

    # --- logs -------------------------------------------------------------------------

    def log(self, origin: str) -> LogRow | None:
        row = self._db.execute(
            "SELECT verified_size, verified_root, verified_note, target_size, target_root, target_note, next_index,"
            " registry_vkeys, registry, audited_from, last_growth_at FROM logs WHERE origin = ?",
            (origin,),
        ).fetchone()
        if row is None:
            return None
        vkeys = tuple(json.loads(row[7]))
        return LogRow(
            origin,
            _signed(*row[0:3]),
            _signed(*row[3:6]),
            row[6],
            vkeys,
            registry_from_json(vkeys, row[8]),
            row[9],
            row[10],
        )

    def origins(self) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT origin FROM logs ORDER BY origin")]

    def create_log(self, row: LogRow, now: float) -> None:
        v = row.verified
        self._transaction(
            [
                (
                    "INSERT INTO logs (origin, verified_size, verified_root, verified_note, verified_at, next_index,"
                    " registry_vkeys, registry, audited_from, last_growth_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        row.origin,
                        v.size if v else None,
                        v.root if v else None,
                        v.note if v else None,
                        now if v else None,
                        row.next_index,
                        json.dumps(list(row.registry_vkeys)),
                        registry_to_json(row.registry),
                        row.audited_from,
                        row.last_growth_at,
                    ),
                )
            ]
        )

    def set_target(self, origin: str, target: Signed, now: float) -> None:
        self._transaction(
            [
                (
                    "UPDATE logs SET target_size = ?, target_root = ?, target_note = ?, last_growth_at = ?"
                    " WHERE origin = ?",
                    (target.size, target.root, target.note, now, origin),
                )
            ]
        )

    def touch_verified(self, origin: str, now: float) -> None:
        self._transaction([("UPDATE logs SET verified_at = ? WHERE origin = ?", (now, origin))])

    def commit_chunk(self, origin: str, chunk: AuditedChunk, now: float) -> None:
        """One transaction: the audit advances to `chunk.next_index` (and to `chunk.verified`, when the target is
        done), with the registry, counts, cached tiles and alerts found on the way."""
        next_index, registry, verified = chunk.next_index, chunk.registry, chunk.verified
        issued, revoked, counters, alerts, tiles = (
            chunk.issued,
            chunk.revoked,
            chunk.counters,
            chunk.alerts,
            chunk.tiles,
        )
        statements: list[tuple[str, Sequence[Any]]] = [
            ("UPDATE logs SET next_index = ? WHERE origin = ?", (next_index, origin)),
        ]
        if registry is not None:
            statements.append(("UPDATE logs SET registry = ? WHERE origin = ?", (registry_to_json(registry), origin)))
        for signer in set(issued) | set(revoked):
            statements.append(
                (
                    "INSERT INTO issuer_counts (origin, signer, issued, revoked) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT DO UPDATE"
                    " SET issued = issued + excluded.issued, revoked = revoked + excluded.revoked",
                    (origin, signer, issued.get(signer, 0), revoked.get(signer, 0)),
                )
            )
        for name, value in counters.items():
            statements.append(
                (
                    "INSERT INTO counters (origin, name, value) VALUES (?, ?, ?) ON CONFLICT DO UPDATE"
                    " SET value = value + excluded.value",
                    (origin, name, value),
                )
            )
        statements += daily.statements(origin, chunk.days)
        statements += self._alert_inserts(alerts)
        statements += [
            ("INSERT OR IGNORE INTO tiles (origin, path, body) VALUES (?, ?, ?)", (origin, p, b))
            for p, b in tiles.items()
        ]
        if verified is not None:
            statements.append(
                (
                    "UPDATE logs SET verified_size = ?, verified_root = ?, verified_note = ?, verified_at = ?,"
                    " target_size = NULL, target_root = NULL, target_note = NULL WHERE origin = ?",
                    (verified.size, verified.root, verified.note, now, origin),
                )
            )
        self._transaction(statements)

    # --- tiles and checkpoints -----------------------------------------------------------

    def cached_tiles(self, origin: str, paths: Iterable[str]) -> dict[str, bytes]:
        out = {}
        for path in paths:
            row = self._db.execute("SELECT body FROM tiles WHERE origin = ? AND path = ?", (origin, path)).fetchone()
            if row is not None:
                out[path] = row[0]
        return out

    def forget_tile(self, origin: str, path: str) -> None:
        self._transaction([("DELETE FROM tiles WHERE origin = ? AND path = ?", (origin, path))])

    def other_root(self, origin: str, size: int, root: bytes) -> tuple[Signed, str] | None:
        """A checkpoint seen before with this size and another root, and where it came from."""
        row = self._db.execute(
            "SELECT root, note, source FROM checkpoints WHERE origin = ? AND size = ? AND root != ? LIMIT 1",
            (origin, size, root),
        ).fetchone()
        return (Signed(size, row[0], row[1]), row[2]) if row else None

    def record_checkpoint(self, origin: str, signed: Signed, source: str, now: float) -> None:
        self._transaction(
            [
                (
                    "INSERT OR IGNORE INTO checkpoints (origin, size, root, note, source, seen)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (origin, signed.size, signed.root, signed.note, source, now),
                ),
                (
                    "DELETE FROM checkpoints WHERE origin = ? AND size <"
                    " (SELECT min(size) FROM (SELECT size FROM checkpoints"
                    " WHERE origin = ? ORDER BY size DESC LIMIT ?))",
                    (origin, origin, KEEP_CHECKPOINTS),
                ),
            ]
        )

    # --- alerts ----------------------------------------------------------------------------

    @staticmethod
    def _alert_inserts(alerts: Sequence[Alert]) -> list[tuple[str, Sequence[Any]]]:
        return [
            (
                "INSERT OR IGNORE INTO alerts (id, origin, rule, category, time, body) VALUES (?, ?, ?, ?, ?, ?)",
                (a.id, a.log, a.rule, a.category, a.time, json.dumps(a.to_json(), sort_keys=True)),
            )
            for a in alerts
        ]

    def has_alert(self, alert_id: str) -> bool:
        return self._db.execute("SELECT 1 FROM alerts WHERE id = ?", (alert_id,)).fetchone() is not None

    def add_alerts(self, alerts: Sequence[Alert]) -> None:
        if alerts:
            self._transaction(self._alert_inserts(alerts))

    def pending(self, sinks: Sequence[str]) -> list[tuple[dict[str, Any], list[str]]]:
        """Alerts not yet delivered to every sink: (alert JSON, the sinks still to deliver to), oldest first."""
        out = []
        for alert_id, body in self._db.execute("SELECT id, body FROM alerts WHERE done = 0 ORDER BY rowid").fetchall():
            done = {r[0] for r in self._db.execute("SELECT sink FROM deliveries WHERE alert_id = ?", (alert_id,))}
            todo = [s for s in sinks if s not in done]
            if todo:
                out.append((json.loads(body), todo))
            else:
                self._transaction([("UPDATE alerts SET done = 1 WHERE id = ?", (alert_id,))])
        return out

    def delivered(self, alert_id: str, sink: str, now: float) -> None:
        self._transaction(
            [("INSERT OR IGNORE INTO deliveries (alert_id, sink, time) VALUES (?, ?, ?)", (alert_id, sink, now))]
        )

    def alerts(self, origin: str | None = None) -> list[dict[str, Any]]:
        rows = self._db.execute(
            "SELECT body FROM alerts WHERE ? IS NULL OR origin = ? ORDER BY rowid", (origin, origin)
        ).fetchall()
        return [json.loads(r[0]) for r in rows]

    # --- known-good entries, counts ----------------------------------------------------------

    def mark_good(self, origin: str, index: int | None, leaf_hash: bytes | None, note: str | None) -> None:
        self._transaction(
            [
                (
                    "INSERT INTO known_good (origin, idx, leaf_hash, note, added) VALUES (?, ?, ?, ?, ?)",
                    (origin, index, leaf_hash, note, time.time()),
                )
            ]
        )

    def known_good(self, origin: str) -> tuple[set[int], set[bytes]]:
        rows = self._db.execute("SELECT idx, leaf_hash FROM known_good WHERE origin = ?", (origin,)).fetchall()
        return {r[0] for r in rows if r[0] is not None}, {r[1] for r in rows if r[1] is not None}

    def issuer_counts(self, origin: str) -> dict[str, tuple[int, int]]:
        rows = self._db.execute(
            "SELECT signer, issued, revoked FROM issuer_counts WHERE origin = ? ORDER BY signer", (origin,)
        ).fetchall()
        return {r[0]: (r[1], r[2]) for r in rows}

    def issuer_days(self, origin: str) -> dict[str, list[tuple[str, int, int]]]:
        return daily.per_day(self._db, origin)

    def checkpoint_history(self, origin: str) -> list[tuple[float, int]]:
        """(when seen, size) of the verified checkpoints kept for `origin`, oldest first (for the HTML report)."""
        rows = self._db.execute(
            "SELECT seen, size FROM checkpoints WHERE origin = ? ORDER BY seen, size", (origin,)
        ).fetchall()
        return [(float(r[0]), int(r[1])) for r in rows]

    def counters(self, origin: str) -> dict[str, int]:
        rows = self._db.execute("SELECT name, value FROM counters WHERE origin = ?", (origin,)).fetchall()
        return {r[0]: r[1] for r in rows}
