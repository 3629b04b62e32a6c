"""Documents issued and revoked per issuer key and per day, for the HTML report's charts over time (issue 21).

The state's `issuer_counts` keeps totals only. This module keeps its own table beside it, `issuer_days`, filled in
the same transaction as each audited chunk (`State.commit_chunk` adds `statements`), so a restart never counts a
day twice or loses one. The day is the statement's own time (UTC), what the issuer signed as its date; a monitor
that starts at the end of a log (--start-at-end) has days only from there on.
"""

import datetime
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tlogcore.statement import ISSUE, REVOKE, Statement

SCHEMA = """
CREATE TABLE IF NOT EXISTS issuer_days (origin TEXT NOT NULL, signer TEXT NOT NULL, day TEXT NOT NULL,
                                        issued INTEGER NOT NULL, revoked INTEGER NOT NULL,
                                        PRIMARY KEY (origin, signer, day));
"""

Days = Mapping[tuple[str, str], tuple[int, int]]  # (signer vkey, "YYYY-MM-DD") -> (issued, revoked)


def utc_day(unix_seconds: int) -> str:
    return datetime.datetime.fromtimestamp(unix_seconds, datetime.UTC).strftime("%Y-%m-%d")


def count_days(statements: Iterable[Statement]) -> dict[tuple[str, str], tuple[int, int]]:
    """Issue and revoke statements (already checked) counted per signer and day."""
    days: dict[tuple[str, str], tuple[int, int]] = {}
    names: dict[int, str] = {}  # POSIX day number -> "YYYY-MM-DD": one strftime per day, not one per statement
    for s in statements:
        if s.kind in (ISSUE, REVOKE):
            name = names.get(s.time // 86_400)  # POSIX time has no leap seconds: a UTC day is 86,400 of them
            if name is None:
                name = names[s.time // 86_400] = utc_day(s.time)
            key = (s.signer, name)
            issued, revoked = days.get(key, (0, 0))
            days[key] = (issued + 1, revoked) if s.kind == ISSUE else (issued, revoked + 1)
    return days


def statements(origin: str, days: Days) -> list[tuple[str, Sequence[Any]]]:
    """The upserts that add `days` to the table, for the chunk's transaction."""
    return [
        (
            "INSERT INTO issuer_days (origin, signer, day, issued, revoked) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT DO UPDATE SET issued = issued + excluded.issued, revoked = revoked + excluded.revoked",
            (origin, signer, day, issued, revoked),
        )
        for (signer, day), (issued, revoked) in sorted(days.items())
    ]


def per_day(db: sqlite3.Connection, origin: str) -> dict[str, list[tuple[str, int, int]]]:
    """signer vkey -> [(day, issued, revoked)], oldest day first."""
    out: dict[str, list[tuple[str, int, int]]] = {}
    rows = db.execute(
        "SELECT signer, day, issued, revoked FROM issuer_days WHERE origin = ? ORDER BY signer, day", (origin,)
    )
    for signer, day, issued, revoked in rows:
        out.setdefault(signer, []).append((day, issued, revoked))
    return out
