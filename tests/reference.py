"""A slow, obviously-correct Merkle tree straight from RFC 9162 §2.1, to cross-check the fast code."""

import hashlib
from functools import cache


def mth(leaves: tuple[bytes, ...]) -> bytes:
    """MTH(D[0:n]) by the recursive definition; leaves are raw entries."""

    @cache
    def tree(start: int, end: int) -> bytes:
        n = end - start
        if n == 0:
            return hashlib.sha256(b"").digest()
        if n == 1:
            return hashlib.sha256(b"\x00" + leaves[start]).digest()
        k = 1
        while k * 2 < n:
            k *= 2
        return hashlib.sha256(b"\x01" + tree(start, start + k) + tree(start + k, end)).digest()

    return tree(0, len(leaves))


class ReferenceTree:
    def __init__(self, leaves: list[bytes]) -> None:
        self.leaves = tuple(leaves)
        self._cache: dict[tuple[int, int], bytes] = {}

    def hash(self, start: int, end: int) -> bytes:
        key = (start, end)
        if key not in self._cache:
            self._cache[key] = mth(self.leaves[start:end])
        return self._cache[key]

    def root(self, size: int) -> bytes:
        return self.hash(0, size)

    def path(self, m: int, start: int, end: int) -> list[bytes]:
        """PATH(m, D[start:end]) (RFC 9162 §2.1.3.1); m is relative to start."""
        n = end - start
        if n == 1:
            return []
        k = 1
        while k * 2 < n:
            k *= 2
        if m < k:
            return self.path(m, start, start + k) + [self.hash(start + k, end)]
        return self.path(m - k, start + k, end) + [self.hash(start, start + k)]

    def subproof(self, m: int, start: int, end: int, complete: bool) -> list[bytes]:
        """SUBPROOF(m, D[start:end], b) (RFC 9162 §2.1.4.1)."""
        n = end - start
        if m == n:
            return [] if complete else [self.hash(start, end)]
        k = 1
        while k * 2 < n:
            k *= 2
        if m <= k:
            return self.subproof(m, start, start + k, complete) + [self.hash(start + k, end)]
        return self.subproof(m - k, start + k, end, False) + [self.hash(start, start + k)]

    def inclusion(self, index: int, size: int) -> list[bytes]:
        return self.path(index, 0, size)

    def consistency(self, old: int, new: int) -> list[bytes]:
        return self.subproof(old, 0, new, True) if 0 < old < new else []
