"""Every kind of bad submission gets a 4xx with a JSON body naming the problem, and the tree is unchanged."""

import base64
import time

import httpx
import pytest
from log_harness import issue, post_statements, register_issuer, running_log, seed

from tlogcore.keys import Ed25519Signer
from tlogcore.note import sign_note
from tlogcore.statement import Statement, sign_statement

ISSUER = Ed25519Signer("ministry.example.gov.kh", seed(11))
STRANGER = Ed25519Signer("stranger.example", seed(12))


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory, module_log_dsn: str | None):  # type: ignore[no-untyped-def]
    with (
        running_log(tmp_path_factory.mktemp("bad"), dsn=module_log_dsn) as server,
        httpx.Client(base_url=server.url, timeout=30) as c,
    ):
        register_issuer(c, server, ISSUER)
        origin = c.get("/api/v1/log").json()["origin"]
        assert post_statements(c, [issue(origin, ISSUER, b"\x05" * 32)]).status_code == 200
        yield server, c, origin


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def cases(origin: str) -> list[tuple[str, dict, int, str, str]]:
    """(name, request kwargs, status, error code, words the message must contain)."""
    good = issue(origin, ISSUER, b"\x06" * 32)
    vkey = ISSUER.verifier().vkey
    now = int(time.time())

    def signed(text: str) -> bytes:
        return sign_note(text, [ISSUER])

    non_canonical = signed(
        f"tlog-statement/v1\nlog {origin}\nkind issue\nsigner {vkey}\ntime 0{now}\ndocument {'ab' * 32}\n"
    )
    tampered = good.replace(b"kind issue", b"kind revoke")
    other_log = sign_statement(Statement("other.example/log", "issue", vkey, now, document=b"\x07" * 32), ISSUER)
    future = issue(origin, ISSUER, b"\x08" * 32, when=now + 3600)
    unknown_key = issue(origin, STRANGER, b"\x09" * 32)
    return [
        (
            "wrong content type",
            {"content": b"{}", "headers": {"content-type": "text/plain"}},
            415,
            "unsupported_media_type",
            "application/json",
        ),
        ("not json", {"content": b"{nope", "headers": {"content-type": "application/json"}}, 400, "malformed", "JSON"),
        ("no statements", {"json": {"statements": []}}, 400, "malformed", "at least one"),
        ("not base64", {"json": {"statements": ["***"]}}, 400, "malformed", "base64"),
        ("garbage statement", {"json": {"statements": [b64(b"hello")]}}, 400, "malformed", "signature block"),
        ("truncated statement", {"json": {"statements": [b64(good[:-20])]}}, 400, "malformed", ""),
        ("non-canonical statement", {"json": {"statements": [b64(non_canonical)]}}, 400, "malformed", "canonical"),
        ("bad signature", {"json": {"statements": [b64(tampered)]}}, 422, "bad_signature", "does not verify"),
        ("another log", {"json": {"statements": [b64(other_log)]}}, 422, "wrong_log", "other.example/log"),
        ("time in the future", {"json": {"statements": [b64(future)]}}, 422, "time_in_future", "future"),
        (
            "unknown issuer key",
            {"json": {"statements": [b64(unknown_key)]}},
            403,
            "signer_not_allowed",
            "not registered",
        ),
        ("oversize statement", {"json": {"statements": [b64(good + b"x" * 9000)]}}, 400, "malformed", "8192"),
        ("batch too large", {"json": {"statements": [b64(good)] * 1001}}, 413, "batch_too_large", "1000"),
        (
            "huge body",
            {"content": b"{" + b" " * (5 * 1024 * 1024), "headers": {"content-type": "application/json"}},
            413,
            "too_large",
            "larger than",
        ),
        (
            "one bad in a batch",
            {"json": {"statements": [b64(good), b64(tampered)]}},
            422,
            "bad_signature",
            "statement 1",
        ),
        (
            "one bad in a big batch (checked in worker processes)",
            {
                "json": {
                    "statements": [b64(issue(origin, ISSUER, bytes([i]) * 32)) for i in range(100)][:70]
                    + [b64(tampered)]
                    + [b64(issue(origin, ISSUER, bytes([i]) * 32)) for i in range(100, 129)]
                }
            },
            422,
            "bad_signature",
            "statement 70:",
        ),
    ]


def test_bad_inputs_are_refused_clearly_and_change_nothing(log) -> None:  # type: ignore[no-untyped-def]
    _server, client, origin = log
    before = client.get("/checkpoint").content
    for name, kwargs, status, code, words in cases(origin):
        response = client.post("/api/v1/entries", **kwargs)
        assert response.status_code == status, (name, response.text)
        body = response.json()
        assert body["error"] == code, (name, body)
        assert words in body["message"], (name, body)
    time.sleep(0.3)  # longer than a flush interval: nothing was pooled
    assert client.get("/checkpoint").content == before


def test_bad_reads_are_4xx(log) -> None:  # type: ignore[no-untyped-def]
    _server, client, _origin = log
    for path, status in [
        ("/tile/0/001", 404),
        ("/tile/0/000.p/9", 404),
        ("/tile/0/0001", 404),
        ("/tile/64/000", 404),
        ("/tile/entries/x000/001", 404),
        ("/api/v1/proof/inclusion?index=99", 400),
        ("/api/v1/proof/inclusion?index=01", 400),
        ("/api/v1/proof/inclusion?index=-1", 400),
        ("/api/v1/proof/inclusion", 400),
        ("/api/v1/proof/inclusion?leaf_hash=zz", 400),
        ("/api/v1/proof/inclusion?leaf_hash=" + "00" * 32, 404),
        ("/api/v1/proof/consistency?old=5&new=1", 400),
        ("/api/v1/proof/consistency?old=1&new=999", 400),
        ("/api/v1/bundle/999", 404),
        ("/api/v1/bundle/x", 400),
        ("/api/v1/documents/abc", 400),
        ("/api/v1/nothing", 404),
    ]:
        response = client.get(path)
        assert response.status_code == status, (path, response.text)
        assert response.json()["error"] and response.json()["message"]
    assert client.put("/api/v1/entries").status_code == 405
    assert client.get("/tile/0/000.p/2").status_code == 200


def test_refusals_are_counted_by_reason(log) -> None:  # type: ignore[no-untyped-def]
    _server, client, origin = log
    post_statements(client, [issue(origin, STRANGER, b"\x0a" * 32)])
    assert 'tlog_submissions_refused_total{reason="signer_not_allowed"}' in client.get("/metrics").text
