"""The `log-key` statement: a log announces, in itself, that a new key signs its checkpoints (docs/thirty-years.md).

A signed note (c2sp.org/signed-note@v1.0.0) whose text is, line by line, in this order:

    tlog-log-key/v1
    log <origin>                   the log (both keys are named after it: the log stays the same log)
    old <vkey>                     the log key until now
    new <vkey>                     the log key from now on
    registry <vkey>                the log's registry key
    time <POSIX seconds>           when the operator made the statement
    from <N>                       every checkpoint of tree size >= N carries a signature by `new`
    until <M>                      the overlap: checkpoints of size N..M-1 carry `old`'s signature too; none of
                                   size >= M does (M >= N; M = N: no overlap)

followed by exactly two signature lines: first by `old`, then by `registry`. Example text:

    tlog-log-key/v1
    log example.gov.kh/diplomas
    old example.gov.kh/diplomas+1a2b3c4d+AQ...
    new example.gov.kh/diplomas+5e6f7a8b+AQ...
    registry example.gov.kh/diplomas/registry+0c0d0e0f+AQ...
    time 1780000000
    from 1048577
    until 1049577

The old key vouches for its successor (so a verifier that trusts only the old key learns the new one from the
log), and the registry key confirms it (a stolen log key alone cannot hand the log over). The log appends the
statement as an ordinary entry at an index below `from`, so the first tree the new key signs already holds it,
inside the cosigned tree where monitors see it. Its first line differs from `tlog-statement/v1` and
`tlog-index-root/v1`, so no entry can be read as two kinds. Numbers are canonical decimals (encoding.py).
"""

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from tlogcore.checkpoint import Checkpoint
from tlogcore.encoding import MAX_INT64, parse_decimal
from tlogcore.errors import MalformedError, SignatureError
from tlogcore.keys import Signer, Verifier
from tlogcore.merkle import leaf_hash, verify_inclusion
from tlogcore.note import parse_note, sign_note
from tlogcore.statement import parse_statement_key
from tlogcore.vkeys import LOG_KEYS, parse_key_for

HEADER = "tlog-log-key/v1"
FIELDS = ("log", "old", "new", "registry", "time", "from", "until")
MAX_LOG_KEY_SIZE = 2048  # the text is about 450 bytes; two signature lines add about 200
PREFIX = (HEADER + "\n").encode()


def is_log_key(data: bytes) -> bool:
    """A `tlog-log-key/v1` entry (its first line differs from every other kind's)."""
    return data.startswith(PREFIX)


@dataclass(frozen=True)
class LogKeyRotation:
    origin: str
    old: str  # vkey
    new: str  # vkey
    registry: str  # vkey
    time: int
    start: int  # "from": the first tree size the new key signs
    until: int  # the first tree size the old key no longer signs

    kind = "log-key"  # beside the statement kinds: names no document; the sequencer replays it like a registry change
    document = None

    def __post_init__(self) -> None:
        old, new = self.old_verifier, self.new_verifier
        if old.name != self.origin or new.name != self.origin:
            raise MalformedError(f"log-key: both keys must be named after the log {self.origin[:60]!r}")
        if (old.key_type, old.material) == (new.key_type, new.material):
            raise MalformedError("log-key: the new key is the old key")
        parse_statement_key(self.registry, "log-key registry")
        if not 0 < self.time <= MAX_INT64:
            raise MalformedError("log-key time must be positive POSIX seconds")
        if not 0 < self.start <= self.until <= MAX_INT64:
            raise MalformedError("log-key sizes must satisfy 0 < from <= until <= 2^63-1")

    @property
    def old_verifier(self) -> Verifier:
        return parse_key_for(self.old, LOG_KEYS, "log-key old")

    @property
    def new_verifier(self) -> Verifier:
        return parse_key_for(self.new, LOG_KEYS, "log-key new")

    @property
    def text(self) -> str:
        values = (self.origin, self.old, self.new, self.registry, self.time, self.start, self.until)
        return HEADER + "\n" + "".join(f"{name} {value}\n" for name, value in zip(FIELDS, values, strict=True))


def _parse_text(text: str) -> LogKeyRotation:
    lines = text[:-1].split("\n") if text.endswith("\n") else []
    if len(lines) != 1 + len(FIELDS) or lines[0] != HEADER:
        raise MalformedError(f"log-key statement must be {HEADER!r} followed by the lines {', '.join(FIELDS)}")
    values = []
    for name, line in zip(FIELDS, lines[1:], strict=True):
        key, sep, value = line.partition(" ")
        if key != name or not sep:
            raise MalformedError(f"log-key line {line[:40]!r} is not the {name!r} line")
        values.append(value)
    origin, old, new, registry, time, start, until = values
    statement = LogKeyRotation(
        origin=origin,
        old=old,
        new=new,
        registry=registry,
        time=parse_decimal(time, "log-key time", MAX_INT64),
        start=parse_decimal(start, "log-key from", MAX_INT64),
        until=parse_decimal(until, "log-key until", MAX_INT64),
    )
    if statement.text != text:
        raise MalformedError("log-key statement is not in canonical form")
    return statement


def sign_log_key_rotation(statement: LogKeyRotation, old_log_key: Signer, registry_key: Signer) -> bytes:
    """The signed statement bytes, as the log appends them: signed by the old log key, then the registry key."""
    if old_log_key.verifier().vkey != statement.old:
        raise ValueError("the first signing key is not the statement's old log key")
    if registry_key.verifier().vkey != statement.registry:
        raise ValueError("the second signing key is not the statement's registry key")
    return sign_note(statement.text, [old_log_key, registry_key])


def parse_log_key_rotation(data: bytes) -> LogKeyRotation:
    """Parse strictly and check both signatures against the keys the statement names.

    Whether `registry` is the log's registry key and `old` a key the caller trusts is the caller's check.
    """
    note = parse_note(data, MAX_LOG_KEY_SIZE)
    statement = _parse_text(note.text)
    if note.to_bytes() != data:
        raise MalformedError("log-key statement is not in canonical form")
    signers = (statement.old_verifier, parse_statement_key(statement.registry, "log-key registry"))
    if len(note.signatures) != len(signers):
        raise MalformedError("a log-key statement carries exactly two signatures: the old log key's, the registry's")
    for signature, verifier in zip(note.signatures, signers, strict=True):
        if (signature.name, signature.key_id) != (verifier.name, verifier.key_id):
            raise SignatureError("log-key statement is not signed by its old log key then its registry key")
        if not verifier.verify(note.text.encode(), signature.signature):
            raise SignatureError(f"signature by {verifier.name} ({verifier.key_id:08x}) does not verify")
    return statement


def proven_rotations(
    entries: Sequence[tuple[int, bytes, Sequence[bytes]]], checkpoint: Checkpoint
) -> list[LogKeyRotation]:
    """The log-key statements a log listed as (index, statement, inclusion proof), each proven included in the
    trusted `checkpoint` (RFC 9162 §2.1.3.2), signed as the format says, and of this log; in log order."""
    rotations = []
    for index, data, proof in entries:
        verify_inclusion(leaf_hash(data), index, checkpoint.size, list(proof), checkpoint.root)
        rotation = parse_log_key_rotation(data)
        if rotation.origin != checkpoint.origin:
            raise MalformedError(f"the log listed, as entry {index}, a key rotation of another log")
        rotations.append(rotation)
    return rotations


@dataclass(frozen=True)
class KeyRule:
    """Which log keys a checkpoint of one tree size must and must not carry, after the announced rotations."""

    required: str  # vkey whose signature the checkpoint must carry
    allowed: frozenset[str]  # vkeys that may sign it (the required one and, during an overlap, the old one)


def check_chain(rotations: Sequence[LogKeyRotation]) -> None:
    """Rotations in log order form one chain: each starts from the key the one before it handed over to."""
    for before, after in itertools.pairwise(rotations):
        if after.origin != before.origin or after.old != before.new or after.start < before.until:
            raise MalformedError("log-key statements do not form one chain (old = the previous new, in size order)")


def key_rule(first_key: str, rotations: Sequence[LogKeyRotation], size: int) -> KeyRule:
    """The keys for a checkpoint of `size`: the newest rotation whose `from` it reached decides (§ the format above).

    `first_key` is the key the log started with; `rotations` are the announcements, in log order, already checked
    (signatures, inclusion in a trusted tree, `check_chain`).
    """
    check_chain(rotations)
    if rotations and rotations[0].old != first_key:
        raise MalformedError("the first log-key statement does not start from the log's first key")
    rule = KeyRule(first_key, frozenset({first_key}))
    for rotation in rotations:
        if size < rotation.start:
            break
        overlap = {rotation.old} if size < rotation.until else set()
        rule = KeyRule(rotation.new, frozenset({rotation.new, *overlap}))
    return rule
