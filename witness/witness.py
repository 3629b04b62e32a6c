"""The witness's checks, pure (c2sp.org/tlog-witness@v1.0.0, with DESIGN.md's two HEAD additions).

An add-checkpoint request body (tlog-witness §"add-checkpoint"):

    old 20852014\\n                                          old size, decimal, 0 if unknown
    2vpDh2NvLBtd2BMc7wSoVqpI4ugmj6jnA7ixG3k6LwM=\\n         0..63 consistency-proof lines
    \\n                                                      blank line
    example.com/behind-the-sofa\\n                           the signed checkpoint note
    20852163\\n
    CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\\n
    \\n
    — example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeO…=\\n   log signature(s)

Nothing here does I/O: the caller reads the stored state, calls `check_update`,
then compare-and-swaps. The named errors below are mapped to HTTP statuses in
exactly one place, `witness.app` (STYLE.md §5).
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from tlogcore import merkle
from tlogcore.checkpoint import MAX_CHECKPOINT_NOTE_SIZE, Checkpoint, parse_checkpoint
from tlogcore.encoding import HASH_SIZE, canonical_b64, parse_decimal, parse_hash_b64
from tlogcore.errors import MalformedError, ProofError, SignatureError, UnverifiedError
from tlogcore.keys import Signer, Verifier
from tlogcore.note import Note, OpenedNote, open_parsed_note, parse_note, signature_for

MAX_PROOF_LINES = 63  # tlog-witness: "at most 63 consistency proof lines"


# --- the named errors (tlog-witness §"add-checkpoint", status codes in witness.app) ---


class WitnessError(Exception):
    """Base of the add-checkpoint refusals; the message names the problem for the client."""


class BadRequest(WitnessError):
    """The body does not parse, or old size > checkpoint size (400)."""


class UnknownLog(WitnessError):
    """The checkpoint's origin is not configured at this witness (404)."""


class BadSignature(WitnessError):
    """No valid signature by the log's key, or a signature by the log's key that fails (403)."""


class BadProof(WitnessError):
    """The checkpoint is not provably consistent with the one stored (422), a fork included."""


class Conflict(WitnessError):
    """The client's old size is not the stored size (409); carries the size the witness knows."""

    def __init__(self, known_size: int) -> None:
        super().__init__(f"known tree size is {known_size}")
        self.known_size = known_size

    def __reduce__(self) -> tuple[type["Conflict"], tuple[int]]:  # pickled from a worker process (witness/cosigner.py)
        return Conflict, (self.known_size,)


# --- values -------------------------------------------------------------------


@dataclass(frozen=True)
class TreeHead:
    """The latest (size, root) this witness cosigned for one origin."""

    size: int
    root: bytes


@dataclass(frozen=True)
class AddCheckpoint:
    """A parsed add-checkpoint request: nothing verified yet but its syntax."""

    old_size: int
    proof: tuple[bytes, ...]
    note_bytes: bytes  # the signed checkpoint as sent
    checkpoint: Checkpoint
    note: Note  # note_bytes parsed (signatures not checked yet)


@dataclass(frozen=True)
class Cosigned:
    """What a successful request yields: the lines to return and the note to keep."""

    lines: tuple[str, ...]  # "— <witness name> <base64>\n" each
    note: bytes  # checkpoint text + the log's verified signature(s) + our cosignature(s)


# --- parsing --------------------------------------------------------------------


def parse_request(body: bytes) -> AddCheckpoint:
    """Parse an add-checkpoint body strictly: canonical decimals and base64, ≤ 63 proof lines, note ≤ 64 KiB."""
    head, blank, note_bytes = body.partition(b"\n\n")
    if not blank:
        raise BadRequest("malformed request: no blank line between the proof and the checkpoint")
    try:
        lines = head.decode("ascii").split("\n")
    except UnicodeDecodeError:
        raise BadRequest("malformed request: the old size and proof lines must be ASCII") from None
    first, proof_lines = lines[0], lines[1:]
    if not first.startswith("old "):
        raise BadRequest("malformed request: the first line must be 'old <size>'")
    if len(proof_lines) > MAX_PROOF_LINES:
        raise BadRequest(f"malformed request: {len(proof_lines)} proof lines, at most {MAX_PROOF_LINES}")
    try:
        old_size = parse_decimal(first[4:], "old size", merkle.MAX_TREE_SIZE)
        proof = parse_proof(proof_lines)
        note = parse_note(note_bytes, MAX_CHECKPOINT_NOTE_SIZE)
        checkpoint = parse_checkpoint(note.text)
    except MalformedError as exc:
        raise BadRequest(f"malformed request: {exc}") from None
    if checkpoint.size > merkle.MAX_TREE_SIZE:  # DESIGN.md: sizes stay below 2^63
        raise BadRequest(f"malformed request: checkpoint size {checkpoint.size} is not below 2^63")
    return AddCheckpoint(old_size, proof, note_bytes, checkpoint, note)


def parse_proof(lines: list[str]) -> tuple[bytes, ...]:
    """The consistency-proof lines, each one canonical base64 hash: one C call a line, and the message naming the
    faulty line built only for a line that fails (issue 20: an advance request carries about 7 of them)."""
    proof: list[bytes] = []
    for line in lines:
        item = canonical_b64(line)
        if item is None or len(item) != HASH_SIZE:  # the general path names the line and its fault
            return tuple(parse_hash_b64(line, f"proof line {i + 1}") for i, line in enumerate(lines))
        proof.append(item)
    return tuple(proof)


# --- the checks, in tlog-witness order (FORMATS.md §e, steps 2-8) ---------------


def verify_log_signature(request: AddCheckpoint, trusted: Mapping[str, Sequence[Verifier]]) -> OpenedNote:
    """Steps 2-3: the origin must be configured (404) and signed by one of its keys, none failing (403)."""
    origin = request.checkpoint.origin
    verifiers = trusted.get(origin)
    if not verifiers:
        raise UnknownLog(f"unknown log: origin {origin[:200]!r} is not configured at this witness")
    try:
        return open_parsed_note(request.note, verifiers)
    except SignatureError as exc:
        raise BadSignature(f"invalid signature: {exc}") from None
    except UnverifiedError:
        raise BadSignature(f"invalid signature: no valid signature by a key of log {origin[:200]!r}") from None


def check_update(request: AddCheckpoint, stored: TreeHead | None) -> None:
    """Steps 4-8: may the stored tree head (None: never cosigned, size 0) move to the checkpoint?

    Raises BadRequest (old > size), Conflict (old ≠ stored size) or BadProof (no
    consistency, including a second root for a size already cosigned).
    """
    checkpoint, old = request.checkpoint, request.old_size
    if old > checkpoint.size:
        raise BadRequest(f"old size {old} is larger than the checkpoint size {checkpoint.size}")
    known_size = stored.size if stored is not None else 0
    if old != known_size:
        raise Conflict(known_size)
    if checkpoint.size == 0 and checkpoint.root != merkle.EMPTY_ROOT:
        raise BadProof("bad checkpoint: a tree of size 0 must have the empty tree's root")
    if old == 0 or stored is None:  # nothing to prove from the empty tree; the proof must be empty
        if request.proof:
            raise BadProof("bad consistency proof: old size 0 needs an empty proof")
        return
    if old == checkpoint.size and checkpoint.root != stored.root:
        raise BadProof(f"conflicting root: size {old} was already cosigned with a different root (a fork)")
    try:
        merkle.verify_consistency(old, checkpoint.size, stored.root, checkpoint.root, request.proof)
    except ProofError as exc:
        raise BadProof(f"bad consistency proof: {exc}") from None


def cosign(opened: OpenedNote, signers: Sequence[Signer], sent: bytes | None = None) -> Cosigned:
    """Cosign the checkpoint text (tlog-cosignature: timestamped, type 0x04 for Ed25519).

    The kept note carries only the log signatures that verified, plus ours:
    unknown lines sent by the client are not ours to republish. `sent`, the
    note as the request carried it: when every line of it verified, it is those
    very bytes (a verified line's base64 is canonical, so it prints back the
    same), and the kept note is `sent` and our lines, not the note encoded again.
    """
    lines = tuple(signature_for(opened.text, signer).line for signer in signers)
    if sent is not None and len(opened.verified) == len(opened.note.signatures):
        return Cosigned(lines, sent + "".join(lines).encode())
    log_lines = "".join(signature.line for signature, _ in opened.verified)
    return Cosigned(lines, (opened.text + "\n" + log_lines + "".join(lines)).encode())
