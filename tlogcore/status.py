"""A document's status from the statements about it (pure). One rule for the server (/api/v1/documents), `tlog
verify` and the web page (logserver/web/verify.js, `documentStatus`), which all run the same vectors:
tests/vectors/status/status.json.

valid: an issuer issued it and did not revoke it. revoked: a revocation counts. unknown: nothing was issued.

A revocation counts only when it is signed by the very key that issued the document, or by a key the registry
declares to continue that key (an `issuer-add ... continues`, followed through any number of rotations: the new
key can revoke what the old one issued, never the reverse). Key names are not identity: a revocation by another
key that merely carries the same name, or by any other issuer, is listed and ignored. Order does not matter;
registry statements are ignored. Verifiers pass only the statements and continuations they have verified
(signature, inclusion); the server passes every statement it holds and its registry's continuations.

Stolen keys (issue 22): a key retired with `unsafe-from N` (tlogcore/registry.py) signed, from log index N on,
possibly in a thief's hands. A statement it signed at index N or later is flagged, whatever the status says: a
verifier shows "signed with a key reported stolen" instead of "valid". Before N, its documents stay valid: a key
that is merely retired, or stolen later, does not undo what it issued while it was safe (retire is not revoke).
The page implements the same rule (verify.js, `signedWhileUnsafe`) over the same vectors:
tests/vectors/registry/unsafe_from.json.
"""

from collections.abc import Collection, Mapping, Sequence
from typing import Literal

from tlogcore.statement import ISSUE, REVOKE, Statement

Status = Literal["valid", "revoked", "unknown"]
VALID: Status = "valid"
REVOKED: Status = "revoked"
UNKNOWN: Status = "unknown"


def continued_keys(vkey: str, continues: Mapping[str, str]) -> set[str]:
    """The key itself and every key it continues, through the chain of rotations (cycles cannot loop)."""
    keys = {vkey}
    while (before := continues.get(vkey)) is not None and before not in keys:
        keys.add(before)
        vkey = before
    return keys


def counted_revocations(statements: Sequence[Statement], continues: Mapping[str, str]) -> list[Statement]:
    """The revoke statements that count: by a key that issued the document, or one that continues it."""
    issuing_keys = {s.signer for s in statements if s.kind == ISSUE}
    return [
        s for s in statements if s.kind == REVOKE and not issuing_keys.isdisjoint(continued_keys(s.signer, continues))
    ]


def document_status(statements: Sequence[Statement], continues: Mapping[str, str]) -> Status:
    if not any(s.kind == ISSUE for s in statements):
        return UNKNOWN
    return REVOKED if counted_revocations(statements, continues) else VALID


def unshown_registration(
    statements: Sequence[Statement], registered: Collection[str], continues: Mapping[str, str]
) -> str | None:
    """The first key whose registration a verifier needs to tell whether a revocation counts, and was not shown: a
    revocation's signer that is not an issuing key, or a key on its chain of continuations. The server shows the
    registration of every signer and of the keys they continue (logserver/app.py); one left out turns a counted
    revocation into an ignored one (a proxy dropping the new key's issuer-add after a rotation). With no issue
    statement nothing can count, so nothing is needed (the page's `checkRegistrationsShown` runs only then too)."""
    issuing_keys = {s.signer for s in statements if s.kind == ISSUE}
    if not issuing_keys:
        return None
    for revoke in (s for s in statements if s.kind == REVOKE):
        key: str | None = revoke.signer
        seen: set[str] = set()
        while key is not None and key not in issuing_keys and key not in seen:
            if key not in registered:
                return key
            seen.add(key)
            key = continues.get(key)
    return None


def signed_while_unsafe(signer: str, index: int, unsafe_from: Mapping[str, int]) -> bool:
    """Whether the statement `signer` signed at log `index` falls at or after its key's unsafe-from marker."""
    marker = unsafe_from.get(signer)
    return marker is not None and index >= marker
