"""`tlog-server check` (issue 18, item 12): a full audit of a database, read only. A healthy log passes; each kind
of damage the hostile tester made is named with its index; nothing is written."""

import hashlib
import sqlite3
import subprocess
from pathlib import Path

import httpx
import pytest

from loadtest.localproc import free_port
from tests.log_harness import REPO, SERVER, LogProcess, issue, post_statements, register_issuer, seed
from tlogcore import merkle
from tlogcore.keys import Ed25519Signer


def check(data: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SERVER, "check", "--data", str(data)], cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture(scope="module")
def healthy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stopped log of 301 entries (level-1 and level-2 nodes, several checkpoints)."""
    server = LogProcess(tmp_path_factory.mktemp("check") / "log", free_port()).start()
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            issuer = Ed25519Signer("issuer.example", seed(30))
            register_issuer(client, server, issuer)
            origin = client.get("/api/v1/log").json()["origin"]
            for batch in range(3):
                docs = [issue(origin, issuer, (batch * 100 + i).to_bytes(32, "big")) for i in range(100)]
                assert post_statements(client, docs).status_code == 200
    finally:
        server.stop()
    return server.data


def copy_of(healthy: Path, tmp_path: Path) -> Path:
    data = tmp_path / "copy"
    data.mkdir(mode=0o700)
    for path in healthy.iterdir():
        if path.is_file():
            (data / path.name).write_bytes(path.read_bytes())
            (data / path.name).chmod(path.stat().st_mode)
    return data


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_healthy_log_passes(healthy: Path) -> None:
    before = digest(healthy / "log.db")
    result = check(healthy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("ok: 301 entries") and "checkpoints verified" in result.stdout
    assert digest(healthy / "log.db") == before  # read only


@pytest.mark.parametrize(
    ("damage", "found"),
    [
        (f"UPDATE hashes SET hash = zeroblob(32) WHERE id = {merkle.stored_hash_index(1, 7)}", "(level 1, index 7)"),
        ("DELETE FROM leaves WHERE idx = 123", "entry 123 is missing"),
        (f"UPDATE hashes SET hash = zeroblob(32) WHERE id = {merkle.stored_hash_index(0, 42)}", "entry 42 does not"),
        (
            "UPDATE checkpoints SET note = CAST(replace(note, X'0a310a', X'0a320a') AS BLOB),"
            " published = CAST(replace(published, X'0a310a', X'0a320a') AS BLOB) WHERE size = 1",
            "size 1 does not verify",
        ),
        ("DELETE FROM head", "no head"),
    ],
    ids=["zeroed-inner-hash", "deleted-leaf", "zeroed-leaf-hash", "forged-checkpoint", "head-row"],
)
def test_damage_is_found_and_named(healthy: Path, tmp_path: Path, damage: str, found: str) -> None:
    data = copy_of(healthy, tmp_path)
    with sqlite3.connect(data / "log.db") as db:
        db.execute(damage)
    result = check(data)
    assert result.returncode == 1
    assert found in result.stdout, result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "is damaged" in lines[0] and "tlog-server recover" in lines[0]
    assert "Traceback" not in result.stderr
