"""Split views: a log that shows the monitor one tree and its witnesses another. Pure.

A witness's latest cosigned checkpoint (tlog-witness `GET <prefix>/<hex
SHA-256(origin)>/checkpoint`) counts only if it carries both the log's
signature and that witness's cosignature, under the monitor's policy. Against
the checkpoint the log gave the monitor:

* same size, other root: two signed trees of one size; the log forked;
* other size: the smaller must be a prefix of the larger, shown by a
  consistency proof (from the log's proof API; a proof checks itself, so the
  log's word is not taken). No valid proof: the two views cannot both hold.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from monitor.state import Signed
from tlogcore.checkpoint import MAX_CHECKPOINT_NOTE_SIZE, parse_checkpoint
from tlogcore.errors import ProofError, UnverifiedError
from tlogcore.merkle import verify_consistency
from tlogcore.note import open_note
from tlogcore.policy import Policy


def open_witness_checkpoint(note: bytes, policy: Policy, origin: str, witness: str) -> Signed:
    """A witness's checkpoint, if both the log and the witness signed it; raises TlogError otherwise."""
    log_keys = policy.log_keys_for(origin)  # a rotated log: the old key or the new (docs/thirty-years.md)
    witness_key = policy.witnesses[witness]
    opened = open_note(note, [*log_keys, witness_key], MAX_CHECKPOINT_NOTE_SIZE)
    checkpoint = parse_checkpoint(opened.text)
    if checkpoint.origin != origin:
        raise UnverifiedError(f"witness {witness} answered with a checkpoint of {checkpoint.origin!r}")
    log_signed = any(opened.verified_by(key) is not None for key in log_keys)
    if not log_signed or opened.verified_by(witness_key) is None:
        raise UnverifiedError(f"witness {witness}'s checkpoint lacks the log's signature or its cosignature")
    return Signed(checkpoint.size, checkpoint.root, note)


@dataclass(frozen=True)
class Conflict:
    reason: str


def same_size_conflict(ours: Signed, theirs: Signed) -> Conflict | None:
    if ours.size == theirs.size and ours.root != theirs.root:
        return Conflict(f"two checkpoints of size {ours.size} with different roots")
    return None


def proof_conflict(ours: Signed, theirs: Signed, proof: Sequence[bytes]) -> Conflict | None:
    """Whether `proof` fails to show the smaller of the two checkpoints is a prefix of the larger."""
    old, new = sorted((ours, theirs), key=lambda s: s.size)
    try:
        verify_consistency(old.size, new.size, old.root, new.root, proof)
    except ProofError as exc:
        return Conflict(f"no consistency from size {old.size} to size {new.size}: {exc}")
    return None
