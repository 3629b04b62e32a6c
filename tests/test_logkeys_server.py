"""The log server's side of a key rotation, without a network (logserver/logkeys.py): which keys sign which tree
size, which announcements the sequencer refuses, and a witness configured with both keys of a rotated log."""

import pytest
from corefixtures import NOW, ORIGIN

from logserver.logkeys import KeyRing
from monitor.logkeys import retired_key_problem
from tlogcore.checkpoint import Checkpoint
from tlogcore.errors import NotAllowedError
from tlogcore.keys import Ed25519Signer
from tlogcore.logkey import LogKeyRotation, sign_log_key_rotation
from tlogcore.note import sign_note
from witness.config import parse_config

OLD = Ed25519Signer(ORIGIN, b"\x01" * 32)
NEW = Ed25519Signer(ORIGIN, b"\x05" * 32)
REGISTRY = Ed25519Signer(f"{ORIGIN}/registry", b"\x03" * 32)
OTHER_REGISTRY = Ed25519Signer(f"{ORIGIN}/registry", b"\x04" * 32)


def rotation(start: int, until: int, registry: Ed25519Signer = REGISTRY) -> LogKeyRotation:
    return LogKeyRotation(ORIGIN, OLD.verifier().vkey, NEW.verifier().vkey, registry.verifier().vkey, NOW, start, until)


RING = KeyRing(OLD, REGISTRY.verifier().vkey, (NEW,))


def ids(signers: list) -> list[int]:  # type: ignore[type-arg]
    return [s.verifier().key_id for s in signers]


def test_the_ring_signs_with_the_old_key_then_both_then_the_new_one() -> None:
    ring = RING.extended(rotation(21, 25), 20)
    assert ids(ring.signers(20)) == ids([OLD])
    assert ids(ring.signers(21)) == ids([NEW, OLD]) and ids(ring.signers(24)) == ids([NEW, OLD])
    assert ids(ring.signers(25)) == ids([NEW])
    assert ring.current == NEW.verifier().vkey


@pytest.mark.parametrize(
    ("bad", "index", "message"),
    [
        (rotation(21, 25), 21, "from 21, but it would be entry 21"),
        (rotation(21, 25, OTHER_REGISTRY), 20, "registry key"),
    ],
)
def test_the_sequencer_refuses_an_announcement_it_could_not_honour(
    bad: LogKeyRotation, index: int, message: str
) -> None:
    with pytest.raises(NotAllowedError, match=message):
        RING.extended(bad, index)


def test_a_rotation_to_a_key_the_server_does_not_hold_is_refused() -> None:
    with pytest.raises(NotAllowedError, match="does not hold the private key"):
        KeyRing(OLD, REGISTRY.verifier().vkey).extended(rotation(21, 25), 20)


def test_no_second_rotation_inside_an_overlap() -> None:
    ring = RING.extended(rotation(21, 25), 20)
    again = LogKeyRotation(ORIGIN, NEW.verifier().vkey, OLD.verifier().vkey, REGISTRY.verifier().vkey, NOW, 24, 24)
    with pytest.raises(NotAllowedError, match="still in its overlap"):
        ring.extended(again, 23)


def test_replay_reads_the_logged_announcements() -> None:
    data = sign_log_key_rotation(rotation(21, 25), OLD, REGISTRY)
    assert ids(RING.replayed([(20, data)]).signers(30)) == ids([NEW])
    with pytest.raises(NotAllowedError, match="log-key entry 20 does not verify"):
        RING.replayed([(20, data.replace(b"from 21", b"from 22"))])


def test_the_monitor_flags_only_a_retired_key() -> None:
    text = Checkpoint(ORIGIN, 30, b"\x00" * 32).text
    rotations = [rotation(21, 25)]
    assert retired_key_problem(rotations, sign_note(text, [NEW])) is None
    problem = retired_key_problem(rotations, sign_note(text, [NEW, OLD]))
    assert problem is not None and problem[0] == OLD.verifier().vkey and "from size 25" in problem[1]
    during = Checkpoint(ORIGIN, 22, b"\x00" * 32).text
    assert retired_key_problem(rotations, sign_note(during, [NEW, OLD])) is None


def test_a_witness_takes_one_log_table_per_key_of_a_rotated_log() -> None:
    tables = "".join(f'[[log]]\norigin = "{ORIGIN}"\nvkey = "{k.verifier().vkey}"\n' for k in (OLD, NEW))
    trusted = parse_config(tables).trusted_keys()[ORIGIN]
    assert [v.vkey for v in trusted] == [OLD.verifier().vkey, NEW.verifier().vkey]
