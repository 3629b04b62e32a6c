"""`tlog-monitor`'s commands (started through cli.py): follow logs and alert. With cli.py, the only monitor module
that reads the config, handles signals, and starts worker processes.

    tlog-monitor run --config monitor.toml [--start-at-end]      the daemon (SIGHUP reloads the watch rules)
    tlog-monitor audit-once --config monitor.toml                 one round per log, then exit
    tlog-monitor test-alert --config monitor.toml                 send a test alert to every sink
    tlog-monitor report --config monitor.toml [--json]            issuers, counts, key history, last checkpoints
    tlog-monitor mark-good --config monitor.toml --log ORIGIN (--index N | --leaf-hash HEX) [--note TEXT]

Exit codes: 0 ok; 1 a usage or setup error (one line on stderr); for audit-once, 2 when a log could not be
audited (unreachable, quorum not met) and 3 when new alerts were raised.
"""

import asyncio
import contextlib
import functools
import logging
import signal
import sys
import time
import tomllib
from collections.abc import Coroutine
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

import click
import orjson
import uvloop

from logserver.client import LogClient
from monitor import alerts as A
from monitor.config import LogConfig, MonitorConfig, config_from_toml
from monitor.expected import ExpectedError, Watchlist
from monitor.fetch import Unavailable
from monitor.follower import Follower, follow
from monitor.logcontext import Misbehaviour, NotVerified, Shared
from monitor.mirror import mirror_name, mirror_source
from monitor.modes import TREE
from monitor.processes import process_pool, start_check_worker
from monitor.progress import Progress
from monitor.report import render_text, report
from monitor.sinks import Sink, SinkError, build_sinks, deliver_pending
from monitor.state import State, StateError
from monitor.statusfile import indexed_size
from monitor.statusworker import start_status_process
from monitor.transport import RawTiles, StreamTransport
from tlogcore.encoding import parse_hash_hex
from tlogcore.errors import TlogError
from tlogcore.gcpause import freeze_start_up
from witness.client import WitnessClient

log = logging.getLogger("monitor")
MAX_CONFIG_SIZE = 1024 * 1024
EXIT_UNAUDITED, EXIT_ALERTS = 2, 3


class UsageError(click.ClickException):
    """One readable line and exit code 1."""


def _read_text(path: Path) -> str:
    with path.open("rb") as handle:
        data = handle.read(MAX_CONFIG_SIZE + 1)
    if len(data) > MAX_CONFIG_SIZE:
        raise UsageError(f"{path} is larger than {MAX_CONFIG_SIZE} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not UTF-8") from None


def load_config(path: Path) -> MonitorConfig:
    try:
        document = tomllib.loads(_read_text(path))
        return config_from_toml(document, path.resolve().parent, _read_text)
    except OSError as exc:
        raise UsageError(f"cannot read config {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"config {path}: not valid TOML: {exc}") from None
    except RecursionError:  # fuzzing: tomllib recurses once per nested [ or {
        raise UsageError(f"config {path}: not valid TOML: nested too deeply") from None
    except TlogError as exc:
        raise UsageError(f"config {path}: {exc}") from None


def open_state(config: MonitorConfig) -> State:
    try:
        return State.open(config.state)
    except StateError as exc:
        raise UsageError(str(exc)) from None


def load_watchlist(config: MonitorConfig) -> Watchlist:
    try:
        return Watchlist.load(config.watch)
    except ExpectedError as exc:
        raise UsageError(str(exc)) from None


def setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)


def run_async(coroutine: Coroutine[Any, Any, int]) -> int:
    """On uvloop, as the log server (logserver/cli.py): a catch-up makes two GETs per 256 entries, and the pure-Python
    loop's callbacks, futures and stream reads were a visible part of the monitor's own CPU per tile."""
    try:
        return uvloop.run(coroutine)
    except StateError as exc:
        raise UsageError(str(exc)) from None


def describe_watch(config: MonitorConfig, watchlist: Watchlist) -> list[str]:
    """What is watched, one line each (printed at start and by test-alert)."""
    lines = [
        f"log {lc.origin} at {lc.url}; tiles from {mirror_name(lc.tiles_url, lc.tiles_dir) or 'the log'}; "
        f"witnesses checked for split views: {', '.join(sorted(lc.witness_urls)) or 'none'}"
        for lc in config.logs
    ]
    for rule in config.watch:
        if rule.registry:
            what = "every issuer key added or retired" + (", every revocation" if rule.revocations else "")
        else:
            keys = sorted(rule.issuer_names) + [k.split("+", 1)[0] + " (by key)" for k in sorted(rule.issuer_keys)]
            expected = watchlist.expected.get(rule.name)
            known = "no expected list: every use" if expected is None else f"{len(expected):,} expected documents"
            what = f"statements by {', '.join(keys)}; {known}" + (", every revocation" if rule.revocations else "")
        lines.append(f"watch rule {rule.name}: {what}")
    lines.append(f"sinks: {', '.join(f'{s.name} ({s.type})' for s in config.sinks)}")
    return lines


def tile_transport(config: MonitorConfig) -> StreamTransport:
    """One log's HTTP transport, keeping as many idle connections as GETs may be in flight (+1: the checkpoint's).
    With fewer, every burst of concurrent tile GETs closed the extra connections and opened new ones: a TCP setup
    on both sides for about one GET in three (the profile of `audit-once` in docs/performance.md, "The monitor")."""
    return StreamTransport(config.timeout, max_idle=config.max_concurrent_requests + 1)


class Runtime:
    """The collaborators of one `run` or `audit-once`: state, sinks, clients, a worker pool."""

    def __init__(self, config: MonitorConfig, start_at_end: bool, progress: bool) -> None:
        self.config = config
        self.watchlist = load_watchlist(config)
        self.state = open_state(config)
        self.sinks: list[Sink] = build_sinks(config.sinks, sys.stdout)
        self.executor: Executor | None = None
        if config.workers > 1:  # forked from a clean, preloaded server process: processes.py
            self.executor = process_pool(config.workers, start_check_worker)
        self.status_executor: Executor | None = None
        if config.workers > 1 and config.verify != TREE:  # the status index beside the main process: statusworker.py
            self.status_executor = process_pool(1, start_status_process)
        self._deliver_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        bar = Progress(sys.stderr, sys.stderr.isatty(), time.monotonic)
        self.shared = Shared(
            config,
            self.state,
            self.watchlist,
            time.time,
            self.executor,
            bar.update if progress else None,
            start_at_end,
            self.notify,
            self.status_executor,
        )
        self._mirror_clients: list[LogClient] = []  # https:// tile mirrors' clients, closed with the rest
        self.followers = [self._follower(lc, tile_transport(config)) for lc in config.logs]
        freeze_start_up()  # what start-up made stays out of the collector's walks (tlogcore/gcpause.py)

    def _follower(self, lc: LogConfig, transport: StreamTransport) -> Follower:
        """One log's follower; its tiles come from the log's mirror if one is configured (mirror.py), else from the
        log, straight through the transport (closed with the client)."""
        witnesses = {name: WitnessClient(url, self.config.timeout) for name, url in sorted(lc.witness_urls.items())}
        client = LogClient(lc.url, self.config.timeout, transport)
        tiles, mirror_client = mirror_source(lc.tiles_url, lc.tiles_dir, transport, self.config.timeout)
        if mirror_client is not None:
            self._mirror_clients.append(mirror_client)
        return Follower(lc, self.shared, client, witnesses, tiles or RawTiles.for_url(transport, lc.url))

    def notify(self) -> None:
        """New alerts are in the state: wake the delivery task."""
        self._wake.set()

    async def deliver(self) -> None:
        async with self._deliver_lock:
            await deliver_pending(self.state, self.sinks, time.time)

    async def deliver_forever(self) -> None:
        """Send alerts as they are committed (and retry failed sinks every few seconds), apart from the
        followers, so a slow or dead sink never holds up auditing."""
        while True:
            # asyncio.timeout, not wait_for: Python 3.11's wait_for drops a cancellation (SIGTERM) that lands as the
            # event is set, and the loop would run on for ever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5.0):
                    await self._wake.wait()
            self._wake.clear()
            await self.deliver()

    async def close(self) -> None:
        for mirror_client in self._mirror_clients:
            await mirror_client.close()
        for follower in self.followers:
            await follower.client.close()
            for witness in follower.witnesses.values():
                await witness.aclose()
        for sink in self.sinks:
            await sink.close()
        if self.executor is not None:
            self.executor.shutdown(cancel_futures=True)
        if self.status_executor is not None:
            self.status_executor.shutdown(cancel_futures=True)
        self.state.close()


@click.group()
def main() -> None:
    """The monitor: follows transparency logs through tiles, audits every entry, and alerts."""


CONFIG = click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="The monitor's TOML config (see monitor.example.toml).",
)


@main.command()
@CONFIG
@click.option("--start-at-end", is_flag=True, help="On first contact with a log, skip its history.")
def run(config_path: Path, start_at_end: bool) -> None:
    """Follow every configured log until stopped (SIGTERM, Ctrl-C). SIGHUP reloads the watch rules."""
    config = load_config(config_path)
    setup_logging()
    run_async(_run(config, config_path, start_at_end))


async def _run(config: MonitorConfig, config_path: Path, start_at_end: bool) -> int:
    runtime = Runtime(config, start_at_end, progress=True)
    for line in describe_watch(config, runtime.watchlist):
        log.info("%s", line)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def reload() -> None:
        try:
            fresh = load_config(config_path)
            runtime.watchlist.replace(fresh.watch)
        except (click.ClickException, ExpectedError) as exc:
            message = exc.message if isinstance(exc, click.ClickException) else str(exc)
            log.error("reload failed, the previous watch rules stay: %s", message)
            return
        log.info("reloaded %d watch rules from %s", len(fresh.watch), config_path)

    loop.add_signal_handler(signal.SIGHUP, reload)
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    runtime.notify()  # deliver at once what a previous run committed but did not send
    tasks = [asyncio.create_task(follow(f, runtime.notify)) for f in runtime.followers]
    tasks.append(asyncio.create_task(runtime.deliver_forever()))
    stopper = asyncio.create_task(stop.wait())
    try:
        done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task is not stopper:
                task.result()  # a follower only ends on a fatal error: raise it
    finally:
        for task in [*tasks, stopper]:
            task.cancel()
        await asyncio.gather(*tasks, stopper, return_exceptions=True)
        await runtime.close()
    log.info("stopped")
    return 0


@main.command("audit-once")
@CONFIG
@click.option("--start-at-end", is_flag=True, help="On first contact with a log, skip its history.")
def audit_once(config_path: Path, start_at_end: bool) -> None:
    """Audit every log up to its current checkpoint, send the alerts, exit (2: a log not audited, 3: alerts)."""
    config = load_config(config_path)
    setup_logging()
    sys.exit(run_async(_audit_once(config, start_at_end)))


async def _audit_once(config: MonitorConfig, start_at_end: bool) -> int:
    runtime = Runtime(config, start_at_end, progress=True)
    try:
        before = {a["id"] for a in runtime.state.alerts()}
        unaudited = False
        for follower in runtime.followers:
            try:
                await follower.poll()
            except (Unavailable, NotVerified) as exc:
                log.error("%s: not audited: %s", follower.origin, exc)
                unaudited = True
            except Misbehaviour as exc:
                log.error("%s: stopped on misbehaviour: %s", follower.origin, exc)
        await runtime.deliver()
        new = [a for a in runtime.state.alerts() if a["id"] not in before]
        for follower in runtime.followers:
            row = runtime.state.log(follower.origin)
            if row is None or row.verified is None:  # never "size 0": nothing was verified
                log.info("%s: no checkpoint verified yet", follower.origin)
            else:
                log.info("%s: verified size %d", follower.origin, row.verified.size)
        log.info("%d new alerts", len(new))
    finally:
        await runtime.close()
    if new:
        return EXIT_ALERTS
    return EXIT_UNAUDITED if unaudited else 0


@main.command("test-alert")
@CONFIG
def test_alert(config_path: Path) -> None:
    """Send one test alert to every sink, and say what is watched."""
    config = load_config(config_path)
    watchlist = load_watchlist(config)
    lines = describe_watch(config, watchlist)
    for line in lines:
        click.echo(line, err=True)

    async def send() -> int:
        now = int(time.time())
        alert = A.Alert(
            A.RULE_TEST,
            A.TEST,
            config.logs[0].origin,
            f"test {time.time_ns()}",
            "test alert from tlog-monitor: if you read this, this sink works",
            now,
            {"watching": lines},
        )
        failed = 0
        for sink in build_sinks(config.sinks, sys.stdout):
            try:
                await sink.send(alert.to_json())
                click.echo(f"sink {sink.name}: delivered", err=True)
            except SinkError as exc:
                click.echo(f"sink {sink.name}: FAILED: {exc}", err=True)
                failed += 1
            finally:
                await sink.close()
        return failed

    if asyncio.run(send()):
        raise UsageError("the test alert was not delivered to every sink")


@main.command("report")
@CONFIG
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--html", "html_out", type=click.Path(dir_okay=False, path_type=Path), help="Write a publishable page.")
def report_command(config_path: Path, as_json: bool, html_out: Path | None) -> None:
    """Per log: last verified checkpoint, issuer keys and their history, counts, revocations, alerts.

    Example: tlog-monitor report --config monitor.toml --html report.html"""
    from monitor.htmlreport import LogPage, render_html  # here: audits need neither (their start, performance.md)

    config = load_config(config_path)
    state = open_state(config)
    try:
        indexed = None if config.verify == TREE else functools.partial(indexed_size, config.state)
        data = report(state, [lc.origin for lc in config.logs], indexed)
        pages = [
            LogPage(d, state.alerts(o), state.checkpoint_history(o), state.issuer_days(o))
            for d in data["logs"]
            for o in (d["origin"],)
        ]
    finally:
        state.close()
    if html_out is not None:
        try:
            html_out.write_text(render_html(pages, time.time()), encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write {html_out}: {exc.strerror}") from None
        click.echo(f"wrote {html_out}")
    elif as_json:
        click.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode())
    else:
        click.echo(render_text(data), nl=False)


@main.command("check-status")
@CONFIG
@click.argument("answer", type=click.Path(path_type=Path, dir_okay=False))
def check_status(config_path: Path, answer: Path) -> None:
    """Check a saved lookup answer's status proof against this monitor's own index (monitor/checkstatus.py).

    Example: tlog-monitor check-status --config monitor.toml answer.json"""
    from monitor.checkstatus import check_status_file  # here: it imports the log's API module, audits do not

    config = load_config(config_path)
    state = open_state(config)
    try:
        checked = check_status_file(answer, state, config.state, time.time())
    finally:
        state.close()
    click.echo(checked.line)
    sys.exit(checked.code)


@main.command("mark-good")
@CONFIG
@click.option("--log", "log_name", required=True, help="The log's origin or its configured URL.")
@click.option("--index", type=int, default=None, help="The entry's index.")
@click.option("--leaf-hash", default=None, help="The entry's leaf hash (64 lowercase hex).")
@click.option("--note", default=None, help="Why it is good (kept in the state).")
def mark_good(config_path: Path, log_name: str, index: int | None, leaf_hash: str | None, note: str | None) -> None:
    """Record an entry as known-good: watch rules never alert on it (a running monitor sees it at once)."""
    config = load_config(config_path)
    matches = [lc.origin for lc in config.logs if log_name in (lc.origin, lc.url, lc.url + "/")]
    if not matches:
        raise UsageError(f"--log {log_name!r} is not a configured log (origin or URL)")
    if (index is None) == (leaf_hash is None):
        raise UsageError("give exactly one of --index and --leaf-hash")
    if index is not None and index < 0:
        raise UsageError("--index must be 0 or more")
    try:
        leaf = parse_hash_hex(leaf_hash, "--leaf-hash") if leaf_hash is not None else None
    except TlogError as exc:
        raise UsageError(str(exc)) from None
    state = open_state(config)
    try:
        state.mark_good(matches[0], index, leaf, note)
    except StateError as exc:
        raise UsageError(str(exc)) from None
    finally:
        state.close()
    what = f"entry {index}" if index is not None else f"leaf hash {leaf_hash}"
    click.echo(f"{matches[0]}: {what} marked known-good")
