"""A document's status from the statements about it (pure). One rule for the server (/api/v1/documents), `tlog
verify` and the web page (logserver/web/verify.js, `documentStatus`), which all run the same vectors:
tests/vectors/status/status.json.

valid: an issuer issued it and did not revoke it. revoked: an issuer that issued it (same key name) revoked it.
unknown: nothing was issued. A revocation by another issuer is listed, but does not change the status: only the
issuer can revoke its own document. Order does not matter; registry statements are ignored. Verifiers pass only
the statements they have verified (signature, inclusion); the server passes every statement it holds.
"""

from collections.abc import Sequence
from typing import Literal

from tlogcore.statement import ISSUE, REVOKE, Statement

Status = Literal["valid", "revoked", "unknown"]
VALID: Status = "valid"
REVOKED: Status = "revoked"
UNKNOWN: Status = "unknown"


def counted_revocations(statements: Sequence[Statement]) -> list[Statement]:
    """The revoke statements that count: by the key name of an issuer that issued the document."""
    issuers = {s.signer_verifier.name for s in statements if s.kind == ISSUE}
    return [s for s in statements if s.kind == REVOKE and s.signer_verifier.name in issuers]


def document_status(statements: Sequence[Statement]) -> Status:
    if not any(s.kind == ISSUE for s in statements):
        return UNKNOWN
    return REVOKED if counted_revocations(statements) else VALID
