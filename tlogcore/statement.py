"""Statements: the log's leaves. A signed note whose text is, line by line, in this order:

    tlog-statement/v1
    log <origin>                   the log it is for (replay into another log fails)
    kind <issue|revoke|issuer-add|issuer-retire>
    signer <vkey>                  the key that signs this statement (tlogcore.vkeys.STATEMENT_KEYS)
    time <POSIX seconds>
    document <64 lowercase hex>    issue, revoke: the document's SHA-256
    issuer <vkey>                  issuer-add, issuer-retire: the issuer key concerned
    continues <vkey>               optional, issuer-add only: the registered key of the same issuer that this new
                                   key continues (rotation); the registry refuses a key name held by another issuer
    unsafe-from <index>            optional, issuer-retire only: the key was reported stolen; whatever it signed at
                                   this log index or later is flagged (tlogcore/status.py); decimal, canonical
    ref <text>                     optional: document number or type; an issuer's display name
    reason <text>                  optional, revoke and issuer-retire only

followed by exactly one signature line, by `signer`. Issue and revoke
statements are signed by an issuer key; the registry kinds by the log's
registry key. Carrying the signer's public key makes a statement checkable on
its own, offline; whether that key was allowed to write is the log's history
(DESIGN.md "Statements"). Text values are NFC-normalised UTF-8 (Khmer
included), 1..255 bytes, no control characters, no edge whitespace.
"""

import binascii
import functools
import re
import unicodedata
from dataclasses import dataclass

from tlogcore.encoding import MAX_INT64, parse_decimal, parse_hash_hex
from tlogcore.errors import MalformedError, SignatureError, TlogError
from tlogcore.keys import Signer, Verifier
from tlogcore.note import SIGNATURE_PREFIX, parse_note, sign_note
from tlogcore.vkeys import STATEMENT_KEYS, check_key_role, parse_verifier_key

HEADER = "tlog-statement/v1"
ISSUE, REVOKE, ISSUER_ADD, ISSUER_RETIRE = "issue", "revoke", "issuer-add", "issuer-retire"
DOCUMENT_KINDS = (ISSUE, REVOKE)
REGISTRY_KINDS = (ISSUER_ADD, ISSUER_RETIRE)
KINDS = DOCUMENT_KINDS + REGISTRY_KINDS
MAX_STATEMENT_SIZE = 8 * 1024  # DESIGN.md
MAX_TEXT_VALUE = 255


def check_text_value(value: str, what: str) -> str:
    size = len(value.encode())
    if not 1 <= size <= MAX_TEXT_VALUE:
        raise MalformedError(f"{what} must be 1..{MAX_TEXT_VALUE} bytes of UTF-8")
    if value != value.strip() or not _is_nfc(value):
        raise MalformedError(f"{what} must be NFC-normalised with no leading or trailing whitespace")
    if _has_control(value):
        raise MalformedError(f"{what} contains a control character")
    return value


def _is_nfc(value: str) -> bool:
    return value.isascii() or unicodedata.normalize("NFC", value) == value  # NFC leaves ASCII as it is


def _has_control(value: str) -> bool:
    """A character of category Cc, Cs, Zl or Zp. In ASCII only Cc occurs, and exactly those characters are what
    isprintable() refuses (0x00-0x1f, 0x7f): the common case is one call in C, not a loop (issue 20's profile)."""
    if value.isascii():
        return not value.isprintable()
    return any(unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp") for c in value)


def parse_statement_key(vkey: str, what: str) -> Verifier:
    """A key that may sign statements (an issuer's or the registry's): tlogcore.vkeys.STATEMENT_KEYS, exactly."""
    return check_key_role(_cached_vkey(vkey), STATEMENT_KEYS, what)


@functools.lru_cache(maxsize=256)
def _is_origin(origin: str) -> bool:
    """Cached: a log's statements all name it, and the loop over its characters cost a tenth of a parse."""
    return bool(origin) and "+" not in origin and not any(c.isspace() for c in origin)


@functools.lru_cache(maxsize=4096)
def _cached_vkey(vkey: str) -> Verifier:
    """Issuers sign many statements with one key: parse each vkey once (errors are not cached)."""
    return parse_verifier_key(vkey)


@dataclass(frozen=True)
class Statement:
    origin: str
    kind: str
    signer: str  # vkey
    time: int
    document: bytes | None = None  # SHA-256, for issue and revoke
    issuer: str | None = None  # vkey, for the registry kinds
    ref: str | None = None
    reason: str | None = None
    continues: str | None = None  # vkey, for issuer-add only: rotation within one issuer (tlogcore/registry.py)
    unsafe_from: int | None = None  # issuer-retire only: the key was stolen; entries at this index on are flagged

    def __post_init__(self) -> None:
        if not _is_origin(self.origin):
            raise MalformedError("statement origin must be a key name (no spaces, no '+')")
        if self.kind not in KINDS:
            raise MalformedError(f"unknown statement kind {self.kind[:20]!r}")
        parse_statement_key(self.signer, "statement signer")
        if not 0 < self.time <= MAX_INT64:
            raise MalformedError("statement time must be positive POSIX seconds")
        if (self.document is not None) != (self.kind in DOCUMENT_KINDS):
            raise MalformedError(f"issue and revoke statements, and only they, name a document ({self.kind})")
        if self.document is not None and len(self.document) != 32:
            raise MalformedError("document hash must be 32 bytes (SHA-256)")
        if (self.issuer is not None) != (self.kind in REGISTRY_KINDS):
            raise MalformedError(f"registry statements, and only they, name an issuer key ({self.kind})")
        if self.issuer is not None:
            parse_statement_key(self.issuer, "issuer key")
        if self.continues is not None:
            if self.kind != ISSUER_ADD:
                raise MalformedError(f"a {self.kind} statement continues no key")
            parse_statement_key(self.continues, "continued key")
        if self.unsafe_from is not None:
            if self.kind != ISSUER_RETIRE:
                raise MalformedError(f"a {self.kind} statement has no unsafe-from (only issuer-retire)")
            if not 0 <= self.unsafe_from <= MAX_INT64:
                raise MalformedError("unsafe-from must be a log index from 0 to 2^63-1")
        if self.ref is not None:
            check_text_value(self.ref, "ref")
        if self.reason is not None:
            if self.kind not in (REVOKE, ISSUER_RETIRE):
                raise MalformedError(f"a {self.kind} statement has no reason")
            check_text_value(self.reason, "reason")

    @property
    def signer_verifier(self) -> Verifier:
        return parse_statement_key(self.signer, "statement signer")

    @property
    def text(self) -> str:
        lines = [HEADER, f"log {self.origin}", f"kind {self.kind}", f"signer {self.signer}", f"time {self.time}"]
        if self.document is not None:
            lines.append(f"document {self.document.hex()}")
        if self.issuer is not None:
            lines.append(f"issuer {self.issuer}")
        if self.continues is not None:
            lines.append(f"continues {self.continues}")
        if self.unsafe_from is not None:
            lines.append(f"unsafe-from {self.unsafe_from}")
        if self.ref is not None:
            lines.append(f"ref {self.ref}")
        if self.reason is not None:
            lines.append(f"reason {self.reason}")
        return "".join(line + "\n" for line in lines)


def _checked_statement(
    *,
    origin: str,
    kind: str,
    signer: str,
    time: int,
    document: bytes | None,
    issuer: str | None,
    ref: str | None,
    reason: str | None,
    continues: str | None,
    unsafe_from: int | None,
) -> Statement:
    """`Statement(...)` for the fast paths: the same fields and the same checks (`__post_init__`), set as unpickling
    sets them. The frozen dataclass's `__init__` sets each field by `object.__setattr__`: 0.9 of its 2.1 µs (issue
    20, sixth round). tests/test_parse_fast_paths.py holds it to the constructor, field for field."""
    statement = object.__new__(Statement)
    statement.__dict__.update(
        origin=origin,
        kind=kind,
        signer=signer,
        time=time,
        document=document,
        issuer=issuer,
        ref=ref,
        reason=reason,
        continues=continues,
        unsafe_from=unsafe_from,
    )
    statement.__post_init__()
    return statement


def _statement_pattern(value: str, time: str, document: str) -> str:
    """The canonical text's lines in order, with `value` the pattern of a line's value, and `time` and `document`
    those of these two values."""
    return (
        re.escape(HEADER) + rf"\nlog ({value})\nkind ({value})\nsigner ({value})\ntime ({time})\n"
        rf"(?:document ({document})\n|issuer ({value})\n(?:continues ({value})\n)?(?:unsafe-from ({value})\n)?)"
        rf"(?:ref ({value})\n)?(?:reason ({value})\n)?"
    )


# The canonical text in one match (issue 20: splitting, a dict of fields and rebuilding the text to compare were a
# third of a parse). A match fixes the field order and spelling; the values are then checked exactly as below, and
# a time or document that passes its strict parser prints back as it was read, so the text is canonical. Anything
# else takes the general path, which names the fault.
_CANONICAL = re.compile(_statement_pattern(r"[^\n]*", r"[^\n]*", r"[^\n]*"))

# A whole signed statement in one match (issue 20, sixth round: splitting the note, then the text, was half of a
# parse): the canonical text with a time and document that need no parser of their own (canonical decimal below
# 10^18, lowercase hex), the blank line, and one signature line. Its text has no blank line of its own (each line
# starts with a key), so the note's last blank line is the one matched: parse_note would split it there. No class
# admits a control character, so the match is also parse_note's check for them. The signature is the one canonical
# base64 spelling of 68 bytes (RFC 4648 §3.5: the last character's two unused bits zero): a key ID and an Ed25519
# signature, the only statement key type (vkeys.STATEMENT_KEYS); any other length takes the general path.
_SIGNED = re.compile(
    _statement_pattern(r"[^\x00-\x1f]*", r"[1-9][0-9]{0,17}", r"[0-9a-f]{64}")
    + "\n"
    + re.escape(SIGNATURE_PREFIX)
    + r"([^ \x00-\x1f]+) ([A-Za-z0-9+/]{90}[AEIMQUYcgkosw048]=)\n"
)


# An issue or revoke statement's kind and document, read from its first six lines (issue 19: the status index reads
# every logged entry again, and a whole parse was a tenth of its CPU per document). Only for entries the log
# accepted: each passed parse_statement when it was submitted, so its lines are canonical and in the order
# `_statement_pattern` fixes, and a document statement begins exactly so (tests/test_parse_fast_paths.py).
_LOGGED_DOCUMENT = re.compile(
    (
        re.escape(HEADER)
        + rf"\nlog [^\n]*\nkind ({'|'.join(map(re.escape, DOCUMENT_KINDS))})\nsigner [^\n]*\ntime [^\n]*\n"
        + r"document ([0-9a-f]{64})\n"
    ).encode()
)


def logged_document(data: bytes) -> tuple[str, bytes] | None:
    """(kind, document) of a logged issue or revoke statement; None for any other entry (parse it then)."""
    match = _LOGGED_DOCUMENT.match(data)
    if match is None:
        return None
    return match.group(1).decode(), bytes.fromhex(match.group(2).decode())


def _parse_text(text: str) -> Statement:
    match = _CANONICAL.fullmatch(text)
    if match is None:
        return _parse_lines(text)
    origin, kind, signer, time, document, issuer, continues, unsafe_from, ref, reason = match.groups()
    return _checked_statement(
        origin=origin,
        kind=kind,
        signer=signer,
        time=parse_decimal(time, "statement time", MAX_INT64),
        document=parse_hash_hex(document, "document") if document is not None else None,
        issuer=issuer,
        ref=ref,
        reason=reason,
        continues=continues,
        unsafe_from=parse_decimal(unsafe_from, "unsafe-from", MAX_INT64) if unsafe_from is not None else None,
    )


def _parse_lines(text: str) -> Statement:
    """The general parse: any text, line by line; the fault named when it is not a canonical statement."""
    lines = text[:-1].split("\n") if text.endswith("\n") else []
    if len(lines) < 6 or lines[0] != HEADER:
        raise MalformedError(f"statement must start with {HEADER!r} and have at least 6 lines")
    fields: dict[str, str] = {}
    for line in lines[1:]:
        key, sep, value = line.partition(" ")
        if not sep or key in fields:
            raise MalformedError(f"statement line {line[:40]!r} is malformed or repeated")
        fields[key] = value
    document = fields.pop("document", None)
    unsafe_from = fields.pop("unsafe-from", None)
    statement = Statement(
        origin=fields.pop("log", ""),
        kind=fields.pop("kind", ""),
        signer=fields.pop("signer", ""),
        time=parse_decimal(fields.pop("time", ""), "statement time", MAX_INT64),
        document=parse_hash_hex(document, "document") if document is not None else None,
        issuer=fields.pop("issuer", None),
        ref=fields.pop("ref", None),
        reason=fields.pop("reason", None),
        continues=fields.pop("continues", None),
        unsafe_from=parse_decimal(unsafe_from, "unsafe-from", MAX_INT64) if unsafe_from is not None else None,
    )
    if fields:
        raise MalformedError(f"statement has unknown fields {sorted(fields)}")
    if statement.text != text:
        raise MalformedError("statement is not in canonical form (field order or spelling)")
    return statement


def sign_statement(statement: Statement, signer: Signer) -> bytes:
    """The signed statement bytes: the leaf as it will be stored, byte for byte."""
    if signer.verifier().vkey != statement.signer:
        raise ValueError("the signing key is not the statement's signer")
    return sign_note(statement.text, [signer])


def parse_statement(data: bytes, *, check_signature: bool = True) -> Statement:
    """Parse a signed statement strictly and check its signature against its own signer key.

    Raises MalformedError for anything non-canonical and SignatureError for a
    bad signature. Whether the signer may write to a log is the caller's check.
    `check_signature=False` keeps every structural check (canonical form, one
    signature line naming the signer) but skips the Ed25519 verification: for
    readers that only tally a log they do not audit signature by signature.
    """
    statement, verifier, text, signature = parse_signed_statement(data)
    if check_signature:
        require_signature(verifier, text, signature)
    return statement


Parsed = tuple[Statement, Verifier, bytes, bytes]  # the statement, its signer's key, the signed text, the signature


def parse_signed_statement(data: bytes) -> Parsed:
    """Every check of `parse_statement` but the Ed25519 verification, and what it verifies: for a caller that
    verifies elsewhere (the monitor, in another process: monitor/audit.py), with `require_signature`."""
    return _parse_signed(data) or _parse_note_and_text(data)


def require_signature(verifier: Verifier, text: bytes, signature: bytes) -> None:
    """SignatureError unless `signature` over `text` verifies with `verifier` (the last check of a statement)."""
    if not verifier.verify(text, signature):
        raise SignatureError(f"signature by {verifier.name} ({verifier.key_id:08x}) does not verify")


def _parse_signed(data: bytes) -> Parsed | None:
    """A canonical signed statement in one match (`_SIGNED`), or None: anything else, and anything this path would
    refuse, goes to `_parse_note_and_text`, which decides and names the fault (tests/test_parse_fast_paths.py)."""
    if len(data) > MAX_STATEMENT_SIZE:
        return None
    try:
        match = _SIGNED.fullmatch(data.decode())
    except UnicodeDecodeError:
        return None
    if match is None:
        return None
    origin, kind, signer, time, document, issuer, continues, unsafe_from, ref, reason, name, blob_b64 = match.groups()
    blob = binascii.a2b_base64(blob_b64)  # canonical, 68 bytes: the pattern admits no other spelling
    try:
        statement = _checked_statement(
            origin=origin,
            kind=kind,
            signer=signer,
            time=int(time),
            document=bytes.fromhex(document) if document is not None else None,
            issuer=issuer,
            ref=ref,
            reason=reason,
            continues=continues,
            unsafe_from=parse_decimal(unsafe_from, "unsafe-from", MAX_INT64) if unsafe_from is not None else None,
        )
        verifier = statement.signer_verifier
    except TlogError:
        return None
    if name != verifier.name or int.from_bytes(blob[:4], "big") != verifier.key_id:
        return None
    return statement, verifier, data[: data.rfind(b"\n\n") + 1], blob[4:]


def _parse_note_and_text(data: bytes) -> Parsed:
    """The general parse: the note, then its text; every fault named."""
    note = parse_note(data, MAX_STATEMENT_SIZE)
    statement = _parse_text(note.text)
    verifier = statement.signer_verifier
    if len(note.signatures) != 1:
        raise MalformedError("a statement carries exactly one signature")
    signature = note.signatures[0]
    if (signature.name, signature.key_id) != (verifier.name, verifier.key_id):
        raise SignatureError("statement is not signed by its signer key")
    if signature.noncanonical:  # the one way a note of one signature line can parse but not print back as `data`
        raise MalformedError("statement is not in canonical form")
    return statement, verifier, note.text.encode(), signature.signature
