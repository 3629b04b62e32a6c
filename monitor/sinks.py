"""Where alerts go: JSON lines (stdout or a file), a webhook, a command. Each gets the alert JSON of
`monitor.alerts` and either accepts it or raises SinkError; undelivered alerts stay in the state and are
tried again on the next round, so a sink that is down loses nothing.

* stdout / file: one JSON object per line (keys sorted). The file sink appends, fsyncs, and skips ids the
  file already holds, so a restart never writes an alert twice.
* webhook: `POST <url>` with the JSON body (`Content-Type: application/json`, configured headers added);
  any 2xx accepts. Transport errors, 429 and 5xx are retried with exponential backoff (0.5 s, 1 s, 2 s, …,
  at most 30 s apart); another status fails at once. Receivers may deduplicate on `id`.
* command: runs the configured argv with the alert JSON on standard input and `TLOG_ALERT_ID`,
  `TLOG_ALERT_RULE`, `TLOG_ALERT_LOG` in its environment; exit status 0 accepts.
"""

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, TextIO

import httpx
import orjson

from monitor.config import SinkConfig
from monitor.state import State

log = logging.getLogger("monitor.sinks")
MAX_BACKOFF = 30.0


class SinkError(Exception):
    """A sink did not accept an alert."""


class Sink(Protocol):
    name: str

    async def send(self, alert: dict[str, Any]) -> None: ...

    async def close(self) -> None: ...


def alert_line(alert: dict[str, Any]) -> bytes:
    return orjson.dumps(alert, option=orjson.OPT_SORT_KEYS) + b"\n"


class StreamSink:
    def __init__(self, name: str, stream: TextIO) -> None:
        self.name, self._stream = name, stream

    async def send(self, alert: dict[str, Any]) -> None:
        try:
            self._stream.write(alert_line(alert).decode())
            self._stream.flush()
        except OSError as exc:
            raise SinkError(f"{self.name}: {exc}") from None

    async def close(self) -> None:
        pass


class FileSink:
    def __init__(self, name: str, path: Path) -> None:
        self.name, self.path = name, path
        self._written: set[str] | None = None

    def _load_ids(self) -> set[str]:
        ids = set()
        with contextlib.suppress(FileNotFoundError), self.path.open("rb") as handle:
            for line in handle:
                with contextlib.suppress(orjson.JSONDecodeError, AttributeError, TypeError):
                    ids.add(orjson.loads(line).get("id"))
        return ids

    async def send(self, alert: dict[str, Any]) -> None:
        try:
            if self._written is None:
                self._written = self._load_ids()
            if alert["id"] in self._written:
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, alert_line(alert))
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise SinkError(f"{self.name}: cannot write {self.path}: {exc.strerror}") from None
        self._written.add(alert["id"])

    async def close(self) -> None:
        pass


class WebhookSink:
    def __init__(
        self,
        name: str,
        url: str,
        headers: Sequence[tuple[str, str]] = (),
        retries: int = 5,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.name, self.url, self.retries, self._sleep = name, url, retries, sleep
        self._http = httpx.AsyncClient(timeout=timeout, transport=transport, headers=dict(headers))

    async def send(self, alert: dict[str, Any]) -> None:
        body = alert_line(alert)
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                await self._sleep(min(0.5 * 2 ** (attempt - 1), MAX_BACKOFF))
            try:
                response = await self._http.post(self.url, content=body, headers={"Content-Type": "application/json"})
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {exc}"
                continue
            if 200 <= response.status_code < 300:
                return
            last = f"HTTP {response.status_code} {response.text[:200].strip()}"
            if response.status_code != 429 and response.status_code < 500:
                break
        raise SinkError(f"{self.name}: POST {self.url} failed: {last}")

    async def close(self) -> None:
        await self._http.aclose()


class CommandSink:
    def __init__(self, name: str, argv: Sequence[str], timeout: float = 10.0) -> None:
        self.name, self.argv, self.timeout = name, list(argv), timeout

    async def send(self, alert: dict[str, Any]) -> None:
        env = {
            **os.environ,
            "TLOG_ALERT_ID": str(alert["id"]),
            "TLOG_ALERT_RULE": str(alert["rule"]),
            "TLOG_ALERT_LOG": str(alert["log"]),
        }
        try:
            process = await asyncio.create_subprocess_exec(
                *self.argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=env,
            )
        except OSError as exc:
            raise SinkError(f"{self.name}: cannot run {self.argv[0]}: {exc.strerror}") from None
        try:
            _, err = await asyncio.wait_for(process.communicate(alert_line(alert)), self.timeout)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise SinkError(f"{self.name}: {self.argv[0]} did not finish in {self.timeout} s") from None
        if process.returncode != 0:
            reason = err.decode(errors="replace").strip()[:200]
            raise SinkError(f"{self.name}: {self.argv[0]} exited with {process.returncode}: {reason}")

    async def close(self) -> None:
        pass


def build_sinks(
    configs: Sequence[SinkConfig], stdout: TextIO, transport: httpx.AsyncBaseTransport | None = None
) -> list[Sink]:
    sinks: list[Sink] = []
    for config in configs:
        if config.type == "stdout":
            sinks.append(StreamSink(config.name, stdout))
        elif config.type == "file" and config.path is not None:
            sinks.append(FileSink(config.name, config.path))
        elif config.type == "webhook" and config.url is not None:
            sinks.append(
                WebhookSink(config.name, config.url, config.headers, config.retries, config.timeout, transport)
            )
        elif config.type == "command":
            sinks.append(CommandSink(config.name, config.command, config.timeout))
        else:
            raise ValueError(f"sink {config.name}: incomplete {config.type} sink")
    return sinks


async def deliver_pending(state: State, sinks: Sequence[Sink], clock: Callable[[], float]) -> list[str]:
    """Send every alert not yet delivered, to each sink that has not taken it; returns the failures.
    A sink that fails is not tried again this round (alerts keep their order per sink)."""
    failed: dict[str, str] = {}
    by_name = {sink.name: sink for sink in sinks}
    for alert, todo in state.pending(list(by_name)):
        for name in todo:
            if name in failed:
                continue
            try:
                await by_name[name].send(alert)
            except SinkError as exc:
                failed[name] = str(exc)
                log.warning("alert %s not delivered: %s", alert["id"], exc)
                continue
            state.delivered(alert["id"], name, clock())
    return list(failed.values())
