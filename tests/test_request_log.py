"""The log's request log (logserver/app.py: RequestLog): one JSON line per request, carrying the id the response's
x-request-id header gives, written through `logging` (issue 20 made it cheaper, not different)."""

import asyncio
import json
import logging
import re

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from logserver.app import RequestLog


async def hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse("hello", status_code=201 if "made" in request.url.path else 200)


def test_one_json_line_per_request_with_the_id_of_its_header(caplog: pytest.LogCaptureFixture) -> None:
    app = RequestLog(Starlette(routes=[Route("/a", hello), Route("/made%41", hello)]))

    async def scenario() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://log.test") as client:
            return [await client.get("/a"), await client.get("/made%2541"), await client.get("/nothing")]

    with caplog.at_level(logging.INFO, logger="logserver.requests"):
        answers = asyncio.run(scenario())
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "logserver.requests"]
    assert [a.status_code for a in answers] == [200, 201, 404]
    assert [(line["method"], line["path"], line["status"]) for line in lines] == [
        ("GET", "/a", 200),
        ("GET", "/made%41", 201),  # a '%' in the path is written as it is, never taken for a format
        ("GET", "/nothing", 404),
    ]
    for answer, line in zip(answers, lines, strict=True):
        assert re.fullmatch("[0-9a-f]{16}", line["request_id"]) and answer.headers["x-request-id"] == line["request_id"]
        assert isinstance(line["ms"], float) and line["ms"] >= 0
    assert len({line["request_id"] for line in lines}) == 3


def test_nothing_is_built_when_the_request_log_is_off(caplog: pytest.LogCaptureFixture) -> None:
    app = RequestLog(Starlette(routes=[Route("/a", hello)]))

    async def scenario() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://log.test") as client:
            return await client.get("/a")

    with caplog.at_level(logging.WARNING, logger="logserver.requests"):
        answer = asyncio.run(scenario())
    assert answer.status_code == 200 and "x-request-id" in answer.headers
    assert not [r for r in caplog.records if r.name == "logserver.requests"]


def test_lines_go_straight_to_the_servers_batch_when_given(caplog: pytest.LogCaptureFixture) -> None:
    written: list[str] = []
    app = RequestLog(Starlette(routes=[Route("/a", hello)]), lines=written.append)

    async def scenario() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://log.test") as client:
            return [await client.get("/a"), await client.get("/nothing")]

    with caplog.at_level(logging.INFO, logger="logserver.requests"):
        answers = asyncio.run(scenario())
    assert not [r for r in caplog.records if r.name == "logserver.requests"]  # no LogRecord made
    lines = [json.loads(text) for text in written]
    assert [list(line) for line in lines] == [["request_id", "method", "path", "status", "ms"]] * 2  # as logged
    assert [(line["path"], line["status"]) for line in lines] == [("/a", 200), ("/nothing", 404)]
    assert [line["request_id"] for line in lines] == [a.headers["x-request-id"] for a in answers]
