"""Key-type checks are exact (issue 15): a witness's cosignature key (type 0x04, an Ed25519 key underneath whose
class subclasses the Ed25519 verifier) is never accepted where an issuer, registry or log key is expected, and a
plain Ed25519 key never where a witness's is. One test per place a key is read."""

import tomllib
from pathlib import Path

import pytest

from monitor.config import config_from_toml
from tlogcore import merkle
from tlogcore.bundle import from_binary, make_bundle, to_binary
from tlogcore.checkpoint import Checkpoint
from tlogcore.cosignature import CosignatureV1Signer
from tlogcore.errors import MalformedError
from tlogcore.keys import Ed25519Signer, Verifier
from tlogcore.note import sign_note
from tlogcore.policy import parse_policy
from tlogcore.statement import ISSUE, ISSUER_ADD, Statement, parse_statement, sign_statement
from tlogcore.vkeys import LOG_KEYS, STATEMENT_KEYS, WITNESS_KEYS, parse_key_for

SEED = b"\x05" * 32
ED25519 = Ed25519Signer("same.example", SEED)
COSIGNATURE = CosignatureV1Signer("same.example", SEED, lambda: 1790000000)  # the very same key pair
ORIGIN = "log.example"
LOG = Ed25519Signer(ORIGIN, b"\x08" * 32).verifier().vkey
REFUSED = r"a type 0x04 key cannot be used here \(want type 0x01\)"


def test_the_two_keys_differ_only_in_type() -> None:
    assert ED25519.public_key == COSIGNATURE.public_key
    assert isinstance(COSIGNATURE.verifier(), type(ED25519.verifier()))  # why an isinstance check was not enough
    assert parse_key_for(ED25519.verifier().vkey, STATEMENT_KEYS, "k").vkey == ED25519.verifier().vkey


def test_a_statement_signer() -> None:
    with pytest.raises(MalformedError, match="statement signer: " + REFUSED):
        Statement(ORIGIN, ISSUE, COSIGNATURE.verifier().vkey, 1790000000, document=b"\x01" * 32)
    # The same, arriving as bytes: a note signed by the cosignature key's signer line.
    text = Statement(ORIGIN, ISSUE, ED25519.verifier().vkey, 1790000000, document=b"\x01" * 32).text
    forged = text.replace(ED25519.verifier().vkey, COSIGNATURE.verifier().vkey)
    with pytest.raises(MalformedError, match=REFUSED):
        parse_statement(sign_note(forged, [COSIGNATURE]))


def test_the_issuer_key_of_a_registry_statement() -> None:
    registry = Ed25519Signer(ORIGIN + "/registry", b"\x06" * 32)
    with pytest.raises(MalformedError, match="issuer key: " + REFUSED):
        Statement(ORIGIN, ISSUER_ADD, registry.verifier().vkey, 1790000000, issuer=COSIGNATURE.verifier().vkey)


def test_the_keys_of_a_binary_bundle_are_read_as_statement_keys() -> None:
    """The binary form has no type byte: its keys are the one binary key type, and round-trip only as that."""
    log = Ed25519Signer(ORIGIN, b"\x07" * 32)
    statement = sign_statement(Statement(ORIGIN, ISSUE, ED25519.verifier().vkey, 1790000000, b"\x02" * 32), ED25519)
    checkpoint = sign_note(Checkpoint(ORIGIN, 1, merkle.leaf_hash(statement)).text, [log])
    binary = to_binary(make_bundle(statement, 0, [], checkpoint))
    assert parse_statement(from_binary(binary).extra or b"").signer == ED25519.verifier().vkey


@pytest.mark.parametrize(
    ("line", "error"),
    [
        (f"log {COSIGNATURE.verifier().vkey}", "log key: a type 0x04 key cannot be used here"),
        (f"witness w {ED25519.verifier().vkey}", "witness key: a type 0x01 key cannot be used here"),
    ],
)
def test_a_trust_policy(line: str, error: str) -> None:
    good_log = f"log {LOG}"
    text = "\n".join([line if line.startswith("log") else good_log, *([line] if "witness" in line else [])])
    with pytest.raises(MalformedError, match=error):
        parse_policy(text + "\nquorum none\n")


def monitor_config(extra: str) -> None:
    text = f'state = "s.db"\n[[log]]\nurl = "http://127.0.0.1:1"\nvkey = "{LOG}"\n{extra}'
    config_from_toml(tomllib.loads(text), Path("/x"), lambda p: p.read_text())


def test_the_monitors_registry_keys() -> None:
    with pytest.raises(MalformedError, match="registry key: " + REFUSED):
        monitor_config(f'registry_vkeys = ["{COSIGNATURE.verifier().vkey}"]\n')


def test_the_monitors_watched_issuer_keys() -> None:
    with pytest.raises(MalformedError, match="issuer key: " + REFUSED):
        monitor_config(f'[[watch]]\nname = "w"\nissuer_keys = ["{COSIGNATURE.verifier().vkey}"]\n')


def test_the_monitors_log_key() -> None:
    text = f'state = "s.db"\n[[log]]\nurl = "http://127.0.0.1:1"\nvkey = "{COSIGNATURE.verifier().vkey}"\n'
    with pytest.raises(MalformedError, match="log key: a type 0x04 key cannot be used here"):
        config_from_toml(tomllib.loads(text), Path("/x"), lambda p: p.read_text())


@pytest.mark.parametrize("roles", [STATEMENT_KEYS, LOG_KEYS, WITNESS_KEYS])
def test_each_role_names_exact_classes(roles: tuple[type[Verifier], ...]) -> None:
    assert len({cls.key_type for cls in roles}) == len(roles)  # one class per type: no subclass slips in


def test_the_log_servers_witness_list() -> None:
    from logserver.config import config_from_toml as server_config

    good = server_config({"witness": [{"url": "http://127.0.0.1:1", "vkey": COSIGNATURE.verifier().vkey}]})
    assert good.witnesses[0].vkey == COSIGNATURE.verifier().vkey
    with pytest.raises(MalformedError, match=r"\[\[witness\]\] #1 vkey .*a type 0x01 key cannot be used here"):
        server_config({"witness": [{"url": "http://127.0.0.1:1", "vkey": ED25519.verifier().vkey}]})
    # The list form (a witness with an Ed25519 and an ML-DSA-44 key): every key in it is role-checked.
    listed = [COSIGNATURE.verifier().vkey, ED25519.verifier().vkey]
    with pytest.raises(MalformedError, match=r"\[\[witness\]\] #1 vkey .*a type 0x01 key cannot be used here"):
        server_config({"witness": [{"url": "http://127.0.0.1:1", "vkey": listed}]})


def test_the_witness_list_of_logs() -> None:
    from witness.config import parse_config

    cosigner = CosignatureV1Signer(ORIGIN, b"\x08" * 32, lambda: 1790000000).verifier().vkey
    config = 'listen = "127.0.0.1:7380"\nname = "w.example"\n\n[[log]]\norigin = "{o}"\nvkey = "{k}"\n'
    assert parse_config(config.format(o=ORIGIN, k=LOG)).logs
    with pytest.raises(MalformedError, match=r"\[\[log\]\] #1: vkey: a log key: a type 0x04 key cannot be used here"):
        parse_config(config.format(o=ORIGIN, k=cosigner))
