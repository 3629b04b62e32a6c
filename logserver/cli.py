"""`tlog-server`: run a log (`serve`) and show its identity (`info`). The only module here that touches files
(besides static_tiles.py, which writes the static tiles directory).

tlog-server serve --data ./data --listen 127.0.0.1:8080 [--config server.toml]
tlog-server export-tiles --data ./data --out ./tiles [--verify]
tlog-server info --data ./data
"""

import asyncio
import contextlib
import json
import logging
import multiprocessing
import os
import secrets
import socket
import sys
import threading
import time
import tomllib
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import click
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from logserver.app import ClientRateLimit, LogState, RequestLog, build_app
from logserver.config import ServerConfig, config_from_toml
from logserver.metrics import Metrics
from logserver.postgres import PostgresStorage
from logserver.ratelimit import RateLimiter
from logserver.sequencer import Sequencer, SequencerConfig
from logserver.sqlite import SQLiteStorage
from logserver.static_tiles import StaticTiles, StaticTilesError, check_writable
from logserver.storage import Head, Storage, StorageError
from logserver.submission import SubmissionRules, parse_statements
from logserver.witnessing import Witnessing
from tlogcore.errors import TlogError
from tlogcore.keys import (
    Ed25519Signer,
    check_private_key_mode,
    format_signer_key,
    generate_ed25519_seed,
    parse_signer_key,
)

LOG_KEY, REGISTRY_KEY, DATABASE = "log.key", "registry.key", "log.db"


class UsageError(click.ClickException):
    """One readable line and exit code 1 (click prints 'Error: ...')."""


def write_key(path: Path, signer: Ed25519Signer) -> None:
    """Create a private key file readable by its owner only; never overwrite one."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(format_signer_key(signer) + "\n")


def read_key(path: Path) -> Ed25519Signer:
    try:
        check_private_key_mode(path.stat().st_mode, str(path))
        return parse_signer_key(path.read_text().strip())
    except TlogError as exc:
        raise UsageError(f"{path}: {exc}") from exc


def load_or_create_keys(data: Path, origin: str | None) -> tuple[Ed25519Signer, Ed25519Signer, bool]:
    """The log key (named after the origin) and the registry key; generated on first run."""
    data.mkdir(mode=0o700, parents=True, exist_ok=True)
    log_path, registry_path = data / LOG_KEY, data / REGISTRY_KEY
    created = False
    if not log_path.exists():
        name = origin or f"tlog.localhost/{secrets.token_hex(4)}"
        write_key(log_path, Ed25519Signer(name, generate_ed25519_seed()))
        created = True
    log_key = read_key(log_path)
    if origin is not None and origin != log_key.name:
        raise UsageError(f"config says origin {origin!r} but {log_path} is the key of {log_key.name!r}")
    if not registry_path.exists():
        write_key(registry_path, Ed25519Signer(f"{log_key.name}/registry", generate_ed25519_seed()))
    return log_key, read_key(registry_path), created


def load_config(path: Path | None) -> ServerConfig:
    if path is None:
        return ServerConfig()
    try:
        return config_from_toml(tomllib.loads(path.read_text()))
    except (OSError, tomllib.TOMLDecodeError, TlogError) as exc:
        raise UsageError(f"config {path}: {exc}") from exc
    except RecursionError:  # fuzzing: tomllib recurses once per nested [ or {
        raise UsageError(f"config {path}: not valid TOML: nested too deeply") from None


def parse_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--listen {listen!r}: want HOST:PORT")
    return host, int(port)


def print_identity(log_key: Ed25519Signer, registry_key: Ed25519Signer, as_json: bool = False) -> None:
    if as_json:  # for scripts: no scraping of the text lines
        keys = {"origin": log_key.name, "log_vkey": log_key.verifier().vkey}
        click.echo(json.dumps(keys | {"registry_vkey": registry_key.verifier().vkey}))
        return
    click.echo(f"origin:       {log_key.name}")
    click.echo(f"log key:      {log_key.verifier().vkey}")
    click.echo(f"registry key: {registry_key.verifier().vkey}")


@click.group()
def main() -> None:
    """The transparency log server."""


@main.command()
@click.option("--data", "data", type=click.Path(path_type=Path), required=True, help="Directory for keys and database.")
@click.option("--listen", default=None, help="HOST:PORT to listen on (default 127.0.0.1:8080).")
@click.option("--config", "config_path", type=click.Path(path_type=Path, exists=True, dir_okay=False), default=None)
@click.option("--origin", default=None, help="The log's origin on first run (default: a random tlog.localhost/...).")
def serve(data: Path, listen: str | None, config_path: Path | None, origin: str | None) -> None:
    """Run the log: sequencer, read and write API. Example: tlog-server serve --data ./data"""
    config = load_config(config_path)
    log_key, registry_key, created = load_or_create_keys(data, origin or config.origin)
    host, port = parse_listen(listen or config.listen)
    if config.tiles_dir:
        writable_tiles_dir(Path(config.tiles_dir))
    if created:
        click.echo("first run: generated the log key and the registry key")
    print_identity(log_key, registry_key)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per witness request is noise
    try:
        asyncio.run(run_server(data, config, log_key, registry_key, host, port))
    except StorageError as exc:
        raise UsageError(str(exc)) from exc


async def open_storage(data: Path, config: ServerConfig) -> Storage:
    """[storage] engine: SQLite in the data directory, or a PostgreSQL database several servers may share."""
    if config.engine == "postgresql":
        return await PostgresStorage.open(config.postgresql_dsn, config.postgresql_pool_size)
    return await SQLiteStorage.open(data / DATABASE, config.sqlite_busy_timeout_ms)


async def run_server(
    data: Path, config: ServerConfig, log_key: Ed25519Signer, registry_key: Ed25519Signer, host: str, port: int
) -> None:
    storage = await open_storage(data, config)
    registry_vkey = registry_key.verifier().vkey
    metrics = Metrics()
    witnessing = Witnessing.create(
        storage, list(config.witnesses), metrics, config.witness_timeout_ms / 1000, config.witness_retries
    )
    # Only the sequencing process writes the static directory (README "Static tiles").
    static = (
        StaticTiles(storage, Path(config.tiles_dir), is_active=lambda: sequencer.not_sequencing is None)
        if config.tiles_dir
        else None
    )

    async def on_checkpoint(head: Head) -> None:
        """After each commit: witnessing publishes the (cosigned) checkpoint, then the static directory follows."""
        if config.witnesses:
            await witnessing.on_checkpoint(head)
        if static is not None:
            static.notify()

    sequencer = Sequencer(
        storage,
        log_key,
        SequencerConfig(
            origin=log_key.name,
            registry_keys=frozenset([registry_vkey]),
            flush_interval=config.flush_interval_ms / 1000,
            max_batch=config.max_batch,
            max_pool=config.max_pool,
            lease_ttl=config.lease_ttl_seconds,
            owner=f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}",
            publish_without_witnesses=not config.witnesses,
        ),
        on_checkpoint=on_checkpoint if config.witnesses or static is not None else None,
    )
    await sequencer.load()  # the registry and head, for reads and checks, even when another process sequences
    if not await sequencer.take_lease():
        logging.getLogger("logserver").warning("not sequencing: %s (serving reads)", sequencer.not_sequencing)
    state = LogState(
        storage,
        sequencer,
        SubmissionRules(log_key.name, config.max_future_seconds),
        log_key.verifier().vkey,
        [registry_vkey],
        metrics=metrics,
        witness_status=witnessing.status,
        tile_cache_bytes=config.tile_cache_bytes,
    )
    workers = config.verify_workers or os.cpu_count() or 1
    # Signature checks hold the GIL for half their time: worker processes let a batch use every core.
    # "spawn", not fork: this process already runs threads (aiosqlite).
    parse_pool = ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context("spawn"), initializer=exit_with_parent, initargs=(os.getpid(),)
    )
    state.parse_pool, state.parse_workers = parse_pool, workers
    state.limits.max_body = config.max_body_bytes
    state.limits.max_batch = config.max_batch_statements
    state.limits.body_timeout = config.body_timeout_seconds
    if config.issuer_statements_per_second:
        state.limits.issuer_limiter = RateLimiter(
            config.issuer_statements_per_second, config.issuer_burst, time.monotonic, config.rate_limit_max_keys
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(parse_pool, parse_statements, []) for _ in range(workers)))
        tasks = [asyncio.create_task(sequencer.run())]
        if config.witnesses and sequencer.head is not None:  # a head left unwitnessed by a crash
            tasks.append(asyncio.create_task(on_checkpoint(sequencer.head)))
        if static is not None:  # catches up at once: a crash between commit and file writes heals here
            tasks.append(asyncio.create_task(static.run()))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await witnessing.close()
            await storage.close()
            # wait: workers that outlive this process leave their semaphores to the resource tracker's warning
            parse_pool.shutdown(wait=True, cancel_futures=True)

    app: Any = build_app(state, lifespan)
    if config.client_requests_per_second:
        limiter = RateLimiter(
            config.client_requests_per_second, config.client_burst, time.monotonic, config.rate_limit_max_keys
        )
        app = ClientRateLimit(app, limiter, config.trusted_proxy_header)
    app = RequestLog(app)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            http=header_deadline_protocol(config.header_timeout_seconds),  # slowloris: uvicorn has no such deadline
            timeout_keep_alive=max(1, round(config.keep_alive_seconds)),
            limit_concurrency=config.max_connections,  # beyond it uvicorn answers 503
        )
    )
    await server.serve()


class HeaderDeadlineProtocol(HttpToolsProtocol):
    """uvicorn's HTTP protocol plus a deadline for each request's headers (slowloris).

    uvicorn 0.54 arms `timeout_keep_alive` only after a response and cancels it on the first byte received: a client
    that connects and sends nothing, or trickles a header line now and then, would hold its connection (and a slot
    of `limit_concurrency`) for ever. Here the connection is closed when a request's headers are not complete
    `header_timeout` seconds after the connection opened or the request's first byte arrived. The body has its own
    deadline in the app (`read_body`).
    """

    header_timeout: float = 10.0
    _header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._header_deadline = self.loop.call_later(self.header_timeout, self._too_slow)

    def _disarm(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _too_slow(self) -> None:
        self._header_deadline = None
        if not self.transport.is_closing():
            self.transport.close()


def header_deadline_protocol(header_timeout: float) -> type[HeaderDeadlineProtocol]:
    """A protocol class for `uvicorn.Config(http=...)` with this deadline (uvicorn takes a class, not an instance)."""
    return type("HeaderDeadline", (HeaderDeadlineProtocol,), {"header_timeout": header_timeout})


def exit_with_parent(parent: int) -> None:
    """In each worker process: exit when the server dies. After a kill -9 nobody shuts the pool down, and the
    workers (which hold their own end of the task pipe, so never see EOF) would stay for ever (RELIABILITY.md)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(0)

    threading.Thread(target=watch, daemon=True, name="exit-with-parent").start()


def writable_tiles_dir(path: Path) -> None:
    try:
        check_writable(path)
    except StaticTilesError as exc:
        raise UsageError(str(exc)) from exc


@main.command("export-tiles")
@click.option("--data", "data", type=click.Path(path_type=Path, exists=True, file_okay=False), required=True)
@click.option("--out", "out", type=click.Path(path_type=Path), required=True, help="The static tiles directory.")
@click.option("--verify", is_flag=True, help="Compare every file byte for byte and rewrite those that differ.")
@click.option("--config", "config_path", type=click.Path(path_type=Path, exists=True, dir_okay=False), default=None)
def export_tiles(data: Path, out: Path, verify: bool, config_path: Path | None) -> None:
    """Write or catch up a static tiles directory from the database ([storage] of --config; default SQLite).

    Example: tlog-server export-tiles --data ./data --out ./tiles
    """
    config = load_config(config_path)
    if config.engine == "sqlite" and not (data / DATABASE).exists():
        raise UsageError(f"{data / DATABASE} does not exist: run tlog-server serve --data {data} first")
    writable_tiles_dir(out)

    async def export() -> None:
        storage = await open_storage(data, config)
        try:
            result = await StaticTiles(storage, out).sync(verify=verify)
        finally:
            await storage.close()
        checkpoint = "rewrote the checkpoint" if result.checkpoint_written else "checkpoint unchanged"
        click.echo(f"size {result.size}: wrote {result.written} tile files, {checkpoint}, pruned {result.pruned}")

    try:
        asyncio.run(export())
    except (StorageError, StaticTilesError, OSError) as exc:
        raise UsageError(str(exc)) from exc


@main.command()
@click.option("--data", "data", type=click.Path(path_type=Path), required=True, help="Directory for keys and database.")
@click.option("--origin", default=None, help="The log's origin (default: a random tlog.localhost/...).")
@click.option("--json", "as_json", is_flag=True, help="Print the identity as one JSON object.")
def init(data: Path, origin: str | None, as_json: bool) -> None:
    """Generate the log and registry keys (if missing) and print the identity. Example: tlog-server init --data d"""
    log_key, registry_key, _ = load_or_create_keys(data, origin)
    print_identity(log_key, registry_key, as_json)


@main.command()
@click.option("--data", "data", type=click.Path(path_type=Path, exists=True, file_okay=False), required=True)
@click.option("--json", "as_json", is_flag=True, help="Print the identity as one JSON object.")
def info(data: Path, as_json: bool) -> None:
    """Print the log's origin and public keys. Example: tlog-server info --data ./data --json"""
    for name in (LOG_KEY, REGISTRY_KEY):
        if not (data / name).exists():
            raise UsageError(f"{data / name} does not exist: run tlog-server serve --data {data} first")
    print_identity(read_key(data / LOG_KEY), read_key(data / REGISTRY_KEY), as_json)
