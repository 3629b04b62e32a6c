"""`tlog-server`: run a log (`serve`) and show its identity (`info`). The only module here that touches files
(besides static_tiles.py, which writes the static tiles directory).

tlog-server init --data ./data [--origin O] [--config server.toml]     (a new log: keys, identity)
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from logserver.app import ClientRateLimit, Limits, LogState, RequestLog, build_app
from logserver.config import ServerConfig, config_from_toml
from logserver.keyguard import RECORD_NAME, ExternalHead, ForkRefused, KeyGuard, RecordFile, verified_head
from logserver.metrics import Metrics
from logserver.postgres import PostgresStorage
from logserver.ratelimit import RateLimiter
from logserver.sequencer import Sequencer, SequencerConfig
from logserver.sqlite import SQLiteStorage
from logserver.static_tiles import StaticTiles, StaticTilesError, check_writable, read_checkpoint_file
from logserver.storage import Head, LogIdentity, Storage, StorageError
from logserver.submission import SubmissionRules, parse_statements
from logserver.witnessing import Witnessing, newest_from_witnesses
from logserver.workerpool import HealingProcessPool
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


@dataclass(frozen=True)
class LogKeys:
    log: Ed25519Signer
    registry: Ed25519Signer

    @property
    def identity(self) -> LogIdentity:
        return LogIdentity(self.log.name, self.log.verifier().vkey, self.registry.verifier().vkey)


def read_keys(data: Path) -> LogKeys:
    """The log's keys; `serve` never makes them (docs/key-guard.md: only `init` does, on an empty database)."""
    for name in (LOG_KEY, REGISTRY_KEY):
        if not (data / name).exists():
            raise UsageError(
                f"{data / name} does not exist: for a new log run tlog-server init --data {data} first; "
                "for an existing log, put its keys back (never make new ones for it)"
            )
    return LogKeys(read_key(data / LOG_KEY), read_key(data / REGISTRY_KEY))


def create_keys(data: Path, origin: str | None) -> LogKeys:
    """New keys for a new log (named after the origin; a random tlog.localhost/... without one)."""
    if (data / LOG_KEY).exists() or (data / REGISTRY_KEY).exists():
        present = LOG_KEY if (data / LOG_KEY).exists() else REGISTRY_KEY
        raise UsageError(f"{data / present} exists without its pair: restore the log's other key into {data}")
    data.mkdir(mode=0o700, parents=True, exist_ok=True)
    name = origin or f"tlog.localhost/{secrets.token_hex(4)}"
    write_key(data / LOG_KEY, Ed25519Signer(name, generate_ed25519_seed()))
    write_key(data / REGISTRY_KEY, Ed25519Signer(f"{name}/registry", generate_ed25519_seed()))
    return read_keys(data)


def check_origin(keys: LogKeys, origin: str | None, data: Path) -> None:
    if origin is not None and origin != keys.log.name:
        raise UsageError(f"config says origin {origin!r} but {data / LOG_KEY} is the key of {keys.log.name!r}")


def describe(identity: LogIdentity) -> str:
    return f"log {identity.origin!r} (log key {identity.log_vkey}, registry key {identity.registry_vkey})"


async def check_identity(storage: Storage, keys: LogKeys, data: Path, where: str) -> None:
    """`serve`: the database must have been claimed by `init` for exactly these keys."""
    stored = await storage.identity()
    if stored is None:
        raise UsageError(f"{where} records no log identity: run tlog-server init --data {data} (same --config) first")
    if stored != keys.identity:
        raise UsageError(
            f"{where} belongs to {describe(stored)}, not to the keys in {data}: start with that log's keys "
            "(docs/key-guard.md)"
        )


async def claim_database(storage: Storage, keys: LogKeys, where: str) -> None:
    """`init`: record these keys as the database's identity, if it has none and holds nothing else's."""
    stored = await storage.identity()
    if stored == keys.identity:
        return
    if stored is not None:
        raise UsageError(f"{where} already belongs to {describe(stored)}: init never changes a log's identity")
    head = await storage.head()
    # A database from before identities were recorded: adopt it only if this key signed its head.
    adoptable = head is not None and verified_head(head.checkpoint, keys.log.name, keys.log.verifier()) is not None
    if not adoptable and not await storage.is_empty():
        raise UsageError(f"{where} holds a log that the key in {LOG_KEY} did not sign: use that log's keys")
    await storage.record_identity(keys.identity)


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
@click.option("--origin", default=None, help="The origin the keys must have (they are made by tlog-server init).")
def serve(data: Path, listen: str | None, config_path: Path | None, origin: str | None) -> None:
    """Run the log: sequencer, read and write API. Example: tlog-server serve --data ./data"""
    config = load_config(config_path)
    keys = read_keys(data)
    check_origin(keys, origin or config.origin, data)
    host, port = parse_listen(listen or config.listen)
    if config.tiles_dir:
        writable_tiles_dir(Path(config.tiles_dir))
    print_identity(keys.log, keys.registry)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per witness request is noise
    try:
        asyncio.run(run_server(data, config, keys, host, port))
    except (StorageError, ForkRefused) as exc:
        raise UsageError(str(exc)) from exc


async def open_storage(data: Path, config: ServerConfig) -> Storage:
    """[storage] engine: SQLite in the data directory, or a PostgreSQL database several servers may share."""
    if config.engine == "postgresql":
        return await PostgresStorage.open(config.postgresql_dsn, config.postgresql_pool_size)
    return await SQLiteStorage.open(data / DATABASE, config.sqlite_busy_timeout_ms)


def database_name(data: Path, config: ServerConfig) -> str:
    return "the PostgreSQL database" if config.engine == "postgresql" else str(data / DATABASE)


@dataclass(frozen=True)
class LogParts:
    """What `serve` runs besides the HTTP app, built once and never changed afterwards."""

    storage: Storage
    sequencer: Sequencer
    witnessing: Witnessing
    static: StaticTiles | None
    metrics: Metrics


def build_parts(data: Path, config: ServerConfig, keys: LogKeys, storage: Storage) -> LogParts:
    metrics = Metrics()
    timeout = config.witness_timeout_ms / 1000
    witnessing = Witnessing.create(
        storage, list(config.witnesses), metrics, timeout, config.witness_retries, evidence_dir=data / "evidence"
    )
    tiles = Path(config.tiles_dir) if config.tiles_dir else None
    # Only the sequencing process writes the static directory (README "Static tiles").
    static = StaticTiles(storage, tiles, is_active=lambda: sequencer.not_sequencing is None) if tiles else None

    async def on_checkpoint(head: Head) -> None:
        """After each commit: witnessing publishes the (cosigned) checkpoint, then the static directory follows."""
        if config.witnesses:
            await witnessing.on_checkpoint(head)
        if static is not None:
            static.notify()

    async def external() -> list[ExternalHead]:
        """For the key guard: what the witnesses and the static directory hold of this log."""
        found = await newest_from_witnesses(list(config.witnesses), timeout, keys.log.name, keys.log.verifier())
        shown = read_checkpoint_file(tiles) if tiles else None
        head = verified_head(shown[0], keys.log.name, keys.log.verifier()) if shown else None
        return found + ([ExternalHead(f"the static tiles directory {tiles}", head)] if head else [])

    sequencer = Sequencer(
        storage,
        keys.log,
        sequencer_config(config, keys),
        on_checkpoint=on_checkpoint if config.witnesses or static is not None else None,
        guard=KeyGuard(keys.log.name, keys.log.verifier(), RecordFile(data / RECORD_NAME), external),
    )
    return LogParts(storage, sequencer, witnessing, static, metrics)


def sequencer_config(config: ServerConfig, keys: LogKeys) -> SequencerConfig:
    return SequencerConfig(
        origin=keys.log.name,
        registry_keys=frozenset([keys.registry.verifier().vkey]),
        flush_interval=config.flush_interval_ms / 1000,
        max_batch=config.max_batch,
        max_pool=config.max_pool,
        lease_ttl=config.lease_ttl_seconds,
        owner=f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}",
        publish_without_witnesses=not config.witnesses,
    )


def limits_of(config: ServerConfig) -> Limits:
    issuer_limiter = None
    if config.issuer_statements_per_second:
        issuer_limiter = RateLimiter(
            config.issuer_statements_per_second, config.issuer_burst, time.monotonic, config.rate_limit_max_keys
        )
    return Limits(config.max_body_bytes, config.max_batch_statements, config.body_timeout_seconds, issuer_limiter)


def signature_pool(workers: int, metrics: Metrics) -> HealingProcessPool:
    """Signature checks hold the GIL for half their time: worker processes let a batch use every core.
    "spawn", not fork: this process already runs threads (aiosqlite). A dead worker is replaced (workerpool.py)."""
    parent = os.getpid()
    context = multiprocessing.get_context("spawn")

    def replaced() -> None:
        metrics.worker_pools_replaced += 1

    return HealingProcessPool(
        lambda: ProcessPoolExecutor(workers, mp_context=context, initializer=exit_with_parent, initargs=(parent,)),
        replaced,
    )


async def start_sequencing(parts: LogParts, keys: LogKeys, data: Path, where: str) -> None:
    """Identity, state and lease, in that order; any refusal closes the storage and reaches `serve` as one line."""
    try:
        await check_identity(parts.storage, keys, data, where)
        await parts.sequencer.load()  # the registry and head, for reads and checks, even as a standby
        if not await parts.sequencer.take_lease():  # taking it runs the key guard (ForkRefused)
            logging.getLogger("logserver").warning("not sequencing: %s (serving reads)", parts.sequencer.not_sequencing)
    except BaseException:
        await parts.storage.close()
        raise


def lifespan_of(parts: LogParts, pool: HealingProcessPool, workers: int) -> Any:
    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(pool, parse_statements, []) for _ in range(workers)))
        sequencer, static = parts.sequencer, parts.static
        tasks = [asyncio.create_task(sequencer.run())]
        if parts.witnessing.witnesses and sequencer.head is not None:  # a head left unwitnessed by a crash
            tasks.append(asyncio.create_task(parts.witnessing.on_checkpoint(sequencer.head)))
        if static is not None:  # catches up at once: a crash between commit and file writes heals here
            tasks.append(asyncio.create_task(static.run()))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await parts.witnessing.close()
            await parts.storage.close()
            pool.shutdown(wait=False, cancel_futures=True)

    return lifespan


def http_server(app: Any, config: ServerConfig, host: str, port: int) -> uvicorn.Server:
    return uvicorn.Server(
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


async def run_server(data: Path, config: ServerConfig, keys: LogKeys, host: str, port: int) -> None:
    storage = await open_storage(data, config)
    parts = build_parts(data, config, keys, storage)
    await start_sequencing(parts, keys, data, database_name(data, config))
    workers = config.verify_workers or os.cpu_count() or 1
    pool = signature_pool(workers, parts.metrics)
    state = LogState(
        storage,
        parts.sequencer,
        SubmissionRules(keys.log.name, config.max_future_seconds),
        keys.log.verifier().vkey,
        [keys.registry.verifier().vkey],
        metrics=parts.metrics,
        limits=limits_of(config),
        witness_status=parts.witnessing.status,
        parse_pool=pool,
        parse_workers=workers,
        tile_cache_bytes=config.tile_cache_bytes,
    )
    app: Any = build_app(state, lifespan_of(parts, pool, workers))
    if config.client_requests_per_second:
        limiter = RateLimiter(
            config.client_requests_per_second, config.client_burst, time.monotonic, config.rate_limit_max_keys
        )
        app = ClientRateLimit(app, limiter, config.trusted_proxy_header)
    await http_server(RequestLog(app), config, host, port).serve()


class HeaderDeadlineProtocol(HttpToolsProtocol):
    """uvicorn's HTTP protocol plus a deadline for each request's headers (slowloris).

    uvicorn 0.54 arms `timeout_keep_alive` only after a response and cancels it on the first byte received: a client
    that connects and sends nothing, or trickles a header line now and then, would hold its connection (and a slot
    of `limit_concurrency`) for ever. So would one that, answered without its body being read (a GET with
    Content-Length, a 413 or 415), sends one more byte: that byte cancels the keep-alive timer, and being body, not
    a new request, never re-arms anything (issue 18, item 4). Here every connection that is not running a request
    is bounded: closed when a request's headers are not complete `header_timeout` seconds after the connection
    opened, the previous response completed, or the request's first byte arrived, whatever it sends meanwhile.
    The body has its own deadline in the app (`read_body`).
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

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # Idle again (no pipelined request started): bounded until the next request's headers are complete.
        if not self.transport.is_closing() and (self.cycle is None or self.cycle.response_complete):
            self._arm()

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
        raise UsageError(f"{data / DATABASE} does not exist: run tlog-server init --data {data} first")
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
@click.option("--config", "config_path", type=click.Path(path_type=Path, exists=True, dir_okay=False), default=None)
@click.option("--json", "as_json", is_flag=True, help="Print the identity as one JSON object.")
def init(data: Path, origin: str | None, config_path: Path | None, as_json: bool) -> None:
    """Make a new log's keys and record its identity in the database (run again: checks and prints it).

    Keys are made only when --data has none and the database is empty. Example: tlog-server init --data ./data
    """
    config = load_config(config_path)
    origin = origin or config.origin

    async def claim() -> LogKeys:
        storage = await open_storage(data, config) if config.engine == "postgresql" else None
        if storage is None:
            data.mkdir(mode=0o700, parents=True, exist_ok=True)
            storage = await open_storage(data, config)
        try:
            where = database_name(data, config)
            if (data / LOG_KEY).exists() or (data / REGISTRY_KEY).exists():
                keys = read_keys(data)
            elif (stored := await storage.identity()) is not None or not await storage.is_empty():
                owner = f"log {stored.origin!r}" if stored else "a log"
                raise UsageError(f"{where} already holds {owner} but {data} has no keys: put that log's keys back")
            else:
                keys = create_keys(data, origin)
                click.echo("new log: generated the log key and the registry key", err=as_json)
            check_origin(keys, origin, data)
            await claim_database(storage, keys, where)
            return keys
        finally:
            await storage.close()

    try:
        keys = asyncio.run(claim())
    except StorageError as exc:
        raise UsageError(str(exc)) from exc
    print_identity(keys.log, keys.registry, as_json)


@main.command()
@click.option("--data", "data", type=click.Path(path_type=Path, exists=True, file_okay=False), required=True)
@click.option("--json", "as_json", is_flag=True, help="Print the identity as one JSON object.")
def info(data: Path, as_json: bool) -> None:
    """Print the log's origin and public keys. Example: tlog-server info --data ./data --json"""
    for name in (LOG_KEY, REGISTRY_KEY):
        if not (data / name).exists():
            raise UsageError(f"{data / name} does not exist: run tlog-server init --data {data} first")
    print_identity(read_key(data / LOG_KEY), read_key(data / REGISTRY_KEY), as_json)
