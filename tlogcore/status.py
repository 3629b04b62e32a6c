"""A document's status from every statement about it (pure; one rule for the server, `tlog verify` and the web
page, which runs the same vectors: tests/vectors/status/).

valid: an issuer issued it and did not revoke it. revoked: the issuer that issued it (same key name) revoked it.
unknown: nothing was issued. A revocation by another issuer is listed, but does not change the status: only the
issuer can revoke its own document.
"""

from collections.abc import Sequence
from typing import Literal

from tlogcore.statement import ISSUE, REVOKE, Statement

Status = Literal["valid", "revoked", "unknown"]
VALID: Status = "valid"
REVOKED: Status = "revoked"
UNKNOWN: Status = "unknown"


def document_status(statements: Sequence[Statement]) -> Status:
    issuers = {s.signer_verifier.name for s in statements if s.kind == ISSUE}
    if not issuers:
        return UNKNOWN
    revoked = any(s.kind == REVOKE and s.signer_verifier.name in issuers for s in statements)
    return REVOKED if revoked else VALID
