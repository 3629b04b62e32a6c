"""Issuer identity belongs to the registry (issue 16): a key name and a label belong to the first issuer that
registered them; a rotation says which key it continues; only the issuing key, or a key that continues it, can
revoke. The rules on their own (tlogcore/registry.py), then on a real log, `tlog verify --log` and `tlog revoke`."""

import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from log_harness import LogProcess, issue, post_statements, running_log
from tools_stack import tlog

from tlogcore.bundle import make_bundle, to_binary
from tlogcore.checkpoint import Checkpoint
from tlogcore.errors import MalformedError, NotAllowedError
from tlogcore.keys import Ed25519Signer, format_signer_key
from tlogcore.note import sign_note
from tlogcore.policy import parse_policy
from tlogcore.registry import Registry
from tlogcore.statement import ISSUE, ISSUER_ADD, ISSUER_RETIRE, REVOKE, Statement, parse_statement, sign_statement
from tools.verdict import GENUINE, NOT_REGISTERED
from tools.verify import online_verdict

ORIGIN = "log.example"
REGISTRY = Ed25519Signer("log.example/registry", b"\x01" * 32)
MINISTRY = Ed25519Signer("moeys.gov.kh", b"\x02" * 32)
MINISTRY_NEW = Ed25519Signer("moeys.gov.kh", b"\x03" * 32)
IMPOSTOR = Ed25519Signer("moeys.gov.kh", b"\x04" * 32)  # another issuer's key carrying the ministry's key name
SCHOOL = Ed25519Signer("school-x.edu.kh", b"\x05" * 32)


def add(key: Ed25519Signer, label: str | None, continues: Ed25519Signer | None = None) -> Statement:
    return Statement(
        ORIGIN,
        ISSUER_ADD,
        REGISTRY.verifier().vkey,
        1790000000,
        issuer=key.verifier().vkey,
        ref=label,
        continues=continues.verifier().vkey if continues else None,
    )


def registry_with_ministry() -> Registry:
    registry = Registry(frozenset([REGISTRY.verifier().vkey]))
    registry.apply(add(MINISTRY, "Ministry of Education"), 0)
    return registry


# --- the rules, pure --------------------------------------------------------------------------------------------


def test_a_key_name_held_by_another_issuer_is_refused_naming_the_holder() -> None:
    registry = registry_with_ministry()
    with pytest.raises(NotAllowedError) as refused:
        registry.check(add(IMPOSTOR, "Private school X"))
    assert "Ministry of Education" in str(refused.value) and MINISTRY.verifier().vkey in str(refused.value)


def test_a_label_held_by_another_issuer_is_refused() -> None:
    registry = registry_with_ministry()
    with pytest.raises(NotAllowedError, match="Ministry of Education"):
        registry.check(add(SCHOOL, "ministry of education"))  # case does not make it another name
    registry.check(add(SCHOOL, "Private school X"))  # a name and a label of its own: fine


def test_a_rotation_keeps_the_name_and_label_and_says_what_it_continues() -> None:
    registry = registry_with_ministry()
    registry.apply(add(MINISTRY_NEW, "Ministry of Education", continues=MINISTRY), 1)
    assert registry.continuations() == {MINISTRY_NEW.verifier().vkey: MINISTRY.verifier().vkey}
    assert registry.issuer_of(MINISTRY_NEW.verifier().vkey) == MINISTRY.verifier().vkey


def test_a_rotation_cannot_borrow_another_issuers_name() -> None:
    registry = registry_with_ministry()
    registry.apply(add(SCHOOL, "Private school X"), 1)
    with pytest.raises(NotAllowedError, match="already held"):
        registry.check(add(IMPOSTOR, None, continues=SCHOOL))  # continues the school, but takes the ministry's name


def test_a_rotation_must_continue_a_registered_key() -> None:
    with pytest.raises(NotAllowedError, match="not registered"):
        registry_with_ministry().check(add(MINISTRY_NEW, None, continues=SCHOOL))


def test_a_retired_key_may_be_continued() -> None:
    """Retirement usually means compromise: the issuer's next key must still be able to take over."""
    registry = registry_with_ministry()
    retire = Statement(
        ORIGIN, ISSUER_RETIRE, REGISTRY.verifier().vkey, 1790000001, issuer=MINISTRY.verifier().vkey, reason="lost"
    )
    registry.apply(retire, 1)
    registry.apply(add(MINISTRY_NEW, "Ministry of Education", continues=MINISTRY), 2)
    assert registry.is_active(MINISTRY_NEW.verifier().vkey)


def test_continues_is_canonical_and_only_on_issuer_add() -> None:
    statement = add(MINISTRY_NEW, "Ministry of Education", continues=MINISTRY)
    data = sign_statement(statement, REGISTRY)
    assert parse_statement(data) == statement
    assert f"\ncontinues {MINISTRY.verifier().vkey}\n" in statement.text
    with pytest.raises(MalformedError):
        Statement(
            ORIGIN,
            REVOKE,
            MINISTRY.verifier().vkey,
            1790000000,
            document=b"\x00" * 32,
            continues=MINISTRY_NEW.verifier().vkey,
        )
    with pytest.raises(MalformedError, match="no binary bundle"):
        to_binary(make_bundle(data, 0, (), b""))


# --- a real log ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LogProcess, Path]]:
    tmp = tmp_path_factory.mktemp("issuer-identity")
    with running_log(tmp) as server:
        policy = tmp / "trust.policy"
        policy.write_text(f"log {server.key('log.key').verifier().vkey}\nquorum none\n")
        yield server, policy


def submit(server: LogProcess, statements: list[bytes]) -> httpx.Response:
    with httpx.Client(base_url=server.url, timeout=20) as client:
        return post_statements(client, statements)


def registered(server: LogProcess, key: Ed25519Signer, label: str, continues: Ed25519Signer | None = None) -> int:
    registry = server.key("registry.key")
    origin = origin_of(server)
    statement = Statement(
        origin,
        ISSUER_ADD,
        registry.verifier().vkey,
        int(time.time()),
        issuer=key.verifier().vkey,
        ref=label,
        continues=continues.verifier().vkey if continues else None,
    )
    response = submit(server, [sign_statement(statement, registry)])
    assert response.status_code == 200, response.text
    return int(response.json()["entries"][0]["index"])


def origin_of(server: LogProcess) -> str:
    return str(httpx.get(server.url + "/api/v1/log").json()["origin"])


def revoke(server: LogProcess, key: Ed25519Signer, document: bytes) -> bytes:
    statement = Statement(origin_of(server), REVOKE, key.verifier().vkey, int(time.time()), document=document)
    return sign_statement(statement, key)


def status(server: LogProcess, document: bytes) -> dict[str, Any]:
    return dict(httpx.get(f"{server.url}/api/v1/documents/{document.hex()}").json())


def verify_online(policy: Path, server: LogProcess, path: Path) -> dict[str, object]:
    result = tlog("verify", str(path), "--policy", str(policy), "--log", server.url, "--json")
    assert "Traceback" not in result.output
    return dict(json.loads(result.stdout))


@pytest.fixture(scope="module")
def ministry(log: tuple[LogProcess, Path]) -> tuple[int, int]:
    server, _ = log
    first = registered(server, MINISTRY, "Ministry of Education")
    second = registered(server, MINISTRY_NEW, "Ministry of Education", continues=MINISTRY)
    return first, second


def test_the_log_refuses_a_same_named_key_of_another_issuer(log, ministry) -> None:  # type: ignore[no-untyped-def]
    server, _ = log
    registry = server.key("registry.key")
    statement = Statement(
        origin_of(server),
        ISSUER_ADD,
        registry.verifier().vkey,
        int(time.time()),
        issuer=IMPOSTOR.verifier().vkey,
        ref="Private school X",
    )
    response = submit(server, [sign_statement(statement, registry)])
    assert response.status_code == 403
    body = response.json()
    assert body["error"] == "signer_not_allowed" and "Ministry of Education" in body["message"]
    assert MINISTRY.verifier().vkey in body["message"]


def test_a_statement_by_an_unregistered_key_is_refused(log, ministry) -> None:  # type: ignore[no-untyped-def]
    server, _ = log
    response = submit(server, [issue(origin_of(server), IMPOSTOR, hashlib.sha256(b"forged").digest())])
    assert response.status_code == 403 and response.json()["error"] == "signer_not_allowed"
    assert "not registered" in response.json()["message"]


def test_only_the_issuing_key_or_its_continuation_revokes(log, ministry, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server, policy = log
    origin = origin_of(server)
    old_doc, new_doc = tmp_path / "old.pdf", tmp_path / "new.pdf"
    old_doc.write_bytes(b"diploma issued with the old key")
    new_doc.write_bytes(b"diploma issued with the new key")
    old_hash, new_hash = (hashlib.sha256(p.read_bytes()).digest() for p in (old_doc, new_doc))
    assert submit(server, [issue(origin, MINISTRY, old_hash), issue(origin, MINISTRY_NEW, new_hash)]).is_success
    # The old key revokes what the new key issued: logged (the key is active), but it does not count.
    assert submit(server, [revoke(server, MINISTRY, new_hash)]).is_success
    assert status(server, new_hash)["status"] == "valid"
    assert verify_online(policy, server, new_doc)["verdict"] == "genuine"
    # The new key revokes what the old key issued: it continues it, so it counts.
    assert submit(server, [revoke(server, MINISTRY_NEW, old_hash)]).is_success
    assert status(server, old_hash)["status"] == "revoked"
    assert verify_online(policy, server, old_doc)["verdict"] == "revoked"


def test_verdicts_name_the_registered_label_and_registration(log, ministry, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server, policy = log
    doc = tmp_path / "labelled.pdf"
    doc.write_bytes(b"a diploma to be named by its issuer's registered label")
    digest = hashlib.sha256(doc.read_bytes()).digest()
    index = int(submit(server, [issue(origin_of(server), MINISTRY, digest)]).json()["entries"][0]["index"])
    verdict = verify_online(policy, server, doc)
    assert verdict["verdict"] == "genuine" and verdict["issuer_label"] == "Ministry of Education"
    assert verdict["issuer_registered_at"] == ministry[0] < index
    assert "'Ministry of Education'" in str(verdict["message"])
    lookup = status(server, digest)
    assert [s["label"] for s in lookup["statements"]] == ["Ministry of Education"]
    registrations = lookup["registrations"]
    assert [r["index"] for r in registrations] == [ministry[0]]
    line = tlog("verify", str(doc), "--policy", str(policy), "--log", server.url).stdout
    assert line.startswith("GENUINE") and "Ministry of Education" in line


def test_retiring_a_key_keeps_what_it_issued(log, ministry, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server, policy = log
    short_lived = Ed25519Signer("retired.gov.kh", b"\x06" * 32)
    registered(server, short_lived, "A retired office")
    doc = tmp_path / "before-retirement.pdf"
    doc.write_bytes(b"issued before the key was retired")
    assert submit(server, [issue(origin_of(server), short_lived, hashlib.sha256(doc.read_bytes()).digest())]).is_success
    registry = server.key("registry.key")
    retire = Statement(
        origin_of(server), ISSUER_RETIRE, registry.verifier().vkey, int(time.time()), issuer=short_lived.verifier().vkey
    )
    assert submit(server, [sign_statement(retire, registry)]).is_success
    verdict = verify_online(policy, server, doc)
    assert verdict["verdict"] == "genuine" and verdict["issuer_label"] == "A retired office"


def test_tlog_revoke_refuses_what_the_key_never_issued_or_already_revoked(log, ministry, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server, _ = log
    keys = {}
    for name, signer in (("old", MINISTRY), ("new", MINISTRY_NEW), ("school", SCHOOL)):
        keys[name] = tmp_path / f"{name}.key"
        keys[name].write_text(format_signer_key(signer) + "\n")
        keys[name].chmod(0o600)
    doc = tmp_path / "to-revoke.pdf"
    doc.write_bytes(b"a licence issued by the ministry's first key")
    assert submit(server, [issue(origin_of(server), MINISTRY, hashlib.sha256(doc.read_bytes()).digest())]).is_success
    size = int(httpx.get(server.url + "/api/v1/log").json()["size"])
    never = tlog("revoke", "--log", server.url, "--key", str(keys["new"]), "--sha256", "ab" * 32)
    assert never.exit_code == 1 and "never issued" in never.output and "Traceback" not in never.output
    registered(server, SCHOOL, "Private school X")
    size += 1
    other = tlog("revoke", "--log", server.url, "--key", str(keys["school"]), str(doc))
    assert other.exit_code == 1 and "never issued" in other.output
    first = tlog("revoke", "--log", server.url, "--key", str(keys["new"]), str(doc))  # the continuing key may
    assert first.exit_code == 0, first.output
    twice = tlog("revoke", "--log", server.url, "--key", str(keys["old"]), str(doc))
    assert twice.exit_code == 1 and "already revoked" in twice.output
    assert int(httpx.get(server.url + "/api/v1/log").json()["size"]) == size + 1  # one revocation, nothing else


def test_a_document_by_a_key_the_registry_never_added_is_not_genuine() -> None:
    """What `tlog verify --log` concludes when a log lists a document whose signer it never registered (an honest
    log refuses such a statement, so the log here is the function's input): never "genuine"."""
    log_key = Ed25519Signer(ORIGIN, b"\x07" * 32)
    document = hashlib.sha256(b"a diploma from nobody").digest()
    statement = Statement(ORIGIN, ISSUE, IMPOSTOR.verifier().vkey, 1790000000, document=document)
    checkpoint = Checkpoint(ORIGIN, 5, b"\x00" * 32)
    policy = parse_policy(f"log {log_key.verifier().vkey}\nquorum none\n")
    trusted = policy.verify_checkpoint(sign_note(checkpoint.text, [log_key]), time.time())
    outcome = online_verdict(document, [(3, statement)], {}, trusted)
    assert outcome.verdict == NOT_REGISTERED and outcome.exit_code == 8
    assert "never added" in outcome.message
    # The ministry's registration does not cover the impostor's key, even though it carries the same name.
    ministry_add = (1, add(MINISTRY, "Ministry of Education"))
    assert online_verdict(document, [(3, statement)], {MINISTRY.verifier().vkey: ministry_add}, trusted).verdict == (
        NOT_REGISTERED
    )
    # A registration that comes after the document's entry does not cover it either.
    late = {IMPOSTOR.verifier().vkey: (4, add(IMPOSTOR, "Late"))}
    assert online_verdict(document, [(3, statement)], late, trusted).verdict == NOT_REGISTERED
    early = {IMPOSTOR.verifier().vkey: (2, add(IMPOSTOR, "Early"))}
    assert online_verdict(document, [(3, statement)], early, trusted).verdict == GENUINE
