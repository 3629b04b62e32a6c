"""`tlog-server recover` (issue 18): a lost database rebuilt from the static tiles directory, which must prove
itself (the log's signature, the entries' root, the newest checkpoint the key signed) before anything is written."""

import base64
import shutil
import subprocess
import time
from pathlib import Path

import httpx

from loadtest.localproc import free_port
from tests.log_harness import REPO, SERVER, LogProcess, issue, post_statements, register_issuer, seed
from tlogcore.checkpoint import parse_checkpoint
from tlogcore.keys import Ed25519Signer
from tlogcore.merkle import verify_consistency
from tlogcore.note import open_note
from tlogcore.vkeys import parse_verifier_key


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SERVER, *args], cwd=REPO, capture_output=True, text=True, timeout=120, check=False)


def refused(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and all(w in lines[0] for w in words), result.stderr


def shown_size(tiles: Path) -> int:
    try:
        return int((tiles / "checkpoint").read_text().split("\n")[1])
    except (OSError, IndexError, ValueError):
        return -1


def grow(server: LogProcess, tiles: Path, batches: int, first: int = 0) -> int:
    with httpx.Client(base_url=server.url, timeout=60) as client:
        issuer = Ed25519Signer("issuer.example", seed(40))
        if first == 0:
            register_issuer(client, server, issuer)
        origin = client.get("/api/v1/log").json()["origin"]
        for batch in range(first, first + batches):
            docs = [issue(origin, issuer, (batch * 1000 + i).to_bytes(32, "big")) for i in range(150)]
            assert post_statements(client, docs).status_code == 200
        size = int(client.get("/api/v1/log").json()["size"])
    deadline = time.monotonic() + 20
    while shown_size(tiles) != size and time.monotonic() < deadline:
        time.sleep(0.1)
    assert shown_size(tiles) == size
    return size


def started_log(tmp_path: Path) -> tuple[LogProcess, Path]:
    tiles = tmp_path / "tiles"
    config = tmp_path / "static.toml"
    config.write_text(f'[static]\ntiles_dir = "{tiles}"\n')
    return LogProcess(tmp_path / "log", free_port(), config=config).start(), tiles


def lose_database(data: Path) -> None:
    for path in data.glob("log.db*"):
        path.unlink()


def test_a_lost_database_is_rebuilt_from_the_tiles_and_the_log_goes_on(tmp_path: Path) -> None:
    server, tiles = started_log(tmp_path)
    try:
        size = grow(server, tiles, 2)
        old_note = httpx.get(server.url + "/checkpoint").content
    finally:
        server.stop()
    lose_database(server.data)
    assert cli("init", "--data", str(server.data)).returncode == 0  # an empty database, claimed
    refused(cli("serve", "--data", str(server.data), "--listen", f"127.0.0.1:{free_port()}"), "holds no tree")
    result = cli("recover", "--data", str(server.data), "--from", str(tiles))
    assert result.returncode == 0, result.stderr
    assert f"recovered size {size}" in result.stdout
    audit = cli("check", "--data", str(server.data))
    assert audit.returncode == 0 and audit.stdout.startswith(f"ok: {size} entries"), audit.stdout + audit.stderr
    server.start(init=False)
    try:
        grown = grow(server, tiles, 1, first=5)
        with httpx.Client(base_url=server.url) as client:
            verifier = parse_verifier_key(client.get("/api/v1/log").json()["log_vkey"])
            new = parse_checkpoint(open_note(client.get("/checkpoint").content, [verifier]).text)
            old = parse_checkpoint(open_note(old_note, [verifier]).text)
            proof = client.get("/api/v1/proof/consistency", params={"old": old.size, "new": new.size}).json()
    finally:
        server.stop()
    assert grown == size + 150 and new.size == grown
    verify_consistency(old.size, new.size, old.root, new.root, [base64.b64decode(h) for h in proof["proof"]])


def test_tiles_that_do_not_prove_themselves_are_refused(tmp_path: Path) -> None:
    server, tiles = started_log(tmp_path)
    try:
        grow(server, tiles, 1)
        shutil.copytree(tiles, tmp_path / "old-tiles")
        grow(server, tiles, 1, first=1)
    finally:
        server.stop()
    lose_database(server.data)
    assert cli("init", "--data", str(server.data)).returncode == 0
    refused(cli("recover", "--data", str(server.data), "--from", str(tmp_path / "old-tiles")), "find a newer copy")
    bundle = tiles / "tile" / "entries" / "000"
    data = bytearray(bundle.read_bytes())
    data[100] ^= 1
    bundle.write_bytes(bytes(data))
    refused(cli("recover", "--data", str(server.data), "--from", str(tiles)), "do not make the tree")
    assert cli("check", "--data", str(server.data)).stdout.startswith("ok: 0 entries")  # nothing was written


def test_recover_never_writes_over_a_database(tmp_path: Path) -> None:
    server, tiles = started_log(tmp_path)
    try:
        grow(server, tiles, 1)
    finally:
        server.stop()
    refused(cli("recover", "--data", str(server.data), "--from", str(tiles)), "not empty", "move the damaged one away")
