"""Limits and abuse against a real tlog-server (RELIABILITY.md "Limits and abuse"): rate limits per client address
and per issuer key (429 + Retry-After + a JSON error naming the limit), slow clients cut off, a connection cap,
and oversize or chunked bodies refused with 413 with nothing stored."""

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from logserver.ratelimit import RateLimiter
from tests.log_harness import LogProcess, issue, post_statements, register_issuer, running_log, seed
from tests.witness_helpers import WitnessProcess, tiny_log, write_config
from tlogcore.keys import Ed25519Signer
from witness.app import MAX_BODY_SIZE

MAX_BODY = 64 * 1024


def client_from(server: LogProcess, address: str) -> httpx.Client:
    """A client whose connections come from `address` (any 127.x.y.z is this machine's loopback)."""
    return httpx.Client(base_url=server.url, transport=httpx.HTTPTransport(local_address=address), timeout=10)


def size_of(client: httpx.Client) -> int:
    return int(client.get("/api/v1/log").json()["size"])


# --- the pure limiter -------------------------------------------------------------------------------------------


def test_token_bucket_refills_with_the_clock_and_tells_how_long_to_wait() -> None:
    now = [1000.0]
    limiter = RateLimiter(rate=2.0, burst=3, clock=lambda: now[0])
    assert [limiter.take("a") for _ in range(3)] == [None, None, None]
    refusal = limiter.take("a")
    assert refusal is not None and refusal.key == "a" and refusal.retry_after == 1 and not refusal.impossible
    assert limiter.take("b") is None  # another key has its own bucket
    now[0] += 0.5  # one token back at 2/s
    assert limiter.take("a") is None
    assert limiter.take("a") is not None
    now[0] -= 100  # a clock stepping back neither refills nor drains
    assert limiter.take("a") is not None
    refusal = limiter.take("a", cost=4)
    assert refusal is not None and refusal.impossible  # more than the burst: waiting cannot help


def test_take_many_charges_all_or_nothing() -> None:
    limiter = RateLimiter(rate=1.0, burst=2, clock=lambda: 0.0)
    assert limiter.take("b", 2) is None
    refusal = limiter.take_many({"a": 1, "b": 1})
    assert refusal is not None and refusal.key == "b"
    assert limiter.take("a", 2) is None  # "a" was not charged for the refused batch


def test_memory_is_bounded_by_forgetting_the_least_recently_seen() -> None:
    limiter = RateLimiter(rate=1.0, burst=1, clock=lambda: 0.0, max_keys=100)
    assert limiter.take("busy") is None
    for i in range(10_000):
        limiter.take(f"10.0.{i // 256}.{i % 256}")
        if i % 50 == 0:
            assert limiter.take("busy") is not None  # still remembered (and still empty) while it keeps coming
    assert len(limiter) == 100


# --- against a real server --------------------------------------------------------------------------------------

CONFIG = f"""
[limits]
max_body_bytes = {MAX_BODY}
client_requests_per_second = 2.0
client_burst = 5
issuer_statements_per_second = 1.0
issuer_burst = 3
header_timeout_seconds = 1.5
body_timeout_seconds = 1.5
max_connections = 8
"""


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LogProcess]:
    with running_log(tmp_path_factory.mktemp("limits"), config_text=CONFIG) as server:
        yield server


def test_a_burst_from_one_client_gets_429_while_another_is_served(limited: LogProcess) -> None:
    with client_from(limited, "127.0.0.2") as greedy, client_from(limited, "127.0.0.3") as other:
        statuses = [greedy.get("/checkpoint").status_code for _ in range(8)]
        assert statuses[:5] == [200] * 5 and statuses[5:] == [429] * 3
        refused = greedy.get("/api/v1/log")
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) >= 1
        body = refused.json()
        assert body["error"] == "client_rate_limited" and "client_requests_per_second" in body["message"]
        assert "127.0.0.2" in body["message"]
        assert other.get("/checkpoint").status_code == 200  # another address has its own budget
        assert greedy.get("/healthz").status_code == 200  # health checks are never limited
        time.sleep(int(refused.headers["retry-after"]))
        assert greedy.get("/checkpoint").status_code == 200  # and the greedy one is served again after the wait


def test_per_issuer_limit(tmp_path: Path) -> None:
    config = "[limits]\nissuer_statements_per_second = 1.0\nissuer_burst = 3\n"
    with running_log(tmp_path, config_text=config) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        hungry, patient = Ed25519Signer("hungry.example", seed(1)), Ed25519Signer("patient.example", seed(2))
        register_issuer(client, server, hungry)
        register_issuer(client, server, patient)
        origin = client.get("/api/v1/log").json()["origin"]
        docs = iter(range(100))

        def statements(issuer: Ed25519Signer, count: int) -> list[bytes]:
            return [issue(origin, issuer, next(docs).to_bytes(32, "big")) for _ in range(count)]

        assert post_statements(client, statements(hungry, 3)).status_code == 200
        before = size_of(client)
        refused = post_statements(client, statements(hungry, 1))
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
        assert refused.json()["error"] == "issuer_rate_limited"
        assert hungry.verifier().vkey in refused.json()["message"]
        too_big = post_statements(client, statements(hungry, 4))  # can never fit the burst
        assert too_big.status_code == 413 and "split the batch" in too_big.json()["message"]  # waiting never helps
        assert too_big.json()["error"] == "issuer_burst_exceeded" and "retry-after" not in too_big.headers
        mixed = post_statements(client, statements(patient, 1) + statements(hungry, 1))
        assert mixed.status_code == 429  # all or nothing: the patient issuer's statement is not stored either
        assert size_of(client) == before
        assert post_statements(client, statements(patient, 3)).status_code == 200  # another issuer is served
        time.sleep(int(refused.headers["retry-after"]))
        assert post_statements(client, statements(hungry, 1)).status_code == 200
        assert size_of(client) == before + 4


def connect(server: LogProcess) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    return sock


def closed_by_server(sock: socket.socket, within: float, trickle: bytes = b"") -> float:
    """Seconds until the server closed the connection, trickling one byte of `trickle` every 0.3 s meanwhile."""
    started = time.monotonic()
    sock.settimeout(0.3)
    position = 0
    while time.monotonic() - started < within:
        try:
            if sock.recv(4096) == b"":
                return time.monotonic() - started
        except TimeoutError:
            pass
        except ConnectionResetError:
            return time.monotonic() - started
        if position < len(trickle):
            try:
                sock.sendall(trickle[position : position + 1])
            except (BrokenPipeError, ConnectionResetError):
                return time.monotonic() - started
            position += 1
    raise AssertionError(f"the server kept a slow connection open for {within} s")


def test_slowloris_clients_are_cut_off_while_normal_clients_are_served(limited: LogProcess) -> None:
    silent = connect(limited)  # connects and sends nothing
    header = b"GET /checkpoint HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"a" * 200 + b"\r\n\r\n"
    with client_from(limited, "127.0.0.4") as normal:
        assert normal.get("/checkpoint").status_code == 200  # served while the slow client hangs on
        assert closed_by_server(silent, within=6) < 4
        trickling = connect(limited)  # sends a header byte every 0.3 s: never completes in time
        assert normal.get("/checkpoint").status_code == 200
        assert closed_by_server(trickling, within=6, trickle=header) < 4
        assert normal.get("/checkpoint").status_code == 200
    silent.close()
    trickling.close()


def test_the_header_deadline_moves_with_each_request_on_a_kept_connection(limited: LogProcess) -> None:
    """The deadline is a time that each request moves, checked by one timer per connection (witness/headerdeadline.py):
    requests on one connection for twice the header timeout are all answered, and the connection is closed once it
    has been idle for the timeout after its last answer, not earlier and not never."""
    sock = connect(limited)
    sock.settimeout(5)
    opened = time.monotonic()
    answered = 0
    while time.monotonic() - opened < 3.2:  # header_timeout_seconds = 1.5: the first deadline passes long before
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = b""
        while not (b"\r\n\r\n" in answer and answer.endswith(b"}")):
            chunk = sock.recv(4096)
            assert chunk, f"the server closed a busy connection after {time.monotonic() - opened:.1f} s"
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 200")
        answered += 1
        time.sleep(0.4)
    idle_for = closed_by_server(sock, within=6) + 0.4
    sock.close()
    assert answered >= 6
    assert 1.2 < idle_for < 3.0, f"closed {idle_for:.1f} s after the last answer; the header timeout is 1.5 s"


def test_a_body_trickled_too_slowly_gets_408(limited: LogProcess) -> None:
    sock = connect(limited)
    head = b"POST /api/v1/entries HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n"
    sock.sendall(head + b"\r\n")
    started = time.monotonic()
    answer = b""
    sock.settimeout(0.3)
    while time.monotonic() - started < 6 and b"\r\n\r\n" not in answer:
        try:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
        except TimeoutError:
            sock.sendall(b" ")
    sock.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert time.monotonic() - started < 4


def test_connections_beyond_the_cap_get_503_until_idle_ones_are_cut(tmp_path: Path) -> None:
    config = "[limits]\nmax_connections = 4\nheader_timeout_seconds = 1.0\n"
    with running_log(tmp_path, config_text=config) as server:
        idle = [connect(server) for _ in range(4)]
        time.sleep(0.2)
        with httpx.Client(base_url=server.url, timeout=10) as client:
            crowded = client.get("/checkpoint")
            assert crowded.status_code == 503
            time.sleep(1.5)  # the idle connections passed their header deadline and were closed
            assert client.get("/checkpoint").status_code == 200
        for sock in idle:
            sock.close()


def chunked(total: int, piece: int = 8192) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        yield b"x" * min(piece, total - sent)
        sent += piece


def test_oversize_and_chunked_bodies_get_413_and_nothing_is_stored(limited: LogProcess) -> None:
    with client_from(limited, "127.0.0.5") as client:
        before = size_of(client)
        declared = client.post(
            "/api/v1/entries", content=b"x" * (MAX_BODY + 1), headers={"Content-Type": "application/json"}
        )
        assert declared.status_code == 413 and declared.json()["error"] == "too_large"
    with client_from(limited, "127.0.0.6") as client:
        streamed = client.post(
            "/api/v1/entries", content=chunked(4 * MAX_BODY), headers={"Content-Type": "application/json"}
        )
        assert "content-length" not in streamed.request.headers  # really chunked
        assert streamed.status_code == 413 and str(MAX_BODY) in streamed.json()["message"]
    with client_from(limited, "127.0.0.7") as client:
        assert size_of(client) == before


def test_bodies_sent_to_read_routes_are_never_buffered(limited: LogProcess) -> None:
    """GET routes do not read bodies: a huge chunked body to any of them is answered without a 500."""
    routes = ["/checkpoint", "/tile/0/000", "/api/v1/log", "/api/v1/issuers", "/api/v1/bundle/0", "/metrics"]
    for number, path in enumerate(routes):
        with client_from(limited, f"127.0.1.{number + 1}") as client:
            response = client.request("POST", path, content=chunked(8 * MAX_BODY))
            assert response.status_code in (404, 405), (path, response.status_code)
            assert response.json()["error"] in ("method_not_allowed", "not_found")
    with client_from(limited, "127.0.1.100") as client:
        assert client.get("/healthz").status_code == 200


def test_the_witness_refuses_oversize_and_chunked_bodies(tmp_path: Path) -> None:
    log_tree = tiny_log()
    config = write_config(tmp_path / "w.toml", "witness.example", [(log_tree.origin, log_tree.vkey)])
    with WitnessProcess(tmp_path / "w", config) as witness, httpx.Client(base_url=witness.url, timeout=10) as client:
        declared = client.post("/add-checkpoint", content=b"x" * (MAX_BODY_SIZE + 1))
        streamed = client.post("/add-checkpoint", content=chunked(4 * MAX_BODY_SIZE))
        assert declared.status_code == 413 and streamed.status_code == 413
        assert "content-length" not in streamed.request.headers
        log_tree.grow(2)
        assert client.post("/add-checkpoint", content=log_tree.body(0, 2)).status_code == 200  # still serving


def test_the_trusted_proxy_header_names_the_client_only_when_configured(limited: LogProcess, tmp_path: Path) -> None:
    spoofed = [{"X-Forwarded-For": f"203.0.113.{i}"} for i in range(10)]
    # Header not trusted: one address, one budget. From 127.0.0.1 too, which uvicorn's own default trusted: every
    # client behind a proxy on the same machine comes from there, and one could name itself anew per request.
    for address in ("127.0.2.1", "127.0.0.1"):
        with client_from(limited, address) as client:
            statuses = [client.get("/checkpoint", headers=h).status_code for h in spoofed]
            assert statuses.count(429) >= 4, address
            assert address in client.get("/checkpoint", headers=spoofed[0]).json()["message"]
    config = '[limits]\nclient_requests_per_second = 1.0\nclient_burst = 2\ntrusted_proxy_header = "X-Forwarded-For"\n'
    with running_log(tmp_path, config_text=config) as proxied, httpx.Client(base_url=proxied.url) as client:
        through_proxy = {"X-Forwarded-For": "198.51.100.7, 192.0.2.1"}  # the proxy appended what it saw last
        statuses = [client.get("/checkpoint", headers=through_proxy).status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
        assert "192.0.2.1" in client.get("/checkpoint", headers=through_proxy).json()["message"]
        assert client.get("/checkpoint", headers={"X-Forwarded-For": "192.0.2.2"}).status_code == 200
