"""`tlog-server`: run a log (`serve`) and show its identity (`info`). The only module here that touches files
(besides static_tiles.py, which writes the static tiles directory).

tlog-server init --data ./data [--origin O] [--config server.toml]     (a new log: keys, identity)
tlog-server serve --data ./data --listen 127.0.0.1:8080 [--config server.toml]
tlog-server export-tiles --data ./data --out ./tiles [--verify]
tlog-server info --data ./data
tlog-server check --data ./data                                           (audit the database, read only)
tlog-server recover --data ./data --from ./tiles                          (rebuild it from a static tiles copy)
tlog-server rotate-key --data ./data [--overlap N]                        (a new log key, announced in the log)
"""

import asyncio
import contextlib
import dataclasses
import functools
import json
import logging
import os
import secrets
import socket
import sys
import time
import tomllib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import uvicorn
import uvloop

from logserver.app import ClientRateLimit, Limits, LogState, RequestLog, build_app
from logserver.background import background_tasks
from logserver.check import Audit, audit
from logserver.config import ServerConfig, config_from_toml
from logserver.identity import (
    LOG_KEY,
    REGISTRY_KEY,
    LogKeys,
    UsageError,
    check_identity,
    check_origin,
    claim_database,
    create_keys,
    read_key,
    read_keys,
)
from logserver.indexerprocess import IndexerProcess, IndexerSettings
from logserver.keyguard import RECORD_NAME, ExternalHead, ForkRefused, KeyGuard, RecordFile, verified_head
from logserver.keyindex import KeyIndex
from logserver.metrics import Metrics
from logserver.opening import DATABASE, database_name, open_status_store, open_storage
from logserver.ratelimit import RateLimiter
from logserver.recover import RecoverError, check_against_record, read_tiles, write_back
from logserver.registryrule import names_owned_from
from logserver.requestlines import batch_request_lines, flush_all, request_lines
from logserver.rotatekey import rotate, take_lease
from logserver.sequencer import Sequencer, SequencerConfig
from logserver.static_tiles import StaticTiles, StaticTilesError, check_writable, read_checkpoint_file
from logserver.statusindexer import IndexRootLogger, logged_by, reconcile_index
from logserver.storage import Head, Storage, StorageError
from logserver.submission import SubmissionRules, batch_checker
from logserver.tasks import cancel_and_wait
from logserver.verifierpage import ROTATIONS_DIR, read_rotations
from logserver.warmup import Warmup
from logserver.witnessing import Witnessing, newest_from_witnesses
from logserver.workerpool import SignaturePool
from logserver.workers import Sockets, reserve_port, serving_socket, supervise, worker_app
from tlogcore.errors import NotAllowedError, TlogError
from tlogcore.gcpause import freeze_start_up
from tlogcore.keys import Ed25519Signer, Verifier
from tlogcore.vkeys import parse_verifier_key
from witness.headerdeadline import header_deadline_protocol
from witness.processes import exit_with_parent


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
    # before anything starts: a taken port is one line, not a hang
    listener = listening_socket(host, port) if config.workers == 1 else reserved_port(host, port)
    print_identity(keys.log, keys.registry)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per witness request is noise
    if config.request_log_flush_ms:
        batch_request_lines(sys.stderr)  # not a write(2) per request (logserver/requestlines.py)
    try:
        if config.workers > 1:  # N processes on this port, one sequencing (logserver/workers.py)
            run = functools.partial(serve_worker, data, config, keys)
            supervise(run, (host, port), config.workers, exit_with_parent)
        else:
            # uvloop: uvicorn picks it only when it runs the loop itself, and here the server runs inside ours (one
            # loaded wrk run gave +25% on /healthz and proofs; the server's CPU per request barely moved)
            uvloop.run(run_server(data, config, keys, listener))
    except (StorageError, ForkRefused) as exc:
        raise UsageError(str(exc)) from exc
    finally:
        listener.close()


def serve_worker(data: Path, config: ServerConfig, keys: LogKeys, sockets: Sockets) -> None:
    """One of `[server] workers` processes; a refusal is one line, and the supervisor starts it again."""
    try:
        uvloop.run(run_server(data, config, keys, sockets.public, sockets))  # uvloop, as in `serve`
    except Exception as exc:  # one line, as `serve` gives; the supervisor starts the worker again
        click.echo(f"tlog-server worker {os.getpid()} stopped: {exc}", err=True)
        sys.exit(1)


def listening_socket(host: str, port: int) -> socket.socket:
    try:
        return serving_socket((host, port))
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}; choose another --listen") from None


def reserved_port(host: str, port: int) -> socket.socket:
    try:
        return reserve_port(host, port)
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}; choose another --listen") from None


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
        found = await newest_from_witnesses(list(config.witnesses), timeout, keys.log.name, keys.ring.verifiers())
        shown = read_checkpoint_file(tiles) if tiles else None
        head = verified_head(shown[0], keys.log.name, keys.ring.verifiers()) if shown else None
        return found + ([ExternalHead(f"the static tiles directory {tiles}", head)] if head else [])

    sequencer = Sequencer(
        storage,
        keys.log,
        sequencer_config(config, keys),
        on_checkpoint=on_checkpoint if config.witnesses or static is not None else None,
        guard=KeyGuard(keys.log.name, keys.ring.verifiers(), RecordFile(data / RECORD_NAME), external),
        keys=keys.ring,
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


def signature_pool(workers: int, rules: SubmissionRules, metrics: Metrics) -> SignaturePool:
    """Signature checks hold the GIL for half their time: worker processes let a batch use every core. New
    interpreters, not forks: this process already runs threads (aiosqlite). A dead worker is replaced
    (workerpool.py)."""

    def replaced() -> None:
        metrics.worker_pools_replaced += 1

    return SignaturePool(functools.partial(batch_checker, rules), workers, replaced)


async def start_sequencing(parts: LogParts, keys: LogKeys, data: Path, where: str) -> None:
    """Identity, state and lease, in that order; any refusal closes the storage and reaches `serve` as one line."""
    try:
        await check_identity(parts.storage, keys, data, where)
        owned_from = await names_owned_from(parts.storage, parts.sequencer.config.registry_keys, data)
        parts.sequencer.config = dataclasses.replace(parts.sequencer.config, names_owned_from=owned_from)
        try:
            await parts.sequencer.load()
        except NotAllowedError as exc:  # an entry the log itself would have refused: one line, not a traceback
            raise StorageError(
                f"the registry in {where} does not replay ({exc}): run tlog-server check, then restore a backup"
            ) from None  # the registry and head, for reads and checks, even as a standby
        if not await parts.sequencer.take_lease():  # taking it runs the key guard (ForkRefused)
            logging.getLogger("logserver").warning("not sequencing: %s (serving reads)", parts.sequencer.not_sequencing)
    except BaseException:
        await parts.storage.close()
        raise


def lifespan_of(
    parts: LogParts,
    pool: SignaturePool,
    indexer: IndexerProcess | None,
    warmup: Warmup,
    config: ServerConfig,
) -> Any:
    warm_seconds = config.warm_seconds

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        await pool.start()
        tasks = background_tasks(parts.sequencer, parts.witnessing, parts.static, indexer, config)
        warming = warmup.start(parts.storage.warm_reads, warm_seconds)  # /healthz 503 until done (warmup.py)
        if warming is not None:
            tasks.append(warming)
        freeze_start_up()
        try:
            yield
        finally:
            await cancel_and_wait(tasks)
            flush_all()
            await parts.witnessing.close()
            if indexer is not None:
                await indexer.store.close()
            await parts.storage.close()
            await pool.close()

    return lifespan


async def status_indexer(data: Path, config: ServerConfig, keys: LogKeys, parts: LogParts) -> IndexerProcess | None:
    """The status index beside the log (docs/status-proofs.md §9), updated in a process of its own while this one
    sequences (indexerprocess.py); None unless [status_index] index_interval_ms is set."""
    if not config.index_interval_ms:
        return None
    store = await open_status_store(data, config)
    sequencer = parts.sequencer
    if sequencer.not_sequencing is None:  # the one process that writes the index, before its indexer starts
        done = await reconcile_index(parts.storage, store)
        if done is not None:
            logging.getLogger("logserver").warning("%s", done)
    return IndexerProcess(
        IndexerSettings(data, config, os.getpid()),
        parts.storage,
        store,
        IndexRootLogger(store, keys.registry, keys.log.name, logged_by(sequencer), KeyIndex(parts.storage)),
        interval=config.index_interval_ms / 1000,
        metrics=parts.metrics,
        may_write=lambda: sequencer.not_sequencing is None,
    )


def http_server(app: Any, config: ServerConfig) -> uvicorn.Server:
    return uvicorn.Server(
        uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            # The client is the TCP peer unless `trusted_proxy_header` says otherwise (ClientRateLimit): uvicorn's
            # default takes X-Forwarded-For from any client on 127.0.0.1, so one there named itself anew per request
            # and was never limited (tests/test_limits.py).
            proxy_headers=False,
            # the header deadline (slowloris: uvicorn has none) and each answer in one send (witness/onewrite.py)
            http=header_deadline_protocol(config.header_timeout_seconds, one_write=True),
            timeout_keep_alive=max(1, round(config.keep_alive_seconds)),
            limit_concurrency=config.max_connections,  # beyond it uvicorn answers 503
        )
    )


async def run_server(
    data: Path, config: ServerConfig, keys: LogKeys, listener: socket.socket, sockets: Sockets | None = None
) -> None:
    storage = await open_storage(data, config)
    parts = build_parts(data, config, keys, storage)
    await start_sequencing(parts, keys, data, database_name(data, config))
    workers = config.verify_workers or os.cpu_count() or 1
    indexer = await status_indexer(data, config, keys, parts)
    rules = SubmissionRules(keys.log.name, config.max_future_seconds)
    pool = signature_pool(workers, rules, parts.metrics)
    state = LogState(
        storage,
        parts.sequencer,
        rules,
        keys.log.verifier().vkey,
        [keys.registry.verifier().vkey],
        metrics=parts.metrics,
        limits=limits_of(config),
        witness_status=parts.witnessing.status,
        parse_pool=pool,
        parse_workers=workers,
        tile_cache_bytes=config.tile_cache_bytes,
        status=indexer.store if indexer is not None else None,
        trust_rotations=lambda: read_rotations(data / ROTATIONS_DIR),
    )
    inner: Any = build_app(state, lifespan_of(parts, pool, indexer, state.warmup, config))
    app = inner
    if config.client_requests_per_second:
        limiter = RateLimiter(
            config.client_requests_per_second, config.client_burst, time.monotonic, config.rate_limit_max_keys
        )
        app = ClientRateLimit(app, limiter, config.trusted_proxy_header)
    lines = request_lines()  # straight to the batch of request lines, if `serve` set one up (requestlines.py)
    if sockets is None:
        await http_server(RequestLog(app, lines=lines), config).serve(sockets=[listener])
        return
    sequencer = parts.sequencer
    served = worker_app(
        RequestLog(app, lines=lines), RequestLog(inner, lines=lines), sockets, lambda: sequencer.accepts_submissions
    )
    await http_server(served, config).serve(sockets=[listener, sockets.private])


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


async def log_verifier(storage: Storage, data: Path) -> tuple[str, Verifier]:
    """The log's origin and key, from the identity `init` recorded (else from log.key): what audits trust."""
    identity = await storage.identity()
    if identity is not None:
        return identity.origin, parse_verifier_key(identity.log_vkey)
    keys = read_keys(data)
    return keys.log.name, keys.log.verifier()


@main.command()
@click.option("--data", "data", type=click.Path(path_type=Path, exists=True, file_okay=False), required=True)
@click.option("--config", "config_path", type=click.Path(path_type=Path, exists=True, dir_okay=False), default=None)
def check(data: Path, config_path: Path | None) -> None:
    """Audit the database (read only): every leaf rehashed, every stored node, every checkpoint's signature and
    root. Exit 0 when all hold. Example: tlog-server check --data ./data"""
    config = load_config(config_path)
    if config.engine == "sqlite" and not (data / DATABASE).exists():
        raise UsageError(f"{data / DATABASE} does not exist: nothing to check")

    async def run() -> Audit:
        storage = await open_storage(data, config)
        try:
            origin, verifier = await log_verifier(storage, data)
            return await audit(storage, origin, verifier)
        finally:
            await storage.close()

    try:
        result = asyncio.run(run())
    except StorageError as exc:
        raise UsageError(str(exc)) from exc
    for problem in result.problems:
        click.echo(problem)
    summary = f"{result.entries} entries, {result.hashes} inner hashes, {result.checkpoints} checkpoints"
    if result.problems:
        raise UsageError(
            f"{database_name(data, config)} is damaged ({summary} read; problems listed above): restore a backup, "
            "or rebuild it with tlog-server recover (docs/key-guard.md)"
        )
    click.echo(f"ok: {summary} verified")


@main.command()
@click.option("--data", "data", type=click.Path(path_type=Path, exists=True, file_okay=False), required=True)
@click.option("--from", "source", type=click.Path(path_type=Path, exists=True, file_okay=False), required=True)
@click.option("--config", "config_path", type=click.Path(path_type=Path, exists=True, dir_okay=False), default=None)
def recover(data: Path, source: Path, config_path: Path | None) -> None:
    """Rebuild an empty database from a static tiles directory that proves itself against the log key and the
    newest checkpoint it signed. Example: tlog-server recover --data ./data --from ./tiles"""
    config = load_config(config_path)
    keys = read_keys(data)
    try:
        rebuilt = read_tiles(source, keys.log.name, keys.ring.verifiers())
        record_file = RecordFile(data / RECORD_NAME)
        check_against_record(rebuilt, record_file.read(), record_file.path)
    except (RecoverError, ForkRefused) as exc:
        raise UsageError(str(exc)) from exc

    async def write() -> None:
        storage = await open_storage(data, config)
        try:
            await claim_database(storage, keys, database_name(data, config))
            await write_back(storage, rebuilt, record_file)
        finally:
            await storage.close()

    try:
        asyncio.run(write())
    except (RecoverError, StorageError, OSError) as exc:
        raise UsageError(str(exc)) from exc
    click.echo(f"recovered size {rebuilt.head.size} from {source}; check it with tlog-server check --data {data}")


@main.command("rotate-key")
@click.option("--data", "data", type=click.Path(path_type=Path, exists=True, file_okay=False), required=True)
@click.option("--config", "config_path", type=click.Path(path_type=Path, exists=True, dir_okay=False), default=None)
@click.option("--overlap", type=click.IntRange(0, 1 << 40), default=1000, help="Sizes signed by both keys.")
def rotate_key(data: Path, config_path: Path | None, overlap: int) -> None:
    """Make a new log key and announce it in the log, signed by the old key and the registry key (stop serve
    first). Example: tlog-server rotate-key --data ./data --overlap 1000"""
    config = load_config(config_path)
    keys = read_keys(data)

    async def run() -> None:
        storage = await open_storage(data, config)
        try:
            await check_identity(storage, keys, data, database_name(data, config))
            parts = build_parts(data, config, keys, storage)
            owned_from = await names_owned_from(storage, parts.sequencer.config.registry_keys, data)
            parts.sequencer.config = dataclasses.replace(parts.sequencer.config, names_owned_from=owned_from)
            await take_lease(parts.sequencer)
            done = await rotate(parts.sequencer, keys, data, overlap)
        finally:
            await storage.close()
        rotation = done.statement
        click.echo(f"logged the rotation as entry {done.index}; new log key (private key in {done.key_file}):")
        click.echo(f"log {rotation.new}")
        click.echo(f"from size {rotation.start} checkpoints carry it; until size {rotation.until} the old key's too")

    try:
        asyncio.run(run())
    except (StorageError, OSError, TlogError) as exc:
        raise UsageError(str(exc)) from exc
