"""Round step 3: the log's checkpoint against each witness's latest cosigned one. A same-size checkpoint with
another root, or one that no consistency proof links to ours, is a split view (splitview.py has the rules)."""

from collections.abc import Callable
from dataclasses import dataclass, field

from logserver.client import LogClientError
from monitor import alerts as A
from monitor.fetch import Unavailable
from monitor.logcontext import LogContext, NotVerified, log, note_text
from monitor.splitview import open_witness_checkpoint, proof_conflict, same_size_conflict
from monitor.state import Signed
from tlogcore import merkle
from tlogcore.errors import TlogError
from tlogcore.tileauth import TreeView, b64
from witness.client import WitnessClient, WitnessClientError


@dataclass
class WitnessCheck:
    context: LogContext
    witnesses: dict[str, WitnessClient]
    check_fork: Callable[[Signed, str], None]  # Follower.check_fork: one size, two roots
    _ok: set[tuple[str, int, bytes, int, bytes]] = field(default_factory=set)  # comparisons already made

    async def run(self, ours: Signed, view: TreeView | None) -> None:
        """Compare `ours` with each witness's latest cosigned checkpoint. With `view` (the tiles of a
        checkpoint about to become the target), a smaller witness checkpoint is checked from those tiles
        and a missing proof blocks the target; without it, proofs come from the log's API."""
        for name, client in self.witnesses.items():
            try:
                note = await client.latest_checkpoint(self.context.origin)
            except WitnessClientError as exc:
                log.warning("%s: witness %s: %s", self.context.origin, name, exc)
                continue
            if note is None:
                continue
            try:
                theirs = open_witness_checkpoint(note, self.context.log_config.policy, self.context.origin, name)
            except TlogError as exc:
                log.warning("%s: witness %s's checkpoint not usable: %s", self.context.origin, name, exc)
                continue
            seen = (name, theirs.size, theirs.root, ours.size, ours.root)
            if seen in self._ok:
                continue
            self.check_fork(theirs, f"witness {name}")
            conflict, proof = same_size_conflict(ours, theirs), []
            if conflict is None and theirs.size != ours.size:
                old, new = sorted((ours, theirs), key=lambda s: s.size)
                try:
                    proof = await self.consistency(view, old, new)
                except (LogClientError, TlogError, Unavailable) as exc:
                    message = f"no consistency proof {old.size} -> {new.size} for witness {name}'s checkpoint: {exc}"
                    if view is not None:
                        raise NotVerified(message) from None
                    log.warning("%s: %s", self.context.origin, message)
                    continue
                conflict = proof_conflict(ours, theirs, proof)
            if conflict is not None:
                raise self.context.misbehaviour(
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
            self.context.state.record_checkpoint(self.context.origin, theirs, f"witness {name}", self.context.now())
            if len(self._ok) > 10_000:
                self._ok.clear()
            self._ok.add(seen)

    async def consistency(self, view: TreeView | None, old: Signed, new: Signed) -> list[bytes]:
        """PROOF(old, new): from the tiles of `view` when it is the new tree, else from the log's API."""
        if view is not None and (view.size, view.root) == (new.size, new.root):
            plan = merkle.consistency_plan(old.size, new.size)
            await self.context.checked_view(view, view.tiles_for_nodes(plan.nodes), new.note)
            return view.assemble(plan)
        return list((await self.context.client.consistency_proof(old.size, new.size)).proof)
