"""tlogcore: the pure core every part of the transparency log imports.

Formats and Merkle math only: RFC 9162 hashing and proofs, C2SP signed notes,
checkpoints, cosignatures, tiles, trust policies, statements and proof bundles.
Synchronous, no I/O; depends on the standard library and `cryptography` alone.
"""
