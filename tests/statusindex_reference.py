"""A slow, obviously-correct status index straight from the definition in docs/status-proofs.md §3-§4.

It keeps the whole map in a dict, rebuilds every hash from scratch by recursion over key bits, and writes the
hashes out with hashlib (not through tlogcore's helpers), so a mistake in the fast code cannot hide in both.
"""

import hashlib


def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


EMPTY = _h(b"\x12")


def bit(key: bytes, i: int) -> int:
    """Bit i of the key, most significant bit of byte 0 first."""
    return (key[i // 8] >> (7 - i % 8)) & 1


def leaf(key: bytes, record: bytes) -> bytes:
    return _h(b"\x10" + key + _h(record))


def subtree(items: dict[bytes, bytes], depth: int) -> bytes:
    """Hash of the subtree holding `items` (all sharing their first `depth` bits)."""
    if not items:
        return EMPTY
    if len(items) == 1:
        ((key, record),) = items.items()
        return leaf(key, record)
    left = {k: v for k, v in items.items() if bit(k, depth) == 0}
    right = {k: v for k, v in items.items() if bit(k, depth) == 1}
    return _h(b"\x11" + subtree(left, depth + 1) + subtree(right, depth + 1))


def root(items: dict[bytes, bytes]) -> bytes:
    return subtree(items, 0)


def proof(items: dict[bytes, bytes], key: bytes) -> bytes:
    """The proof bytes for `key`, walking down from the root and collecting every sibling on the way."""
    here = dict(items)
    siblings: list[bytes] = []  # root side first
    depth = 0
    while len(here) > 1:
        mine = {k: v for k, v in here.items() if bit(k, depth) == bit(key, depth)}
        other = {k: v for k, v in here.items() if bit(k, depth) != bit(key, depth)}
        siblings.append(subtree(other, depth + 1))
        here, depth = mine, depth + 1
    bitmap = bytearray(32)
    for i, sibling in enumerate(siblings):
        if sibling != EMPTY:
            bitmap[i // 8] |= 0x80 >> (i % 8)
    hashes = b"".join(s for s in reversed(siblings) if s != EMPTY)
    if not here:
        return b"\x01" + bytes(bitmap) + hashes
    ((other_key, other_record),) = here.items()
    if other_key == key:
        return b"\x00" + bytes(bitmap) + hashes
    return b"\x02" + bytes(bitmap) + hashes + other_key + _h(other_record)


def record_bytes(issued: list[int], revoked: list[int]) -> bytes:
    out = b"\x01" + len(issued).to_bytes(2, "big") + b"".join(i.to_bytes(8, "big") for i in issued)
    return out + len(revoked).to_bytes(2, "big") + b"".join(i.to_bytes(8, "big") for i in revoked)
