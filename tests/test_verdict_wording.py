"""`tlog verify`'s verdict line in words a person needs: a checkpoint from another log is "not from the log you
trust", not only a quorum failure (the verdict and exit code 5 stay, for scripts)."""

import pytest

from tlogcore import merkle
from tlogcore.checkpoint import Checkpoint
from tlogcore.errors import UnverifiedError
from tlogcore.keys import Ed25519Signer
from tlogcore.note import sign_note
from tlogcore.policy import parse_policy
from tools.verdict import QUORUM_NOT_MET, Outcome, verdict_for_error

TRUSTED = Ed25519Signer("log.trusted.example", b"\x01" * 32)
OTHER = Ed25519Signer("log.other.example", b"\x02" * 32)


def failed_line(signer: Ed25519Signer, policy_text: str) -> Outcome:
    note = sign_note(Checkpoint(signer.name, 0, merkle.EMPTY_ROOT).text, [signer])
    with pytest.raises(UnverifiedError) as caught:
        parse_policy(policy_text).verify_checkpoint(note)
    return Outcome(verdict_for_error(caught.value), None, f"the bundle does not verify: {caught.value}")


def test_a_proof_from_another_log_is_said_to_be_not_from_the_log_you_trust() -> None:
    outcome = failed_line(OTHER, f"log {TRUSTED.verifier().vkey}\nquorum none\n")
    assert outcome.verdict == QUORUM_NOT_MET and outcome.exit_code == 5
    assert outcome.line().startswith("QUORUM NOT MET: this proof is not from the log you trust (")


def test_too_few_witnesses_keeps_its_own_words() -> None:
    witness = "witness w1 w1.example+a68498dc+BG56HN0psLeP0Tr0xVmP7/TvKpcWbjym8uT7/M2AUFvx"
    outcome = failed_line(TRUSTED, f"log {TRUSTED.verifier().vkey}\n{witness}\nquorum w1\n")
    assert "not from the log you trust" not in outcome.line() and "quorum not met" in outcome.line()
