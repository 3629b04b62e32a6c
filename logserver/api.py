"""The log's JSON wire protocol, in one place: a frozen value for the body of every JSON request and response.

Each value reads itself with `from_json` (strict: every field present with its one JSON type and encoding, else a
`MalformedError` naming the field, e.g. `entries[3].leaf_hash: want 64 lowercase hex digits`), writes itself with
`to_json`, and describes itself with `json_schema` (what /openapi.json serves). The server's handlers, the client,
the monitor and the tools all use these values, so a field is named and typed once.

The codec, derived from the type hints, is logserver/wirecodec.py. Fields the reader does not know are ignored, so
a newer server's extra field never breaks an older monitor; a missing or mistyped field always does.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol

from logserver.wirecodec import B64Bytes, B64Hash, HexHash, NoteText, Uint
from logserver.wirecodec import WireValue as WireValue  # the base of every value here: api.WireValue to clients
from tlogcore.errors import MalformedError

# --- POST /api/v1/entries ------------------------------------------------------------------------------------

MAX_BATCH = 1000  # statements in one request; the server may be configured lower (limits.max_batch)


@dataclass(frozen=True)
class SubmitRequest(WireValue):
    """`{"statements": ["<base64 signed statement>", ...], "inclusion_proofs": false}`, at least one statement.

    `inclusion_proofs` (optional, default true): false asks for a `SubmitReceipt`, each entry's place without its
    inclusion proof. A bulk submitter that keeps no proofs (`tlog submit`) saves the server building ~12 hashes per
    entry, which cost it more than sequencing them (issue 20's profile); proofs stay one GET away."""

    statements: tuple[B64Bytes, ...]
    inclusion_proofs: bool = True
    absent_means_default: ClassVar[frozenset[str]] = frozenset({"inclusion_proofs"})

    def __post_init__(self) -> None:
        if not self.statements:
            raise MalformedError("statements: want at least one statement")

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        schema = super().json_schema()
        statements = {**schema["properties"]["statements"], "minItems": 1, "maxItems": MAX_BATCH}
        return {**schema, "properties": {**schema["properties"], "statements": statements}}


@dataclass(frozen=True)
class SubmittedEntry(WireValue):
    index: Uint
    leaf_hash: HexHash
    duplicate: bool  # the identical statement was already logged: this is its first entry
    inclusion_proof: tuple[B64Hash, ...]  # in the response's checkpoint


@dataclass(frozen=True)
class SubmitResponse(WireValue):
    checkpoint: NoteText  # signed by the log, maybe not yet cosigned
    entries: tuple[SubmittedEntry, ...]  # one per statement, in request order


class Placed(Protocol):
    """Where one statement is in the log: an EntryReceipt, or the sequencer's own answer (logserver/sequencing.py)."""

    @property
    def index(self) -> int: ...
    @property
    def leaf_hash(self) -> bytes: ...
    @property
    def duplicate(self) -> bool: ...


@dataclass(frozen=True)
class EntryReceipt(WireValue):
    index: Uint
    leaf_hash: HexHash
    duplicate: bool


@dataclass(frozen=True)
class SubmitReceipt(WireValue):
    """The answer to a submission that asked for no inclusion proofs (`"inclusion_proofs": false`); a full
    SubmitResponse reads as one too (unknown fields are ignored), so a bulk submitter that does not check proofs
    skips decoding ~12 proof hashes per entry whichever answer it gets (issue 20's profile)."""

    checkpoint: NoteText  # signed by the log, maybe not yet cosigned; it contains every entry below
    entries: tuple[EntryReceipt, ...]  # one per statement, in request order

    def to_json(self) -> dict[str, Any]:
        return self.json_of(self.checkpoint, self.entries)

    @staticmethod
    def json_of(checkpoint: bytes, entries: Iterable[Placed]) -> dict[str, Any]:
        """What the codec writes (tests/test_submit_encoding.py compares), without its call per field per entry:
        the answer to a bulk submission has 1,000 entries (issue 20). The server writes it straight from where the
        sequencer placed each statement, without an EntryReceipt per entry (about 1 us each)."""
        entries_json = [{"index": e.index, "leaf_hash": e.leaf_hash.hex(), "duplicate": e.duplicate} for e in entries]
        return {"checkpoint": checkpoint.decode("utf-8"), "entries": entries_json}


# --- GET /api/v1/proof/inclusion, /api/v1/proof/consistency ---------------------------------------------------


@dataclass(frozen=True)
class InclusionProof(WireValue):
    index: Uint
    size: Uint
    proof: tuple[B64Hash, ...]  # RFC 9162 §2.1.3


@dataclass(frozen=True)
class ConsistencyProof(WireValue):
    old: Uint
    new: Uint
    proof: tuple[B64Hash, ...]  # RFC 9162 §2.1.4


# --- GET /api/v1/documents/<sha256> ---------------------------------------------------------------------------

DocumentStatus = Literal["valid", "revoked", "unknown"]


@dataclass(frozen=True)
class DocumentStatement(WireValue):
    index: Uint
    kind: str
    issuer: str  # the signer's key name (chosen by the key's holder: not an identity)
    signer: str  # the signer's verifier key
    label: str | None  # the signer's registered label (the registry's name for the issuer); None: not registered
    time: Uint
    ref: str | None
    reason: str | None
    statement: B64Bytes  # the signed statement, as logged
    bundle: NoteText  # its tlog-proof bundle


@dataclass(frozen=True)
class Registration(WireValue):
    """The `issuer-add` entry that registered a signer's key, or a key it continues, with its proof."""

    key: str  # the registered verifier key
    label: str | None
    continues: str | None  # the key this one continues (rotation), as the registry statement says
    index: Uint
    statement: B64Bytes  # the issuer-add statement, as logged
    bundle: NoteText  # its tlog-proof bundle, under the same checkpoint as the statements' bundles


@dataclass(frozen=True)
class IndexRootEntry(WireValue):
    """The logged `index-root` statement a status proof is checked against (tlogcore/indexroot.py)."""

    index: Uint  # its entry in the log: verifiers prove its inclusion in their trusted checkpoint
    statement: B64Bytes  # the signed statement, as logged


@dataclass(frozen=True)
class KeyStatusProof(WireValue):
    """A signer key's record in the key index (docs/status-proofs.md §12): the complete list of entries in [0, size)
    that add or retire the key, or the proof that none does."""

    key: str  # the signer's verifier key
    record: B64Bytes | None  # the key record (§12: its issuer-add entries, then its issuer-retire entries)
    proof: B64Bytes  # the §4 proof of presence or absence, against the index root's `keys`


@dataclass(frozen=True)
class StatusIndexProof(WireValue):
    """The document's status record and its proof in the status index (docs/status-proofs.md §4, §9): the
    complete list of entries in [0, size) that name the document, or the proof that none does."""

    size: Uint  # the index covers entries [0, size)
    root: B64Hash  # the index root, as the index-root statement states it
    record: B64Bytes | None  # the status record (§2); None: the document is absent from the index
    proof: B64Bytes  # the §4 proof of presence or absence
    index_root: IndexRootEntry
    keys: tuple[KeyStatusProof, ...] = ()  # of each key that signed a statement above; none under a v1 index root


@dataclass(frozen=True)
class Retirement(WireValue):
    """The `issuer-retire` entry of a signer's key, with its proof; `unsafe_from` when the key was reported stolen:
    what it signed at that index or later is flagged (tlogcore/status.py)."""

    key: str  # the retired verifier key
    unsafe_from: int | None  # from the statement, which verifiers read themselves
    index: Uint
    statement: B64Bytes  # the issuer-retire statement, as logged
    bundle: NoteText  # its tlog-proof bundle, under the same checkpoint as the statements' bundles


@dataclass(frozen=True)
class DocumentHistory(WireValue):
    document: HexHash
    status: DocumentStatus  # the server's reading; verifiers recompute it (tlogcore.status)
    statements: tuple[DocumentStatement, ...]
    registrations: tuple[Registration, ...]  # of every signer above and the keys they continue, in log order
    index: StatusIndexProof | None = None  # None: no index root is inside the published checkpoint yet
    retirements: tuple[Retirement, ...] = ()  # of the keys above that were retired, in log order


# --- POST /api/v1/documents:lookup ---------------------------------------------------------------------------

MAX_LOOKUP = 1000  # documents in one lookup request, like a submission batch


@dataclass(frozen=True)
class LookupRequest(WireValue):
    """`{"documents": ["<hex SHA-256>", ...]}`: 1..MAX_LOOKUP documents, asked about in one round trip."""

    documents: tuple[HexHash, ...]

    def __post_init__(self) -> None:
        if not self.documents:
            raise MalformedError("documents: want at least one document SHA-256")

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        schema = super().json_schema()
        documents = {**schema["properties"]["documents"], "minItems": 1, "maxItems": MAX_LOOKUP}
        return {**schema, "properties": {"documents": documents}}


@dataclass(frozen=True)
class LookupStatement(WireValue):
    """One statement about a document, without its proof (GET /api/v1/documents/<sha256> has the proofs)."""

    index: Uint
    kind: str
    issuer: str  # the signer's key name
    signer: str  # the signer's verifier key
    time: Uint


@dataclass(frozen=True)
class DocumentSummary(WireValue):
    document: HexHash
    status: DocumentStatus  # the server's reading (tlogcore.status), as in DocumentHistory
    statements: tuple[LookupStatement, ...]  # in log order; empty for a document the log never saw


@dataclass(frozen=True)
class LookupResponse(WireValue):
    documents: tuple[DocumentSummary, ...]  # one per document asked, in request order


# --- GET /api/v1/issuers --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyAdded(WireValue):
    index: Uint
    time: Uint


@dataclass(frozen=True)
class KeyRetired(WireValue):
    index: Uint
    time: Uint
    reason: str | None
    unsafe_from: int | None = None  # reported stolen: entries the key signed at this index or later are flagged


@dataclass(frozen=True)
class IssuerKey(WireValue):
    vkey: str
    label: str | None
    active: bool
    added: KeyAdded
    retired: KeyRetired | None
    continues: str | None  # the key of the same issuer this one continues (rotation); None for an issuer's first


@dataclass(frozen=True)
class Issuer(WireValue):
    name: str
    keys: tuple[IssuerKey, ...]


@dataclass(frozen=True)
class IssuerRegistry(WireValue):
    registry_keys: tuple[str, ...]
    issuers: tuple[Issuer, ...]

    def registry_indexes(self) -> list[int]:
        """Every entry that added or retired an issuer key, in log order."""
        events: list[KeyAdded | KeyRetired] = [
            e for issuer in self.issuers for key in issuer.keys for e in (key.added, key.retired) if e
        ]
        return sorted({event.index for event in events})


# --- GET /api/v1/log, /healthz, errors -------------------------------------------------------------------------


@dataclass(frozen=True)
class WitnessAlarm(WireValue):
    """A witness answered 422: it holds another tree for this log, evidence of a fork or a stolen log key."""

    size: Uint  # of our checkpoint it refused
    at: float  # when (Unix seconds)
    answer: str  # the witness's answer
    our_checkpoint: str
    witness_checkpoint: str | None  # its newest checkpoint of this log, signed by the log key: the evidence


@dataclass(frozen=True)
class WitnessStatus(WireValue):
    name: str
    url: str
    vkey: str
    last_cosigned_size: int | None
    last_cosigned_at: float | None
    last_error: str | None
    alarm: WitnessAlarm | None  # the newest 422 (logserver/witnessing.py); None while all is well
    vkeys: tuple[str, ...] = ()  # every key of the witness (Ed25519 and ML-DSA-44), `vkey` first


@dataclass(frozen=True)
class LogInfo(WireValue):
    origin: str
    log_vkey: str
    registry_vkeys: tuple[str, ...]
    size: Uint  # sequenced
    published_size: Uint  # in the newest published (cosigned) checkpoint
    sequencing: bool
    not_sequencing_reason: str | None
    witnesses: tuple[WitnessStatus, ...]


@dataclass(frozen=True)
class LogKeyEntry(WireValue):
    """A `tlog-log-key/v1` entry (tlogcore/logkey.py): the log announced a new key from tree size `from`."""

    index: Uint
    statement: B64Bytes  # the signed statement, as logged
    inclusion_proof: tuple[B64Hash, ...]  # RFC 9162 §2.1.3, in the tree of the answer's `size`


@dataclass(frozen=True)
class LogKeyHistory(WireValue):
    """Every key rotation the log announced in its tree of `size`, in log order, each with its inclusion proof:
    what a verifier applies with `Policy.following` (docs/thirty-years.md, "Log key rotation")."""

    size: Uint
    entries: tuple[LogKeyEntry, ...]


@dataclass(frozen=True)
class Health(WireValue):
    ok: bool  # false while warming: /healthz then answers 503 (logserver/warmup.py)
    sequencing: bool
    warming: bool


@dataclass(frozen=True)
class ErrorBody(WireValue):
    error: str  # a machine-readable code, e.g. "bad_signature"
    message: str  # for people: what was wrong and what to do


# Every JSON body of the protocol, for the OpenAPI document and its test.
RESPONSES: tuple[type[WireValue], ...] = (
    SubmitResponse,
    SubmitReceipt,
    InclusionProof,
    ConsistencyProof,
    DocumentHistory,
    LookupResponse,
    StatusIndexProof,
    IndexRootEntry,
    IssuerRegistry,
    LogInfo,
    LogKeyHistory,
    Health,
    ErrorBody,
)
