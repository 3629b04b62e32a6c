"""The log key guard (issue 18, promise 1): the log key never signs two different roots for one size, nor a smaller
tree than it has signed, whatever happens to the database (logserver/keyguard.py, docs/key-guard.md).

Each operator mistake the hostile tester made is replayed against the real `tlog-server` on both engines: the
server refuses with one line naming what it found and the way out, and signs nothing.
"""

import hashlib
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from loadtest.localproc import free_port, log_identity
from tests.log_harness import REPO, SERVER, LogProcess, postgres_config, register_issuer, seed
from tests.pg_cluster import PgDatabase
from tests.witness_helpers import WitnessProcess, write_config
from tlogcore.keys import Ed25519Signer


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SERVER, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False)


def one_line_refusal(result: subprocess.CompletedProcess[str], *words: str) -> str:
    """Exit 1, no traceback, exactly one line on stderr, containing every word."""
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    assert "PRIVATE+KEY" not in lines[0]
    return lines[0]


def config_args(tmp_path: Path, name: str, dsn: str | None) -> list[str]:
    if dsn is None:
        return []
    path = tmp_path / f"{name}.toml"
    path.write_text(postgres_config(dsn))
    return ["--config", str(path)]


def serve_args(data: Path, config: list[str]) -> list[str]:
    return ["serve", "--data", str(data), "--listen", f"127.0.0.1:{free_port()}", *config]


def grow(server: LogProcess, issuers: int, first: int = 0) -> list[bytes]:
    """Register `issuers` new issuer keys (one entry each); the checkpoints the log signed on the way."""
    notes = []
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for i in range(first, first + issuers):
            register_issuer(client, server, Ed25519Signer(f"issuer{i}.example", seed(100 + i)))
            notes.append(client.get("/checkpoint").content)
    return notes


# --- keys are made only by init, on an empty database ---------------------------------------------------------


def test_serve_never_makes_keys(tmp_path: Path) -> None:
    data = tmp_path / "fresh"
    one_line_refusal(run(*serve_args(data, [])), "log.key does not exist", "tlog-server init")
    assert not (data / "log.key").exists() and not (data / "registry.key").exists()


@pytest.mark.parametrize("lost", ["log.key", "registry.key", "both"])
def test_a_lost_key_is_refused_not_remade(tmp_path: Path, log_dsn: str | None, lost: str) -> None:
    server = LogProcess(tmp_path / "log", free_port(), dsn=log_dsn).start()
    try:
        grow(server, 2)
    finally:
        server.stop()
    config = config_args(tmp_path, "again", log_dsn)
    for name in ("log.key", "registry.key") if lost == "both" else (lost,):
        (server.data / name).rename(tmp_path / name)
    refused = run(*serve_args(server.data, config))
    one_line_refusal(refused, "does not exist", "never make new ones")
    if lost == "both":  # init must not make new keys for a log that has entries either
        one_line_refusal(run("init", "--data", str(server.data), *config), "has no keys", "put that log's keys back")
    assert not (server.data / "log.key").exists() or lost == "registry.key"
    assert "generated" not in refused.stdout


def test_another_log_key_is_refused(tmp_path: Path, log_dsn: str | None) -> None:
    """PostgreSQL: a standby whose --data holds another log key must not join (nor sign once alone)."""
    server = LogProcess(tmp_path / "log", free_port(), dsn=log_dsn).start()
    origin = server.key("log.key").name
    assert run("init", "--data", str(tmp_path / "elsewhere")).returncode == 0  # another log's keys
    try:
        grow(server, 1)
        if log_dsn is None:  # SQLite: the other keys put into this log's --data
            server.stop()
            other = server.data
        else:  # PostgreSQL: a second process with the other keys, while the first sequences
            other = tmp_path / "other"
            other.mkdir(mode=0o700)
        for name in ("log.key", "registry.key"):
            shutil.copy2(tmp_path / "elsewhere" / name, other / name)
        config = config_args(tmp_path, "other", log_dsn)
        one_line_refusal(run(*serve_args(other, config)), "belongs to log", origin)
        one_line_refusal(run("init", "--data", str(other), *config), "already belongs to log", origin)
    finally:
        server.stop()


def test_a_wrong_registry_key_is_refused(tmp_path: Path, log_dsn: str | None) -> None:
    server = LogProcess(tmp_path / "log", free_port(), dsn=log_dsn).start()
    try:
        grow(server, 1)
    finally:
        server.stop()
    registry = server.data / "registry.key"
    registry.unlink()
    assert run("init", "--data", str(tmp_path / "elsewhere")).returncode == 0
    shutil.copy2(tmp_path / "elsewhere" / "registry.key", registry)
    before = sorted(p.name for p in server.data.iterdir())
    result = run(*serve_args(server.data, config_args(tmp_path, "again", log_dsn)))
    one_line_refusal(result, "belongs to log", "registry key")
    assert sorted(p.name for p in server.data.iterdir()) == before  # no key written


def test_an_empty_database_claimed_by_another_origin_is_refused(tmp_path: Path, pg_database: PgDatabase) -> None:
    config = config_args(tmp_path, "pg", pg_database.dsn)
    assert run("init", "--data", str(tmp_path / "a"), "--origin", "a.example/log", *config).returncode == 0
    refused = run("init", "--data", str(tmp_path / "b"), "--origin", "b.example/log", *config)
    one_line_refusal(refused, "already holds log 'a.example/log'", "has no keys")
    assert not (tmp_path / "b" / "log.key").exists()


# --- the database lost, truncated or replaced by an older copy ------------------------------------------------


def test_a_lost_database_is_refused(tmp_path: Path, log_dsn: str | None, request: pytest.FixtureRequest) -> None:
    server = LogProcess(tmp_path / "log", free_port(), dsn=log_dsn).start()
    try:
        grow(server, 2)
    finally:
        server.stop()
    if log_dsn is None:
        for path in server.data.glob("log.db*"):
            path.rename(tmp_path / path.name)
        config: list[str] = []
    else:  # the same keys pointed at an empty database
        cluster = request.getfixturevalue("pg_cluster")
        name = f"fresh{free_port()}"
        cluster.create_database(name)
        config = config_args(tmp_path, "fresh", cluster.dsn(name))
    assert run("init", "--data", str(server.data), *config).returncode == 0  # an empty database may be claimed
    refused = run(*serve_args(server.data, config))
    one_line_refusal(refused, "has signed size 2", "holds no tree", "tlog-server recover")
    assert run("check", "--data", str(server.data), *config).stdout.startswith("ok: 0 entries")  # nothing signed


def test_an_older_copy_of_the_database_is_refused(tmp_path: Path) -> None:
    """SQLite: the database restored from a backup taken at size 1, after the key signed size 3."""
    server = LogProcess(tmp_path / "log", free_port()).start()
    try:
        grow(server, 1)
    finally:
        server.stop()
    backup = tmp_path / "backup"
    backup.mkdir()
    for path in server.data.glob("log.db*"):
        shutil.copy2(path, backup / path.name)
    server.start()
    try:
        grow(server, 2, first=1)
    finally:
        server.stop()
    for path in server.data.glob("log.db*"):
        path.unlink()
    for path in backup.iterdir():
        shutil.copy2(path, server.data / path.name)
    refused = run(*serve_args(server.data, []))
    one_line_refusal(refused, "has signed size 3", "holds size 1", "restore the newer database")


def test_a_replaced_postgresql_database_is_refused_at_takeover(tmp_path: Path, pg_database: PgDatabase) -> None:
    """PostgreSQL: the sequencer's record catches a database that went back to size 0 under it."""
    server = LogProcess(tmp_path / "log", free_port(), dsn=pg_database.dsn).start()
    try:
        grow(server, 2)
    finally:
        server.stop()
    pg_database.cluster.psql("TRUNCATE leaves, hashes, checkpoints, head", pg_database.name)
    refused = run(*serve_args(server.data, config_args(tmp_path, "again", pg_database.dsn)))
    one_line_refusal(refused, "has signed size 2", "holds no tree")


def test_a_whole_data_directory_restored_is_caught_by_the_static_tiles(tmp_path: Path) -> None:
    """Keys, record and database all restored from an old backup: the static tiles directory still shows the
    newer checkpoint this key signed, so the log refuses to sign beside it."""
    tiles = tmp_path / "tiles"
    config = tmp_path / "static.toml"
    config.write_text(f'[static]\ntiles_dir = "{tiles}"\n')
    server = LogProcess(tmp_path / "log", free_port(), config=config).start()
    try:
        grow(server, 1)
    finally:
        server.stop()
    shutil.copytree(server.data, tmp_path / "old-data")
    server.start()
    try:
        grow(server, 2, first=1)
        wait_for_file_size(tiles / "checkpoint", b"\n3\n")
    finally:
        server.stop()
    shutil.rmtree(server.data)
    shutil.copytree(tmp_path / "old-data", server.data)
    refused = run(*serve_args(server.data, ["--config", str(config)]))
    one_line_refusal(refused, "static tiles directory", "size 3")


def wait_for_file_size(path: Path, marker: bytes, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and marker in path.read_bytes():
            return
        time.sleep(0.1)
    raise AssertionError(f"{path} never showed {marker!r}")


def test_a_whole_data_directory_restored_is_caught_by_a_witness(tmp_path: Path) -> None:
    """The same mistake with no static directory: the witness's newest cosigned checkpoint gives it away."""
    identity = log_identity(tmp_path / "log")
    witness_config = write_config(tmp_path / "w.toml", "witness.guard", [(identity.origin, identity.log_vkey)])
    with WitnessProcess(tmp_path / "w", witness_config) as witness:
        config = tmp_path / "log.toml"
        config.write_text(f'[[witness]]\nurl = "{witness.url}"\nvkey = "{witness.vkey}"\n')
        server = LogProcess(tmp_path / "log", free_port(), config=config).start()
        try:
            grow(server, 1)
        finally:
            server.stop()
        shutil.copytree(server.data, tmp_path / "old-data")
        server.start()
        try:
            grow(server, 2, first=1)
            wait_cosigned(witness.url, identity.origin, b"\n3\n")
        finally:
            server.stop()
        shutil.rmtree(server.data)
        shutil.copytree(tmp_path / "old-data", server.data)
        refused = run(*serve_args(server.data, ["--config", str(config)]))
    one_line_refusal(refused, "witness witness.guard holds size 3", "restore the newer database")


def wait_cosigned(url: str, origin: str, marker: bytes, timeout: float = 20) -> None:
    path = f"{url}/{hashlib.sha256(origin.encode()).hexdigest()}/checkpoint"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = httpx.get(path)
        if answer.status_code == 200 and marker in answer.content:
            return
        time.sleep(0.1)
    raise AssertionError(f"the witness never cosigned {marker!r}")
