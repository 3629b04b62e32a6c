"""The fast Merkle code against the recursive RFC 9162 reference, on every size up to 300 and random larger ones."""

import random

import pytest
from reference import ReferenceTree

from tlogcore import merkle
from tlogcore.errors import ProofError

MAX_EXHAUSTIVE = 300


def append_in_batches(entries: list[bytes], batch_sizes: list[int]) -> tuple[list[bytes], dict[int, bytes]]:
    stored: list[bytes] = []
    roots: dict[int, bytes] = {0: merkle.EMPTY_ROOT}
    size = 0
    for count in batch_sizes:
        edge = [stored[merkle.stored_hash_index(level, index)] for level, index in merkle.right_edge(size)]
        appended = merkle.append_leaves(size, edge, [merkle.leaf_hash(e) for e in entries[size : size + count]])
        stored += appended.new_hashes
        size += count
        roots[size] = appended.root
        assert appended.edge == [stored[merkle.stored_hash_index(lv, i)] for lv, i in merkle.right_edge(size)]
    assert size == len(entries)
    return stored, roots


def fetch(stored: list[bytes], plan: merkle.HashPlan) -> list[bytes]:
    return plan.assemble([stored[i] for i in plan.stored_indexes])


@pytest.fixture(scope="module")
def small() -> tuple[ReferenceTree, list[bytes], dict[int, bytes]]:
    entries = [f"leaf {i}".encode() for i in range(MAX_EXHAUSTIVE)]
    stored, roots = append_in_batches(entries, [1] * MAX_EXHAUSTIVE)
    return ReferenceTree(entries), stored, roots


def test_roots_and_stored_layout_match_reference(small: tuple[ReferenceTree, list[bytes], dict[int, bytes]]) -> None:
    ref, stored, roots = small
    for size in range(MAX_EXHAUSTIVE + 1):
        assert roots[size] == ref.root(size)
        assert fetch(stored, merkle.root_plan(size)) == ([ref.root(size)] if size else [])
        for level in range(size.bit_length()):
            for index in range(size >> level):
                start = index << level
                assert stored[merkle.stored_hash_index(level, index)] == ref.hash(start, start + (1 << level))


def test_every_inclusion_proof_up_to_300(small: tuple[ReferenceTree, list[bytes], dict[int, bytes]]) -> None:
    ref, stored, roots = small
    for size in range(1, MAX_EXHAUSTIVE + 1):
        for index in range(size):
            proof = fetch(stored, merkle.inclusion_plan(index, size))
            assert proof == ref.inclusion(index, size)
            merkle.verify_inclusion(ref.hash(index, index + 1), index, size, proof, roots[size])


def test_every_consistency_proof_up_to_300(small: tuple[ReferenceTree, list[bytes], dict[int, bytes]]) -> None:
    ref, stored, roots = small
    for new in range(MAX_EXHAUSTIVE + 1):
        for old in range(new + 1):
            proof = fetch(stored, merkle.consistency_plan(old, new))
            assert proof == ref.consistency(old, new)
            merkle.verify_consistency(old, new, roots[old], roots[new], proof)


def test_random_batches_and_larger_sizes() -> None:
    rng = random.Random(9162)
    entries = [rng.randbytes(rng.randrange(0, 40)) for _ in range(5000)]
    batches = []
    while sum(batches) < len(entries):
        batches.append(min(rng.choice([1, 7, 255, 256, 257, 1000]), len(entries) - sum(batches)))
    stored, roots = append_in_batches(entries, batches)
    one_by_one, _ = append_in_batches(entries, [1] * len(entries))
    assert stored == one_by_one  # batching never changes what is stored
    ref = ReferenceTree(entries)
    for size in roots:
        assert roots[size] == ref.root(size)
    for _ in range(300):
        new = rng.randrange(1, len(entries) + 1)
        old = rng.randrange(0, new + 1)
        index = rng.randrange(new)
        inclusion = fetch(stored, merkle.inclusion_plan(index, new))
        assert inclusion == ref.inclusion(index, new)
        merkle.verify_inclusion(merkle.leaf_hash(entries[index]), index, new, inclusion, ref.root(new))
        consistency = fetch(stored, merkle.consistency_plan(old, new))
        assert consistency == ref.consistency(old, new)
        merkle.verify_consistency(old, new, ref.root(old), ref.root(new), consistency)


def test_every_single_byte_mutation_of_a_proof_is_rejected(
    small: tuple[ReferenceTree, list[bytes], dict[int, bytes]],
) -> None:
    ref, stored, roots = small
    for index, size in [(0, 1), (5, 8), (2, 3), (130, 257), (299, 300)]:
        proof = fetch(stored, merkle.inclusion_plan(index, size))
        leaf = ref.hash(index, index + 1)
        for i, item in enumerate(proof):
            for pos in range(len(item)):
                bad = list(proof)
                bad[i] = item[:pos] + bytes([item[pos] ^ 0x01]) + item[pos + 1 :]
                with pytest.raises(ProofError):
                    merkle.verify_inclusion(leaf, index, size, bad, roots[size])
        for wrong in [proof[:-1], [*proof, proof[0] if proof else leaf], proof[1:] + proof[:1]]:
            if wrong != proof:
                with pytest.raises(ProofError):
                    merkle.verify_inclusion(leaf, index, size, wrong, roots[size])
        if size > 1:
            with pytest.raises(ProofError):
                merkle.verify_inclusion(leaf, (index + 1) % size, size, proof, roots[size])
    for old, new in [(1, 8), (6, 8), (7, 300), (256, 257), (100, 299)]:
        proof = fetch(stored, merkle.consistency_plan(old, new))
        for i, item in enumerate(proof):
            for pos in range(len(item)):
                bad = list(proof)
                bad[i] = item[:pos] + bytes([item[pos] ^ 0x80]) + item[pos + 1 :]
                with pytest.raises(ProofError):
                    merkle.verify_consistency(old, new, roots[old], roots[new], bad)
        with pytest.raises(ProofError):
            merkle.verify_consistency(old, new, roots[old], roots[new], proof[:-1])
        with pytest.raises(ProofError):
            merkle.verify_consistency(old, new, roots[old + 1], roots[new], proof)


def test_append_reads_only_the_right_edge() -> None:
    # Appending to a tree of size n needs exactly one hash per set bit of n, and
    # writes one leaf hash plus one hash per subtree completed (about 2 per leaf).
    for size in (0, 1, 255, 256, 1000, 2**20 - 1):
        assert len(merkle.right_edge(size)) == size.bit_count()
    appended = merkle.append_leaves(0, [], [merkle.leaf_hash(b"%d" % i) for i in range(1024)])
    assert len(appended.new_hashes) == merkle.stored_hash_count(1024) == 2047
