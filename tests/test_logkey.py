"""Log key rotation (tlogcore/logkey.py): the `tlog-log-key/v1` statement's vectors, the rule of which key signs
which tree size, and trust policies that follow a rotation (tlogcore/policy.py)."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from corefixtures import NOW, ORIGIN, mini_log

from tlogcore.checkpoint import Checkpoint
from tlogcore.errors import MalformedError, SignatureError, TlogError, UnverifiedError
from tlogcore.keys import Ed25519Signer
from tlogcore.logkey import LogKeyRotation, key_rule, parse_log_key_rotation, sign_log_key_rotation
from tlogcore.note import sign_note
from tlogcore.policy import parse_policy
from tlogcore.statement import parse_statement

VECTORS = Path(__file__).parent / "vectors" / "logkey"
DATA = json.loads((VECTORS / "logkey.json").read_text())
OLD = Ed25519Signer(ORIGIN, b"\x01" * 32)
NEW = Ed25519Signer(ORIGIN, b"\x05" * 32)
NEWER = Ed25519Signer(ORIGIN, b"\x07" * 32)
REGISTRY = Ed25519Signer(f"{ORIGIN}/registry", b"\x03" * 32)
ROTATION = LogKeyRotation(ORIGIN, OLD.verifier().vkey, NEW.verifier().vkey, REGISTRY.verifier().vkey, NOW, 21, 25)


def test_the_vector_file_is_what_its_script_writes() -> None:
    script = VECTORS / "make.py"
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import runpy; v = runpy.run_path({str(script)!r})['vectors']();"
            "import json, sys; sys.stdout.write(json.dumps(v, indent=1, ensure_ascii=False) + '\\n')",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout == (VECTORS / "logkey.json").read_text()


@pytest.mark.parametrize("case", DATA["good"], ids=lambda c: f"from {c['from']}")
def test_good_vectors_parse_to_their_fields(case: dict[str, object]) -> None:
    statement = parse_log_key_rotation(str(case["statement"]).encode())
    fields = (statement.origin, statement.old, statement.new, statement.registry, statement.time)
    assert fields == (case["origin"], case["old"], case["new"], case["registry"], case["time"])
    assert (statement.start, statement.until) == (case["from"], case["until"])
    assert sign_log_key_rotation(statement, OLD, REGISTRY).decode() == case["statement"]


@pytest.mark.parametrize("case", DATA["bad"], ids=lambda c: str(c["why"]))
def test_bad_vectors_are_refused(case: dict[str, str]) -> None:
    with pytest.raises((MalformedError, SignatureError)):
        parse_log_key_rotation(case["statement"].encode())


def test_it_is_neither_a_document_statement_nor_the_reverse() -> None:
    signed = sign_log_key_rotation(ROTATION, OLD, REGISTRY)
    with pytest.raises(MalformedError):
        parse_statement(signed)
    with pytest.raises(MalformedError):
        parse_log_key_rotation(mini_log(1).entries[0])


def test_only_the_named_keys_may_sign() -> None:
    with pytest.raises(ValueError, match="old log key"):
        sign_log_key_rotation(ROTATION, NEW, REGISTRY)
    with pytest.raises(ValueError, match="registry key"):
        sign_log_key_rotation(ROTATION, OLD, NEW)


def test_the_key_rule_before_during_and_after_the_overlap() -> None:
    old, new = OLD.verifier().vkey, NEW.verifier().vkey
    assert key_rule(old, [ROTATION], 20) == key_rule(old, [], 20)
    assert key_rule(old, [ROTATION], 20).required == old
    assert key_rule(old, [ROTATION], 21).required == new
    assert key_rule(old, [ROTATION], 24).allowed == {old, new}
    assert key_rule(old, [ROTATION], 25).allowed == {new}
    second = LogKeyRotation(ORIGIN, new, NEWER.verifier().vkey, ROTATION.registry, NOW + 9, 40, 40)
    assert key_rule(old, [ROTATION, second], 39).allowed == {new}
    assert key_rule(old, [ROTATION, second], 40).allowed == {NEWER.verifier().vkey}
    with pytest.raises(MalformedError, match="one chain"):
        key_rule(old, [second, ROTATION], 40)
    with pytest.raises(MalformedError, match="first key"):
        key_rule(new, [ROTATION], 40)


def _checkpoint(size: int, *signers: Ed25519Signer) -> bytes:
    """A checkpoint of `size` signed by `signers` (log keys) and cosigned by the mini log's three witnesses."""
    return sign_note(Checkpoint(ORIGIN, size, bytes([size % 256]) * 32).text, [*signers, *mini_log(1).witnesses])


def _policy(*keys: Ed25519Signer) -> str:
    log = mini_log(1)
    return (
        "".join(f"log {k.verifier().vkey}\n" for k in keys)
        + "".join(f"witness W{i} {w.verifier().vkey}\n" for i, w in enumerate(log.witnesses))
        + "group two-of-three 2 W0 W1 W2\nquorum two-of-three\n"
    )


def test_a_policy_with_two_keys_for_one_log_parses_and_an_old_policy_still_does() -> None:
    both = parse_policy(_policy(OLD, NEW))
    assert [log.vkey for log in both.logs] == [OLD.verifier().vkey, NEW.verifier().vkey]
    assert both.verify_checkpoint(_checkpoint(21, NEW), NOW).checkpoint.size == 21
    assert both.verify_checkpoint(_checkpoint(3, OLD), NOW).checkpoint.size == 3
    assert parse_policy(_policy(OLD)).verify_checkpoint(_checkpoint(3, OLD), NOW).checkpoint.size == 3


def test_a_policy_following_the_rotation_refuses_the_old_key_after_it() -> None:
    policy = parse_policy(_policy(OLD, NEW)).following([ROTATION])
    assert policy.verify_checkpoint(_checkpoint(20, OLD), NOW).checkpoint.size == 20
    assert policy.verify_checkpoint(_checkpoint(22, OLD, NEW), NOW).checkpoint.size == 22  # the overlap
    assert policy.verify_checkpoint(_checkpoint(30, NEW), NOW).checkpoint.size == 30
    with pytest.raises(UnverifiedError, match="not signed by the log key"):
        policy.verify_checkpoint(_checkpoint(22, OLD), NOW)  # the old key alone, after `from`
    with pytest.raises(UnverifiedError, match="retired"):
        policy.verify_checkpoint(_checkpoint(30, OLD, NEW), NOW)  # the old key after the overlap
    with pytest.raises(UnverifiedError, match="not signed by the log key"):
        policy.verify_checkpoint(_checkpoint(20, NEW), NOW)  # the new key before its time


def test_a_policy_must_list_both_keys_to_follow_a_rotation() -> None:
    with pytest.raises(UnverifiedError, match=re.escape(f"add 'log {NEW.verifier().vkey}'")):
        parse_policy(_policy(OLD)).following([ROTATION])


def test_following_refuses_a_broken_chain_and_ignores_a_repeat() -> None:
    policy = parse_policy(_policy(OLD, NEW, NEWER))
    second = LogKeyRotation(ORIGIN, NEW.verifier().vkey, NEWER.verifier().vkey, ROTATION.registry, NOW, 22, 22)
    with pytest.raises(TlogError, match="one chain"):
        policy.following([ROTATION, second])  # starts inside the first rotation's overlap
    assert policy.following([ROTATION]).following([ROTATION]).rotations == (ROTATION,)
