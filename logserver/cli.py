"""`tlog-server`: run a log (`serve`) and show its identity (`info`). The only module here that touches files.

tlog-server serve --data ./data --listen 127.0.0.1:8080 [--config server.toml]
tlog-server info --data ./data
"""

import asyncio
import contextlib
import logging
import multiprocessing
import os
import secrets
import socket
import sys
import tomllib
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import click
import uvicorn

from logserver.app import LogState, RequestLog, build_app
from logserver.config import ServerConfig, config_from_toml
from logserver.metrics import Metrics
from logserver.sequencer import Sequencer, SequencerConfig
from logserver.sqlite import SQLiteStorage
from logserver.storage import StorageError
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


def parse_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--listen {listen!r}: want HOST:PORT")
    return host, int(port)


def print_identity(log_key: Ed25519Signer, registry_key: Ed25519Signer) -> None:
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
    if created:
        click.echo("first run: generated the log key and the registry key")
    print_identity(log_key, registry_key)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per witness request is noise
    try:
        asyncio.run(run_server(data, config, log_key, registry_key, host, port))
    except StorageError as exc:
        raise UsageError(str(exc)) from exc


async def run_server(
    data: Path, config: ServerConfig, log_key: Ed25519Signer, registry_key: Ed25519Signer, host: str, port: int
) -> None:
    storage = await SQLiteStorage.open(data / DATABASE, config.sqlite_busy_timeout_ms)
    registry_vkey = registry_key.verifier().vkey
    metrics = Metrics()
    witnessing = Witnessing.create(
        storage, list(config.witnesses), metrics, config.witness_timeout_ms / 1000, config.witness_retries
    )
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
        on_checkpoint=witnessing.on_checkpoint if config.witnesses else None,
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
    )
    workers = config.verify_workers or os.cpu_count() or 1
    # Signature checks hold the GIL for half their time: worker processes let a batch use every core.
    # "spawn", not fork: this process already runs threads (aiosqlite).
    parse_pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    state.parse_pool, state.parse_workers = parse_pool, workers
    state.limits.max_body = config.max_body_bytes
    state.limits.max_batch = config.max_batch_statements

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(parse_pool, parse_statements, []) for _ in range(workers)))
        tasks = [asyncio.create_task(sequencer.run())]
        if config.witnesses and sequencer.head is not None:  # a head left unwitnessed by a crash
            tasks.append(asyncio.create_task(witnessing.on_checkpoint(sequencer.head)))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await witnessing.close()
            await storage.close()
            parse_pool.shutdown(wait=False, cancel_futures=True)

    app = RequestLog(build_app(state, lifespan))
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False))
    await server.serve()


@main.command()
@click.option("--data", "data", type=click.Path(path_type=Path), required=True, help="Directory for keys and database.")
@click.option("--origin", default=None, help="The log's origin (default: a random tlog.localhost/...).")
def init(data: Path, origin: str | None) -> None:
    """Generate the log and registry keys (if missing) and print the identity. Example: tlog-server init --data d"""
    log_key, registry_key, _ = load_or_create_keys(data, origin)
    print_identity(log_key, registry_key)


@main.command()
@click.option("--data", "data", type=click.Path(path_type=Path, exists=True, file_okay=False), required=True)
def info(data: Path) -> None:
    """Print the log's origin and public keys. Example: tlog-server info --data ./data"""
    for name in (LOG_KEY, REGISTRY_KEY):
        if not (data / name).exists():
            raise UsageError(f"{data / name} does not exist: run tlog-server serve --data {data} first")
    print_identity(read_key(data / LOG_KEY), read_key(data / REGISTRY_KEY))
