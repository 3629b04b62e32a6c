"""The monitor reading a log's tiles from a static mirror (monitor/mirror.py): a copy of the log's tiles directory
made by the real `tlog-server export-tiles`, read as files (`tiles_dir`) or served over HTTP (`tiles_url`).

Trust does not change: a mirror that serves a wrong tile or an altered entry bundle raises the same misbehaviour
alert as the log doing it, with evidence that re-checks by itself and names the mirror; a mirror that has not
copied the newest tiles yet is waited for (the round is "not audited", exit 2) and never alerted.
"""

import base64
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from log_harness import REPO, SERVER
from monitor_helpers import (
    FilledLog,
    doc,
    issuer_key,
    monitor_cli,
    read_alerts,
    report_json,
    start_log,
    toml_string,
    wait_for,
)

from loadtest.localproc import free_port
from monitor.config import MonitorConfig, config_from_toml
from tlogcore import merkle
from tlogcore.errors import MalformedError
from tlogcore.keys import Ed25519Signer


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FilledLog]:
    tmp = tmp_path_factory.mktemp("monitor-mirror")
    filled = start_log(tmp)
    try:
        filled.register("other", issuer_key("other.example.gov.kh", 2))
        filled.submit(filled.issue("other", [doc(i, b"mirror") for i in range(600)]))
        filled.wait_published(filled.size)
        yield filled
    finally:
        filled.close()


def export(log: FilledLog, out: Path, *extra: str) -> None:
    """The log's tiles directory as `tlog-server export-tiles` writes it (what an operator copies to a mirror)."""
    log.wait_published(log.size)
    args = [*SERVER, "export-tiles", "--data", str(log.server.data), "--out", str(out), *extra]
    result = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr


def grow(log: FilledLog, count: int, tag: bytes) -> None:
    log.submit(log.issue("other", [doc(i, tag) for i in range(count)]))
    log.wait_published(log.size)


def mirror_config(tmp: Path, log: FilledLog, tiles: str) -> Path:
    """A monitor of `log` whose tiles come from `tiles` (a TOML line: tiles_dir = ... or tiles_url = ...)."""
    path = tmp / "monitor.toml"
    policy = f"log {log.log_vkey}\nquorum none\n"
    path.write_text(
        f'state = "state.db"\n\n[[log]]\nurl = {toml_string(log.server.url)}\npolicy = {toml_string(policy)}\n'
        f'{tiles}\n\n[[sink]]\ntype = "file"\npath = "alerts.jsonl"\n',
        encoding="utf-8",
    )
    return path


def audit(config: Path) -> subprocess.CompletedProcess[str]:
    result = monitor_cli("audit-once", "--config", str(config))
    assert "Traceback" not in result.stderr, result.stderr
    return result


def verified_size(config: Path) -> int:
    verified = report_json(config)["verified"]
    return int(verified["size"]) if verified else 0


def alerts(config: Path) -> list[dict[str, Any]]:
    path = config.parent / "alerts.jsonl"
    return read_alerts(path) if path.exists() else []


def test_audit_from_a_tiles_directory(tmp_path: Path, log: FilledLog) -> None:
    export(log, tmp_path / "mirror")
    config = mirror_config(tmp_path, log, 'tiles_dir = "mirror"')  # relative to the config file
    result = audit(config)
    assert result.returncode == 0, result.stderr
    assert verified_size(config) == log.size and alerts(config) == []


def test_a_mirror_behind_the_log_is_waited_for_not_alerted(tmp_path: Path, log: FilledLog) -> None:
    export(log, tmp_path / "mirror")
    config = mirror_config(tmp_path, log, 'tiles_dir = "mirror"')
    assert audit(config).returncode == 0
    n = verified_size(config)
    grow(log, 300, b"behind")  # the log moves on; the mirror has not copied its new tiles
    result = audit(config)
    assert result.returncode == 2, result.stderr  # not audited: try again
    assert "the tiles directory" in result.stderr and "does not have tile/" in result.stderr, result.stderr
    assert "retrying" in result.stderr
    assert alerts(config) == [] and verified_size(config) == n
    export(log, tmp_path / "mirror")  # the mirror catches up
    assert audit(config).returncode == 0
    assert verified_size(config) == log.size and alerts(config) == []


def only_alert(config: Path, rule: str) -> dict[str, Any]:
    found = [a for a in alerts(config) if a["rule"] == rule]
    assert len(found) == 1, alerts(config)
    assert found[0]["category"] == "misbehaviour"
    return found[0]


def test_a_mirror_serving_a_wrong_tile_is_alerted_with_evidence(tmp_path: Path, log: FilledLog) -> None:
    mirror = tmp_path / "mirror"
    export(log, mirror)
    config = mirror_config(tmp_path, log, 'tiles_dir = "mirror"')
    assert audit(config).returncode == 0
    n = verified_size(config)
    grow(log, 300, b"wrong-tile")  # completes level-0 tile n // 256
    export(log, mirror)
    path = f"tile/0/{n // 256:03d}"
    body = (mirror / path).read_bytes()
    (mirror / path).write_bytes(body[:100] + bytes([body[100] ^ 1]) + body[101:])
    assert audit(config).returncode == 3
    evidence = only_alert(config, "log-tiles")["evidence"]
    assert evidence["tile"] == path and str(mirror) in evidence["tiles_from"]
    served = base64.b64decode(evidence["tile_body"])
    hashes = [served[i : i + 32] for i in range(0, len(served), 32)]
    while len(hashes) > 1:
        hashes = [merkle.node_hash(hashes[i], hashes[i + 1]) for i in range(0, len(hashes), 2)]
    parent = base64.b64decode(evidence["parent_body"])
    assert hashes[0] != parent[(n // 256 % 256) * 32 :][:32]  # re-checked from the evidence alone
    assert verified_size(config) == n
    export(log, mirror, "--verify")  # rewrites the file that differs from the log's
    assert audit(config).returncode == 0 and verified_size(config) == log.size


def test_a_mirror_serving_an_altered_entry_bundle_is_alerted(tmp_path: Path, log: FilledLog) -> None:
    mirror = tmp_path / "mirror"
    export(log, mirror)
    config = mirror_config(tmp_path, log, 'tiles_dir = "mirror"')
    assert audit(config).returncode == 0
    n = verified_size(config)
    grow(log, 5, b"altered-bundle")
    export(log, mirror)
    size = log.size
    path = f"tile/entries/{(size - 1) // 256:03d}" + (f".p/{size % 256}" if size % 256 else "")
    body = (mirror / path).read_bytes()
    at = body.rfind(b"\ntime ") + len(b"\ntime ") + 3  # a digit of the last statement's time
    (mirror / path).write_bytes(body[:at] + (b"1" if body[at : at + 1] != b"1" else b"2") + body[at + 1 :])
    assert audit(config).returncode == 3
    evidence = only_alert(config, "log-entry-bundle")["evidence"]
    assert evidence["bundle"] == path and evidence["index"] == size - 1 and "tiles_from" in evidence
    entry = base64.b64decode(evidence["entry"])
    assert merkle.leaf_hash(entry) != base64.b64decode(evidence["expected_leaf_hash"])
    assert verified_size(config) == n


def test_a_missing_tiles_directory_is_one_readable_line(tmp_path: Path, log: FilledLog) -> None:
    config = mirror_config(tmp_path, log, 'tiles_dir = "nowhere"')
    result = audit(config)
    assert result.returncode == 2
    assert f"the tiles directory {tmp_path / 'nowhere'} does not exist" in result.stderr, result.stderr
    assert alerts(config) == []


@pytest.fixture
def static_http(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A plain static HTTP server over a directory (the test's stand-in for nginx or a CDN)."""
    root, port = tmp_path / "www", free_port()
    root.mkdir()
    args = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(root)]
    server = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            return httpx.get(url + "/", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(answers, 15, "the static HTTP server")
        yield root, url
    finally:
        server.terminate()
        server.wait(10)


def test_audit_from_a_tile_mirror_over_http(tmp_path: Path, log: FilledLog, static_http: tuple[Path, str]) -> None:
    root, url = static_http
    export(log, root / "tlog")
    config = mirror_config(tmp_path, log, f"tiles_url = {toml_string(url + '/tlog')}")
    result = audit(config)
    assert result.returncode == 0, result.stderr
    assert verified_size(config) == log.size and alerts(config) == []
    grow(log, 3, b"http-behind")
    result = audit(config)
    assert result.returncode == 2 and f"the tile mirror {url}/tlog does not have tile/" in result.stderr


def parse(log_table: str, tmp: Path) -> MonitorConfig:
    vkey = Ed25519Signer("log.example", b"\x01" * 32).verifier().vkey
    text = f'state = "s.db"\n[[log]]\nurl = "http://127.0.0.1:1"\nvkey = "{vkey}"\n{log_table}\n'
    return config_from_toml(tomllib.loads(text), tmp, lambda p: p.read_text())


def test_the_mirror_options(tmp_path: Path) -> None:
    assert parse('tiles_dir = "tiles"', tmp_path).logs[0].tiles_dir == tmp_path / "tiles"
    assert parse('tiles_url = "https://cdn.example/tlog/"', tmp_path).logs[0].tiles_url == "https://cdn.example/tlog"
    plain = parse("", tmp_path).logs[0]
    assert plain.tiles_dir is None and plain.tiles_url is None
    with pytest.raises(MalformedError, match="not both"):
        parse('tiles_dir = "a"\ntiles_url = "http://127.0.0.1:2"', tmp_path)
    with pytest.raises(MalformedError, match="not an http"):
        parse('tiles_url = "ftp://mirror"', tmp_path)
