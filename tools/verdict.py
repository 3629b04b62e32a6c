"""Verdicts of `tlog verify` and their exit codes (pure: errors in, one verdict out).

0 genuine            the document is logged, every proof and signature checks out, not revoked
1 revoked            genuine, but its issuer has since revoked it (online mode)
2 not logged         the log holds no issue statement about this document (online mode)
3 tampered           the document's hash is not the one in the bundle, or a proof or the bundle is broken
4 signature invalid  a signature by a key the statement or the policy names does not verify
5 quorum not met     the checkpoint is not signed by a trusted log, or too few trusted witnesses cosigned it
6 error              usage or input error: an unreadable file, a policy that does not parse, no bundle found
7 network error      online mode: the log could not be reached or answered with an error
8 not from a registered issuer  online mode: signed and logged, but by a key the log's registry did not add
                     before the document's entry: whoever signed it is nobody the registry vouches for
9 log misbehaved     online mode: the bundle's checkpoint and the log's newest are both validly signed but are
                     not one append-only history (a fork, or a log that went back): evidence, never "genuine"
10 signed with a stolen key  online mode: signed by a key the registry retired as reported stolen, at or after the
                     entry from which it is unsafe (`unsafe-from`): a thief may have signed it (tlogcore/status.py)
"""

import datetime
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from logserver.client import LogClientError
from tlogcore.checkpoint import Checkpoint
from tlogcore.errors import MalformedError, ProofError, SignatureError, TlogError, UnverifiedError
from tlogcore.statement import Statement

GENUINE = "genuine"
REVOKED = "revoked"
NOT_LOGGED = "not logged"
TAMPERED = "tampered"
SIGNATURE_INVALID = "signature invalid"
QUORUM_NOT_MET = "quorum not met"
INPUT_ERROR = "error"
NETWORK_ERROR = "network error"
NOT_REGISTERED = "not from a registered issuer"
LOG_MISBEHAVED = "log misbehaved"
STOLEN_KEY = "signed with a stolen key"

EXIT_CODES = {
    GENUINE: 0,
    REVOKED: 1,
    NOT_LOGGED: 2,
    TAMPERED: 3,
    SIGNATURE_INVALID: 4,
    QUORUM_NOT_MET: 5,
    INPUT_ERROR: 6,
    NETWORK_ERROR: 7,
    NOT_REGISTERED: 8,
    LOG_MISBEHAVED: 9,
    STOLEN_KEY: 10,
}


def plain_client_error(url: str | None, exc: LogClientError) -> str:
    """A network failure in words a person can act on (never an exception's repr)."""
    where = f"the log at {url}" if url else "the log (--log)"
    cause = exc.__cause__
    if isinstance(cause, httpx.ConnectError | httpx.ConnectTimeout):
        return f"cannot reach {where}: nothing answers there; check --log and that the server is running"
    if isinstance(cause, httpx.TimeoutException):
        return f"{where} did not answer in time; try again later"
    if isinstance(cause, httpx.HTTPError):
        return f"the connection to {where} failed ({type(cause).__name__}); try again later"
    return f"{where} refused: {exc}"


def private_key_refusal(path: object, text: str) -> str | None:
    """A private key given where a public file belongs: say so, and never echo a byte of it."""
    if "PRIVATE+KEY" in text:
        return f"{path} is a private key, not a trust policy: give the policy file, and keep the key secret"
    return None


def verdict_for_error(exc: TlogError) -> str:
    """What a core error found while checking a bundle or a checkpoint means to a verifier."""
    if isinstance(exc, SignatureError):
        return SIGNATURE_INVALID
    if isinstance(exc, UnverifiedError):
        return QUORUM_NOT_MET
    if isinstance(exc, ProofError | MalformedError):
        return TAMPERED  # a bundle that no longer parses, or whose proof fails, was changed
    return TAMPERED


@dataclass(frozen=True)
class Registered:
    """What the registry says of the issuing key, from its issuer-add entry proven in the log (online)."""

    label: str | None
    index: int  # the issuer-add entry


@dataclass(frozen=True)
class Outcome:
    """The result of one verification: a verdict and what was established on the way."""

    verdict: str
    document: bytes | None
    message: str
    statement: Statement | None = None
    index: int | None = None
    checkpoint: Checkpoint | None = None
    witnesses: Sequence[str] = field(default_factory=tuple)
    registered: Registered | None = None  # None: offline (not checked), or not registered
    status_proven: bool = False  # online: "not revoked" / "not logged" proven by the log's status index
    key_status_proven: bool = False  # online: the signing key's stolen-key reports proven complete (key index)
    refreshed_from: int | None = None  # online with a bundle: the tree size of the bundle's own checkpoint
    vouched_at: int | None = None  # when the witnesses' quorum last vouched for that checkpoint (tlogcore/freshness.py)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict]

    def to_json(self) -> dict[str, Any]:
        s = self.statement
        return {
            "verdict": self.verdict,
            "document": self.document.hex() if self.document is not None else None,
            "index": self.index,
            "issuer": s.signer_verifier.name if s is not None else None,
            "issuer_key": s.signer if s is not None else None,
            "issuer_label": self.registered.label if self.registered is not None else None,
            "issuer_registered_at": self.registered.index if self.registered is not None else None,
            "kind": s.kind if s is not None else None,
            "time": s.time if s is not None else None,
            "ref": s.ref if s is not None else None,
            "checkpoint": {
                "origin": self.checkpoint.origin,
                "size": self.checkpoint.size,
                "refreshed_from": self.refreshed_from,
                "vouched_at": self.vouched_at,
            }
            if self.checkpoint is not None
            else None,
            "witnesses": sorted(self.witnesses),
            "status_proven": self.status_proven,
            "key_status_proven": self.key_status_proven,
            "message": self.message,
            "exit_code": self.exit_code,
        }

    def line(self) -> str:
        """The one verdict line a person reads."""
        reason = self.message
        if self.verdict == QUORUM_NOT_MET and "witness quorum" not in reason:  # tlogcore.policy: no trusted log key
            reason = f"this proof is not from the log you trust ({reason})"
        return f"{self.verdict.upper()}: {reason}"


def issuer_words(statement: Statement, registered: Registered | None, online: bool) -> str:
    """The issuer as people should read it: its registered label and key, or what is not known of it."""
    if registered is not None:
        label = repr(registered.label) if registered.label else "(no label)"
        return f"{label} (key {statement.signer}, registered in entry {registered.index})"
    if online:
        return f"key {statement.signer}, which the log's registry never added"
    return f"key {statement.signer} (registration not checked offline; use --log for it)"


def describe(
    statement: Statement,
    index: int,
    checkpoint: Checkpoint,
    witnesses: Sequence[str],
    registered: Registered | None = None,
    online: bool = False,
    cosigned_at: float | None = None,
) -> str:
    """The statement in words, with the checkpoint it stands on. `cosigned_at`, the newest cosignature's time: a proxy
    can replay an older checkpoint, cosigned then, with the answers of that time; the time is what shows it."""
    when = datetime.datetime.fromtimestamp(statement.time, datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    ref = f", ref {statement.ref!r}" if statement.ref else ""
    cosigned = f", cosigned by {', '.join(sorted(witnesses))}" if witnesses else ", no witness cosignatures"
    if witnesses and cosigned_at is not None:
        cosigned += datetime.datetime.fromtimestamp(cosigned_at, datetime.UTC).strftime(" at %Y-%m-%d %H:%M UTC")
    return (
        f"issued by {issuer_words(statement, registered, online)}{ref} on {when}; entry {index} of "
        f"{checkpoint.origin} (tree size {checkpoint.size}{cosigned})"
    )
