"""The witness answers each request in one TCP segment, not a header segment and a body segment (each send on
loopback also runs the receiver's TCP input: the second one was a large share of a cosignature's cost). Counted by
the kernel itself: the client socket's TCP_INFO `tcpi_data_segs_in` (Linux), around a real `tlog-witness serve`."""

from pathlib import Path

from tcp_segments import segments_per_answer
from witness_helpers import WitnessProcess, tiny_log, write_config, write_key

LOG = tiny_log()


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
