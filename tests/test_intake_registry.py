"""The submit route's registry check (logserver/intake.py) looks each issuer key up once per request, not once per
statement (issue 20). It must refuse exactly as one check per statement did: the first refused statement, named
by its position, whether its key is unknown, retired, or its statement a registry change the registry refuses."""

import time
from types import SimpleNamespace
from typing import cast

import pytest

from loadtest import log_bench
from logserver.intake import _check_registry
from logserver.logstate import LogState
from tlogcore.errors import NotAllowedError
from tlogcore.keys import Ed25519Signer
from tlogcore.registry import Registry
from tlogcore.statement import ISSUE, ISSUER_ADD, ISSUER_RETIRE, Statement

WHEN = int(time.time()) - 60


def issuer(number: int) -> Ed25519Signer:
    return Ed25519Signer(f"issuer{number}.example", bytes([number]) * 32)


def issue(signer: Ed25519Signer, number: int) -> Statement:
    return Statement(log_bench.ORIGIN, ISSUE, signer.verifier().vkey, WHEN, document=bytes([number]) * 32)


def registry_change(kind: str, signer: Ed25519Signer) -> Statement:
    registry = log_bench.registry_key().verifier().vkey
    return Statement(log_bench.ORIGIN, kind, registry, WHEN, issuer=signer.verifier().vkey, ref=f"{signer.name}")


def state() -> LogState:
    """Issuer 1 registered, issuer 2 registered then retired, issuer 3 never registered."""
    logged = [registry_change(ISSUER_ADD, issuer(1)), registry_change(ISSUER_ADD, issuer(2))]
    logged.append(Statement(log_bench.ORIGIN, ISSUER_RETIRE, logged[0].signer, WHEN, issuer=issuer(2).verifier().vkey))
    registry = Registry.replay([log_bench.registry_key().verifier().vkey], enumerate(logged))
    return cast(LogState, SimpleNamespace(sequencer=SimpleNamespace(registry=registry)))


def test_many_statements_of_one_registered_key_pass() -> None:
    _check_registry(state(), [issue(issuer(1), n) for n in range(50)])


@pytest.mark.parametrize(
    ("refused", "words"),
    [
        (issue(issuer(3), 9), "statement 3: issuer key issuer3.example is not registered"),
        (issue(issuer(2), 9), "statement 3: issuer key issuer2.example has been retired"),
        (registry_change(ISSUER_ADD, issuer(1)), "statement 3: this issuer key was already added"),
    ],
    ids=["unregistered", "retired", "registry-change"],
)
def test_the_first_refused_statement_is_named_after_passing_ones_of_another_key(refused: Statement, words: str) -> None:
    statements = [issue(issuer(1), 1), issue(issuer(1), 2), issue(issuer(1), 3), refused, issue(issuer(1), 4)]
    with pytest.raises(NotAllowedError, match=words):
        _check_registry(state(), statements)


def test_a_refused_key_is_refused_at_its_first_statement_even_when_repeated() -> None:
    statements = [issue(issuer(1), 1), issue(issuer(2), 2), issue(issuer(2), 3)]
    with pytest.raises(NotAllowedError, match=r"statement 1: .*retired"):
        _check_registry(state(), statements)
