"""Property-based fuzzing of every core parser (hypothesis), with the checks of properties.py.

For arbitrary bytes and text and for mutations of valid encodings made by the
real signers: only the documented errors escape, nothing hangs, and whatever
parses re-encodes to exactly its input. For generated valid objects:
parse(encode(x)) == x.
"""

import dataclasses
import signal
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tlogcore.bundle import TlogProof, from_binary, parse_tlog_proof, to_binary
from tlogcore.checkpoint import Checkpoint, parse_checkpoint
from tlogcore.keys import Ed25519Verifier
from tlogcore.note import parse_note, sign_note
from tlogcore.policy import parse_policy
from tlogcore.statement import Statement, parse_statement, sign_statement
from tlogcore.tiles import Tile, decode_entry_bundle, encode_entry_bundle, parse_tile_path
from tlogcore.vkeys import parse_verifier_key
from witness.witness import AddCheckpoint, parse_request

from .properties import TARGETS, encode_witness_request, render_policy
from .samples import ISSUER_KEY, ORIGIN, WITNESS_KEYS, all_samples, signed_checkpoint
from .strategies import checkpoints, ed25519_verifiers, hashes, inputs, key_names, statements, tiles

CORE_PARSERS = sorted(name for name in TARGETS if not name.startswith("config_"))
EXAMPLES = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
HANG_SECONDS = 2.0  # no single parse may take longer: the fuzz inputs are all small


class Hang(Exception):
    pass


def _interrupt(signum: int, frame: object) -> None:
    raise Hang


def run_bounded(parser: str, data: bytes) -> None:
    """Run one property check, interrupting it (SIGALRM) if it hangs: a hang fails the test, never stalls it."""
    previous = signal.signal(signal.SIGALRM, _interrupt)
    signal.setitimer(signal.ITIMER_REAL, HANG_SECONDS)
    try:
        TARGETS[parser](data)
    except Hang:
        pytest.fail(f"{parser} did not finish in {HANG_SECONDS} s on {data[:80]!r}")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize("parser", CORE_PARSERS)
def test_samples_from_real_signers_parse(parser: str) -> None:
    """The seeds are valid, so the mutation tests start from accepted encodings (and they pass the checks)."""
    samples = all_samples()[parser]
    assert samples, parser
    for sample in samples:
        run_bounded(parser, sample)


@pytest.mark.parametrize("parser", CORE_PARSERS)
@EXAMPLES
@given(data=st.data())
def test_arbitrary_and_mutated_inputs(parser: str, data: st.DataObject) -> None:
    run_bounded(parser, data.draw(inputs(all_samples()[parser]), label="input"))


# --- round trips of generated valid objects ------------------------------------------


@EXAMPLES
@given(checkpoint=checkpoints())
def test_checkpoint_round_trip(checkpoint: Checkpoint) -> None:
    assert parse_checkpoint(checkpoint.text) == checkpoint


@EXAMPLES
@given(verifier=ed25519_verifiers())
def test_vkey_round_trip(verifier: Ed25519Verifier) -> None:
    parsed = parse_verifier_key(verifier.vkey)
    assert (parsed.vkey, parsed.material) == (verifier.vkey, verifier.material)


@EXAMPLES
@given(tile=tiles())
def test_tile_path_round_trip(tile: Tile) -> None:
    assert parse_tile_path(tile.path) == tile


@EXAMPLES
@given(entries=st.lists(st.binary(max_size=600), max_size=256))
def test_entry_bundle_round_trip(entries: list[bytes]) -> None:
    encoded = encode_entry_bundle(entries)
    assert decode_entry_bundle(encoded, len(entries)) == entries
    check = TARGETS["entry_bundle"]
    check(encoded)


@EXAMPLES
@given(statement=statements(ISSUER_KEY.verifier().vkey))
def test_statement_round_trip(statement: Statement) -> None:
    signed = sign_statement(statement, ISSUER_KEY)
    assert parse_statement(signed) == statement
    TARGETS["statement"](signed)


@EXAMPLES
@given(lines=st.lists(st.text(min_size=0, max_size=30).filter(lambda s: s.isprintable()), min_size=1, max_size=5))
def test_note_round_trip(lines: list[str]) -> None:
    text = "".join(line + "\n" for line in lines)
    signed = sign_note(text, [ISSUER_KEY, *WITNESS_KEYS])
    note = parse_note(signed)
    assert note.text == text and note.to_bytes() == signed
    assert [s.name for s in note.signatures] == [ISSUER_KEY.name, *(w.name for w in WITNESS_KEYS)]


@EXAMPLES
@given(
    statement=statements(ISSUER_KEY.verifier().vkey),
    index=st.integers(0, 2**63 - 1),
    proof=st.lists(hashes, max_size=63),
    size=st.integers(0, 4),
)
def test_bundle_round_trips(statement: Statement, index: int, proof: list[bytes], size: int) -> None:
    """Text and binary forms: decode(encode(x)) == x, and the binary form decodes to the same text bundle."""
    ours = dataclasses.replace(statement, origin=ORIGIN)  # the checkpoint's log
    bundle = TlogProof(index, tuple(proof), signed_checkpoint(size), sign_statement(ours, ISSUER_KEY))
    assert parse_tlog_proof(bundle.to_text()) == bundle
    assert from_binary(to_binary(bundle)) == bundle


@EXAMPLES
@given(old_size=st.integers(0, 4), proof=st.lists(hashes, max_size=63), size=st.integers(0, 4))
def test_witness_request_round_trip(old_size: int, proof: list[bytes], size: int) -> None:
    note = signed_checkpoint(size)
    parsed_note = parse_note(note)
    body = encode_witness_request(
        AddCheckpoint(old_size, tuple(proof), note, parse_checkpoint(parsed_note.text), parsed_note)
    )
    parsed = parse_request(body)
    assert (parsed.old_size, parsed.proof, parsed.note_bytes) == (old_size, tuple(proof), note)
    assert encode_witness_request(parsed) == body


@EXAMPLES
@given(
    names=st.lists(
        key_names.filter(lambda n: "#" not in n and n != "none" and not n.startswith("g")),
        min_size=1,
        max_size=4,
        unique=True,
    ),
    threshold=st.integers(1, 4),
    quorum_none=st.booleans(),
)
def test_policy_round_trip(names: list[str], threshold: int, quorum_none: bool) -> None:
    """A rendered policy parses back to the same logs, witnesses, groups and quorum."""
    keys = [w.verifier().vkey for w in WITNESS_KEYS]
    witnesses = "".join(f"witness {name} {keys[i % 2]}\n" for i, name in enumerate(names[:2]))
    members = " ".join(names[:2])
    group = f"group g{threshold} {min(threshold, len(names[:2]))} {members}\n"
    quorum = "quorum none\n" if quorum_none else f"quorum g{threshold}\n"
    text = f"# generated\nlog   {ISSUER_KEY.verifier().vkey}  # a comment\n\n{witnesses}{group}{quorum}"
    policy = parse_policy(text)
    assert [log.vkey for log in policy.logs] == [ISSUER_KEY.verifier().vkey]
    assert list(policy.witnesses) == names[:2]
    assert policy.quorum == (None if quorum_none else f"g{threshold}")
    rendered = render_policy(policy)
    assert render_policy(parse_policy(rendered)) == rendered


@st.composite
def policy_graphs(draw: st.DrawFn) -> str:
    """Policies with many groups over earlier groups: the shapes that make quorum evaluation expensive.

    One byte per group (one draw for them all, so long chains are cheap to make): how many of the
    latest names it takes as members, and its threshold.
    """
    witnesses = [w.verifier().vkey for w in WITNESS_KEYS]
    names = ["w0", "w1"]
    lines = [f"log {ISSUER_KEY.verifier().vkey}", f"witness w0 {witnesses[0]}", f"witness w1 {witnesses[1]}"]
    count = draw(st.integers(1, 900))
    for i, shape in enumerate(draw(st.binary(min_size=count, max_size=count))):
        members = list(dict.fromkeys(names[-(1 + shape % 3) :]))
        threshold = ("any", "all", "1")[shape // 3 % 3]
        lines.append(f"group g{i} {threshold} {' '.join(members)}")
        names.append(f"g{i}")
    lines.append(f"quorum {names[-1]}")
    return "\n".join(lines) + "\n"


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=policy_graphs())
def test_quorum_evaluation_is_bounded(text: str) -> None:
    run_bounded("policy", text.encode())


def test_deep_and_shared_group_graphs_evaluate() -> None:
    """Regression: a Fibonacci-shaped policy (2^n recursive calls) and a 900-group chain (RecursionError)."""
    w = [k.verifier().vkey for k in WITNESS_KEYS]
    head = f"log {ISSUER_KEY.verifier().vkey}\nwitness w0 {w[0]}\nwitness w1 {w[1]}\ngroup g0 any w0\ngroup g1 any w1\n"
    fibonacci = head + "".join(f"group g{i} all g{i - 1} g{i - 2}\n" for i in range(2, 80)) + "quorum g79\n"
    chain = head + "".join(f"group g{i} any g{i - 1}\n" for i in range(2, 900)) + "quorum g899\n"
    for text in (fibonacci, chain):
        policy = parse_policy(text)
        started = time.monotonic()
        assert policy.is_satisfied({"w0", "w1"}) and not policy.is_satisfied(set())
        assert time.monotonic() - started < HANG_SECONDS
    assert parse_policy(fibonacci).is_satisfied({"w0"}) is False  # "all" needs both branches
