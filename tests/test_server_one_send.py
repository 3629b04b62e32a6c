"""The log server answers each request in one TCP segment, as the witness does (witness/onewrite.py): uvicorn
writes the status line and headers, then the body, and on loopback each send also runs the receiver's TCP input,
so the second send was a share of every small read's cost (issue 20). Counted by the kernel (tests/tcp_segments.py)
around a real `tlog-server serve`: a health check, the log's description, the checkpoint, an inclusion proof by
leaf hash, a 404 and a 400 with its JSON body."""

from pathlib import Path

import httpx
from log_harness import issue, post_statements, register_issuer, running_log, seed
from tcp_segments import segments_per_answer

from tlogcore.keys import Ed25519Signer
from tlogcore.merkle import leaf_hash

ISSUER = Ed25519Signer("issuer.onesend.example", seed(83))


def get(path: str) -> bytes:
    return b"GET %s HTTP/1.1\r\nHost: log\r\n\r\n" % path.encode()


def test_every_answer_is_one_segment(tmp_path: Path) -> None:
    with running_log(tmp_path) as server:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            register_issuer(client, server, ISSUER)
            origin = client.get("/api/v1/log").json()["origin"]
            statement = issue(origin, ISSUER, b"\x07" * 32)
            assert post_statements(client, [statement]).status_code == 200
        bad = b'{"statements": 7}'
        answers = segments_per_answer(
            server.port,
            [
                get("/healthz"),
                get("/api/v1/log"),
                get("/checkpoint"),
                get(f"/api/v1/proof/inclusion?leaf_hash={leaf_hash(statement).hex()}"),
                get("/nothing/here"),
                b"POST /api/v1/entries HTTP/1.1\r\nHost: log\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(bad), bad),
            ],
        )
    statuses = [status for _, status in answers]
    assert statuses == [b"HTTP/1.1 200 OK"] * 4 + [b"HTTP/1.1 404 Not Found", b"HTTP/1.1 400 Bad Request"]
    assert [segments for segments, _ in answers] == [1] * len(answers)
