"""A document's status from every statement about it (pure).

valid: an issuer issued it and did not revoke it. revoked: the issuer that
issued it (same key name) revoked it. unknown: nothing was issued. A revocation
by another issuer is listed, but does not change the status: only the issuer
can revoke its own document.
"""

from collections.abc import Sequence

from tlogcore.statement import ISSUE, REVOKE, Statement

VALID, REVOKED, UNKNOWN = "valid", "revoked", "unknown"


def document_status(statements: Sequence[Statement]) -> str:
    issuers = {s.signer_verifier.name for s in statements if s.kind == ISSUE}
    if not issuers:
        return UNKNOWN
    revoked = any(s.kind == REVOKE and s.signer_verifier.name in issuers for s in statements)
    return REVOKED if revoked else VALID
