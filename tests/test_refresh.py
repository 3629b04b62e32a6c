"""Refreshing an old bundle onto the log's newest checkpoint (tlogcore/bundle.py: refresh_bundle), pure: the
proofs are the core's own, from the deterministic mini log of tests/corefixtures.py."""

import pytest
from corefixtures import NOW, ORIGIN, mini_log

from tlogcore import merkle
from tlogcore.bundle import InconsistentLogError, refresh_bundle, verify_bundle
from tlogcore.errors import ProofError, UnverifiedError
from tlogcore.keys import Ed25519Signer
from tlogcore.logkey import LogKeyRotation
from tlogcore.policy import parse_policy

NEW = Ed25519Signer(ORIGIN, b"\x05" * 32)
REGISTRY = Ed25519Signer(f"{ORIGIN}/registry", b"\x03" * 32)


def _proofs(log, index: int, old: int, new: int) -> tuple[list[bytes], list[bytes]]:  # type: ignore[no-untyped-def]
    consistency = merkle.consistency_plan(old, new)
    inclusion = merkle.inclusion_plan(index, new)
    return (
        consistency.assemble([log.stored[i] for i in consistency.stored_indexes]),
        inclusion.assemble([log.stored[i] for i in inclusion.stored_indexes]),
    )


def test_a_bundle_is_moved_onto_the_newest_checkpoint() -> None:
    log = mini_log(20)
    old = log.bundle(4, 10)
    consistency, inclusion = _proofs(log, 4, 10, 20)
    refreshed = refresh_bundle(old, log.checkpoint(20), consistency, inclusion, log.policy, NOW)
    assert refreshed.changed and refreshed.previous.size == 10
    assert refreshed.verified.checkpoint.size == 20
    assert (refreshed.bundle.index, refreshed.bundle.extra) == (old.index, old.extra)
    assert verify_bundle(refreshed.bundle, log.policy, NOW).checkpoint.size == 20


def test_the_same_checkpoint_is_no_change() -> None:
    log = mini_log(20)
    old = log.bundle(4, 20)
    refreshed = refresh_bundle(old, log.checkpoint(20), [], list(old.proof), log.policy, NOW)
    assert not refreshed.changed and refreshed.bundle == old


def test_a_checkpoint_on_another_history_is_the_log_misbehaving() -> None:
    log, fork = mini_log(20), mini_log(20)
    fork.entries[7] = fork.entries[8]  # the same log key signs a tree with another leaf 7
    fork.stored = merkle.append_leaves(0, [], [merkle.leaf_hash(e) for e in fork.entries]).new_hashes
    old = log.bundle(4, 10)
    consistency, inclusion = _proofs(fork, 4, 10, 20)
    with pytest.raises(InconsistentLogError, match="not a prefix") as caught:
        refresh_bundle(old, fork.checkpoint(20), consistency, inclusion, log.policy, NOW)
    assert caught.value.old == old.checkpoint and caught.value.new == fork.checkpoint(20)


def test_a_smaller_newest_checkpoint_is_the_log_misbehaving() -> None:
    log = mini_log(20)
    with pytest.raises(InconsistentLogError, match="smaller"):
        refresh_bundle(log.bundle(4, 10), log.checkpoint(8), [], [], log.policy, NOW)


def test_a_wrong_inclusion_proof_or_an_unwitnessed_newest_is_refused() -> None:
    log = mini_log(20)
    consistency, inclusion = _proofs(log, 4, 10, 20)
    with pytest.raises(ProofError):
        refresh_bundle(log.bundle(4, 10), log.checkpoint(20), consistency, inclusion[::-1], log.policy, NOW)
    with pytest.raises(UnverifiedError, match="quorum"):
        refresh_bundle(log.bundle(4, 10), log.checkpoint(20, cosigners=1), consistency, inclusion, log.policy, NOW)


def test_a_bundle_from_before_a_log_key_rotation_refreshes_onto_the_new_key() -> None:
    log = mini_log(25)
    old = log.bundle(4, 10)  # signed by the first key
    rotation = LogKeyRotation(
        ORIGIN, log.log_key.verifier().vkey, NEW.verifier().vkey, REGISTRY.verifier().vkey, NOW, 21, 21
    )
    witnesses = "".join(f"witness W{i} {w.verifier().vkey}\n" for i, w in enumerate(log.witnesses))
    policy = parse_policy(
        f"log {log.log_key.verifier().vkey}\nlog {NEW.verifier().vkey}\n{witnesses}"
        "group two-of-three 2 W0 W1 W2\nquorum two-of-three\n"
    ).following([rotation])
    stale = log.checkpoint(25)  # the old key, after the rotation
    log.log_key = NEW
    consistency, inclusion = _proofs(log, 4, 10, 25)
    refreshed = refresh_bundle(old, log.checkpoint(25), consistency, inclusion, policy, NOW)
    assert refreshed.verified.checkpoint.size == 25
    with pytest.raises(UnverifiedError, match="rotation"):
        refresh_bundle(old, stale, consistency, inclusion, policy, NOW)
