"""The request log's lines written in batches (logserver/requestlines.py): one write per batch, not per request;
every line still written, in order, within a fraction of a second, and when the server stops (one process or a
forked worker, which ends without logging's exit hook). A real `tlog-server serve` on 127.0.0.1 for the last."""

import asyncio
import io
import json
import logging
import signal
import time
from pathlib import Path

import httpx
import pytest
from log_harness import LogProcess, running_log

from logserver.requestlines import REQUESTS, BatchedLines, batch_request_lines, flush_every
from logserver.requestlines import request_lines as server_lines


class CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def record(message: str) -> logging.LogRecord:
    return logging.LogRecord(REQUESTS, logging.INFO, __file__, 0, message, (), None)


def test_lines_wait_and_go_out_in_one_write_in_order() -> None:
    stream = CountingStream()
    handler = BatchedLines(stream, max_lines=100)
    handler.setFormatter(logging.Formatter("%(message)s"))
    for i in range(3):
        handler.handle(record(f'{{"n":{i},"path":"/a%41"}}'))  # a '%' is written as it is
    assert stream.writes == 0 and stream.getvalue() == ""
    handler.flush()
    assert stream.writes == 1
    assert stream.getvalue() == '{"n":0,"path":"/a%41"}\n{"n":1,"path":"/a%41"}\n{"n":2,"path":"/a%41"}\n'
    handler.flush()  # nothing waiting: nothing written
    assert stream.writes == 1


def test_a_full_batch_is_written_at_once_and_close_writes_the_rest() -> None:
    stream = CountingStream()
    handler = BatchedLines(stream, max_lines=4)
    for i in range(10):
        handler.handle(record(str(i)))
    assert stream.writes == 2 and stream.getvalue().splitlines() == [str(i) for i in range(8)]
    handler.close()
    assert stream.writes == 3 and stream.getvalue().splitlines() == [str(i) for i in range(10)]


def test_a_closed_stream_loses_the_lines_not_the_server() -> None:
    stream = CountingStream()
    handler = BatchedLines(stream)
    handler.handle(record("lost"))
    stream.close()
    handler.flush()  # no exception: request lines are never worth a failed request
    handler.handle(record("next"))
    handler.stream = CountingStream()  # stderr back (say): the lost line was dropped, not kept to grow the batch
    handler.flush()
    assert handler.stream.getvalue() == "next\n"


def test_the_serving_task_writes_waiting_lines_without_another_request() -> None:
    stream = CountingStream()
    requests = logging.getLogger(REQUESTS)
    saved = requests.handlers[:], requests.propagate, requests.level  # restored below: the logger is global
    requests.setLevel(logging.INFO)
    try:
        assert server_lines() is None  # no batch: RequestLog goes through logging
        handler = batch_request_lines(stream)
        assert requests.propagate is False  # not also written, unbatched, by the root logger's handler
        assert server_lines() == handler.add  # RequestLog's lines go straight to the batch

        async def scenario() -> tuple[str, str]:
            task = asyncio.create_task(flush_every(0.05))
            requests.info("one request")
            handler.add("another, straight")
            before = stream.getvalue()
            await asyncio.sleep(0.3)
            task.cancel()
            return before, stream.getvalue()

        before, after = asyncio.run(scenario())
        assert before == "" and after == "one request\nanother, straight\n"
    finally:
        requests.handlers[:], requests.propagate, requests.level = saved


def request_lines(server: LogProcess) -> list[dict[str, object]]:
    lines = [line for line in server.output().splitlines() if line.startswith('{"request_id"')]
    return [json.loads(line) for line in lines]


def wait_lines(server: LogProcess, ids: list[str], timeout: float = 10.0) -> list[str]:
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    while time.monotonic() < deadline:
        seen = [str(line["request_id"]) for line in request_lines(server) if line["request_id"] in ids]
        if len(seen) >= len(ids):
            break
        time.sleep(0.05)
    return seen


def test_a_real_server_writes_every_request_line_soon_in_order(tmp_path: Path) -> None:
    with running_log(tmp_path) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        ids = [client.get(path).headers["x-request-id"] for path in ("/healthz", "/api/v1/log", "/nothing") * 5]
        assert wait_lines(server, ids) == ids  # each once, in the order served, with no further request
        lines = {line["request_id"]: line for line in request_lines(server)}
        assert [lines[i]["status"] for i in ids[:3]] == [200, 200, 404]


LATE = "[server]\nrequest_log_flush_ms = 60000\n"  # no timed write during the test: only the stop writes


@pytest.mark.parametrize("config_text", [LATE, LATE + "workers = 2\n"], ids=["one process", "two workers"])
def test_the_lines_still_waiting_are_written_when_the_server_stops(tmp_path: Path, config_text: str) -> None:
    with running_log(tmp_path, config_text=config_text) as server:
        ids = []
        for _ in range(20):  # fresh connections: with two workers, both serve some
            with httpx.Client(base_url=server.url, timeout=30) as client:
                ids.append(client.get("/api/v1/log").headers["x-request-id"])
        time.sleep(0.5)
        assert not [line for line in request_lines(server) if line["request_id"] in ids]  # waiting, in memory
        server.stop()
        # uvicorn raises the SIGTERM again once it has shut down: no exit hook of Python's runs after that
        assert server.process is not None and server.process.returncode in (0, -signal.SIGTERM)
        written = [i for i in (str(line["request_id"]) for line in request_lines(server)) if i in ids]
        assert sorted(written) == sorted(ids)  # each once (two processes' batches may interleave)


def test_zero_writes_each_line_at_once(tmp_path: Path) -> None:
    with running_log(tmp_path, config_text="[server]\nrequest_log_flush_ms = 0\n") as server:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            ids = [client.get("/api/v1/log").headers["x-request-id"] for _ in range(3)]
        assert wait_lines(server, ids) == ids
