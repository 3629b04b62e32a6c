"""Following one log: fetch its checkpoint, check it against what was verified and what witnesses hold,
authenticate the new entries through tiles, audit them, alert, commit. One `poll` is one round.

A round, in order (nothing is trusted before the step that checks it):

1. GET /checkpoint; the log signature and the witness quorum under the policy.
   A failing log signature is misbehaviour; too few cosignatures is waiting.
2. Against the checkpoints verified before: smaller = rollback, same size and
   another root = fork (both signed: the evidence is the two notes).
3. Against each witness's latest cosigned checkpoint: a split view (splitview).
4. A new target: the right-edge tiles must hash to its root, and the old
   verified root must be computable from its tiles (consistency, from tiles).
   Only then is the target saved.
5. Entries from the next index to the target's size, a chunk of level-0 tiles
   at a time: each tile linked to the root, each bundle to its tile; then the
   statement checks, the registry, the watch rules; one commit per chunk
   (state.py says why that loses and repeats no alert). The last chunk makes
   the target the verified checkpoint.

Steps 1, 2 and 4 are here; step 3 is witnesscheck.py, step 5 entryaudit.py; what they share, logcontext.py.
Any mismatch stops the round with an alert; the state does not move past it.
Network failures stop the round too, without an alert (see `run`: a log that
stays unreachable or stops growing past a threshold gets one).
"""

import asyncio
import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from logserver.client import LogClient, LogClientError
from monitor import alerts as A
from monitor.availability import Vouched, availability_alerts
from monitor.config import LogConfig
from monitor.entryaudit import EntryAudit
from monitor.fetch import Unavailable
from monitor.logcontext import LogContext, Misbehaviour, NotVerified, Shared, note_text
from monitor.logkeys import check_log_keys
from monitor.mirror import TileSource
from monitor.state import LogRow, Signed, StateError
from monitor.witnesscheck import WitnessCheck
from tlogcore import merkle
from tlogcore.errors import MalformedError, NotAllowedError, SignatureError, TlogError, UnverifiedError
from tlogcore.freshness import vouched_at
from tlogcore.registry import Registry
from tlogcore.statement import parse_statement, parse_statement_key
from tlogcore.tileauth import TreeMismatch, TreeView, b64, bundle_of
from tlogcore.tiles import TILE_WIDTH, tile_at
from witness.client import WitnessClient

log = logging.getLogger("monitor.follower")


@dataclass
class Follower:
    log_config: LogConfig
    shared: Shared
    client: LogClient
    witnesses: dict[str, WitnessClient] = field(default_factory=dict)
    raw_tiles: TileSource | None = None  # tiles without httpx: an http:// log (transport.py) or a mirror (mirror.py)
    _view: TreeView | None = None  # the target's authenticated tiles, kept between poll and audit
    failing_since: float | None = None
    last_error: str | None = None
    vouched: Vouched | None = None  # the newest checkpoint fetched, and when its quorum last vouched for it

    def __post_init__(self) -> None:
        self.context = LogContext(self.log_config, self.shared, self.client, self.raw_tiles)
        self.witness_check = WitnessCheck(self.context, self.witnesses, self.check_fork)
        self.entry_audit = EntryAudit(self.context)

    @property
    def origin(self) -> str:
        return self.log_config.origin

    def now(self) -> float:
        return self.shared.clock()

    def availability_alerts(self, now: float) -> list[A.Alert]:
        return availability_alerts(self.context, self.failing_since, self.last_error, now, self.vouched)

    # --- the round -------------------------------------------------------------------------------

    async def poll(self) -> None:
        """One round; raises Unavailable, NotVerified or Misbehaviour when it stops early."""
        try:
            note = await self.client.checkpoint()
        except LogClientError as exc:
            raise Unavailable(str(exc)) from None
        signed = self._verify(note)
        row = await self._row(signed)
        latest = row.target or row.verified
        if latest is not None and signed.size < latest.size:
            raise self.context.misbehaviour(
                A.RULE_ROLLBACK,
                f"rollback {latest.size} {signed.size} {signed.root.hex()}",
                f"the log's checkpoint has size {signed.size}, smaller than the verified size {latest.size}",
                {"checkpoint": note_text(signed.note), "verified_checkpoint": note_text(latest.note)},
            )
        self.check_fork(signed, "log")
        new_target = row.target is None and (row.verified is None or signed.size > row.verified.size)
        view = await self._open(signed, row.verified) if new_target else None
        await self.witness_check.run(signed, view)
        await check_log_keys(self.context, self.client, signed)  # a key the log's rotation retired: logkeys.py
        self.context.state.record_checkpoint(self.origin, signed, "log", self.now())
        if new_target:
            self._view = view
            self.context.state.set_target(self.origin, signed, self.now())
            row.target = signed
            log.info(
                "%s: new checkpoint of size %d (verified %d)",
                self.origin,
                signed.size,
                row.verified.size if row.verified else 0,
            )
        if row.target is not None:
            if self._view is None or (self._view.size, self._view.root) != (row.target.size, row.target.root):
                self._view = await self._open(row.target, row.verified)
            await self.entry_audit.run(row, row.target, self._view)
            self._view = None
            return
        if row.verified is not None and self.entry_audit.index_lost(row):  # rebuilt now, not when the log grows
            await self.entry_audit.run(row, row.verified, await self._open(row.verified, None))
        self.context.state.touch_verified(self.origin, self.now())

    def _verify(self, note: bytes) -> Signed:
        policy = self.log_config.policy
        try:
            trusted = policy.verify_checkpoint(note, now=self.now())
        except SignatureError as exc:
            raise self.context.misbehaviour(
                A.RULE_SIGNATURE,
                f"signature {hashlib.sha256(note).hexdigest()}",
                f"the log's checkpoint carries a signature that does not verify: {exc}",
                {"checkpoint": note_text(note)},
            ) from None
        except (UnverifiedError, MalformedError) as exc:
            raise NotVerified(f"checkpoint not trusted: {exc}") from None
        checkpoint = trusted.checkpoint
        if checkpoint.origin != self.origin:
            raise NotVerified(f"the log served a checkpoint of {checkpoint.origin!r}, not {self.origin!r}")
        since = (
            self.vouched.unvouched_since if self.vouched is not None and self.vouched.size == checkpoint.size else None
        )
        self.vouched = Vouched(checkpoint.size, note, vouched_at(policy, trusted), since)  # an episode spans polls
        return Signed(checkpoint.size, checkpoint.root, note)

    def check_fork(self, signed: Signed, source: str) -> None:
        other = self.context.state.other_root(self.origin, signed.size, signed.root)
        if other is not None:
            seen, seen_source = other
            rule = A.RULE_FORK if source == seen_source == "log" else A.RULE_SPLIT_VIEW
            roots = sorted([signed.root.hex(), seen.root.hex()])
            raise self.context.misbehaviour(
                rule,
                f"size {signed.size} {' '.join(roots)}",
                f"two signed checkpoints of size {signed.size} with different roots ({source} and {seen_source})",
                {
                    "checkpoint": note_text(signed.note),
                    "source": source,
                    "other_checkpoint": note_text(seen.note),
                    "other_source": seen_source,
                },
            )

    async def _row(self, signed: Signed) -> LogRow:
        row = self.context.state.log(self.origin)
        if row is None:
            row = await self._first_contact(signed)
        if self.log_config.registry_vkeys is not None:
            row.registry.registry_keys = frozenset(self.log_config.registry_vkeys)
        return row

    async def _first_contact(self, signed: Signed) -> LogRow:
        vkeys = self.log_config.registry_vkeys
        if vkeys is None:
            try:
                vkeys = (await self.client.info()).registry_vkeys
                for vkey in vkeys:
                    parse_statement_key(vkey, "registry key")
            except (LogClientError, TlogError) as exc:
                raise Unavailable(f"cannot learn the log's registry keys: {exc}") from None
            log.info("%s: pinned the registry keys the log names: %s", self.origin, ", ".join(vkeys))
        now = self.now()
        if not self.shared.start_at_end:
            row = LogRow(self.origin, None, None, 0, vkeys, Registry(frozenset(vkeys)), 0, now)
        else:
            self.check_fork(signed, "log")
            view = await self._open(signed, None)
            await self.witness_check.run(signed, view)
            registry = await self._registry_from_index(view, signed, vkeys)
            row = LogRow(self.origin, signed, None, signed.size, vkeys, registry, signed.size, now)
            self.context.state.record_checkpoint(self.origin, signed, "log", now)
            log.info(
                "%s: starting at the end, size %d; %d issuer keys from the log's registry index",
                self.origin,
                signed.size,
                len(registry.keys),
            )
        self.context.state.create_log(row, now)
        return row

    async def _registry_from_index(self, view: TreeView, signed: Signed, vkeys: Sequence[str]) -> Registry:
        """--start-at-end: the registry entries the log lists, each authenticated and replayed in order.
        (Completeness rests on the log's index: the history before the start is not audited.)"""
        try:
            indexes = (await self.client.issuers()).registry_indexes()
        except LogClientError as exc:
            raise Unavailable(f"cannot read the log's registry index: {exc}") from None
        indexes = [i for i in indexes if i < signed.size]
        entries: dict[int, bytes] = {}
        for index in indexes:
            tile = tile_at(0, index // TILE_WIDTH, signed.size)
            await self.context.checked_view(view, [tile], signed.note)
            bundle = await self.context.fetcher.get(bundle_of(tile))
            try:
                entries[index] = view.entries(tile, bundle)[index % TILE_WIDTH]
            except TreeMismatch as exc:
                raise self.context.mismatch(exc, signed.note) from None
        registry = Registry(frozenset(vkeys))
        for index in indexes:
            try:
                registry.apply(parse_statement(entries[index]), index)
            except (TlogError, NotAllowedError) as exc:
                log.warning("%s: registry entry %d not applied: %s", self.origin, index, exc)
        return registry

    async def _open(self, target: Signed, old: Signed | None) -> TreeView:
        """Recompute the target's root from tiles, and the old verified root from the same tiles."""
        view = TreeView(target.size, target.root)
        old_nodes = merkle.range_nodes(0, old.size) if old is not None else []
        await self.context.checked_view(view, view.tiles_for_nodes(old_nodes), target.note)
        if old is not None and view.old_root(old.size) != old.root:
            evidence: dict[str, Any] = {
                "checkpoint": note_text(target.note),
                "verified_checkpoint": note_text(old.note),
                "computed_old_root": b64(view.old_root(old.size)),
            }
            plan = merkle.consistency_plan(old.size, target.size)
            try:
                await self.context.fetcher.authenticate(view, view.tiles_for_nodes(plan.nodes))
                evidence["consistency_proof_from_tiles"] = [b64(h) for h in view.assemble(plan)]
            except (TreeMismatch, Unavailable) as exc:
                evidence["consistency_proof_error"] = str(exc)
            raise self.context.misbehaviour(
                A.RULE_CONSISTENCY,
                f"consistency {old.size} {old.root.hex()} {target.size} {target.root.hex()}",
                f"the checkpoint of size {target.size} does not extend the verified one of size {old.size}",
                evidence,
            )
        return view


async def follow(follower: Follower, after_round: Callable[[], None]) -> None:
    """The daemon's loop for one log: a round, the availability thresholds, then sleep.
    Runs until cancelled; cancelling it anywhere is safe (the state commits per chunk)."""
    shared = follower.shared
    while True:
        for problem in await asyncio.to_thread(shared.watchlist.refresh):
            log.warning("%s", problem)
        error: str | None = None
        try:
            await follower.poll()
            follower.failing_since = None
        except Unavailable as exc:
            error = f"unavailable: {exc}"
            if follower.failing_since is None:
                follower.failing_since = shared.clock()
        except NotVerified as exc:
            error = str(exc)
        except Misbehaviour as exc:
            error = f"stopped on misbehaviour: {exc}"
        except TlogError as exc:  # data no check above anticipated: say so, and try again next round
            error = f"unexpected data from the log: {exc}"
        except StateError:
            raise
        if error != follower.last_error and error is not None:
            log.warning("%s: %s", follower.origin, error)
        follower.last_error = error
        shared.state.add_alerts(follower.availability_alerts(shared.clock()))
        after_round()
        await asyncio.sleep(shared.config.poll_interval)
