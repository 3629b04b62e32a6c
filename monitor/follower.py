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

Any mismatch stops the round with an alert; the state does not move past it.
Network failures stop the round too, without an alert (see `run`: a log that
stays unreachable or stops growing past a threshold gets one).
"""

import asyncio
import base64
import functools
import hashlib
import logging
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

from logserver.client import LogClient, LogClientError
from monitor import alerts as A
from monitor.audit import Checked, Tally, apply_registry, check_statements
from monitor.config import TREE, LogConfig, MonitorConfig
from monitor.expected import Watchlist
from monitor.fetch import TileFetcher, Unavailable
from monitor.rules import UNEXPECTED, match_all
from monitor.splitview import open_witness_checkpoint, proof_conflict, same_size_conflict
from monitor.state import LogRow, Signed, State, StateError
from tlogcore import merkle
from tlogcore.errors import MalformedError, NotAllowedError, SignatureError, TlogError, UnverifiedError
from tlogcore.registry import Registry
from tlogcore.statement import Statement, parse_ed25519_vkey, parse_statement
from tlogcore.tileauth import TreeMismatch, TreeView, b64, bundle_of, level0_tiles
from tlogcore.tiles import TILE_WIDTH, Tile, tile_at
from witness.client import WitnessClient, WitnessClientError

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


@dataclass
class Follower:
    log_config: LogConfig
    shared: Shared
    client: LogClient
    witnesses: dict[str, WitnessClient] = field(default_factory=dict)
    _view: TreeView | None = None
    _witness_ok: set[tuple[str, int, bytes, int, bytes]] = field(default_factory=set)
    failing_since: float | None = None
    last_error: str | None = None

    def __post_init__(self) -> None:
        self.fetcher = TileFetcher(
            self.client, self.shared.state, self.log_config.origin, self.shared.config.max_concurrent_requests
        )

    @property
    def origin(self) -> str:
        return self.log_config.origin

    @property
    def state(self) -> State:
        return self.shared.state

    def now(self) -> float:
        return self.shared.clock()

    # --- alerts -------------------------------------------------------------------------------

    def _alert(self, rule: str, category: str, key: str, summary: str, evidence: dict[str, Any]) -> A.Alert:
        return A.Alert(rule, category, self.origin, key, summary, int(self.now()), evidence)

    def _misbehaviour(self, rule: str, key: str, summary: str, evidence: dict[str, Any]) -> Misbehaviour:
        alert = self._alert(rule, A.MISBEHAVIOUR, key, summary, evidence)
        if not self.state.has_alert(alert.id):
            log.error("%s: %s: %s", self.origin, rule, summary)
        self.state.add_alerts([alert])
        return Misbehaviour(summary)

    # --- tiles ----------------------------------------------------------------------------------

    async def _checked_view(self, view: TreeView, tiles: Iterable[Tile], note: bytes) -> None:
        """`TileFetcher.authenticate`, turning a mismatch into a misbehaviour alert."""
        try:
            await self.fetcher.authenticate(view, tiles)
        except TreeMismatch as exc:
            raise self._misbehaviour(
                exc.rule, exc.key, str(exc), {**exc.evidence, "checkpoint": note_text(note)}
            ) from None

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
            raise self._misbehaviour(
                A.RULE_ROLLBACK,
                f"rollback {latest.size} {signed.size} {signed.root.hex()}",
                f"the log's checkpoint has size {signed.size}, smaller than the verified size {latest.size}",
                {"checkpoint": note_text(signed.note), "verified_checkpoint": note_text(latest.note)},
            )
        self._check_fork(signed, "log")
        new_target = row.target is None and (row.verified is None or signed.size > row.verified.size)
        view = await self._open(signed, row.verified) if new_target else None
        await self._check_witnesses(signed, view)
        self.state.record_checkpoint(self.origin, signed, "log", self.now())
        if new_target:
            self._view = view
            self.state.set_target(self.origin, signed, self.now())
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
            await self._audit(row, row.target, self._view)
            self._view = None
        else:
            self.state.touch_verified(self.origin, self.now())

    def _verify(self, note: bytes) -> Signed:
        policy = self.log_config.policy
        try:
            trusted = policy.verify_checkpoint(note, now=self.now())
        except SignatureError as exc:
            raise self._misbehaviour(
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
        return Signed(checkpoint.size, checkpoint.root, note)

    def _check_fork(self, signed: Signed, source: str) -> None:
        other = self.state.other_root(self.origin, signed.size, signed.root)
        if other is not None:
            seen, seen_source = other
            rule = A.RULE_FORK if source == seen_source == "log" else A.RULE_SPLIT_VIEW
            roots = sorted([signed.root.hex(), seen.root.hex()])
            raise self._misbehaviour(
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
        row = self.state.log(self.origin)
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
                    parse_ed25519_vkey(vkey, "registry key")
            except (LogClientError, TlogError) as exc:
                raise Unavailable(f"cannot learn the log's registry keys: {exc}") from None
            log.info("%s: pinned the registry keys the log names: %s", self.origin, ", ".join(vkeys))
        now = self.now()
        if not self.shared.start_at_end:
            row = LogRow(self.origin, None, None, 0, vkeys, Registry(frozenset(vkeys)), 0, now)
        else:
            self._check_fork(signed, "log")
            view = await self._open(signed, None)
            await self._check_witnesses(signed, view)
            registry = await self._registry_from_index(view, signed, vkeys)
            row = LogRow(self.origin, signed, None, signed.size, vkeys, registry, signed.size, now)
            self.state.record_checkpoint(self.origin, signed, "log", now)
            log.info(
                "%s: starting at the end, size %d; %d issuer keys from the log's registry index",
                self.origin,
                signed.size,
                len(registry.keys),
            )
        self.state.create_log(row, now)
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
            await self._checked_view(view, [tile], signed.note)
            bundle = await self.fetcher.get(bundle_of(tile))
            try:
                entries[index] = view.entries(tile, bundle)[index % TILE_WIDTH]
            except TreeMismatch as exc:
                raise self._misbehaviour(
                    exc.rule, exc.key, str(exc), {**exc.evidence, "checkpoint": note_text(signed.note)}
                ) from None
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
        await self._checked_view(view, view.tiles_for_nodes(old_nodes), target.note)
        if old is not None and view.old_root(old.size) != old.root:
            evidence: dict[str, Any] = {
                "checkpoint": note_text(target.note),
                "verified_checkpoint": note_text(old.note),
                "computed_old_root": b64(view.old_root(old.size)),
            }
            plan = merkle.consistency_plan(old.size, target.size)
            try:
                await self.fetcher.authenticate(view, view.tiles_for_nodes(plan.nodes))
                evidence["consistency_proof_from_tiles"] = [b64(h) for h in view.assemble(plan)]
            except (TreeMismatch, Unavailable) as exc:
                evidence["consistency_proof_error"] = str(exc)
            raise self._misbehaviour(
                A.RULE_CONSISTENCY,
                f"consistency {old.size} {old.root.hex()} {target.size} {target.root.hex()}",
                f"the checkpoint of size {target.size} does not extend the verified one of size {old.size}",
                evidence,
            )
        return view

    # --- witnesses ----------------------------------------------------------------------------

    async def _check_witnesses(self, ours: Signed, view: TreeView | None) -> None:
        """Compare `ours` with each witness's latest cosigned checkpoint. With `view` (the tiles of a
        checkpoint about to become the target), a smaller witness checkpoint is checked from those tiles
        and a missing proof blocks the target; without it, proofs come from the log's API."""
        for name, client in self.witnesses.items():
            try:
                note = await client.latest_checkpoint(self.origin)
            except WitnessClientError as exc:
                log.warning("%s: witness %s: %s", self.origin, name, exc)
                continue
            if note is None:
                continue
            try:
                theirs = open_witness_checkpoint(note, self.log_config.policy, self.origin, name)
            except TlogError as exc:
                log.warning("%s: witness %s's checkpoint not usable: %s", self.origin, name, exc)
                continue
            seen = (name, theirs.size, theirs.root, ours.size, ours.root)
            if seen in self._witness_ok:
                continue
            self._check_fork(theirs, f"witness {name}")
            conflict, proof = same_size_conflict(ours, theirs), []
            if conflict is None and theirs.size != ours.size:
                old, new = sorted((ours, theirs), key=lambda s: s.size)
                try:
                    proof = await self._consistency(view, old, new)
                except (LogClientError, TlogError, Unavailable) as exc:
                    message = f"no consistency proof {old.size} -> {new.size} for witness {name}'s checkpoint: {exc}"
                    if view is not None:
                        raise NotVerified(message) from None
                    log.warning("%s: %s", self.origin, message)
                    continue
                conflict = proof_conflict(ours, theirs, proof)
            if conflict is not None:
                raise self._misbehaviour(
                    A.RULE_SPLIT_VIEW,
                    f"witness {name} {ours.size} {ours.root.hex()} {theirs.size} {theirs.root.hex()}",
                    f"split view: the log's checkpoint and witness {name}'s: {conflict.reason}",
                    {
                        "checkpoint": note_text(ours.note),
                        "witness": name,
                        "witness_checkpoint": note_text(theirs.note),
                        "consistency_proof": [b64(h) for h in proof],
                    },
                )
            self.state.record_checkpoint(self.origin, theirs, f"witness {name}", self.now())
            if len(self._witness_ok) > 10_000:
                self._witness_ok.clear()
            self._witness_ok.add(seen)

    async def _consistency(self, view: TreeView | None, old: Signed, new: Signed) -> list[bytes]:
        """PROOF(old, new): from the tiles of `view` when it is the new tree, else from the log's API."""
        if view is not None and (view.size, view.root) == (new.size, new.root):
            plan = merkle.consistency_plan(old.size, new.size)
            await self._checked_view(view, view.tiles_for_nodes(plan.nodes), new.note)
            return view.assemble(plan)
        return list((await self.client.consistency_proof(old.size, new.size)).proof)

    # --- auditing entries ---------------------------------------------------------------------------

    async def _fetch_chunk(self, view: TreeView, tiles: list[Tile], note: bytes) -> dict[str, bytes]:
        """Authenticate a chunk's level-0 tiles; fetch their entry bundles alongside."""
        bundles = asyncio.ensure_future(self.fetcher.fetch_all([bundle_of(t) for t in tiles]))
        try:
            await self._checked_view(view, tiles, note)
        except BaseException:
            bundles.cancel()
            await asyncio.gather(bundles, return_exceptions=True)
            raise
        return await bundles

    async def _check(self, entries: list[bytes], first: int) -> list[Checked]:
        mode, origin = self.shared.config.verify, self.origin
        if mode == TREE:
            return []  # the entries are in the tree (checked against their tile): nothing more to do
        loop = asyncio.get_running_loop()
        workers = self.shared.config.workers if self.shared.executor is not None else 1
        step = max(1, -(-len(entries) // workers))
        parts = [(entries[i : i + step], first + i) for i in range(0, len(entries), step)]
        results = await asyncio.gather(
            *(
                loop.run_in_executor(
                    self.shared.executor, functools.partial(check_statements, part, start, origin, mode)
                )
                for part, start in parts
            )
        )
        return [item for result in results for item in result]

    def _chunks(self, start: int, end: int, size: int) -> list[list[Tile]]:
        tiles = level0_tiles(start, end, size)
        step = self.shared.config.chunk_tiles
        return [tiles[i : i + step] for i in range(0, len(tiles), step)]

    async def _audit(self, row: LogRow, target: Signed, view: TreeView) -> None:
        chunks = self._chunks(row.next_index, target.size, target.size)
        prefetch: asyncio.Future[dict[str, bytes]] | None = None
        try:
            for number, tiles in enumerate(chunks):
                current = prefetch or asyncio.ensure_future(self._fetch_chunk(view, tiles, target.note))
                # While this chunk is checked, the next one downloads.
                prefetch = None
                if number + 1 < len(chunks):
                    prefetch = asyncio.ensure_future(self._fetch_chunk(view, chunks[number + 1], target.note))
                await self._audit_chunk(row, target, view, tiles, await current)
                if self.shared.progress is not None:
                    self.shared.progress(self.origin, row.next_index, target.size)
        finally:
            if prefetch is not None:
                prefetch.cancel()
                await asyncio.gather(prefetch, return_exceptions=True)
        if row.next_index >= target.size and row.target is not None:  # nothing left (e.g. a size-0 target)
            self.state.commit_chunk(self.origin, row.next_index, None, {}, {}, {}, [], {}, target, self.now())
            row.verified, row.target = target, None

    async def _audit_chunk(
        self, row: LogRow, target: Signed, view: TreeView, tiles: list[Tile], bundles: dict[str, bytes]
    ) -> None:
        start, end = row.next_index, min(target.size, (tiles[-1].index + 1) * TILE_WIDTH)
        entries: list[bytes] = []
        for tile in tiles:
            try:
                got = view.entries(tile, bundles[bundle_of(tile).path])
            except TreeMismatch as exc:
                raise self._misbehaviour(
                    exc.rule, exc.key, str(exc), {**exc.evidence, "checkpoint": note_text(target.note)}
                ) from None
            entries += got
            await asyncio.sleep(0)  # let the next chunk's downloads progress between tiles
        entries = entries[start - tiles[0].index * TILE_WIDTH :]
        checked = await self._check(entries, start)
        registry = row.registry
        tally = Tally()
        alerts: list[A.Alert] = []
        if self.shared.config.verify != TREE:
            checked = apply_registry(registry, checked)
            tally.add(checked)
            alerts = await self._entry_alerts(view, target, checked, entries, start)
        done = end >= target.size
        fresh = {p: b for p, b in view.full_tiles(1).items() if p not in self.fetcher.stored}
        counters = {"entries": len(entries), "bad_entries": tally.bad_entries}
        self.state.commit_chunk(
            self.origin,
            end,
            registry if self.shared.config.verify != TREE else None,
            tally.issued,
            tally.revoked,
            counters,
            alerts,
            fresh,
            target if done else None,
            self.now(),
        )
        self.fetcher.stored.update(fresh)
        row.next_index = end
        if alerts and self.shared.alerts_committed is not None:
            self.shared.alerts_committed()
        if done:
            row.verified, row.target = target, None
            log.info("%s: verified size %d", self.origin, target.size)
        view.drop(tiles)

    async def _entry_alerts(
        self, view: TreeView, target: Signed, checked: list[Checked], entries: list[bytes], start: int
    ) -> list[A.Alert]:
        watchlist = self.shared.watchlist
        rules = watchlist.rules
        matches = [(item, match_all(rules, watchlist.expected, self.origin, item)) for item in checked]
        if any(m.what == UNEXPECTED for _, ms in matches for m in ms):
            # An issuer may list a document just before logging it: look again before saying "unexpected".
            for error in await asyncio.to_thread(watchlist.refresh, True):
                log.warning("%s", error)
            matches = [(item, match_all(rules, watchlist.expected, self.origin, item)) for item in checked]
        good_indexes, good_leaves = self.state.known_good(self.origin)
        out = []
        for item, found in matches:
            watch = [m for m in found if item.index not in good_indexes and item.leaf_hash not in good_leaves]
            if item.problem is None and not watch:
                continue
            evidence = await self._entry_evidence(view, target, item, entries[item.index - start])
            if item.problem is not None:
                out.append(
                    self._alert(
                        A.RULE_ENTRY,
                        A.MISBEHAVIOUR,
                        f"entry {item.index} {item.leaf_hash.hex()}",
                        f"entry {item.index}: the log accepted a statement it must refuse: {item.problem}",
                        evidence,
                    )
                )
            for match in watch:
                out.append(
                    self._alert(
                        match.rule, A.WATCH, match.key(item), match.summary, {**evidence, "matched": match.what}
                    )
                )
        return out

    async def _entry_evidence(self, view: TreeView, target: Signed, item: Checked, entry: bytes) -> dict[str, Any]:
        plan = merkle.inclusion_plan(item.index, target.size)
        await self._checked_view(view, view.tiles_for_nodes(plan.nodes), target.note)
        return {
            "index": item.index,
            "leaf_hash": item.leaf_hash.hex(),
            "entry": base64.b64encode(entry).decode(),
            "statement": statement_json(item.statement),
            "inclusion_proof": [b64(h) for h in view.assemble(plan)],
            "checkpoint": note_text(target.note),
        }

    # --- the daemon's view of time -----------------------------------------------------------------

    def availability_alerts(self, now: float) -> list[A.Alert]:
        """A log that has not answered, or not grown, for longer than the thresholds."""
        config = self.shared.config
        out = []
        if (
            self.failing_since is not None
            and config.unreachable_after
            and now - self.failing_since >= config.unreachable_after
        ):
            out.append(
                self._alert(
                    A.RULE_UNREACHABLE,
                    A.AVAILABILITY,
                    f"since {int(self.failing_since)}",
                    f"the log has not answered for {now - self.failing_since:.0f} s: {self.last_error}",
                    {
                        "failing_since": int(self.failing_since),
                        "last_error": self.last_error,
                        "url": self.log_config.url,
                    },
                )
            )
        row = self.state.log(self.origin)
        if row is not None and config.stale_after and now - row.last_growth_at >= config.stale_after:
            latest = row.target or row.verified
            size = latest.size if latest else 0
            out.append(
                self._alert(
                    A.RULE_STALE,
                    A.AVAILABILITY,
                    f"size {size} since {int(row.last_growth_at)}",
                    f"the log has not grown past size {size} for {now - row.last_growth_at:.0f} s"
                    + (f" (last error: {self.last_error})" if self.last_error else ""),
                    {
                        "size": size,
                        "since": int(row.last_growth_at),
                        "checkpoint": note_text(latest.note) if latest else None,
                    },
                )
            )
        return out


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
