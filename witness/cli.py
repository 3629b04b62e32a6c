"""`tlog-witness`: make a witness key, run a witness, or show its key. The only witness module that reads files or
starts a server.

    tlog-witness init --data DIR (--name NAME | --config witness.toml) [--json]
    tlog-witness serve --data DIR --config witness.toml [--listen 127.0.0.1:7380]
    tlog-witness info --data DIR [--json]

DIR holds one key file per cosignature algorithm the config lists (`witness.key`, Ed25519; `witness-mldsa44.key`,
ML-DSA-44; witness/keyfiles.py), mode 0600, made by `init` or on first run, `witness.sqlite` (the state) and
`witness.sqlite-writelock` (empty: the writers' turn, witness/storage.py). Each cosignature verifier key printed
(`vkey …`, one line per key, Ed25519 first) is what logs and verifiers put in their trust policy (`witness <name>
<vkey>`, c2sp.org/tlog-policy).
"""

import functools
import json
import os
import socket
import sqlite3
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
import uvicorn
import uvloop

from tlogcore.errors import MalformedError
from tlogcore.keys import Signer
from witness.app import create_app
from witness.config import ALGORITHMS, ED25519, WitnessConfig, parse_config, parse_listen
from witness.cosigner import Cosigner, PoolCosigner, WorkerSetup
from witness.headerdeadline import header_deadline_protocol
from witness.keyfiles import SetupError, existing_keys, load_or_create_keys
from witness.processes import reserve_port, supervise
from witness.storage import SQLiteStorage, create_database

DATABASE_FILE = "witness.sqlite"
MAX_FILE_SIZE = 1024 * 1024
HEADER_TIMEOUT = 10.0  # seconds for a request's headers (slowloris); the body has its own deadline (app.py)
MAX_CONNECTIONS = 256  # beyond it uvicorn answers 503 at once; a witness has few clients (its logs, monitors)
KEEP_ALIVE = 5  # seconds an idle keep-alive connection stays open


def read_config_text(path: Path) -> tuple[WitnessConfig, str]:
    """The parsed config and its text (the text goes to the worker processes, which parse it themselves)."""
    try:
        with path.open("rb") as file:
            data = file.read(MAX_FILE_SIZE + 1)
    except OSError as exc:
        raise SetupError(f"cannot read config {path}: {exc.strerror}") from None
    if len(data) > MAX_FILE_SIZE:
        raise MalformedError(f"config {path} is larger than {MAX_FILE_SIZE} bytes")
    try:
        text = data.decode("utf-8")
        return parse_config(text), text
    except UnicodeDecodeError:
        raise MalformedError(f"config {path} is not UTF-8") from None
    except MalformedError as exc:
        raise MalformedError(f"{path}: {exc}") from None


def read_config(path: Path) -> WitnessConfig:
    return read_config_text(path)[0]


def cosigner_for(config: WitnessConfig, config_text: str, data: Path) -> Cosigner | None:
    """Worker processes that check and cosign with the keys in `data` (config `workers`); None: the event loop."""
    if config.workers == 0:
        return None
    return PoolCosigner(WorkerSetup(config_text, str(data), str(data / DATABASE_FILE)), config.workers)


def server_settings(app: Any, listen: tuple[str, int], log_level: str, access_log: bool) -> uvicorn.Config:
    """uvicorn as the witness runs it (loadtest/witness_bench.py serves its no-work bound with the same)."""
    host, port = listen
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=access_log,
        lifespan="off",
        proxy_headers=False,  # the TCP peer is the client: no header from it says otherwise (logserver/cli.py)
        http=header_deadline_protocol(HEADER_TIMEOUT, one_write=True),
        limit_concurrency=MAX_CONNECTIONS,
        timeout_keep_alive=KEEP_ALIVE,
    )


def serve_app(app: Any, listen: tuple[str, int]) -> None:
    """Serve `app` as `serve` serves the witness, until SIGINT or SIGTERM (loadtest/witness_bench.py measures the
    HTTP stack's own bound this way: a handler that reads the body and does no work)."""
    uvloop.run(uvicorn.Server(server_settings(app, listen, "warning", False)).serve())


async def run_server(
    config: WitnessConfig,
    signers: Sequence[Signer],
    cosigner: Cosigner | None,
    database: Path,
    listen: tuple[str, int],
    log_level: str,
    access_log: bool,
    listener: socket.socket | None = None,
) -> None:
    """Serve until SIGINT or SIGTERM, on `listener` (one of `processes`, witness/processes.py) or on `listen`."""
    try:
        storage = await SQLiteStorage.open(str(database))
    except (sqlite3.Error, OSError, RuntimeError) as exc:
        raise SetupError(f"cannot open the database {database}: {exc}") from None
    try:
        if cosigner is not None:  # after the storage: the workers read the database it made
            await cosigner.start()
    except (OSError, TimeoutError, EOFError) as exc:
        if cosigner is not None:
            await cosigner.close()
        await storage.close()
        raise SetupError(f"the cosigning worker processes did not start: {exc}") from None
    try:
        app = create_app(config, storage, signers, time.time, cosigner=cosigner)
        settings = server_settings(app, listen, log_level, access_log)
        await uvicorn.Server(settings).serve(sockets=[listener] if listener is not None else None)
    finally:
        if cosigner is not None:
            await cosigner.close()
        await storage.close()


@click.group()
def main() -> None:
    """A C2SP tlog-witness: cosigns checkpoints of the logs it is configured for, never two roots for one size."""


DATA_OPTION = click.option(
    "--data",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory of the witness key and database.",
)


@main.command()
@DATA_OPTION
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The witness TOML config (name, [[log]] origin + vkey).",
)
@click.option("--listen", default=None, help="HOST:PORT to listen on (default: the config's `listen`).")
@click.option("--log-level", default="info", type=click.Choice(["critical", "error", "warning", "info", "debug"]))
@click.option("--access-log/--no-access-log", default=True, help="Log every request (default: on).")
def serve(data: Path, config_path: Path, listen: str | None, log_level: str, access_log: bool) -> None:
    """Run the witness HTTP server."""
    try:
        config, config_text = read_config_text(config_path)
        address = parse_listen(listen if listen is not None else config.listen)
        signers = load_or_create_keys(data, config.name, config.algorithms, time.time)
    except (MalformedError, SetupError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    print_identity(signers, False)
    if config.processes > 1:
        serve_processes(config, config_text, signers, data, address, log_level, access_log)
        return
    cosigner = cosigner_for(config, config_text, data)
    try:  # uvloop: uvicorn picks it only when it makes the loop itself, which it does not here
        uvloop.run(run_server(config, signers, cosigner, data / DATABASE_FILE, address, log_level, access_log))
    except SetupError as exc:
        raise click.ClickException(str(exc)) from None


def serve_processes(
    config: WitnessConfig,
    config_text: str,
    signers: Sequence[Signer],
    data: Path,
    address: tuple[str, int],
    log_level: str,
    access_log: bool,
) -> None:
    """`processes = N`: the port held and the database made here, once, then N servers on the port
    (witness/processes.py), until SIGINT or SIGTERM."""
    try:
        held = reserve_port(address)
    except OSError as exc:
        raise click.ClickException(
            f"cannot listen on {address[0]}:{address[1]}: {exc.strerror}; choose another --listen"
        ) from None
    try:
        create_database(str(data / DATABASE_FILE))
    except (sqlite3.Error, OSError, RuntimeError) as exc:
        held.close()
        raise click.ClickException(f"cannot open the database {data / DATABASE_FILE}: {exc}") from None
    run = functools.partial(serve_process, config, config_text, signers, data, address, log_level, access_log)
    try:
        supervise(run, address, config.processes)
    finally:
        held.close()


def serve_process(
    config: WitnessConfig,
    config_text: str,
    signers: Sequence[Signer],
    data: Path,
    address: tuple[str, int],
    log_level: str,
    access_log: bool,
    listener: socket.socket,
) -> None:
    """One of `processes`: the whole witness on `listener`; a refusal is one line, and the supervisor starts it
    again."""
    cosigner = cosigner_for(config, config_text, data)
    database = data / DATABASE_FILE
    try:
        uvloop.run(run_server(config, signers, cosigner, database, address, log_level, access_log, listener))
    except SetupError as exc:
        click.echo(f"tlog-witness process {os.getpid()} stopped: {exc}", err=True)
        sys.exit(1)


def print_identity(signers: Sequence[Signer], as_json: bool) -> None:
    """`name`, then one `vkey` line per key (Ed25519 first); JSON: `vkey` is the first, `vkeys` all of them."""
    vkeys = [signer.verifier().vkey for signer in signers]
    if as_json:  # for scripts: no scraping of the text lines
        click.echo(json.dumps({"name": signers[0].name, "vkey": vkeys[0], "vkeys": vkeys}))
        return
    click.echo(f"name {signers[0].name}")
    for vkey in vkeys:
        click.echo(f"vkey {vkey}")


JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print name and vkeys as one JSON object.")


@main.command()
@DATA_OPTION
@click.option("--name", default=None, help="The witness's name (the key name in its vkey), e.g. witness1.example.org.")
@click.option(
    "--config",
    "config_path",
    default=None,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Take the name from this witness config instead of --name.",
)
@click.option(
    "--algorithm",
    "algorithms",
    multiple=True,
    type=click.Choice(ALGORITHMS),
    help="With --name: a cosignature algorithm to make a key for; repeat for both (default: ed25519). "
    "With --config the config's `algorithms` decide.",
)
@JSON_OPTION
def init(data: Path, name: str | None, config_path: Path | None, algorithms: tuple[str, ...], as_json: bool) -> None:
    """Make the witness keys (those missing) and print its name and vkeys, before the witness first runs, so the
    log's config and the verifiers' trust policy can be written.
    Example: tlog-witness init --data ./w1 --name w1.example.org --algorithm ed25519 --algorithm ml-dsa-44"""
    if (name is None) == (config_path is None):
        raise click.ClickException("give exactly one of --name NAME or --config witness.toml")
    if config_path is not None and algorithms:
        raise click.ClickException("--algorithm goes with --name; with --config, the config's `algorithms` decide")
    try:
        if config_path is not None:
            config = read_config(config_path)
            chosen, algorithms = config.name, config.algorithms
        else:
            chosen, algorithms = str(name), algorithms or (ED25519,)
        signers = load_or_create_keys(data, chosen, algorithms, time.time)
    except (MalformedError, SetupError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    print_identity(signers, as_json)


@main.command()
@DATA_OPTION
@JSON_OPTION
def info(data: Path, as_json: bool) -> None:
    """Print the witness name and its cosignature verifier keys, one per algorithm (for trust policies)."""
    try:
        signers = existing_keys(data, time.time)
    except SetupError as exc:
        raise click.ClickException(str(exc)) from None
    print_identity(signers, as_json)


if __name__ == "__main__":
    main()
