"""The few named errors of the core.

Services map these to HTTP statuses in exactly one place each (STYLE.md §5);
the core never knows about HTTP.
"""


class TlogError(Exception):
    """Base class of every error the core raises on bad input."""


class MalformedError(TlogError, ValueError):
    """The input does not parse, is not in its one canonical encoding, or is too large."""


class SignatureError(TlogError):
    """A signature from a known, trusted key does not verify (the input was tampered with)."""


class UnverifiedError(TlogError):
    """No signature from a trusted key, or too few cosignatures to meet the quorum."""


class NotAllowedError(TlogError):
    """The statement's signer may not write it: an unknown or retired issuer key, or not a registry key."""


class ProofError(TlogError):
    """An inclusion or consistency proof does not verify (wrong shape or wrong hashes)."""
