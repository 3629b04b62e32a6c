"""Micro-benchmarks of the pure core, each next to the ceiling measured in the same run.

    python3 dev.py bench          (or: .venv/bin/python -m loadtest.core_bench)

Prints figures; asserts nothing. Results go in BENCHMARKS.md.
"""

import hashlib
import platform
import random
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor

from cryptography.hazmat.primitives.asymmetric import ed25519
from nacl.signing import SigningKey

from tlogcore import merkle
from tlogcore.checkpoint import Checkpoint
from tlogcore.keys import Ed25519Signer
from tlogcore.keystatus import KeyMap, verify_key_status
from tlogcore.note import open_note, sign_note
from tlogcore.statusindex import parse_proof
from tlogcore.statusrecord import new_record

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
    key_index_rows(sha_ceiling)

    print("\nEd25519 (cryptography signs; tlogcore verifies with PyNaCl first)")
    key = ed25519.Ed25519PrivateKey.from_private_bytes(b"\x05" * 32)
    message = b"example.com/log\n100000\n" + b"A" * 44 + b"\n"
    signature = key.sign(message)

    def raw_sign() -> int:
        for _ in range(500):
            key.sign(message)
        return 500

    nacl_key = SigningKey(b"\x05" * 32).verify_key

    def raw_verify() -> int:
        for _ in range(500):
            nacl_key.verify(message, signature)
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
    row("ceiling: raw Ed25519 verify calls (PyNaCl)", verify_ceiling)
    row("checkpoint notes opened + verified/s", rate("nopen", note_open), verify_ceiling)
    verify_library_rows()


STATEMENT = b"tlog-statement/v1\n" + b"x" * 300  # about a statement's text
SEED = b"\x05" * 32


def key_index_rows(sha_ceiling: float) -> None:
    """The key index (docs/status-proofs.md §12) for registries of 10 to 10^4 keys, one in ten retired: a whole map
    made (the sequencing process, once per registry change), a proof made from the kept map (each lookup, per
    signing key) and one verified, beside raw SHA-256 over the hashes each needs."""
    print("\nKey index (tlogcore/keystatus.py), in memory")
    for keys in (10, 1_000, 10_000):
        key_index_row(keys, sha_ceiling)


def key_index_row(keys: int, sha_ceiling: float) -> None:
    records = {f"issuer{i}.example+{i:08x}+AQ": new_record([i], [keys + i] * (i % 10 == 0)) for i in range(keys)}
    made = KeyMap(records)
    hashes = 2 * keys + len(made._hashes)  # a leaf: its record's SHA-256 and its own; then each interior node
    row(f"maps made/s ({keys:,} keys)", rate("map", lambda: len([KeyMap(records)])), sha_ceiling / hashes)
    sample = list(records)[:1000]
    proofs = [(vkey, *made.prove(vkey)) for vkey in sample]
    row(f"proofs made/s ({keys:,} keys)", rate("prove", lambda: len([made.prove(v) for v in sample])))

    def verify() -> int:
        for vkey, record, proof in proofs:
            verify_key_status(vkey, record, proof, made.root)
        return len(proofs)

    per_proof = sum(parse_proof(proof).depth + 2 for _, _, proof in proofs) / len(proofs)  # the path, record, leaf
    row(f"proofs verified/s ({keys:,} keys)", rate("verify", verify), sha_ceiling / per_proof)
    sizes = [len(proof) for _, _, proof in proofs]
    row(f"proof bytes, mean / most ({keys:,} keys)", sum(sizes) / len(sizes), unit=f" B / {max(sizes):,} B")


def cryptography_verifies(seconds: float) -> int:
    key = ed25519.Ed25519PrivateKey.from_private_bytes(SEED)
    public, signature = key.public_key(), key.sign(STATEMENT)
    return repeat(lambda: public.verify(signature, STATEMENT), seconds)


def nacl_verifies(seconds: float) -> int:
    key = SigningKey(SEED)
    verify, signature = key.verify_key.verify, key.sign(STATEMENT).signature
    return repeat(lambda: verify(STATEMENT, signature), seconds)


def project_verifies(seconds: float) -> int:
    signer = Ed25519Signer("example.com/issuer", SEED)
    verifier, signature = signer.verifier(), signer.sign(STATEMENT)
    return repeat(lambda: verifier.verify(STATEMENT, signature), seconds)


def nacl_signs(seconds: float) -> int:
    key = SigningKey(SEED)
    return repeat(lambda: key.sign(STATEMENT), seconds)


def repeat(call: Callable[[], object], seconds: float) -> int:
    done, deadline = 0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        for _ in range(100):
            call()
        done += 100
    return done


def in_processes(work: Callable[[float], int], processes: int, seconds: float = 1.5) -> float:
    """Operations per second of `processes` worker processes running `work` side by side (all cores)."""
    with ProcessPoolExecutor(processes) as pool:
        list(pool.map(work, [0.05] * processes))  # start the workers before the clock runs
        started = time.perf_counter()
        total = sum(pool.map(work, [seconds] * processes))
        return total / (time.perf_counter() - started)


def verify_library_rows() -> None:
    """The Ed25519 verify ceiling of both libraries, 1 and 2 processes (tlogcore/keys.py uses libsodium first)."""
    print("\nEd25519 verify of a statement-sized text: cryptography (OpenSSL) vs PyNaCl (libsodium)")
    ossl_one = in_processes(cryptography_verifies, 1)
    row("cryptography verify, 1 process", ossl_one)
    row("cryptography verify, 2 processes", in_processes(cryptography_verifies, 2), ossl_one)
    nacl_one = in_processes(nacl_verifies, 1)
    row("PyNaCl verify, 1 process", nacl_one, ossl_one)
    row("PyNaCl verify, 2 processes (the ceiling for submissions)", in_processes(nacl_verifies, 2), nacl_one)
    row("Ed25519Verifier.verify (tlogcore), 1 process", in_processes(project_verifies, 1), nacl_one)
    row("PyNaCl sign, 1 process (cryptography signs: see above)", in_processes(nacl_signs, 1))


if __name__ == "__main__":
    main()
