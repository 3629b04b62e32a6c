"""tlog-proof, tlog-policy and the witness session's core checks against tests/vectors."""

import base64

import pytest
from conftest import load_vectors

from tlogcore import merkle
from tlogcore.bundle import TlogProof, parse_tlog_proof
from tlogcore.checkpoint import parse_checkpoint
from tlogcore.cosignature import CosignatureV1Signer
from tlogcore.errors import MalformedError, ProofError, SignatureError, UnverifiedError
from tlogcore.keys import Ed25519Signer
from tlogcore.note import open_note, parse_note, sign_note
from tlogcore.policy import parse_policy
from tlogcore.vkeys import parse_verifier_key

PROOFS = load_vectors("proof/tlog_proof.json")
POLICIES = load_vectors("policy/policies.json")
CHECKPOINTS = {c["name"]: c for c in load_vectors("checkpoint/checkpoints.json")["signed_checkpoints"]}
WITNESS = load_vectors("witness/add_checkpoint_sequence.json")


@pytest.mark.parametrize("case", PROOFS["serialize"], ids=lambda c: c["name"])
def test_tlog_proof_serialize(case: dict) -> None:
    extra = bytes.fromhex(case["extra_hex"]) if case["extra_hex"] is not None else None
    hashes = tuple(bytes.fromhex(h) for h in case["proof_hex"])
    proof = TlogProof(case["index"], hashes, case["checkpoint"].encode(), extra)
    assert proof.to_text().decode() == case["serialized"]
    assert parse_tlog_proof(case["serialized"].encode()) == proof


@pytest.mark.parametrize("case", PROOFS["malformed"], ids=lambda c: c["why"])
def test_tlog_proof_malformed(case: dict) -> None:
    with pytest.raises(MalformedError):
        parse_tlog_proof(case["proof_text"].encode())


def verify_end_to_end(text: str, leaf: bytes, policy_text: str) -> None:
    proof = parse_tlog_proof(text.encode())
    trusted = parse_policy(policy_text).verify_checkpoint(proof.checkpoint)
    merkle.verify_inclusion(leaf, proof.index, trusted.checkpoint.size, proof.proof, trusted.checkpoint.root)


def test_tlog_proof_end_to_end() -> None:
    case = PROOFS["end_to_end"]
    leaf = bytes.fromhex(case["leaf_hash_hex"])
    verify_end_to_end(case["proof_text"], leaf, case["policy"])
    assert case["expect_valid"]
    with pytest.raises(ProofError):  # index 2 -> 3
        verify_end_to_end(case["proof_text"].replace("index 2", "index 3"), leaf, case["policy"])
    with pytest.raises(ProofError):  # leaf 2a02.. -> 2a03..
        verify_end_to_end(case["proof_text"], bytes([0x2A, 0x03]) + leaf[2:], case["policy"])
    assert [v["expect_valid"] for v in case["negative_variants"]] == [False, False]


def test_c2sp_policy_truth_table() -> None:
    example = POLICIES["c2sp_example"]
    # The spec elides the keys: put real ones in their places, keeping the shape.
    text = example["policy_text"]
    for i, name in enumerate(["X1", "X2", "X3", "Y1", "Y2", "Y3"]):
        signer = CosignatureV1Signer(f"w{i}.example", bytes([i + 1]) * 32, lambda: 1)
        text = text.replace(f"witness {name} <vkey>", f"witness {name} {signer.verifier().vkey}")
    text = text.replace("log <vkey>", "log " + Ed25519Signer("example.com/log", b"\x09" * 32).verifier().vkey)
    policy = parse_policy(text)
    for row in example["quorum_truth_table"]:
        assert policy.is_satisfied(set(row["witnesses_with_valid_cosignature"])) == row["quorum_satisfied"], row


@pytest.mark.parametrize("case", POLICIES["concrete"], ids=lambda c: c["name"])
def test_concrete_policies(case: dict) -> None:
    checkpoint = CHECKPOINTS[case["checkpoint_ref"].split("#")[1]]["signed_note"].encode()
    policy = parse_policy(case["policy_text"])
    if case["expect_valid"]:
        trusted = policy.verify_checkpoint(checkpoint)
        assert trusted.checkpoint.size == 1432088532
    else:
        with pytest.raises(UnverifiedError):
            policy.verify_checkpoint(checkpoint)


def test_sigsum_builtin_policy() -> None:
    case = POLICIES["sigsum_builtin"]
    policy = parse_policy(case["policy_text"])
    expected = case["expected"]
    assert len(policy.logs) == expected["logs"] and len(policy.witnesses) == expected["witnesses"]
    assert [(g.name, g.threshold, len(g.members)) for g in policy.groups.values()] == [
        (g["name"], g["threshold"], g["members"]) for g in expected["groups"]
    ]
    assert policy.quorum == expected["quorum"]


@pytest.mark.parametrize(
    "bad",
    [
        "quorum none\n",  # no log
        "log a+00000000+AAAA\nquorum none\n",
        "log {log}\nwitness W {w}\nwitness W {w}\nquorum W\n",  # name twice
        "log {log}\nwitness W {w}\ngroup G 2 W\nquorum G\n",  # threshold above member count
        "log {log}\nwitness W {w}\ngroup G any W W\nquorum G\n",  # member twice
        "log {log}\nquorum X\n",  # undefined
        "log {log}\nquorum none\nquorum none\n",
        "log {log}\ngroup G 1 W\nwitness W {w}\nquorum G\n",  # used before defined
        "log {log}\nwitness W {w}\ngroup G 01 W\nquorum G\n",  # non-canonical number
        "log {log}\nlog {log}\nquorum none\n",  # duplicate key
        "log {log}\x01\nquorum none\n",
    ],
)
def test_bad_policies_are_refused(bad: str) -> None:
    log = WITNESS["log_vkey"]
    witness = WITNESS["witness"]["vkey"]
    with pytest.raises(MalformedError):
        parse_policy(bad.format(log=log, w=witness))


def test_witness_session_core_checks() -> None:
    """The parts of the witness session the core decides: signatures, proofs, and byte-exact cosignatures.

    The HTTP replay of the same file runs against the witness service (tests/test_witness_*.py).
    """
    log = parse_verifier_key(WITNESS["log_vkey"])
    leaves = [bytes.fromhex(h) for h in WITNESS["tree"]["leaf_hashes_hex"]]
    roots = {int(k): bytes.fromhex(v) for k, v in WITNESS["tree"]["root_by_size_hex"].items()}
    assert merkle.append_leaves(0, [], leaves).root == roots[5]
    seed = bytes.fromhex(WITNESS["witness"]["ed25519_seed_hex"])
    signer = CosignatureV1Signer(WITNESS["witness"]["name"], seed, lambda: 1700000000)
    assert signer.verifier().vkey == WITNESS["witness"]["vkey"]
    for step in WITNESS["steps"]:
        head, _, note = step["request_body"].partition("\n\n")
        old = int(head.split("\n")[0].removeprefix("old "))
        proof = [base64.b64decode(x) for x in head.split("\n")[1:]]
        if step["spec_status"] == 403:
            with pytest.raises(SignatureError):
                open_note(note.encode(), [log])
            continue
        if step["spec_status"] == 404:
            assert parse_checkpoint(parse_note(note.encode()).text).origin != log.name
            continue
        checkpoint = parse_checkpoint(open_note(note.encode(), [log]).text)
        state = step["witness_state_before"] or 0
        if step["spec_status"] == 409:
            assert old != state
            continue
        if step["spec_status"] == 422:
            with pytest.raises(ProofError):
                merkle.verify_consistency(old, checkpoint.size, roots[old], checkpoint.root, proof)
            continue
        assert step["spec_status"] == 200 and old == state
        merkle.verify_consistency(old, checkpoint.size, roots[old], checkpoint.root, proof)
        line = sign_note(checkpoint.text, [signer]).decode().rsplit("\n\n", 1)[1]
        assert line == step["derived_cosignature_line_at_timestamp_1700000000"]
