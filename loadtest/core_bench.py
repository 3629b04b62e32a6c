"""Micro-benchmarks of the pure core, each next to the ceiling measured in the same run.

    python3 dev.py bench          (or: .venv/bin/python -m loadtest.core_bench)

Prints figures; asserts nothing. Results go in BENCHMARKS.md.
"""

import hashlib
import platform
import random
import time
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric import ed25519

from tlogcore import merkle
from tlogcore.checkpoint import Checkpoint
from tlogcore.keys import Ed25519Signer
from tlogcore.note import open_note, sign_note

BATCH = 100_000


def rate(label: str, work: Callable[[], int], min_seconds: float = 1.0) -> float:
    """Run `work` (which returns how many operations it did) until `min_seconds` pass; ops per second."""
    done, start = 0, time.perf_counter()
    while True:
        done += work()
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return done / elapsed


def row(name: str, value: float, ceiling: float | None = None, unit: str = "/s") -> None:
    ratio = f"{value / ceiling:6.2f} of ceiling" if ceiling else ""
    print(f"  {name:<52} {value:>12,.0f}{unit}  {ratio}")


def main() -> None:
    print(f"machine: {platform.machine()}, {platform.processor() or 'cpu'}, Python {platform.python_version()}")
    data64 = bytes(64)

    def raw_sha256() -> int:
        for _ in range(10_000):
            hashlib.sha256(data64).digest()
        return 10_000

    sha_ceiling = rate("sha256", raw_sha256)
    print("\nMerkle (hashes only, in memory)")
    row("ceiling: raw hashlib.sha256 calls, 64-byte input", sha_ceiling)
    entries = [b"statement %d" % i for i in range(BATCH)]

    def append_batch() -> int:
        leaves = [merkle.leaf_hash(e) for e in entries]
        merkle.append_leaves(0, [], leaves)
        return BATCH

    append_rate = rate("append", append_batch, 2.0)
    # Appending costs two SHA-256 calls per leaf (leaf hash + about one node hash): ceiling = raw / 2.
    row(f"leaves appended/s, {BATCH:,} batch", append_rate, sha_ceiling / 2)

    appended = merkle.append_leaves(0, [], [merkle.leaf_hash(e) for e in entries])
    stored, root = appended.new_hashes, appended.root
    rng = random.Random(1)
    indexes = [rng.randrange(BATCH) for _ in range(1000)]

    def inclusion() -> int:
        for i in indexes:
            plan = merkle.inclusion_plan(i, BATCH)
            proof = plan.assemble([stored[j] for j in plan.stored_indexes])
            merkle.verify_inclusion(merkle.leaf_hash(entries[i]), i, BATCH, proof, root)
        return len(indexes)

    def inclusion_verify_only() -> int:
        for i, proof in zip(indexes, proofs, strict=True):
            merkle.verify_inclusion(merkle.leaf_hash(entries[i]), i, BATCH, proof, root)
        return len(indexes)

    plans = [merkle.inclusion_plan(i, BATCH) for i in indexes]
    proofs = [plan.assemble([stored[j] for j in plan.stored_indexes]) for plan in plans]
    olds = [rng.randrange(1, BATCH) for _ in range(1000)]
    old_roots = {}
    for old in olds:
        plan = merkle.root_plan(old)
        old_roots[old] = plan.assemble([stored[j] for j in plan.stored_indexes])[0]

    def consistency() -> int:
        for old in olds:
            plan = merkle.consistency_plan(old, BATCH)
            proof = plan.assemble([stored[j] for j in plan.stored_indexes])
            merkle.verify_consistency(old, BATCH, old_roots[old], root, proof)
        return len(olds)

    row(f"inclusion proofs built + verified/s (size {BATCH:,})", rate("incl", inclusion))
    # Verifying costs one leaf hash plus one hash per proof element (17 here): ceiling = raw / 18.
    row(f"inclusion proofs verified/s (size {BATCH:,})", rate("inclv", inclusion_verify_only), sha_ceiling / 18)
    row(f"consistency proofs built + verified/s (new {BATCH:,})", rate("cons", consistency))

    print("\nEd25519 (cryptography package)")
    key = ed25519.Ed25519PrivateKey.from_private_bytes(b"\x05" * 32)
    public = key.public_key()
    message = b"example.com/log\n100000\n" + b"A" * 44 + b"\n"
    signature = key.sign(message)

    def raw_sign() -> int:
        for _ in range(500):
            key.sign(message)
        return 500

    def raw_verify() -> int:
        for _ in range(500):
            public.verify(signature, message)
        return 500

    sign_ceiling = rate("sign", raw_sign)
    verify_ceiling = rate("verify", raw_verify)
    signer = Ed25519Signer("example.com/log", b"\x05" * 32)
    text = Checkpoint("example.com/log", 100_000, root).text
    note = sign_note(text, [signer])
    verifier = signer.verifier()

    def note_sign() -> int:
        for _ in range(500):
            sign_note(text, [signer])
        return 500

    def note_open() -> int:
        for _ in range(500):
            open_note(note, [verifier])
        return 500

    row("ceiling: raw Ed25519 sign calls", sign_ceiling)
    row("checkpoint notes signed/s", rate("nsign", note_sign), sign_ceiling)
    row("ceiling: raw Ed25519 verify calls", verify_ceiling)
    row("checkpoint notes opened + verified/s", rate("nopen", note_open), verify_ceiling)


if __name__ == "__main__":
    main()
