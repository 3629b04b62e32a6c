"""One property check per parser, shared by the hypothesis tests and the atheris harnesses.

Each `check_<parser>(data)` feeds `data` to the parser and raises
`PropertyViolation` (or lets an unexpected exception escape) when the parser
breaks its contract:

* only the module's documented errors escape (tlogcore.errors.TlogError, the
  witness's BadRequest, tomllib.TOMLDecodeError for the config loaders);
* whatever parses re-encodes to exactly the input bytes (no acceptance of a
  non-canonical encoding: STYLE.md §3), where the format has an encoding.

`TARGETS` maps the parser names used by the atheris runner and the corpora.
"""

import math
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from logserver.config import config_from_toml as server_config_from_toml
from monitor.config import config_from_toml as monitor_config_from_toml
from tlogcore.bundle import from_binary, parse_tlog_proof, to_binary
from tlogcore.checkpoint import parse_checkpoint
from tlogcore.cosignature import (
    CosignatureV1Verifier,
    MLDSA44CosignatureVerifier,
    RFC6962Verifier,
    signature_timestamp,
)
from tlogcore.encoding import b64encode
from tlogcore.errors import MalformedError, TlogError
from tlogcore.keys import Verifier, format_signer_key, parse_signer_key
from tlogcore.note import parse_note
from tlogcore.policy import Policy, parse_policy
from tlogcore.statement import parse_statement
from tlogcore.tiles import decode_entry_bundle, encode_entry_bundle, parse_tile_path
from tlogcore.vkeys import parse_verifier_key
from witness.config import parse_config as parse_witness_config
from witness.witness import AddCheckpoint, BadRequest, parse_request

from .samples import read_policy_file


class PropertyViolation(AssertionError):
    """A parser accepted what it must refuse, or refused with an undocumented exception."""


def _text(data: bytes) -> str | None:
    """Text parsers receive what their callers decoded; input that is not UTF-8 never reaches them."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _same(encoded: bytes | str, original: bytes | str, what: str) -> None:
    if encoded != original:
        raise PropertyViolation(f"{what}: accepted a non-canonical encoding {original[:120]!r} -> {encoded[:120]!r}")


def _round_trip_text(data: bytes, parse: Callable[[str], Any], render: Callable[[Any], str], what: str) -> None:
    """A text parser: whatever it accepts must render back to exactly the input."""
    text = _text(data)
    if text is None:
        return
    try:
        parsed = parse(text)
    except TlogError:
        return
    _same(render(parsed), text, what)


def _round_trip_bytes(data: bytes, parse: Callable[[bytes], Any], render: Callable[[Any], bytes], what: str) -> None:
    """A byte parser: whatever it accepts must encode back to exactly the input."""
    try:
        parsed = parse(data)
    except TlogError:
        return
    _same(render(parsed), data, what)


def check_note(data: bytes) -> None:
    try:
        note = parse_note(data)
    except TlogError:
        return
    # The one documented leniency: base64 with non-zero padding bits parses (as Go's does) but is
    # flagged and never verifies (note.py); every other line must re-encode byte for byte.
    if not any(s.noncanonical for s in note.signatures):
        _same(note.to_bytes(), data, "note")


def check_checkpoint(data: bytes) -> None:
    _round_trip_text(data, parse_checkpoint, lambda checkpoint: checkpoint.text, "checkpoint")


def check_statement(data: bytes) -> None:
    for check_signature in (False, True):
        try:
            statement = parse_statement(data, check_signature=check_signature)
        except TlogError:
            continue
        note = parse_note(data)
        _same(statement.text, note.text, "statement text")
        _same(note.to_bytes(), data, "statement")


def check_vkey(data: bytes) -> None:
    _round_trip_text(data, parse_verifier_key, lambda verifier: verifier.vkey, "verifier key")


def check_signer_key(data: bytes) -> None:
    _round_trip_text(data, parse_signer_key, format_signer_key, "signer key")


_COSIGNATURE_VERIFIERS: list[Verifier] = []


def _cosignature_verifiers() -> list[Verifier]:
    """One verifier per timestamped type, with fixed keys (from shared vectors' shapes, made here)."""
    if not _COSIGNATURE_VERIFIERS:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec, mldsa

        ec_key = ec.derive_private_key(7, ec.SECP256R1()).public_key()
        der = ec_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        mldsa_key = mldsa.MLDSA44PrivateKey.from_seed_bytes(bytes(32)).public_key().public_bytes_raw()
        _COSIGNATURE_VERIFIERS.extend(
            [
                CosignatureV1Verifier("witness.example.org", bytes(range(32))),
                RFC6962Verifier("ct.example.org", der),
                MLDSA44CosignatureVerifier("pq.example.org", mldsa_key),
            ]
        )
    return _COSIGNATURE_VERIFIERS


def check_cosignature(data: bytes) -> None:
    """Cosignature verification on arbitrary text and signature bytes: a bool, never an exception."""
    text, _, signature = data.partition(b"\n\n")
    text += b"\n"
    for verifier in _cosignature_verifiers():
        result = verifier.verify(text, signature)
        if result is not False:  # nobody here holds the private keys: nothing can verify
            raise PropertyViolation(f"{type(verifier).__name__} verified a forged signature: {result!r}")
    try:
        timestamp = signature_timestamp(signature)
    except TlogError:
        return
    if timestamp != int.from_bytes(signature[:8], "big"):
        raise PropertyViolation("signature_timestamp misread the timestamp")


def check_tile_path(data: bytes) -> None:
    _round_trip_text(data, parse_tile_path, lambda tile: tile.path, "tile path")


def check_entry_bundle(data: bytes) -> None:
    _round_trip_bytes(data, decode_entry_bundle, encode_entry_bundle, "entry bundle")


def encode_witness_request(request: AddCheckpoint) -> bytes:
    """The add-checkpoint body (tlog-witness §"add-checkpoint") a parsed request stands for."""
    head = f"old {request.old_size}\n" + "".join(b64encode(h) + "\n" for h in request.proof)
    return head.encode() + b"\n" + request.note_bytes


def check_witness_request(data: bytes) -> None:
    try:
        request = parse_request(data)
    except BadRequest:
        return
    _same(encode_witness_request(request), data, "add-checkpoint body")
    if request.checkpoint != parse_checkpoint(parse_note(request.note_bytes).text):
        raise PropertyViolation("add-checkpoint: the parsed checkpoint is not the note's")


def check_bundle_text(data: bytes) -> None:
    _round_trip_bytes(data, parse_tlog_proof, lambda bundle: bundle.to_text(), "tlog-proof")


def check_bundle_binary(data: bytes) -> None:
    try:
        bundle = from_binary(data)
    except TlogError:
        return
    _same(to_binary(bundle), data, "binary bundle")
    again = parse_tlog_proof(bundle.to_text())
    if again != bundle:
        raise PropertyViolation("binary bundle: its text form parses to another bundle")


def render_policy(policy: Policy) -> str:
    """A canonical tlog-policy text for a parsed policy (the format keeps no comments or spacing)."""
    lines = [f"log {log.vkey}" for log in policy.logs]
    lines += [f"witness {name} {witness.vkey}" for name, witness in policy.witnesses.items()]
    lines += [f"group {g.name} {g.threshold} {' '.join(g.members)}" for g in policy.groups.values()]
    lines.append(f"quorum {policy.quorum or 'none'}")
    return "".join(line + "\n" for line in lines)


def check_policy(data: bytes) -> None:
    text = _text(data)
    if text is None:
        return
    try:
        policy = parse_policy(text)
    except TlogError:
        return
    rendered = render_policy(policy)
    _same(render_policy(parse_policy(rendered)), rendered, "policy (rendered)")
    # Evaluating the quorum is what a policy is for: it must be quick and monotonic for any accepted policy.
    everyone, nobody = policy.is_satisfied(set(policy.witnesses)), policy.is_satisfied(set())
    if nobody and not everyone:
        raise PropertyViolation("policy: satisfied by no witness but not by all of them")


def check_finite(config: object, what: str) -> None:
    """An accepted config holds no nan or inf (TOML spells them; `nan <= 0` is false, so they slip past checks)."""
    for name, value in vars(config).items():
        if isinstance(value, float) and not math.isfinite(value):
            raise PropertyViolation(f"{what}: accepted {name} = {value}")


def _toml(text: str) -> dict[str, Any] | None:
    """What the server's and the monitor's CLIs accept as TOML: their errors are TOMLDecodeError and, for
    nesting deeper than tomllib's recursion allows, RecursionError (both one readable line, in their cli.py)."""
    try:
        return tomllib.loads(text)
    except (tomllib.TOMLDecodeError, RecursionError):
        return None


def check_config_logserver(data: bytes) -> None:
    text = _text(data)
    if text is None:
        return
    document = _toml(text)
    if document is None:
        return
    try:
        config = server_config_from_toml(document)
    except TlogError:
        return
    check_finite(config, "logserver config")


def check_config_witness(data: bytes) -> None:
    text = _text(data)
    if text is None:
        return
    try:
        parse_witness_config(text)
    except MalformedError:
        return


def check_config_monitor(data: bytes) -> None:
    text = _text(data)
    if text is None:
        return
    document = _toml(text)
    if document is None:
        return
    try:
        config = monitor_config_from_toml(document, Path("/nonexistent/config"), read_policy_file)
    except TlogError:
        return
    check_finite(config, "monitor config")
    for sink in config.sinks:
        check_finite(sink, "monitor sink")


TARGETS: dict[str, Callable[[bytes], None]] = {
    "note": check_note,
    "checkpoint": check_checkpoint,
    "statement": check_statement,
    "vkey": check_vkey,
    "signer_key": check_signer_key,
    "cosignature": check_cosignature,
    "tile_path": check_tile_path,
    "entry_bundle": check_entry_bundle,
    "witness_request": check_witness_request,
    "bundle_text": check_bundle_text,
    "bundle_binary": check_bundle_binary,
    "policy": check_policy,
    "config_logserver": check_config_logserver,
    "config_witness": check_config_witness,
    "config_monitor": check_config_monitor,
}
