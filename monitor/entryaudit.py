"""Round step 5: the entries up to the target's size, a chunk of level-0 tiles at a time. Each tile is linked to
the root and each entry bundle to its tile (tlogcore.tileauth); then the statement checks (audit.py, in worker
processes), the registry and the watch rules (rules.py) here, the log's status index (statusaudit.py, in its own
process when there are workers: statusworker.py); one commit per chunk, in log order (state.py says why that loses
and repeats no alert). The stages overlap across chunks (`EntryAudit.run`). The last chunk makes the target the
verified checkpoint."""

import asyncio
import base64
import collections
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from typing import Any

from monitor import alerts as A
from monitor.audit import Checked, Tally, apply_registry
from monitor.checkstages import Checker, ChunkChecks, done
from monitor.daily import Days, count_days
from monitor.logcontext import LogContext, log, note_text, statement_json
from monitor.modes import TREE
from monitor.rules import UNEXPECTED, match_chunk
from monitor.state import AuditedChunk, LogRow, Signed
from monitor.statusaudit import APPLY_EVERY, RULE_STATUS_INDEX, Finding, status_items_of
from monitor.statusfile import indexed_size
from monitor.statusworker import StatusRunner, findings_of
from monitor.stolenkeys import stolen_key_alerts
from tlogcore import merkle
from tlogcore.encoding import HASH_SIZE
from tlogcore.registry import Registry
from tlogcore.tileauth import TreeMismatch, TreeView, b64, bundle_of, level0_tiles
from tlogcore.tiles import TILE_WIDTH, Tile

# Entries of the chunks parsed (their status index queued) whose signatures are checked in the workers while the
# oldest of them waits to be resolved: the status process works this far ahead of the signature checks
# (checkstages.py). A batch of APPLY_EVERY documents and a fold keep it busy for 1-1.5 s at 2·10^5 and 2-3 s at
# 10^6 (statusaudit.py), about as long as the workers take to check a batch's worth of signatures on 2 cores: a
# burst then overlaps the checks instead of coming after the last one. Each chunk in flight is downloaded again
# after a kill; the chunk being resolved always has one more after it.
CHECKS_AHEAD_ENTRIES = APPLY_EVERY
# Entries of the chunks resolved (their status index queued in the status process) and not yet committed. The
# status process works in bursts: a root-less log's batch of APPLY_EVERY documents, and a fold, keep it busy for
# 0.4-1.2 s at 2·10^5 and 2-3 s at 10^6 (statusaudit.py). The main process waits for a chunk's findings to commit
# it; while it waits it feeds the workers no more, and a core idles. A batch's worth of entries checked ahead (about
# 2 s of the workers' time on 2 cores) outlasts the burst; each is downloaded again after a kill.
STATUS_AHEAD_ENTRIES = APPLY_EVERY


@dataclass
class _Prepared:
    """A chunk whose entries are authenticated and whose statement checks are running in the workers."""

    tiles: list[Tile]
    first: int  # the index of entries[0]
    end: int  # one past the chunk's last index
    entries: list[bytes]
    checks: ChunkChecks
    queued: "asyncio.Future[None]"  # done once its status index is queued (`_queue_index`): `findings` are then its
    findings: "asyncio.Future[list[Finding]]"


@dataclass
class _Resolved:
    """A chunk whose checks are back and applied (registry, watch rules), whose status index is being computed."""

    chunk: _Prepared
    checked: list[Checked]
    tally: Tally
    alerts: list[A.Alert]  # the watch-rule, bad-entry and stolen-key alerts; the status index's come at commit
    findings: "asyncio.Future[list[Finding]]"
    days: Days
    registry: Registry | None  # as of the chunk's end (None: mode tree)


@dataclass
class EntryAudit:
    context: LogContext
    status: StatusRunner | None = None  # the log's recomputed status index, open while `run` audits chunks
    rebuilding_to: int = 0  # while the status index is rebuilt: the end of the entries read again for it

    async def _fetch_chunk(self, view: TreeView, tiles: list[Tile], note: bytes) -> dict[str, bytes]:
        """Authenticate a chunk's level-0 tiles; fetch their entry bundles alongside."""
        bundles = asyncio.ensure_future(self.context.fetcher.fetch_all([bundle_of(t) for t in tiles]))
        try:
            await self.context.checked_view(view, tiles, note)
        except BaseException:
            bundles.cancel()
            await asyncio.gather(bundles, return_exceptions=True)
            raise
        return await bundles

    def _chunks(self, start: int, end: int, size: int) -> list[list[Tile]]:
        tiles = level0_tiles(start, end, size)
        step = self.context.shared.config.chunk_tiles
        return [tiles[i : i + step] for i in range(0, len(tiles), step)]

    async def run(self, row: LogRow, target: Signed, view: TreeView) -> None:
        """The entries from `row.next_index` to the target's size, chunk after chunk (`_chunk_after_chunk`); first,
        when the status index covers fewer entries than the state says were audited, those entries again for the
        index alone (`_rebuild_index`)."""
        self.status = StatusRunner(self.context.shared.config.state, self.context.origin, self._status_executor())
        try:
            if await self._index_behind(row):
                await self._rebuild_index(row, target, view)
            await self._chunk_after_chunk(row, target, view)
        finally:
            await self.status.close()
            self.status = None
        if row.next_index >= target.size and row.target is not None:  # nothing left (e.g. a size-0 target)
            self.context.state.commit_chunk(
                self.context.origin, AuditedChunk(row.next_index, verified=target), self.context.now()
            )
            row.verified, row.target = target, None

    def _index_kept(self, row: LogRow) -> bool:
        """Entries were audited from entry 0 with statement checks: a status index is kept, and must cover them."""
        return self.context.shared.config.verify != TREE and not row.audited_from and row.next_index > 0

    def index_lost(self, row: LogRow) -> bool:
        """The state says [0, next_index) were audited, and the status index covers fewer: its file lost, or
        restored from an older backup (read here from the file, without writing)."""
        shared = self.context.shared
        return self._index_kept(row) and indexed_size(shared.config.state, self.context.origin) < row.next_index

    async def _index_behind(self, row: LogRow) -> bool:
        """`index_lost`, asked of the process that keeps the index, which then empties it to be rebuilt
        (statusaudit.py "Rebuilt": a rebuild cut short by a crash starts again from entry 0)."""
        return (
            self.status is not None and self._index_kept(row) and await self.status.start_over_if_behind(row.next_index)
        )

    async def _rebuild_index(self, row: LogRow, target: Signed, view: TreeView) -> None:
        """Entries [0, row.next_index) again, on a copy of the row with the registry from its start: their statements
        checked and the registry replayed as when they were first audited, for the status index alone."""
        log.warning(
            "%s: the status index covers fewer entries than were audited (its file lost, restored from an older"
            " backup, or written before the key index): rebuilding it from entries 0-%d", self.context.origin,
            row.next_index - 1,
        )  # fmt: skip
        again = replace(row, next_index=0, registry=Registry(row.registry.registry_keys))
        self.rebuilding_to = row.next_index
        try:
            await self._chunk_after_chunk(again, target, view)
        finally:
            self.rebuilding_to = 0
        log.info("%s: status index rebuilt over entries 0-%d", self.context.origin, again.next_index - 1)

    async def _chunk_after_chunk(self, row: LogRow, target: Signed, view: TreeView) -> None:
        """Chunk after chunk, pipelined: the next chunk downloads; this one's statements are parsed (checkstages.py
        says where), its status index queued in the status process as soon as they are, then their signatures
        checked in the workers (the chunks in `checking`, up to CHECKS_AHEAD_ENTRIES entries); the oldest is
        resolved here (registry, watch rules) once checked. A resolved chunk is committed once its status findings
        are back, or when the chunks resolved and not committed (`pending`) hold more than STATUS_AHEAD_ENTRIES
        entries: the workers stay fed while the status process writes a batch. Commits stay in log order, each with
        the registry as of its own chunk's end (a snapshot taken when the chunk was resolved)."""
        end = self.rebuilding_to or target.size
        chunks = self._chunks(row.next_index, end, target.size)
        prefetch: asyncio.Future[dict[str, bytes]] | None = None
        checking: collections.deque[_Prepared] = collections.deque()  # what `finally` cancels if this fails
        pending: collections.deque[_Resolved] = collections.deque()  # resolved, not committed, in log order
        queued = done(None)  # the status index of the chunk before is queued: this one's may be
        shared = self.context.shared
        workers = shared.config.workers if shared.executor is not None else 1
        checker = Checker(shared.executor, workers, self.context.origin, shared.config.verify)
        try:
            for number, tiles in enumerate(chunks):
                current = prefetch or asyncio.ensure_future(self._fetch_chunk(view, tiles, target.note))
                prefetch = None
                if number + 1 < len(chunks):
                    prefetch = asyncio.ensure_future(self._fetch_chunk(view, chunks[number + 1], target.note))
                first = row.next_index if number == 0 else tiles[0].index * TILE_WIDTH
                try:
                    bundles = await current
                    checking.append(await self._prepare(row, view, target, checker, tiles, first, bundles, queued))
                    queued = checking[-1].queued
                except Exception:  # the chunks before still count: commit them, then stop (as before pipelining)
                    await self._drain(row, target, view, pending, checking)
                    raise
                while len(checking) > 1 and sum(c.end - c.first for c in checking) > CHECKS_AHEAD_ENTRIES:
                    await self._resolve_then_commit(row, target, view, checking.popleft(), pending)
            await self._drain(row, target, view, pending, checking)
        finally:
            if prefetch is not None:
                prefetch.cancel()
                await asyncio.gather(prefetch, return_exceptions=True)
            for chunk in checking:
                await chunk.checks.cancel()
                await asyncio.gather(chunk.queued, return_exceptions=True)  # queued, or failed with the parse
            # Their rows may be being written: let that end before the index is closed.
            writing = [r.findings for r in pending] + [c.findings for c in checking]
            await asyncio.gather(*writing, return_exceptions=True)

    def _status_executor(self) -> Executor | None:
        shared = self.context.shared
        return shared.status_executor if shared.config.verify != TREE else None

    async def _drain(
        self,
        row: LogRow,
        target: Signed,
        view: TreeView,
        pending: "collections.deque[_Resolved]",
        checking: "collections.deque[_Prepared]",
    ) -> None:
        """Commit what is in flight, in order: the resolved chunks, then those being checked (each taken from
        `checking` or `pending` as it is handled: what is left in them if this fails is the caller's)."""
        while checking:
            await self._resolve_then_commit(row, target, view, checking.popleft(), pending)
        await self._commit_while(row, target, view, pending, 0)

    async def _resolve_then_commit(
        self, row: LogRow, target: Signed, view: TreeView, chunk: "_Prepared", pending: "collections.deque[_Resolved]"
    ) -> None:
        """Resolve `chunk`, whose status index then waits in the status process behind those of the chunks in
        `pending`; then commit the chunks whose findings are back, and the oldest while their entries are more than
        STATUS_AHEAD_ENTRIES. If the resolving fails, the chunks resolved before it are committed all the same."""
        try:
            pending.append(await self._resolve(row, target, view, chunk))
        except Exception:
            await self._commit_while(row, target, view, pending, 0)
            raise
        await self._commit_while(row, target, view, pending, STATUS_AHEAD_ENTRIES)

    async def _commit_while(
        self, row: LogRow, target: Signed, view: TreeView, pending: "collections.deque[_Resolved]", ahead: int
    ) -> None:
        """Commit the oldest pending chunk while the pending chunks hold more than `ahead` entries, or while its
        findings are back and a chunk resolved after it is queued behind it (the status process is then never left
        idle by a commit)."""
        while pending and (
            sum(r.chunk.end - r.chunk.first for r in pending) > ahead
            or (len(pending) > 1 and pending[0].findings.done())
        ):
            await self._commit(row, target, view, pending.popleft())

    async def _prepare(
        self,
        row: LogRow,
        view: TreeView,
        target: Signed,
        checker: Checker,
        tiles: list[Tile],
        first: int,
        bundles: dict[str, bytes],
        before: "asyncio.Future[None]",
    ) -> "_Prepared":
        """A chunk's entries, each checked against its authenticated tile, its statement checks started, and its
        status index queued once they are parsed and the chunk before's was (`before`)."""
        entries: list[bytes] = []
        leaves: list[bytes] = []
        tree_only = self.context.shared.config.verify == TREE
        for tile in tiles:
            try:
                entries += view.entries(tile, bundles[bundle_of(tile).path])
            except TreeMismatch as exc:
                raise self.context.mismatch(exc, target.note) from None
            if not tree_only:  # without statement checks the leaf hashes are not needed one by one
                body = view.body(tile)
                leaves += [body[i : i + HASH_SIZE] for i in range(0, len(body), HASH_SIZE)]
            await asyncio.sleep(0)  # let the next chunk's downloads progress between tiles
        skip = first - tiles[0].index * TILE_WIDTH
        entries, leaves = entries[skip:], leaves[skip:]
        checks = checker.start(entries, leaves, first)
        end = min(target.size, (tiles[-1].index + 1) * TILE_WIDTH)
        chunk = _Prepared(tiles, first, end, entries, checks, done(None), done([]))  # no status index: no findings
        if self.context.shared.config.verify != TREE and self.status is not None:
            chunk.queued = asyncio.ensure_future(self._queue_index(self.status, row, chunk, before))
        return chunk

    async def _queue_index(
        self, status: StatusRunner, row: LogRow, chunk: "_Prepared", before: "asyncio.Future[None]"
    ) -> None:
        """The chunk's status index queued in the status process once its statements are parsed, before their
        signatures are checked (checkstages.py), and after the chunk before's (the process applies chunks in the
        order they come: log order; none past a chunk that failed)."""
        parsed = await chunk.checks.parsed
        await before
        items = status_items_of(parsed, chunk.entries, chunk.first)
        chunk.findings = status.submit(items, (chunk.first, chunk.end), row.registry.registry_keys)

    async def _resolve(self, row: LogRow, target: Signed, view: TreeView, chunk: "_Prepared") -> "_Resolved":
        """Once a chunk's statement checks are back: the registry, tallies and watch rules here (its status index was
        queued when it was parsed)."""
        try:
            checked = await chunk.checks.checked
        except BaseException:
            await asyncio.gather(chunk.queued, return_exceptions=True)  # its own failure, if the parse's: taken
            raise
        await chunk.queued  # its status index queued: `chunk.findings` are its findings
        registry = row.registry
        snapshot = None
        tally = Tally()
        alerts: list[A.Alert] = []
        if self.context.shared.config.verify != TREE and self.status is not None:
            checked = apply_registry(registry, checked)
            snapshot = registry.snapshot()  # what this chunk's commit stores, whatever the next chunk changes
            tally.add(checked)
            if not self.rebuilding_to:  # raised when the entries were first audited
                alerts = await self._entry_alerts(view, target, checked, chunk.entries, chunk.first)
                alerts += await stolen_key_alerts(self.context, view, target, checked, self._fetch_chunk)
        days = count_days(c.statement for c in checked if c.problem is None and c.statement is not None)
        return _Resolved(chunk, checked, tally, alerts, chunk.findings, days, snapshot)

    async def _commit(self, row: LogRow, target: Signed, view: TreeView, resolved: "_Resolved") -> None:
        """The chunk's status-index alerts (its rows are written first), then its commit."""
        chunk, checked, tally = resolved.chunk, resolved.checked, resolved.tally
        alerts = await status_alerts(
            self.context, await findings_of(resolved.findings),
            lambda finding: self._finding_evidence(view, target, chunk, checked, finding),
        )  # fmt: skip
        if self.rebuilding_to:  # the entries' audit was committed before: only the index moves, and its alerts
            self.context.state.add_alerts(alerts)
            row.next_index = chunk.end
            view.drop(chunk.tiles)
            return
        alerts = resolved.alerts + alerts
        done = chunk.end >= target.size
        fresh = {p: b for p, b in view.full_tiles(1).items() if p not in self.context.fetcher.stored}
        counters = {"entries": len(chunk.entries), "bad_entries": tally.bad_entries}
        tracked = resolved.registry if self.context.shared.config.verify != TREE else None
        audited = AuditedChunk(
            chunk.end, tracked, tally.issued, tally.revoked, counters, alerts, fresh, target if done else None,
            resolved.days,
        )  # fmt: skip
        self.context.state.commit_chunk(self.context.origin, audited, self.context.now())
        self.context.fetcher.stored.update(fresh)
        row.next_index = chunk.end
        if alerts and self.context.shared.alerts_committed is not None:
            self.context.shared.alerts_committed()
        if done:
            row.verified, row.target = target, None
            log.info("%s: verified size %d", self.context.origin, target.size)
        view.drop(chunk.tiles)
        if self.context.shared.progress is not None:
            self.context.shared.progress(self.context.origin, row.next_index, target.size)

    async def _entry_alerts(
        self, view: TreeView, target: Signed, checked: list[Checked], entries: list[bytes], start: int
    ) -> list[A.Alert]:
        watchlist = self.context.shared.watchlist
        rules = watchlist.rules
        matches = match_chunk(rules, watchlist.expected, self.context.origin, checked)
        if any(m.what == UNEXPECTED for ms in matches.values() for m in ms):
            # An issuer may list a document just before logging it: look again before saying "unexpected".
            for error in await asyncio.to_thread(watchlist.refresh, True):
                log.warning("%s", error)
            matches = match_chunk(rules, watchlist.expected, self.context.origin, checked)
        good_indexes, good_leaves = self.context.state.known_good(self.context.origin)
        out = []
        flagged = sorted(matches.keys() | {item.index for item in checked if item.problem is not None})
        for index in flagged:  # checked[i] is entry start + i
            item, found = checked[index - start], matches.get(index, [])
            watch = [m for m in found if item.index not in good_indexes and item.leaf_hash not in good_leaves]
            if item.problem is None and not watch:
                continue
            evidence = await self._entry_evidence(view, target, item, entries[item.index - start])
            if item.problem is not None:
                out.append(
                    self.context.alert(
                        A.RULE_ENTRY,
                        A.MISBEHAVIOUR,
                        f"entry {item.index} {item.leaf_hash.hex()}",
                        f"entry {item.index}: the log accepted a statement it must refuse: {item.problem}",
                        evidence,
                    )
                )
            for match in watch:
                out.append(
                    self.context.alert(
                        match.rule, A.WATCH, match.key(item), match.summary, {**evidence, "matched": match.what}
                    )
                )
        return out

    async def _finding_evidence(
        self, view: TreeView, target: Signed, chunk: "_Prepared", checked: list[Checked], finding: Finding
    ) -> dict[str, Any]:
        """The evidence of the entry a status finding is about: in the chunk, or an earlier one (the last index-root,
        for "no index-root for too long"), whose bytes the finding carries when the index file kept them."""
        index = finding.index
        if index is None:
            return {}
        if chunk.first <= index < chunk.end:
            offset = index - chunk.first
            return await self._entry_evidence(view, target, checked[offset], chunk.entries[offset])
        entry = finding.evidence.get("entry")
        if entry is not None:
            data = base64.b64decode(entry)
            return await self._entry_evidence(view, target, Checked(index, merkle.leaf_hash(data), None), data)
        plan = merkle.inclusion_plan(index, target.size)
        await self.context.checked_view(view, view.tiles_for_nodes(plan.nodes), target.note)
        proof = [b64(h) for h in view.assemble(plan)]
        return {"index": index, "inclusion_proof": proof, "checkpoint": note_text(target.note)}

    async def _entry_evidence(self, view: TreeView, target: Signed, item: Checked, entry: bytes) -> dict[str, Any]:
        plan = merkle.inclusion_plan(item.index, target.size)
        await self.context.checked_view(view, view.tiles_for_nodes(plan.nodes), target.note)
        return {
            "index": item.index,
            "leaf_hash": item.leaf_hash.hex(),
            "entry": base64.b64encode(entry).decode(),
            "statement": statement_json(item.statement),
            "inclusion_proof": [b64(h) for h in view.assemble(plan)],
            "checkpoint": note_text(target.note),
        }


async def status_alerts(
    context: LogContext, findings: Sequence[Finding], evidence_of: Callable[[Finding], Awaitable[dict[str, Any]]]
) -> list[A.Alert]:
    """The alerts about the log's status index from a chunk's findings, each with its entry's inclusion proof and the
    checkpoint (`evidence_of`). "No index-root for too long" is about the last root's entry, and keyed by it."""
    alerts = []
    for finding in findings:
        evidence = dict(finding.evidence)
        if finding.index is not None:
            evidence |= await evidence_of(finding)
        key = f"index-root {finding.index}"
        if "last_index_root_entry" in finding.evidence:
            key = f"missing index-root after {finding.evidence['last_index_root_entry']}"
        alerts.append(context.alert(RULE_STATUS_INDEX, A.MISBEHAVIOUR, key, finding.summary, evidence))
    return alerts
