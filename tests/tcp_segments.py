"""How many TCP data segments each HTTP response took, counted by the kernel: the client socket's TCP_INFO
`tcpi_data_segs_in` (Linux). Used to check that a server answers in one send (witness/onewrite.py)."""

import socket
import struct

import pytest

LOCALHOST = "127.0.0.1"
DATA_SEGS_IN = 152  # offset of tcpi_data_segs_in in struct tcp_info (linux/tcp.h), Linux >= 4.6


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
