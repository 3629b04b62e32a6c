"""Offline proof bundles: c2sp.org/tlog-proof@v1, and a compact binary form of it for QR codes.

Text form (tlog-proof v1; our bundle puts the signed statement, the leaf
itself, in `extra`, so the leaf hash is SHA-256(0x00 || extra)):

    c2sp.org/tlog-proof@v1
    extra <base64 signed statement>
    index <leaf index>
    <base64 hash>...            inclusion proof, leaf side first
    <empty line>
    <signed checkpoint, verbatim, with its cosignatures>

Binary form (our extension, for QR codes; same content, so it decodes to the
very same text bundle and is verified the same way). Integers are unsigned
LEB128 varints (minimal); `str8` is a one-byte length then UTF-8; all of it
must be consumed and must re-encode to the same bytes:

    "TL" 0x01                   magic and version
    kind(1) time(varint) origin(str8)                statement fields...
    signer name(str8) signer key(32)                  Ed25519 keys: BINARY_KEY's key_size
    document(32) | issuer name(str8) issuer key(32)  by kind
    ref(str8, empty = absent) reason(str8, empty = absent)
    statement signature(64)                          BINARY_KEY's signature_size
    index(varint) proof count(1) proof hashes(32 each)
    size(varint) root(32) extension count(1) extensions(str8 each)
    signature count(1), each: key name(str8, empty = the origin) blob length(varint) blob

The checkpoint's origin is the statement's, so it is written once.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from tlogcore.checkpoint import MAX_CHECKPOINT_NOTE_SIZE, Checkpoint, parse_checkpoint
from tlogcore.encoding import (
    HASH_SIZE,
    MAX_INT64,
    Reader,
    b64decode,
    b64encode,
    check_hash,
    decode_utf8,
    parse_decimal,
    parse_hash_b64,
    put_str8,
    put_uvarint,
)
from tlogcore.errors import MalformedError, ProofError
from tlogcore.keys import Ed25519Verifier
from tlogcore.merkle import leaf_hash, verify_consistency, verify_inclusion
from tlogcore.note import Note, Signature, parse_note
from tlogcore.policy import Policy, TrustedCheckpoint
from tlogcore.statement import DOCUMENT_KINDS, KINDS, Statement, parse_statement, parse_statement_key

FORM = "the binary form"  # named in errors from put_str8

HEADER = "c2sp.org/tlog-proof@v1"
MAX_PROOF_HASHES = 63
MAX_BUNDLE_SIZE = 128 * 1024
BINARY_MAGIC = b"TL\x01"
# Version 1 of the binary form carries the statement keys of one algorithm, with sizes fixed by its verifier
# type; a second issuer algorithm needs a version with a key type byte (FORMATS.md).
BINARY_KEY = Ed25519Verifier
KEY_SIZE: int = Ed25519Verifier.key_size or 0
SIGNATURE_SIZE: int = Ed25519Verifier.signature_size or 0


@dataclass(frozen=True)
class TlogProof:
    index: int
    proof: tuple[bytes, ...]
    checkpoint: bytes  # the signed checkpoint note, verbatim
    extra: bytes | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.index <= MAX_INT64:
            raise MalformedError("proof index is out of range")
        if len(self.proof) > MAX_PROOF_HASHES:
            raise MalformedError(f"more than {MAX_PROOF_HASHES} proof hashes")
        for item in self.proof:
            check_hash(item, "proof hash")

    def to_text(self) -> bytes:
        lines = [HEADER]
        if self.extra is not None:
            lines.append(f"extra {b64encode(self.extra)}")
        lines.append(f"index {self.index}")
        lines.extend(b64encode(h) for h in self.proof)
        return ("".join(line + "\n" for line in lines) + "\n").encode() + self.checkpoint


def parse_tlog_proof(data: bytes) -> TlogProof:
    """Parse the text form strictly; the checkpoint after the blank line is kept verbatim."""
    if len(data) > MAX_BUNDLE_SIZE:
        raise MalformedError(f"proof is more than {MAX_BUNDLE_SIZE} bytes")
    head, sep, checkpoint = data.partition(b"\n\n")
    if not sep or not checkpoint:
        raise MalformedError("proof has no blank line before the checkpoint")
    lines = decode_utf8(head, "proof").split("\n")
    if lines[0] != HEADER:
        raise MalformedError(f"proof does not start with {HEADER!r}")
    lines = lines[1:]
    extra = None
    if lines and lines[0].startswith("extra "):
        extra = b64decode(lines.pop(0)[len("extra ") :], "proof extra")
    if not lines or not lines[0].startswith("index "):
        raise MalformedError("proof has no index line")
    index = parse_decimal(lines.pop(0)[len("index ") :], "proof index", MAX_INT64)
    proof = tuple(parse_hash_b64(line, "proof hash") for line in lines)
    return TlogProof(index, proof, checkpoint, extra)


@dataclass(frozen=True)
class VerifiedBundle:
    statement: Statement
    leaf: bytes
    index: int
    trusted: TrustedCheckpoint

    @property
    def checkpoint(self) -> Checkpoint:
        return self.trusted.checkpoint


def verify_bundle(
    bundle: TlogProof, policy: Policy, now: float | None = None, document: bytes | None = None
) -> VerifiedBundle:
    """Check everything a bundle claims, trusting only `policy` (tlog-proof §Verification).

    The statement's own signature; the checkpoint's log signature and witness
    quorum; that the statement was made for that log; the inclusion proof; and,
    given `document` (its SHA-256), that the statement is about it.
    """
    if bundle.extra is None:
        raise MalformedError("bundle carries no statement")
    statement = parse_statement(bundle.extra)
    trusted = policy.verify_checkpoint(bundle.checkpoint, now)
    if statement.origin != trusted.checkpoint.origin:
        raise ProofError(f"statement is for log {statement.origin!r}, checkpoint is {trusted.checkpoint.origin!r}")
    leaf = leaf_hash(bundle.extra)
    verify_inclusion(leaf, bundle.index, trusted.checkpoint.size, bundle.proof, trusted.checkpoint.root)
    if document is not None and statement.document != document:
        raise ProofError("the statement is about another document")
    return VerifiedBundle(statement, leaf, bundle.index, trusted)


# --- refresh (docs/thirty-years.md, "Refresh") ---------------------------------


class InconsistentLogError(ProofError):
    """The bundle's checkpoint and the log's newest are not one append-only history: the log misbehaved.

    Carries both checkpoints and the failing proof, so anyone can re-check it (STYLE.md §6)."""

    def __init__(self, message: str, old: bytes, new: bytes, proof: Sequence[bytes]) -> None:
        super().__init__(message)
        self.old, self.new, self.proof = old, new, tuple(proof)


@dataclass(frozen=True)
class Refreshed:
    """A bundle re-anchored on a newer trusted checkpoint, and what it was re-anchored from."""

    bundle: TlogProof
    verified: VerifiedBundle  # the new bundle, verified
    previous: Checkpoint  # the checkpoint the old bundle carried

    @property
    def changed(self) -> bool:
        return self.previous.size != self.verified.checkpoint.size


def refresh_bundle(
    bundle: TlogProof,
    newest: bytes,
    consistency: Sequence[bytes],
    inclusion: Sequence[bytes],
    policy: Policy,
    now: float | None = None,
) -> Refreshed:
    """Move a verified bundle onto the log's newest checkpoint (tlog-proof §Verification, then RFC 9162 §2.1.4).

    The old bundle must verify under `policy.for_refresh()` (its own checkpoint, signed by the key of its time;
    the quorum is the newest's to meet); `newest` must verify under `policy`; `consistency` must prove the old
    tree a prefix of the newest (an old checkpoint that is not is InconsistentLogError, never a pass);
    `inclusion` must prove the same leaf at the same index in the newest tree. The result is a bundle no weaker
    than the old one: same statement, same index, a tree at least as large, today's quorum.
    """
    old = verify_bundle(bundle, policy.for_refresh(), now)
    new = policy.verify_checkpoint(newest, now)
    before, after = old.checkpoint, new.checkpoint
    if after.origin != before.origin:
        raise ProofError(f"the newest checkpoint is of log {after.origin!r}, the bundle's of {before.origin!r}")
    if after.size < before.size:
        raise InconsistentLogError(
            f"the log's newest checkpoint (size {after.size}) is smaller than the bundle's (size {before.size})",
            bundle.checkpoint,
            newest,
            consistency,
        )
    try:
        verify_consistency(before.size, after.size, before.root, after.root, consistency)
    except ProofError as exc:
        raise InconsistentLogError(
            f"the bundle's checkpoint (size {before.size}) is not a prefix of the log's newest "
            f"(size {after.size}): {exc}",
            bundle.checkpoint,
            newest,
            consistency,
        ) from exc
    refreshed = TlogProof(bundle.index, tuple(inclusion), newest, bundle.extra)
    return Refreshed(refreshed, verify_bundle(refreshed, policy, now), before)


# --- binary form -------------------------------------------------------------


def _key_fields(vkey: str) -> bytes:
    verifier = parse_statement_key(vkey, "key")
    if type(verifier) is not BINARY_KEY:
        raise MalformedError(f"the binary form v1 carries {BINARY_KEY.__name__} keys only: use the text bundle")
    return put_str8(verifier.name, FORM) + verifier.material


def _read_vkey(reader: Reader, what: str) -> str:
    name = reader.str8(what)
    return BINARY_KEY(name, reader.take(KEY_SIZE, what)).vkey


def to_binary(bundle: TlogProof) -> bytes:
    """Encode a bundle made of one of our statements and a canonical checkpoint note."""
    if bundle.extra is None:
        raise MalformedError("bundle carries no statement")
    statement = parse_statement(bundle.extra)
    if statement.continues is not None:  # a field the binary form (made for QR codes) does not carry
        raise MalformedError("a rotation (issuer-add that continues a key) has no binary bundle; use the text form")
    statement_note = parse_note(bundle.extra)
    out = bytearray(BINARY_MAGIC)
    out += bytes([KINDS.index(statement.kind)]) + put_uvarint(statement.time) + put_str8(statement.origin, FORM)
    out += _key_fields(statement.signer)
    out += statement.document if statement.document is not None else _key_fields(statement.issuer or "")
    out += put_str8(statement.ref or "", FORM) + put_str8(statement.reason or "", FORM)
    out += statement_note.signatures[0].signature
    out += put_uvarint(bundle.index) + bytes([len(bundle.proof)]) + b"".join(bundle.proof)
    note = parse_note(bundle.checkpoint, MAX_CHECKPOINT_NOTE_SIZE)
    checkpoint = parse_checkpoint(note.text)
    if checkpoint.origin != statement.origin or note.to_bytes() != bundle.checkpoint:
        raise MalformedError("checkpoint is not canonical or not for the statement's log")
    out += put_uvarint(checkpoint.size) + checkpoint.root
    out += bytes([len(checkpoint.extensions)]) + b"".join(put_str8(e, FORM) for e in checkpoint.extensions)
    out += bytes([len(note.signatures)])
    for signature in note.signatures:
        blob = signature.key_id.to_bytes(4, "big") + signature.signature
        name = "" if signature.name == checkpoint.origin else signature.name
        out += put_str8(name, FORM) + put_uvarint(len(blob)) + blob
    return bytes(out)


def from_binary(data: bytes) -> TlogProof:
    """Decode the binary form back into the text bundle it stands for; strict and canonical."""
    if len(data) > MAX_BUNDLE_SIZE:
        raise MalformedError("binary bundle is too large")
    reader = Reader(data)
    if reader.take(3, "magic") != BINARY_MAGIC:
        raise MalformedError("not a binary proof bundle (bad magic or version)")
    kind_index = reader.byte("statement kind")
    if kind_index >= len(KINDS):
        raise MalformedError("unknown statement kind")
    kind = KINDS[kind_index]
    time = reader.uvarint("statement time", MAX_INT64)
    origin = reader.str8("origin")
    signer = _read_vkey(reader, "signer")
    document = issuer = None
    if kind in DOCUMENT_KINDS:
        document = reader.take(HASH_SIZE, "document")
    else:
        issuer = _read_vkey(reader, "issuer")
    ref = reader.str8("ref") or None
    reason = reader.str8("reason") or None
    statement = Statement(origin, kind, signer, time, document, issuer, ref, reason)
    signer_verifier = statement.signer_verifier
    signature = reader.take(SIGNATURE_SIZE, "statement signature")
    statement_sig = Signature(signer_verifier.name, signer_verifier.key_id, signature)
    extra = Note(statement.text, (statement_sig,)).to_bytes()
    index = reader.uvarint("index", MAX_INT64)
    proof = tuple(reader.take(HASH_SIZE, "proof hash") for _ in range(reader.byte("proof count")))
    size = reader.uvarint("tree size")
    root = reader.take(HASH_SIZE, "root")
    extensions = tuple(reader.str8("extension") for _ in range(reader.byte("extension count")))
    checkpoint = Checkpoint(origin, size, root, extensions)
    signatures = []
    for _ in range(reader.byte("signature count")):
        name = reader.str8("signature name") or origin
        blob = reader.take(reader.uvarint("signature length", MAX_CHECKPOINT_NOTE_SIZE), "signature")
        if len(blob) < 5:
            raise MalformedError("signature is too short")
        signatures.append(Signature(name, int.from_bytes(blob[:4], "big"), blob[4:]))
    reader.done("binary bundle")
    bundle = TlogProof(index, proof, Note(checkpoint.text, tuple(signatures)).to_bytes(), extra)
    if to_binary(bundle) != data:
        raise MalformedError("binary bundle is not in canonical form")
    return bundle


def make_bundle(statement: bytes, index: int, proof: Sequence[bytes], checkpoint: bytes) -> TlogProof:
    return TlogProof(index, tuple(proof), checkpoint, statement)
