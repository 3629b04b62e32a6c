"""The witness server under abuse and faults (issue 18, items 6, 9, 10): half-sent headers are cut off after the
header deadline, connections are capped, a failed database answers 503 JSON with Retry-After (never a traceback),
and an upload the client abandons is one line, not a 500."""

import asyncio
import socket
import time
from pathlib import Path

import httpx

from tests.witness_helpers import WitnessProcess, serve_in_process, tiny_log, write_config
from tlogcore.cosignature import CosignatureV1Signer
from witness.app import create_app
from witness.cli import HEADER_TIMEOUT, MAX_CONNECTIONS
from witness.config import parse_config
from witness.storage import SQLiteStorage

SIGNER = CosignatureV1Signer("witness.limits", bytes([7]) * 32, lambda: 1_700_000_000)


def half_sent(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(b"POST /add-checkpoint HTTP/1.1\r\nHost: w\r\n")  # and never the rest of the headers
    return sock


def closed_by_server(sock: socket.socket) -> bool:
    sock.settimeout(0.2)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except ConnectionError:
        return True


def test_half_sent_headers_are_cut_off_and_connections_capped(tmp_path: Path) -> None:
    log = tiny_log()
    config = write_config(tmp_path / "w.toml", "witness.flood", [(log.origin, log.vkey)])
    with WitnessProcess(tmp_path / "w", config) as witness:
        port = int(witness.url.rsplit(":", 1)[1])
        flood = [half_sent(port) for _ in range(MAX_CONNECTIONS + 20)]
        time.sleep(0.5)
        with httpx.Client(base_url=witness.url, timeout=5) as client:
            assert client.get("/healthz").status_code == 503  # beyond the cap: refused at once, not hung
            started = time.monotonic()
            while time.monotonic() - started < HEADER_TIMEOUT + 5:
                if client.get("/healthz").status_code == 200:
                    break
                time.sleep(0.2)
            served_after = time.monotonic() - started
            assert client.get("/healthz").status_code == 200
        closed = sum(closed_by_server(sock) for sock in flood)
        for sock in flood:
            sock.close()
    assert served_after < HEADER_TIMEOUT + 2
    assert closed == len(flood)  # every half-sent connection was closed by the witness


def test_a_failed_database_answers_503_json_with_retry_after(tmp_path: Path) -> None:
    log = tiny_log()

    async def scenario() -> tuple[httpx.Response, httpx.Response]:
        config = parse_config(f'name = "{SIGNER.name}"\n[[log]]\norigin = "{log.origin}"\nvkey = "{log.vkey}"\n')
        storage = await SQLiteStorage.open(str(tmp_path / "witness.sqlite"))
        try:
            storage._writer.execute("PRAGMA query_only = 1")  # SQLite now fails every write, as on a full disk
            app = create_app(config, storage, SIGNER, time.time)
            async with serve_in_process(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
                refused = await client.post("/add-checkpoint", content=log.body(0, 3))
                storage._writer.execute("PRAGMA query_only = 0")
                accepted = await client.post("/add-checkpoint", content=log.body(0, 3))
                return refused, accepted
        finally:
            await storage.close()

    refused, accepted = asyncio.run(scenario())
    assert refused.status_code == 503, refused.text
    assert refused.headers["retry-after"] == "5"
    assert refused.json()["error"] == "storage_unavailable"
    assert "Traceback" not in refused.text
    assert accepted.status_code == 200  # the same request, once the database works again


def test_an_abandoned_upload_is_not_a_server_error(tmp_path: Path) -> None:
    log = tiny_log()
    config = write_config(tmp_path / "w.toml", "witness.abandon", [(log.origin, log.vkey)])
    with WitnessProcess(tmp_path / "w", config) as witness:
        port = int(witness.url.rsplit(":", 1)[1])
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(b"POST /add-checkpoint HTTP/1.1\r\nHost: w\r\nContent-Length: 1000\r\n\r\nold 0\n")
        time.sleep(0.3)
        sock.close()  # half-way
        time.sleep(0.5)
        assert httpx.get(witness.url + "/healthz").status_code == 200
    errors = "".join(p.read_text() for p in (tmp_path).glob("w-*.err"))
    assert "Traceback" not in errors and "500" not in errors, errors[-2000:]
