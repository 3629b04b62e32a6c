"""What the pieces of a monitor round share for one log: its configuration, the shared state and clock, its client
and tile fetcher, and the two ways a round stops (NotVerified: wait; Misbehaviour: alerted, with evidence).

The round itself is `follower.Follower`; the witness comparison is `witnesscheck`, the entry audit `entryaudit`.
"""

import logging
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from logserver.client import LogClient
from monitor import alerts as A
from monitor.config import LogConfig, MonitorConfig
from monitor.expected import Watchlist
from monitor.fetch import TileFetcher
from monitor.mirror import TileSource, mirror_name
from monitor.state import State
from tlogcore.statement import Statement
from tlogcore.tileauth import TreeMismatch, TreeView
from tlogcore.tiles import Tile

log = logging.getLogger("monitor.follower")


class NotVerified(Exception):
    """The log's checkpoint cannot be trusted yet (too few cosignatures, unsigned): wait."""


class Misbehaviour(Exception):
    """The round stopped on evidence of misbehaviour (already alerted)."""


@dataclass
class Shared:
    """What every follower uses: config, state, watch rules, a clock, where statement checks run."""

    config: MonitorConfig
    state: State
    watchlist: Watchlist
    clock: Callable[[], float]
    executor: Executor | None = None  # None: in a thread of this process
    progress: Callable[[str, int, int], None] | None = None
    start_at_end: bool = False
    alerts_committed: Callable[[], None] | None = None  # told when new alerts are in the state (wakes delivery)
    status_executor: Executor | None = None  # the one process that keeps the status index (statusworker.py)


def note_text(note: bytes) -> str:
    return note.decode("utf-8", "replace")


def statement_json(statement: Statement | None) -> dict[str, Any] | None:
    if statement is None:
        return None
    return {
        "log": statement.origin,
        "kind": statement.kind,
        "signer": statement.signer,
        "time": statement.time,
        "document": statement.document.hex() if statement.document is not None else None,
        "issuer": statement.issuer,
        "ref": statement.ref,
        "reason": statement.reason,
    }


class LogContext:
    """One log, as every step of a round sees it."""

    def __init__(self, log_config: LogConfig, shared: Shared, client: LogClient, raw: TileSource | None = None) -> None:
        self.log_config, self.shared, self.client = log_config, shared, client
        concurrent = shared.config.max_concurrent_requests
        self.mirror = mirror_name(log_config.tiles_url, log_config.tiles_dir) if raw is not None else None
        self.fetcher = TileFetcher(client, shared.state, log_config.origin, concurrent, raw, self.mirror)

    @property
    def origin(self) -> str:
        return self.log_config.origin

    @property
    def state(self) -> State:
        return self.shared.state

    def now(self) -> float:
        return self.shared.clock()

    def alert(self, rule: str, category: str, key: str, summary: str, evidence: dict[str, Any]) -> A.Alert:
        return A.Alert(rule, category, self.origin, key, summary, int(self.now()), evidence)

    def misbehaviour(self, rule: str, key: str, summary: str, evidence: dict[str, Any]) -> Misbehaviour:
        """Record the alert (once) and return the exception that stops the round."""
        alert = self.alert(rule, A.MISBEHAVIOUR, key, summary, evidence)
        if not self.state.has_alert(alert.id):
            log.error("%s: %s: %s", self.origin, rule, summary)
        self.state.add_alerts([alert])
        return Misbehaviour(summary)

    def mismatch(self, exc: TreeMismatch, note: bytes) -> Misbehaviour:
        """Served tiles that do not match the log's own signed checkpoint (served by the log, or by its mirror:
        the evidence names which; either way the bodies re-check against the checkpoint by themselves)."""
        evidence = {**exc.evidence, "checkpoint": note_text(note)}
        if self.mirror is not None:
            evidence["tiles_from"] = self.mirror
        return self.misbehaviour(exc.rule, exc.key, str(exc), evidence)

    async def checked_view(self, view: TreeView, tiles: Iterable[Tile], note: bytes) -> None:
        """`TileFetcher.authenticate`, turning a mismatch into a misbehaviour alert."""
        try:
            await self.fetcher.authenticate(view, tiles)
        except TreeMismatch as exc:
            raise self.mismatch(exc, note) from None
