"""The status index: a sparse Merkle tree from document SHA-256 to status record, with proofs of presence and
absence (docs/status-proofs.md §3-§5 is the same specification with its reasons).

Keys and positions. The key is the document's SHA-256, 32 bytes, read as 256 bits, most significant bit of byte 0
first: bit i = (int.from_bytes(key, "big") >> (255 - i)) & 1. The tree has depth 256; a node at depth d is named
by the first d bits of the keys below it; bit d chooses its child (0 left, 1 right).

Compression (the shape of Libra/Diem's binary sparse Merkle tree): a subtree holding no key is EMPTY; a subtree
holding exactly one key is that key's leaf hash, wherever the subtree sits (a leaf binds its whole key, so its
depth need not be hashed); only a subtree holding two or more keys is an interior node. The root is therefore a
function of the set of (key, record) pairs alone, and a proof is as long as the key's shortcut path (about
log2 n siblings).

Hashes, RFC 9162 §2.1.1 style, with prefixes distinct from the log tree's 0x00/0x01 so no index hash can be
taken for a log hash or the other way round:

    EMPTY          = SHA-256(0x12)
    leaf(key, r)   = SHA-256(0x10 || key (32) || SHA-256(r))       r = the status record bytes (statusrecord.py)
    node(l, r)     = SHA-256(0x11 || l (32) || r (32))

Proof of the key K's status against root R (bytes, no varints):

    u8   kind        0x00 present: K's own leaf ends the path (the record is sent beside the proof)
                     0x01 absent: the path ends in an EMPTY subtree
                     0x02 absent: the path ends in the leaf of another key K' (with K's first d bits)
    32   bitmap      bit i (MSB-first, as key bits) set iff the sibling at depth i+1 on K's path is not EMPTY;
                     the path's depth d is the position of the last set bit plus one (0 if none), so the
                     deepest sibling is never EMPTY (in a compressed tree it cannot be) and d needs no field
    32 x popcount    the non-EMPTY siblings, deepest first (leaf side first, as RFC 9162 orders its proofs)
    [kind 0x02]      K' (32) || SHA-256(record of K') (32)

Verification derives everything from K, the claimed record and R; it trusts only the hashes the prover sends:
check the length against kind and bitmap; compute the terminal hash (leaf(K, record), EMPTY, or the other leaf
after checking K' != K and that K' shares K's first d bits); fold the siblings up K's bits (EMPTY where the bitmap
bit is clear); compare with R. One root gives one terminal per key, so no root proves both presence and absence.
"""

import hashlib
from dataclasses import dataclass

from tlogcore.encoding import HASH_SIZE
from tlogcore.errors import ProofError
from tlogcore.statusrecord import StatusRecord

KEY_BITS = 256
LEAF_PREFIX, NODE_PREFIX, EMPTY_PREFIX = b"\x10", b"\x11", b"\x12"
EMPTY = hashlib.sha256(EMPTY_PREFIX).digest()
PRESENT, ABSENT_EMPTY, ABSENT_OTHER_LEAF = 0x00, 0x01, 0x02
BITMAP_SIZE = KEY_BITS // 8
MAX_PROOF_SIZE = 1 + BITMAP_SIZE + KEY_BITS * HASH_SIZE + 2 * HASH_SIZE


def key_int(key: bytes) -> int:
    return int.from_bytes(key, "big")


def leaf_hash_of(key: bytes, value_hash: bytes) -> bytes:
    return hashlib.sha256(LEAF_PREFIX + key + value_hash).digest()


def leaf_hash(key: bytes, record: bytes) -> bytes:
    """SHA-256(0x10 || key || SHA-256(record))."""
    return leaf_hash_of(key, hashlib.sha256(record).digest())


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x11 || left || right)."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


@dataclass(frozen=True)
class StatusProof:
    """A parsed proof; `siblings` deepest first, `depth` derived from the bitmap."""

    kind: int
    bitmap: int
    siblings: tuple[bytes, ...]
    other_key: bytes | None = None
    other_value_hash: bytes | None = None

    @property
    def depth(self) -> int:
        return KEY_BITS - ((self.bitmap & -self.bitmap).bit_length() - 1) if self.bitmap else 0

    def to_bytes(self) -> bytes:
        tail = b""
        if self.other_key is not None and self.other_value_hash is not None:
            tail = self.other_key + self.other_value_hash
        return bytes([self.kind]) + self.bitmap.to_bytes(BITMAP_SIZE, "big") + b"".join(self.siblings) + tail


def parse_proof(data: bytes) -> StatusProof:
    """Split proof bytes by the layout above, checking the length implied by kind and bitmap before anything else."""
    if len(data) < 1 + BITMAP_SIZE or len(data) > MAX_PROOF_SIZE:
        raise ProofError(f"status proof of {len(data)} bytes is outside {1 + BITMAP_SIZE}..{MAX_PROOF_SIZE}")
    kind, bitmap = data[0], int.from_bytes(data[1 : 1 + BITMAP_SIZE], "big")
    if kind not in (PRESENT, ABSENT_EMPTY, ABSENT_OTHER_LEAF):
        raise ProofError(f"status proof kind {kind:#04x} is unknown")
    count = bitmap.bit_count()
    want = 1 + BITMAP_SIZE + count * HASH_SIZE + (2 * HASH_SIZE if kind == ABSENT_OTHER_LEAF else 0)
    if len(data) != want:
        raise ProofError(f"status proof is {len(data)} bytes; its kind and bitmap say {want}")
    pos = 1 + BITMAP_SIZE
    siblings = tuple(data[pos + i * HASH_SIZE : pos + (i + 1) * HASH_SIZE] for i in range(count))
    if kind != ABSENT_OTHER_LEAF:
        return StatusProof(kind, bitmap, siblings)
    pos += count * HASH_SIZE
    return StatusProof(kind, bitmap, siblings, data[pos : pos + HASH_SIZE], data[pos + HASH_SIZE :])


def _terminal_hash(key: bytes, record: StatusRecord | None, proof: StatusProof) -> bytes:
    if proof.kind == PRESENT:
        if record is None:
            raise ProofError("status proof shows the document present, but no status record came with it")
        return leaf_hash(key, record.to_bytes())
    if record is not None:
        raise ProofError("a status record came with a proof that the document is absent")
    if proof.kind == ABSENT_EMPTY:
        return EMPTY
    other, value_hash = proof.other_key, proof.other_value_hash
    if other is None or value_hash is None or other == key:
        raise ProofError("status proof of absence names the document itself as the other leaf")
    depth = proof.depth
    if (key_int(key) ^ key_int(other)) >> (KEY_BITS - depth):
        raise ProofError(f"status proof of absence: the other leaf does not share the first {depth} bits of the key")
    return leaf_hash_of(other, value_hash)


def root_from_proof(key: bytes, record: StatusRecord | None, proof_bytes: bytes) -> bytes:
    """The root that `proof_bytes` implies for `key` having `record` (None: absent)."""
    if len(key) != HASH_SIZE:
        raise ProofError(f"status index key is {len(key)} bytes, want {HASH_SIZE}")
    proof = parse_proof(proof_bytes)
    acc = _terminal_hash(key, record, proof)
    bits, bitmap, siblings = key_int(key), proof.bitmap, iter(proof.siblings)
    sha256 = hashlib.sha256  # node_hash, inline: a server checks every proof it serves (§9 "Serving")
    for shift in range(KEY_BITS - proof.depth, KEY_BITS):  # depth d - 1 up to 0: shift = KEY_BITS - 1 - depth
        sibling = next(siblings) if (bitmap >> shift) & 1 else EMPTY
        acc = sha256(NODE_PREFIX + sibling + acc if (bits >> shift) & 1 else NODE_PREFIX + acc + sibling).digest()
    return acc


def verify_status(key: bytes, record: StatusRecord | None, proof_bytes: bytes, root: bytes) -> None:
    """Raise ProofError unless the index with `root` maps `key` to `record` (None: `key` is not in the index)."""
    if len(root) != HASH_SIZE:
        raise ProofError(f"status index root is {len(root)} bytes, want {HASH_SIZE}")
    if root_from_proof(key, record, proof_bytes) != root:
        what = "present with this record" if record is not None else "absent"
        raise ProofError(f"status proof that {key.hex()[:16]}… is {what} does not lead to the index root")
