"""A log made before the registry's ownership rule (issue 16) holds two issuers under one key name. It used to
refuse to start ("already held by issuer ..."): now those entries stay as logged, the rule applies from the log's
size at the first start that finds them, the operator is told in one line, and new duplicates are still refused.

The old database is made by the real sequencer and SQLite storage, with the registry rules as they were before the
ownership rule (no holder check: `OldRuleRegistry`), then served by a real `tlog-server serve`."""

import asyncio
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from log_harness import REPO, SERVER, LogProcess, free_port, post_statements

from logserver.keyguard import RECORD_NAME, KeyGuard, RecordFile
from logserver.registryrule import RULE_FILE
from logserver.sequencer import Sequencer, SequencerConfig, Submission
from logserver.sqlite import SQLiteStorage
from tlogcore.errors import NotAllowedError
from tlogcore.keys import Ed25519Signer
from tlogcore.merkle import leaf_hash
from tlogcore.registry import NameHeldError, Registry
from tlogcore.statement import ISSUER_ADD, Statement, parse_statement, sign_statement

MINISTRY = Ed25519Signer("moeys.gov.kh", b"\x02" * 32)
IMPOSTOR = Ed25519Signer("moeys.gov.kh", b"\x04" * 32)  # another issuer, the ministry's key name
LATE = Ed25519Signer("moeys.gov.kh", b"\x06" * 32)


class OldRuleRegistry(Registry):
    """The registry before the ownership rule: any name, any label."""

    def _check_add(self, vkey: str, label: str | None, continues: str | None) -> None:
        if vkey in self.keys:
            raise NotAllowedError("this issuer key was already added")


def add(origin: str, registry: Ed25519Signer, key: Ed25519Signer, label: str) -> bytes:
    statement = Statement(
        origin, ISSUER_ADD, registry.verifier().vkey, int(time.time()), issuer=key.verifier().vkey, ref=label
    )
    return sign_statement(statement, registry)


async def log_under_the_old_rule(server: LogProcess, statements: list[bytes]) -> None:
    log_key, registry = server.key("log.key"), server.key("registry.key")
    storage = await SQLiteStorage.open(server.data / "log.db", 5000)
    guard = KeyGuard(log_key.name, log_key.verifier(), RecordFile(server.data / RECORD_NAME))
    config = SequencerConfig(log_key.name, frozenset([registry.verifier().vkey]), flush_interval=0.01)
    sequencer = Sequencer(storage, log_key, config, guard=guard)
    try:
        await sequencer.load()
        assert await sequencer.take_lease()
        sequencer.registry = OldRuleRegistry(config.registry_keys)
        task = asyncio.create_task(sequencer.run())
        for data in statements:
            await sequencer.submit([Submission(data, parse_statement(data), leaf_hash(data))])
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    finally:
        await storage.close()


def test_the_rule_is_pure_and_applies_from_the_recorded_index() -> None:
    registry_key = Ed25519Signer("log.example/registry", b"\x01" * 32)
    statements = [
        Statement("log.example", ISSUER_ADD, registry_key.verifier().vkey, 1, issuer=k.verifier().vkey, ref=label)
        for k, label in ((MINISTRY, "Ministry of Education"), (IMPOSTOR, "Private school X"))
    ]
    with pytest.raises(NameHeldError):
        Registry.replay([registry_key.verifier().vkey], enumerate(statements))
    old = Registry.replay([registry_key.verifier().vkey], enumerate(statements), names_owned_from=2)
    assert old.grandfathered == [1] and IMPOSTOR.verifier().vkey in old.keys
    with pytest.raises(NameHeldError):  # at or after the recorded index the rule holds
        Registry.replay([registry_key.verifier().vkey], enumerate(statements), names_owned_from=1)


def test_a_log_with_duplicate_names_from_before_the_rule_starts_and_keeps_them(tmp_path: Path) -> None:
    server = LogProcess(tmp_path / "log", free_port())
    subprocess.run([*SERVER, "init", "--data", str(server.data)], cwd=REPO, check=True, capture_output=True)
    origin, registry = server.key("log.key").name, server.key("registry.key")
    old = [
        add(origin, registry, MINISTRY, "Ministry of Education"),
        add(origin, registry, IMPOSTOR, "Private school X"),
    ]
    asyncio.run(log_under_the_old_rule(server, old))

    server.start(init=False)  # before: "server exited with 1 ... already held by issuer"
    try:
        lines = [line for line in server.output().splitlines() if "name-ownership rule" in line]
        assert len(lines) == 1, server.output()
        assert "(#1)" in lines[0] and "from entry #2" in lines[0] and RULE_FILE in lines[0], lines[0]
        with httpx.Client(base_url=server.url) as client:
            listed = client.get("/api/v1/issuers").json()
            keys = {k["vkey"] for issuer in listed["issuers"] for k in issuer["keys"]}
            assert {MINISTRY.verifier().vkey, IMPOSTOR.verifier().vkey} <= keys  # the old entries stay
            refused = post_statements(client, [add(origin, registry, LATE, "Another school")])
            assert refused.status_code == 403 and "already held" in refused.json()["message"]
    finally:
        server.stop()
    server.process = None
    server.start(init=False)  # the index is recorded: the next start says nothing more
    try:
        assert (server.data / RULE_FILE).read_text() == '{"names_owned_from": 2}\n'
        assert sum("name-ownership rule" in line for line in server.output().splitlines()) == 1
    finally:
        server.stop()


def test_a_duplicate_at_or_after_the_recorded_index_stops_the_server_in_one_line(tmp_path: Path) -> None:
    server = LogProcess(tmp_path / "log", free_port())
    subprocess.run([*SERVER, "init", "--data", str(server.data)], cwd=REPO, check=True, capture_output=True)
    (server.data / RULE_FILE).write_text('{"names_owned_from": 1}\n')  # recorded before the impostor's entry
    origin, registry = server.key("log.key").name, server.key("registry.key")
    old = [
        add(origin, registry, MINISTRY, "Ministry of Education"),
        add(origin, registry, IMPOSTOR, "Private school X"),
    ]
    asyncio.run(log_under_the_old_rule(server, old))
    with pytest.raises(RuntimeError, match="server exited with 1"):
        server.start(init=False)
    output = server.output()
    assert "Traceback" not in output and "does not replay" in output and "already held" in output, output
