"""Statements and proof bundles: build, sign, parse, verify, round-trip; every single-byte mutation fails."""

import pytest
from corefixtures import NOW, ORIGIN, document_hash, mini_log

from tlogcore import merkle
from tlogcore.bundle import from_binary, parse_tlog_proof, to_binary, verify_bundle
from tlogcore.checkpoint import parse_checkpoint
from tlogcore.cosignature import CosignatureV1Signer
from tlogcore.errors import MalformedError, ProofError, SignatureError, TlogError, UnverifiedError
from tlogcore.keys import Ed25519Signer
from tlogcore.note import open_note, parse_note, sign_note
from tlogcore.statement import (
    ISSUER_ADD,
    ISSUER_RETIRE,
    REVOKE,
    Statement,
    parse_statement,
    sign_statement,
)

LOG = mini_log()
ISSUER = LOG.issuer_key
REGISTRY = Ed25519Signer("registry.log.example.gov.kh", b"\x03" * 32)


def all_kinds() -> list[tuple[Statement, Ed25519Signer]]:
    issuer_vkey = ISSUER.verifier().vkey
    return [
        (Statement(ORIGIN, "issue", issuer_vkey, NOW, document=document_hash(1), ref="Diploma 2026/17"), ISSUER),
        (Statement(ORIGIN, REVOKE, issuer_vkey, NOW, document=document_hash(1), reason="issued in error"), ISSUER),
        (Statement(ORIGIN, ISSUER_ADD, REGISTRY.verifier().vkey, NOW, issuer=issuer_vkey, ref="ក្រសួងអប់រំ"), REGISTRY),
        (Statement(ORIGIN, ISSUER_RETIRE, REGISTRY.verifier().vkey, NOW, issuer=issuer_vkey), REGISTRY),
    ]


@pytest.mark.parametrize("statement,signer", all_kinds(), ids=lambda x: getattr(x, "kind", ""))
def test_statement_round_trip(statement: Statement, signer: Ed25519Signer) -> None:
    signed = sign_statement(statement, signer)
    assert parse_statement(signed) == statement
    assert signed.startswith(b"tlog-statement/v1\nlog " + ORIGIN.encode() + b"\nkind ")
    assert len(signed) < 600  # small: a few hundred bytes


def test_statement_refuses_the_wrong_signer() -> None:
    statement, _ = all_kinds()[0]
    with pytest.raises(ValueError):
        sign_statement(statement, REGISTRY)


@pytest.mark.parametrize("statement,signer", all_kinds()[:3], ids=lambda x: getattr(x, "kind", ""))
def test_every_single_byte_mutation_of_a_statement_is_rejected(statement: Statement, signer: Ed25519Signer) -> None:
    signed = sign_statement(statement, signer)
    for pos in range(len(signed)):
        for flip in (0x01, 0x20):
            mutated = signed[:pos] + bytes([signed[pos] ^ flip]) + signed[pos + 1 :]
            with pytest.raises(TlogError):
                parse_statement(mutated)


@pytest.mark.parametrize(
    "text",
    [
        "tlog-statement/v1\nlog {o}\nkind issue\nsigner {s}\ntime 01\ndocument {d}\n",  # leading zero
        "tlog-statement/v1\nlog {o}\nkind issue\nsigner {s}\ntime 5\ndocument {D}\n",  # uppercase hex
        "tlog-statement/v1\nlog {o}\nkind issue\ntime 5\nsigner {s}\ndocument {d}\n",  # field order
        "tlog-statement/v1\nlog {o}\nkind issue\nsigner {s}\ntime 5\ndocument {d}\nref  padded\n",
        "tlog-statement/v1\nlog {o}\nkind issue\nsigner {s}\ntime 5\ndocument {d}\nreason no\n",  # reason on issue
        "tlog-statement/v1\nlog {o}\nkind issue\nsigner {s}\ntime 5\ndocument {d}\nextra 1\n",
        "tlog-statement/v1\nlog {o}\nkind publish\nsigner {s}\ntime 5\ndocument {d}\n",
        "tlog-statement/v2\nlog {o}\nkind issue\nsigner {s}\ntime 5\ndocument {d}\n",
        "tlog-statement/v1\nlog {o}\nkind issue\nsigner {s}\ntime 5\nissuer {s}\n",
        "tlog-statement/v1\nlog {o}\nkind issue\nsigner {s}\ntime 0\ndocument {d}\n",
        "tlog-statement/v1\nlog {o}\nkind issue\nsigner {s}\ntime 5\ndocument {d}\nref e\u0301\n",  # not NFC
    ],
)
def test_non_canonical_statements_are_refused(text: str) -> None:
    body = text.format(o=ORIGIN, s=ISSUER.verifier().vkey, d="ab" * 32, D="AB" * 32)
    with pytest.raises(MalformedError):
        parse_statement(sign_note(body, [ISSUER]))


def test_statement_signed_by_another_key_is_refused() -> None:
    statement, _ = all_kinds()[0]
    forged = sign_note(statement.text, [Ed25519Signer(ISSUER.name, b"\x09" * 32)])
    with pytest.raises(SignatureError):
        parse_statement(forged)
    two = sign_note(statement.text, [ISSUER, REGISTRY])
    with pytest.raises(MalformedError):
        parse_statement(two)
    with pytest.raises(MalformedError):
        parse_statement(sign_statement(statement, ISSUER) + b"x" * 9000)


def test_bundle_verifies_and_round_trips_in_both_forms() -> None:
    for index, size in [(0, 1), (3, 20), (19, 20), (7, 8)]:
        bundle = LOG.bundle(index, size)
        verified = verify_bundle(bundle, LOG.policy, NOW, document_hash(index))
        assert verified.statement.document == document_hash(index)
        assert verified.trusted.witnesses == {"W0", "W1", "W2"}
        assert parse_tlog_proof(bundle.to_text()) == bundle
        binary = to_binary(bundle)
        assert from_binary(binary) == bundle
        assert len(binary) < len(bundle.to_text())


def test_bundle_failures_say_what_failed() -> None:
    bundle = LOG.bundle(3, 20)
    with pytest.raises(ProofError):  # another document in hand
        verify_bundle(bundle, LOG.policy, NOW, document_hash(4))
    with pytest.raises(UnverifiedError):  # quorum 2 of 3 not met with one cosignature
        verify_bundle(LOG.bundle(3, 20, cosigners=1), LOG.policy, NOW)
    verify_bundle(LOG.bundle(3, 20, cosigners=2), LOG.policy, NOW)
    with pytest.raises(ProofError):  # proof for another index
        verify_bundle(type(bundle)(4, bundle.proof, bundle.checkpoint, bundle.extra), LOG.policy, NOW)
    other_origin = mini_log()
    other_origin.log_key = Ed25519Signer("other.example", b"\x01" * 32)
    with pytest.raises(UnverifiedError):  # checkpoint of a log the policy does not trust
        verify_bundle(type(bundle)(3, bundle.proof, other_origin.checkpoint(20), bundle.extra), LOG.policy, NOW)


def test_cosignatures_from_the_future_do_not_count() -> None:
    late = [CosignatureV1Signer(w.name, w.seed, lambda: NOW + 3600) for w in LOG.witnesses]
    note = parse_note(LOG.checkpoint(20, cosigners=0))
    checkpoint = sign_note(note.text, late, note.signatures)
    with pytest.raises(UnverifiedError):
        LOG.policy.verify_checkpoint(checkpoint, now=NOW)
    assert LOG.policy.verify_checkpoint(checkpoint, now=NOW + 3600).witnesses == {"W0", "W1", "W2"}


def test_every_single_byte_mutation_of_a_bundle_is_rejected() -> None:
    bundle = LOG.bundle(5, 20, cosigners=2)  # exactly the quorum, so losing any cosignature fails too
    text = bundle.to_text()
    for pos in range(len(text)):
        mutated = text[:pos] + bytes([text[pos] ^ 0x01]) + text[pos + 1 :]
        with pytest.raises(TlogError):
            verify_bundle(parse_tlog_proof(mutated), LOG.policy, NOW, document_hash(5))
    binary = to_binary(bundle)
    for pos in range(len(binary)):
        mutated = binary[:pos] + bytes([binary[pos] ^ 0x01]) + binary[pos + 1 :]
        with pytest.raises(TlogError):
            verify_bundle(from_binary(mutated), LOG.policy, NOW, document_hash(5))
    for cut in range(len(binary)):
        with pytest.raises(TlogError):
            from_binary(binary[:cut])
    with pytest.raises(MalformedError):
        from_binary(binary + b"\x00")


def test_every_single_byte_mutation_of_a_checkpoint_and_cosignature_is_rejected() -> None:
    signed = LOG.checkpoint(20, cosigners=2)
    keys = [*LOG.policy.logs, *LOG.policy.witnesses.values()]
    opened = open_note(signed, keys)
    assert len(opened.verified) == 3
    for pos in range(len(signed)):
        mutated = signed[:pos] + bytes([signed[pos] ^ 0x01]) + signed[pos + 1 :]
        try:
            result = LOG.policy.verify_checkpoint(mutated, NOW)
        except TlogError:
            continue
        pytest.fail(f"mutation at byte {pos} accepted: {result}")
    body = parse_checkpoint(opened.text)
    assert body.size == 20


def test_mutated_notes_never_open() -> None:
    text = "a note about nothing\n"
    signed = sign_note(text, [ISSUER])
    verifier = ISSUER.verifier()
    for pos in range(len(signed)):
        mutated = signed[:pos] + bytes([signed[pos] ^ 0x04]) + signed[pos + 1 :]
        with pytest.raises(TlogError):
            open_note(mutated, [verifier])


def test_root_and_size_of_mini_log() -> None:
    plan = merkle.root_plan(20)
    root = plan.assemble([LOG.stored[i] for i in plan.stored_indexes])[0]
    assert parse_checkpoint(parse_note(LOG.checkpoint(20)).text).root == root
