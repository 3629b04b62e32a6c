"""The key index: every registry entry about an issuer key, with proofs of presence and absence (pure;
docs/status-proofs.md §12).

A verdict of "genuine" also rests on the issuer not having reported its key stolen (an `issuer-retire ...
unsafe-from N`, tlogcore/status.py). The status index lists the entries about a *document*; a retirement names a
key, so a log that left one out turned "signed with a key reported stolen" into "genuine" unseen. The key index
closes that: a second map of exactly the status index's shape (statusindex.py: the same tree, hashes and proofs,
verified by the same code), whose root a `tlog-index-root/v2` statement states beside the document index's
(indexroot.py `keys`), so it is as hard to equivocate as the log.

    slot(K)       = SHA-256("tlog-key-slot/v1\\n" || K)     K = the issuer's verifier key, as its text (UTF-8)
    key record    = the status record encoding (statusrecord.py), its first list the indexes of the entries
                    whose statement is an `issuer-add` naming K (`issuer K`), its second those of the
                    `issuer-retire`s naming K, each in [0, N); a key no such entry names is absent

The record says only which entries name the key, whoever signed them: the verifier fetches each one with its
inclusion proof and applies the registry's rules itself (a retirement counts when a registry key signed it). A
separate map, not slots in the document map: a document's SHA-256 is whatever its issuer claims, so a slot shared
with documents could be filled by someone else's statements (up to the u16 limit, refusing the real retirement).

Registries are small (one key per issuer and rotation), so the map is built whole in memory: about n log2 n
hashes for n keys, kept, so each proof is a walk down stored hashes.
"""

import hashlib
from bisect import bisect_left
from collections.abc import Iterable, Mapping

from tlogcore.errors import ProofError
from tlogcore.statement import ISSUER_ADD, ISSUER_RETIRE, Statement
from tlogcore.statusindex import (
    ABSENT_EMPTY,
    ABSENT_OTHER_LEAF,
    BITMAP_SIZE,
    EMPTY,
    KEY_BITS,
    PRESENT,
    leaf_hash,
    node_hash,
    verify_status,
)
from tlogcore.statusrecord import StatusRecord, new_record

SLOT_PREFIX = b"tlog-key-slot/v1\n"


def key_slot(vkey: str) -> bytes:
    """Where the key's record sits in the key index: SHA-256("tlog-key-slot/v1\\n" || vkey)."""
    return hashlib.sha256(SLOT_PREFIX + vkey.encode()).digest()


RegistryItem = tuple[int, str, str]  # (entry index, "issuer-add" or "issuer-retire", the issuer key it names)


def registry_item(index: int, statement: Statement) -> RegistryItem | None:
    """What the key index takes from a logged statement: None unless it adds or retires an issuer key."""
    if statement.kind in (ISSUER_ADD, ISSUER_RETIRE) and statement.issuer is not None:
        return index, statement.kind, statement.issuer
    return None


def key_records(items: Iterable[RegistryItem], size: int | None = None) -> dict[str, StatusRecord]:
    """The key index's content (of entries [0, size) if given): issuer key -> (its issuer-add entries, its
    issuer-retire entries). MalformedError for a key named more often than a record holds (statusrecord.py)."""
    adds: dict[str, set[int]] = {}
    retires: dict[str, set[int]] = {}
    for index, kind, key in items:
        if size is None or index < size:
            (adds if kind == ISSUER_ADD else retires).setdefault(key, set()).add(index)
    return {key: new_record(adds.get(key, ()), retires.get(key, ())) for key in adds.keys() | retires.keys()}


def verify_key_status(vkey: str, record: StatusRecord | None, proof: bytes, keys_root: bytes) -> None:
    """ProofError unless the key index with `keys_root` maps `vkey` to `record` (None: no entry names it)."""
    try:
        verify_status(key_slot(vkey), record, proof, keys_root)
    except ProofError as exc:
        raise ProofError(f"key index proof for key {vkey}: {exc}") from None


def _bit(key: int, depth: int) -> int:
    return (key >> (KEY_BITS - 1 - depth)) & 1


class KeyMap:
    """A whole key index in memory: its root, and a proof for any key, present or not."""

    def __init__(self, records: Mapping[str, StatusRecord]) -> None:
        items = sorted((int.from_bytes(key_slot(vkey), "big"), vkey, record) for vkey, record in records.items())
        self._keys = [item[0] for item in items]
        self._records = [record for _, _, record in items]
        self._leaves = [leaf_hash(key.to_bytes(32, "big"), record.to_bytes()) for key, _, record in items]
        self._hashes: dict[tuple[int, int, int], bytes] = {}
        self.root = self._subtree(0, 0, len(items))

    def _split(self, depth: int, lo: int, hi: int) -> int:
        """The first of keys[lo:hi] (sharing their first `depth` bits) whose bit `depth` is 1."""
        prefix = self._keys[lo] >> (KEY_BITS - depth) if depth else 0
        return bisect_left(self._keys, ((prefix << 1) | 1) << (KEY_BITS - 1 - depth), lo, hi)

    def _subtree(self, depth: int, lo: int, hi: int) -> bytes:
        if hi - lo == 0:
            return EMPTY
        if hi - lo == 1:
            return self._leaves[lo]
        found = self._hashes.get((depth, lo, hi))
        if found is None:
            cut = self._split(depth, lo, hi)
            found = node_hash(self._subtree(depth + 1, lo, cut), self._subtree(depth + 1, cut, hi))
            self._hashes[(depth, lo, hi)] = found
        return found

    def prove(self, vkey: str) -> tuple[StatusRecord | None, bytes]:
        """The key's record (None: absent) and its proof bytes (statusindex.py's layout) against `root`."""
        slot = key_slot(vkey)
        key = int.from_bytes(slot, "big")
        lo, hi, depth, siblings = 0, len(self._keys), 0, []
        while hi - lo > 1:
            cut = self._split(depth, lo, hi)
            mine, other = ((lo, cut), (cut, hi)) if _bit(key, depth) == 0 else ((cut, hi), (lo, cut))
            siblings.append(self._subtree(depth + 1, *other))
            (lo, hi), depth = mine, depth + 1
        bitmap = 0
        for i, sibling in enumerate(siblings):
            if sibling != EMPTY:
                bitmap |= 1 << (KEY_BITS - 1 - i)
        body = bitmap.to_bytes(BITMAP_SIZE, "big") + b"".join(s for s in reversed(siblings) if s != EMPTY)
        if hi == lo:
            return None, bytes([ABSENT_EMPTY]) + body
        if self._keys[lo] == key:
            return self._records[lo], bytes([PRESENT]) + body
        other_leaf = self._keys[lo].to_bytes(32, "big") + hashlib.sha256(self._records[lo].to_bytes()).digest()
        return None, bytes([ABSENT_OTHER_LEAF]) + body + other_leaf
