"""The `index-root` statement: the log's signed word on its status index root, itself logged (docs/status-proofs.md §7).

A signed note (c2sp.org/signed-note@v1.0.0) whose text is, line by line, in this order:

    tlog-index-root/v1
    log <origin>                   the log whose entries the index is derived from
    signer <vkey>                  the log's registry key, which signs this statement
    time <POSIX seconds>           when the log computed the root
    size <N>                       the index covers exactly the entries [0, N) of this log
    root <base64 of 32 bytes>      the status index root (statusindex.py) after those N entries

followed by exactly one signature line, by `signer`. Version 2 (`tlog-index-root/v2`) adds one line after `root`:

    keys <base64 of 32 bytes>      the key index root (keystatus.py) after those N entries

so a verifier can prove which registry entries name an issuer key (a stolen-key report, docs/status-proofs.md
§12). A log states v2 roots from then on; a verifier reads v1 ones as before (no key index proven).

Example text of a v1 statement (without the signature line):

    tlog-index-root/v1
    log example.gov.kh/diplomas
    signer registry.example.gov.kh+1a2b3c4d+AQ...
    time 1780000000
    size 1048576
    root 47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=

The log appends it as an ordinary entry, so the root is inside the cosigned tree and as hard to equivocate as
the log itself, while checkpoints stay plain C2SP. Its first line differs from `tlog-statement/v1`, so no
entry can be read as both. Numbers are canonical decimals, base64 is canonical with padding (encoding.py).
"""

from dataclasses import dataclass

from tlogcore.encoding import MAX_INT64, b64encode, parse_decimal, parse_hash_b64
from tlogcore.errors import MalformedError, SignatureError
from tlogcore.keys import Ed25519Signer, Verifier
from tlogcore.note import parse_note, sign_note
from tlogcore.statement import parse_statement_key

HEADER = "tlog-index-root/v1"
HEADER_V2 = "tlog-index-root/v2"
FIELDS: tuple[str, ...] = ("log", "signer", "time", "size", "root")
FIELDS_V2: tuple[str, ...] = (*FIELDS, "keys")
PREFIXES = ((HEADER + "\n").encode(), (HEADER_V2 + "\n").encode())
MAX_INDEX_ROOT_SIZE = 1024  # the text is about 250 bytes; one signature line adds about 100


@dataclass(frozen=True)
class IndexRoot:
    origin: str
    signer: str  # vkey of the log's registry key
    time: int
    size: int  # the index covers entries [0, size)
    root: bytes
    keys: bytes | None = None  # the key index root (v2); None: a v1 statement, which states none

    def __post_init__(self) -> None:
        if not self.origin or any(c.isspace() for c in self.origin) or "+" in self.origin:
            raise MalformedError("index-root origin must be a key name (no spaces, no '+')")
        parse_statement_key(self.signer, "index-root signer")
        if not 0 < self.time <= MAX_INT64:
            raise MalformedError("index-root time must be positive POSIX seconds")
        if not 0 <= self.size <= MAX_INT64:
            raise MalformedError("index-root size must be in 0..2^63-1")
        if len(self.root) != 32:
            raise MalformedError("index-root root must be 32 bytes")
        if self.keys is not None and len(self.keys) != 32:
            raise MalformedError("index-root keys must be 32 bytes")

    kind = "index-root"  # beside the statement kinds: an entry names no document and changes no registry
    document = None

    @property
    def signer_verifier(self) -> Verifier:
        return parse_statement_key(self.signer, "index-root signer")

    @property
    def text(self) -> str:
        values = [self.origin, self.signer, str(self.time), str(self.size), b64encode(self.root)]
        header, fields = HEADER, FIELDS
        if self.keys is not None:
            header, fields = HEADER_V2, FIELDS_V2
            values.append(b64encode(self.keys))
        return header + "\n" + "".join(f"{name} {value}\n" for name, value in zip(fields, values, strict=True))


def is_index_root(data: bytes) -> bool:
    """Whether a logged entry is an index-root statement of either version (it names no document)."""
    return data.startswith(PREFIXES)


def _parse_text(text: str) -> IndexRoot:
    lines = text[:-1].split("\n") if text.endswith("\n") else []
    fields = FIELDS_V2 if lines and lines[0] == HEADER_V2 else FIELDS
    if len(lines) != 1 + len(fields) or lines[0] not in (HEADER, HEADER_V2):
        raise MalformedError(
            f"index-root must be {HEADER!r} or {HEADER_V2!r} followed by the lines {', '.join(FIELDS)}[, keys]"
        )
    values = []
    for name, line in zip(fields, lines[1:], strict=True):
        key, sep, value = line.partition(" ")
        if key != name or not sep:
            raise MalformedError(f"index-root line {line[:40]!r} is not the {name!r} line")
        values.append(value)
    origin, signer, time, size, root = values[:5]
    statement = IndexRoot(
        origin=origin,
        signer=signer,
        time=parse_decimal(time, "index-root time", MAX_INT64),
        size=parse_decimal(size, "index-root size", MAX_INT64),
        root=parse_hash_b64(root, "index-root root"),
        keys=parse_hash_b64(values[5], "index-root keys") if len(values) > 5 else None,
    )
    if statement.text != text:
        raise MalformedError("index-root is not in canonical form")
    return statement


def sign_index_root(statement: IndexRoot, signer: Ed25519Signer) -> bytes:
    """The signed statement bytes, as the log appends them."""
    if signer.verifier().vkey != statement.signer:
        raise ValueError("the signing key is not the index-root's signer")
    return sign_note(statement.text, [signer])


def parse_index_root(data: bytes, *, check_signature: bool = True) -> IndexRoot:
    """Parse strictly and check the one signature against the statement's own signer key.

    Whether that key is one of the log's registry keys is the caller's check (it knows the log's registry).
    """
    note = parse_note(data, MAX_INDEX_ROOT_SIZE)
    statement = _parse_text(note.text)
    verifier = statement.signer_verifier
    if len(note.signatures) != 1:
        raise MalformedError("an index-root carries exactly one signature")
    signature = note.signatures[0]
    if (signature.name, signature.key_id) != (verifier.name, verifier.key_id):
        raise SignatureError("index-root is not signed by its signer key")
    if note.to_bytes() != data:
        raise MalformedError("index-root is not in canonical form")
    if check_signature and not verifier.verify(note.text.encode(), signature.signature):
        raise SignatureError(f"signature by {verifier.name} ({verifier.key_id:08x}) does not verify")
    return statement
