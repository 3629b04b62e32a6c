"""The witness answers each request in one TCP segment, not a header segment and a body segment (each send on
loopback also runs the receiver's TCP input: the second one was a large share of a cosignature's cost). Counted by
the kernel itself: the client socket's TCP_INFO `tcpi_data_segs_in` (Linux), around a real `tlog-witness serve`."""

import socket
import struct
from pathlib import Path

import pytest
from witness_helpers import LOCALHOST, WitnessProcess, tiny_log, write_config, write_key

DATA_SEGS_IN = 152  # offset of tcpi_data_segs_in in struct tcp_info (linux/tcp.h), Linux >= 4.6
LOG = tiny_log()


def data_segments_in(sock: socket.socket) -> int:
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    if len(info) < DATA_SEGS_IN + 4:
        pytest.fail(f"this kernel's tcp_info has {len(info)} bytes, no tcpi_data_segs_in: the test cannot count")
    return int(struct.unpack_from("I", info, DATA_SEGS_IN)[0])


def read_response(sock: socket.socket) -> bytes:
    """One whole HTTP/1.1 response with a Content-Length."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "connection closed before the headers"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1]) for line in head.lower().split(b"\r\n") if line.startswith(b"content-length")
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed before the body"
        body += chunk
    return head + b"\r\n\r\n" + body


def segments_per_answer(port: int, requests: list[bytes]) -> list[tuple[int, bytes]]:
    """For each request, sent one at a time on one keep-alive connection: data segments received, status line."""
    results = []
    with socket.create_connection((LOCALHOST, port), timeout=10) as sock:
        for request in requests:
            before = data_segments_in(sock)
            sock.sendall(request)
            response = read_response(sock)
            results.append((data_segments_in(sock) - before, response.split(b"\r\n", 1)[0]))
    return results


def post(body: bytes) -> bytes:
    return b"POST /add-checkpoint HTTP/1.1\r\nHost: w\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


def test_every_answer_is_one_segment(tmp_path: Path) -> None:
    """A cosignature (200), a refusal (409), a health check and a 404: each response in one data segment."""
    LOG.grow(8)
    data = tmp_path / "w"
    write_key(data, "witness.example.test", b"\x31" * 32)
    config = write_config(tmp_path / "w.toml", "witness.example.test", [(LOG.origin, LOG.vkey)])
    with WitnessProcess(data, config) as witness:
        answers = segments_per_answer(
            witness.port,
            [
                post(LOG.body(0, 4)),
                post(LOG.body(4, 8)),
                post(LOG.body(0, 8)),  # old size 0, the witness knows 8: 409
                b"GET /healthz HTTP/1.1\r\nHost: w\r\n\r\n",
                b"GET /nothing/here HTTP/1.1\r\nHost: w\r\n\r\n",
            ],
        )
    statuses = [status for _, status in answers]
    assert statuses == [
        b"HTTP/1.1 200 OK",
        b"HTTP/1.1 200 OK",
        b"HTTP/1.1 409 Conflict",
        b"HTTP/1.1 200 OK",
        b"HTTP/1.1 404 Not Found",
    ]
    assert [segments for segments, _ in answers] == [1] * len(answers)
