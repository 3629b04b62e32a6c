"""QR links: one URL a phone camera opens, carrying an entry reference (online form) or a whole proof bundle
(offline form) in the URL fragment, which a browser never sends to a server.

    <verifier URL>#TL1:<base43 payload>

In the QR code the part up to and including `#` is a byte-mode segment and the rest an alphanumeric-mode
segment (ISO/IEC 18004 §7.4.4: 11 bits per 2 characters instead of 16). The base43 alphabet is the QR
alphanumeric set less space and `%`, the two characters that are not literal in a URL fragment (RFC 3986 §3.5):

    0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ$*+-./:

base43 (shaped after RFC 9285 base45): each 2 bytes [a, b] become n = a*256 + b written as 3 digits c, d, e
with n = c + d*43 + e*43^2; a last odd byte becomes 2 digits the same way. A digit triple over 65535 (or pair
over 255) is refused, so each payload has exactly one text.

Payload (version 1; varints are minimal unsigned LEB128, str8 is a one-byte length then UTF-8):

    flags(1)                    bit 0 offline (a bundle), bit 1 paper fields, bit 2 origin written;
                                other bits must be 0
    [paper fields body]         bit 1: salt(16) count(1) (str8 name, str8 value)... (tlogcore.paperfields)
    online form:
        [document(32)]          absent with paper fields: the document is SHA-256 of the fields
        index(varint)
    offline form (an `issue` statement and the checkpoint that includes it):
        [origin(str8)]          bit 2; absent means the one log of the verifier's trust policy
        time(varint) signer name(str8) signer key(32)
        [document(32)]          absent with paper fields
        ref(str8, empty = absent)
        statement signature(64)
        index(varint) proof count(1) proof hashes(32 each)
        size(varint)            the checkpoint's tree size; its root is recomputed from the inclusion proof
        log signature(64)       key name = origin, key ID from the trust policy
        cosignature count(1), each: key ID(4) time(varint) Ed25519 signature(64)   (cosignature/v1, 0x04)

What the verifier already holds (origin, key names) or can recompute (the root, key IDs) is left out. The
decoded bundle is the very tlog-proof bundle (tlogcore.bundle) it stands for and is verified as any other:
a wrong root makes the log signature fail, so dropping it costs no security.
"""

from collections.abc import Collection
from dataclasses import dataclass

from tlogcore.bundle import TlogProof
from tlogcore.checkpoint import MAX_CHECKPOINT_NOTE_SIZE, Checkpoint, parse_checkpoint
from tlogcore.encoding import HASH_SIZE, MAX_INT64, Reader, put_str8, put_uvarint
from tlogcore.errors import MalformedError
from tlogcore.keys import Ed25519Verifier
from tlogcore.merkle import leaf_hash, root_from_inclusion_proof
from tlogcore.note import Note, Signature, parse_note
from tlogcore.paperfields import PaperFields, read_paper_fields
from tlogcore.policy import Policy
from tlogcore.statement import ISSUE, Statement, parse_statement, parse_statement_key

FORM = "a QR link"  # named in errors from put_str8

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ$*+-./:"
PREFIX = "TL1:"
OFFLINE, PAPER, ORIGIN = 1, 2, 4
MAX_PAYLOAD = 4096  # a version-40 QR code holds under 3 KB anyway
COSIGNATURE_BLOB = 4 + 8 + 64


# --- base43 ------------------------------------------------------------------------------------------------


def base43_encode(data: bytes) -> str:
    out = []
    for at in range(0, len(data), 2):
        chunk = data[at : at + 2]
        n = int.from_bytes(chunk, "big")
        digits = 3 if len(chunk) == 2 else 2
        for _ in range(digits):
            n, digit = divmod(n, 43)
            out.append(ALPHABET[digit])
    return "".join(out)


def base43_decode(text: str) -> bytes:
    if len(text) % 3 == 1:
        raise MalformedError("base43 text has a stray last character")
    if any(c not in ALPHABET for c in text):
        raise MalformedError("base43 text has a character outside 0-9 A-Z $ * + - . / :")
    out = bytearray()
    for at in range(0, len(text), 3):
        chunk = text[at : at + 3]
        n = sum(ALPHABET.index(c) * 43**k for k, c in enumerate(chunk))
        size = 2 if len(chunk) == 3 else 1
        if n >= 256**size:
            raise MalformedError("base43 group is out of range")
        out += n.to_bytes(size, "big")
    return bytes(out)


# --- the payload -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cosig:
    key_id: int
    time: int
    signature: bytes


@dataclass(frozen=True)
class OfflineParts:
    """The bundle, less what the verifier holds or recomputes."""

    origin: str | None
    statement: Statement  # its origin is the placeholder "-" until resolved against a policy
    statement_signature: bytes
    index: int
    proof: tuple[bytes, ...]
    size: int
    log_signature: bytes
    cosignatures: tuple[Cosig, ...]


@dataclass(frozen=True)
class QrPayload:
    paper: PaperFields | None
    document: bytes | None  # None with paper fields (it is paper.document)
    index: int
    offline: OfflineParts | None

    @property
    def document_hash(self) -> bytes:
        if self.paper is not None:
            return self.paper.document
        if self.document is None:
            raise MalformedError("QR payload names no document")
        return self.document


def online_payload(document: bytes, index: int, paper: PaperFields | None = None) -> bytes:
    """The online form: which entry, about which document (or which paper fields)."""
    if paper is not None and paper.document != document:
        raise MalformedError("the paper fields do not hash to the document")
    if not 0 <= index <= MAX_INT64 or len(document) != HASH_SIZE:
        raise MalformedError("online QR payload: bad index or document hash")
    if paper is not None:
        return bytes([PAPER]) + paper.body() + put_uvarint(index)
    return bytes([0]) + document + put_uvarint(index)


def offline_payload(
    bundle: TlogProof,
    paper: PaperFields | None = None,
    write_origin: bool = False,
    cosigners: Collection[int] | None = None,
) -> bytes:
    """The offline form of a bundle of an `issue` statement. `cosigners`: key IDs of the cosignatures to keep
    (None: all); `write_origin`: for a verifier whose policy trusts several logs."""
    if bundle.extra is None:
        raise MalformedError("bundle carries no statement")
    statement = parse_statement(bundle.extra)
    if statement.kind != ISSUE or statement.reason is not None or statement.document is None:
        raise MalformedError("only an issue statement goes into an offline QR link")
    if paper is not None and paper.document != statement.document:
        raise MalformedError("the paper fields do not hash to the statement's document")
    note = parse_note(bundle.checkpoint, MAX_CHECKPOINT_NOTE_SIZE)
    checkpoint = parse_checkpoint(note.text)
    if checkpoint.origin != statement.origin or checkpoint.extensions or note.to_bytes() != bundle.checkpoint:
        raise MalformedError("checkpoint is not canonical, has extensions, or is for another log")
    flags = OFFLINE | (PAPER if paper else 0) | (ORIGIN if write_origin else 0)
    signer = parse_statement_key(statement.signer, "statement signer")
    out = bytearray([flags])
    out += paper.body() if paper else b""
    out += put_str8(statement.origin, FORM) if write_origin else b""
    out += put_uvarint(statement.time) + put_str8(signer.name, FORM) + signer.material
    out += b"" if paper else statement.document
    out += put_str8(statement.ref or "", FORM) + parse_note(bundle.extra).signatures[0].signature
    out += put_uvarint(bundle.index) + bytes([len(bundle.proof)]) + b"".join(bundle.proof)
    out += put_uvarint(checkpoint.size) + _log_signature(note, checkpoint.origin)
    kept = [s for s in note.signatures if s.name != checkpoint.origin and len(s.signature) == COSIGNATURE_BLOB - 4]
    kept = [s for s in kept if cosigners is None or s.key_id in cosigners]
    out.append(len(kept))
    for cosig in kept:
        stamp = int.from_bytes(cosig.signature[:8], "big")
        out += cosig.key_id.to_bytes(4, "big") + put_uvarint(stamp) + cosig.signature[8:]
    return bytes(out)


def _log_signature(note: Note, origin: str) -> bytes:
    found = [s.signature for s in note.signatures if s.name == origin and len(s.signature) == 64]
    if len(found) != 1:
        raise MalformedError("the checkpoint must carry exactly one Ed25519 log signature")
    return found[0]


def decode_payload(data: bytes) -> QrPayload:
    """Strict decoding of a payload (no trust policy needed)."""
    if not data or len(data) > MAX_PAYLOAD:
        raise MalformedError("QR payload is empty or too large")
    reader = Reader(data)
    flags = reader.byte("QR flags")
    if flags & ~(OFFLINE | PAPER | ORIGIN) or (flags & ORIGIN and not flags & OFFLINE):
        raise MalformedError("QR payload has unknown flags (a newer version?)")
    paper = read_paper_fields(reader) if flags & PAPER else None
    if not flags & OFFLINE:
        document = None if paper else reader.take(HASH_SIZE, "document")
        index = reader.uvarint("index", MAX_INT64)
        reader.done("QR payload")
        return QrPayload(paper, document, index, None)
    origin = reader.str8("origin") if flags & ORIGIN else None
    time = reader.uvarint("statement time", MAX_INT64)
    signer = Ed25519Verifier(reader.str8("signer name"), reader.take(32, "signer key"))
    document = paper.document if paper else reader.take(HASH_SIZE, "document")
    ref = reader.str8("ref") or None
    statement = Statement(origin or "-", ISSUE, signer.vkey, time, document=document, ref=ref)
    statement_signature = reader.take(64, "statement signature")
    index = reader.uvarint("index", MAX_INT64)
    proof = tuple(reader.take(HASH_SIZE, "proof hash") for _ in range(reader.byte("proof count")))
    size = reader.uvarint("tree size", MAX_INT64)
    log_signature = reader.take(64, "log signature")
    cosigs = []
    for _ in range(reader.byte("cosignature count")):
        key_id = reader.uint(4, "cosignature key ID")
        stamp = reader.uvarint("cosignature time", MAX_INT64)
        cosigs.append(Cosig(key_id, stamp, reader.take(64, "cosignature")))
    reader.done("QR payload")
    parts = OfflineParts(origin, statement, statement_signature, index, proof, size, log_signature, tuple(cosigs))
    return QrPayload(paper, None if paper else document, index, parts)


def to_bundle(parts: OfflineParts, policy: Policy) -> TlogProof:
    """Rebuild the tlog-proof bundle, taking the origin and key names from `policy` and the root from the proof.
    Cosignatures by keys the policy does not know are left out: they could not count anyway."""
    if parts.origin is None and len({log.name for log in policy.logs}) != 1:  # one origin may have several keys
        raise MalformedError("the QR code names no log and the trust policy has several")
    origin = parts.origin if parts.origin is not None else policy.logs[0].name
    keys = policy.log_keys_for(origin)
    s = parts.statement
    statement = Statement(origin, ISSUE, s.signer, s.time, document=s.document, ref=s.ref)
    signer = statement.signer_verifier
    extra = Note(statement.text, (Signature(signer.name, signer.key_id, parts.statement_signature),)).to_bytes()
    root = root_from_inclusion_proof(leaf_hash(extra), parts.index, parts.size, parts.proof)
    text = Checkpoint(origin, parts.size, root).text
    # The code leaves out the log key's ID: after a rotation the policy lists both keys, so take the one whose
    # signature verifies (the first if none does; the bundle then fails as any tampered one).
    log = next((key for key in keys if key.verify(text.encode(), parts.log_signature)), keys[0])
    signatures = [Signature(origin, log.key_id, parts.log_signature)]
    witnesses = {w.key_id: w for w in policy.witnesses.values()}
    for cosig in parts.cosignatures:
        if cosig.key_id in witnesses:
            blob = cosig.time.to_bytes(8, "big") + cosig.signature
            signatures.append(Signature(witnesses[cosig.key_id].name, cosig.key_id, blob))
    checkpoint = Note(text, tuple(signatures)).to_bytes()
    return TlogProof(parts.index, parts.proof, checkpoint, extra)


# --- the URL -----------------------------------------------------------------------------------------------


def link_url(verifier_url: str, payload: bytes) -> str:
    """`verifier_url` is the page's URL without a fragment, e.g. https://log.example.org/verify."""
    if "#" in verifier_url or not verifier_url.startswith(("https://", "http://")):
        raise MalformedError("the verifier URL must be an http(s) URL without a fragment")
    return f"{verifier_url}#{PREFIX}{base43_encode(payload)}"


def qr_segments(url: str) -> list[tuple[str, str]]:
    """The URL as QR segments: the prefix up to `#` in byte mode, the fragment in alphanumeric mode."""
    head, sep, fragment = url.partition("#")
    if not sep or not fragment.startswith(PREFIX):
        raise MalformedError("not a QR link URL")
    return [(head + "#", "byte"), (fragment, "alphanumeric")]


def split_link(url: str) -> tuple[str, bytes]:
    """The verifier URL and the payload bytes of a QR link URL."""
    head, sep, fragment = url.strip().partition("#")
    if not sep or not fragment.startswith(PREFIX) or not head.startswith(("https://", "http://")):
        raise MalformedError(f"not a verification link: want <verifier URL>#{PREFIX}<code>")
    return head, base43_decode(fragment[len(PREFIX) :])
