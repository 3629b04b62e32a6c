"""`tlog-witness`: make a witness key, run a witness, or show its key. The only witness module that reads files or
starts a server.

    tlog-witness init --data DIR (--name NAME | --config witness.toml) [--json]
    tlog-witness serve --data DIR --config witness.toml [--listen 127.0.0.1:7380]
    tlog-witness info --data DIR [--json]

DIR holds `witness.key` (the Ed25519 seed in Go's `PRIVATE+KEY+…` form, mode
0600, made by `init` or on first run) and `witness.sqlite` (the state). The cosignature
verifier key printed is what logs and verifiers put in their trust policy
(`witness <name> <vkey>`, c2sp.org/tlog-policy).
"""

import asyncio
import json
import os
import sqlite3
import stat
import time
from pathlib import Path

import click
import uvicorn

from tlogcore.cosignature import CosignatureV1Signer
from tlogcore.errors import MalformedError
from tlogcore.keys import Ed25519Signer, format_signer_key, generate_ed25519_seed, parse_signer_key
from witness.app import create_app
from witness.config import WitnessConfig, parse_config, parse_listen
from witness.headerdeadline import header_deadline_protocol
from witness.storage import SQLiteStorage

KEY_FILE = "witness.key"
DATABASE_FILE = "witness.sqlite"
MAX_FILE_SIZE = 1024 * 1024
HEADER_TIMEOUT = 10.0  # seconds for a request's headers (slowloris); the body has its own deadline (app.py)
MAX_CONNECTIONS = 256  # beyond it uvicorn answers 503 at once; a witness has few clients (its logs, monitors)
KEEP_ALIVE = 5  # seconds an idle keep-alive connection stays open


class SetupError(Exception):
    """A file the witness needs is missing, unreadable, or not safe to use."""


def read_config(path: Path) -> WitnessConfig:
    try:
        with path.open("rb") as file:
            data = file.read(MAX_FILE_SIZE + 1)
    except OSError as exc:
        raise SetupError(f"cannot read config {path}: {exc.strerror}") from None
    if len(data) > MAX_FILE_SIZE:
        raise MalformedError(f"config {path} is larger than {MAX_FILE_SIZE} bytes")
    try:
        return parse_config(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise MalformedError(f"config {path} is not UTF-8") from None
    except MalformedError as exc:
        raise MalformedError(f"{path}: {exc}") from None


def create_key_file(path: Path, name: str) -> Ed25519Signer:
    """Write a new seed with owner-only permissions; O_EXCL so an existing key is never overwritten."""
    signer = Ed25519Signer(name, generate_ed25519_seed())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, (format_signer_key(signer) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return signer


def read_key_file(path: Path) -> Ed25519Signer:
    """Read the seed, refusing a key file that anyone but its owner may read or write."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise SetupError(f"cannot open key file {path}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SetupError(f"key file {path} is not a regular file")
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077:
            raise SetupError(f"key file {path} has mode {mode:04o}, readable by others: run chmod 600 {path}")
        data = os.read(fd, 4096)
    finally:
        os.close(fd)
    text = data.decode("ascii", "replace")
    if not text.endswith("\n") or text.count("\n") != 1:
        raise SetupError(f"key file {path}: want one line PRIVATE+KEY+<name>+<id>+<key>")
    try:
        return parse_signer_key(text[:-1])
    except MalformedError as exc:
        raise SetupError(f"key file {path}: {exc}") from None


def load_or_create_key(data: Path, name: str) -> Ed25519Signer:
    path = data / KEY_FILE
    if not path.exists() and not path.is_symlink():
        data.mkdir(mode=0o700, parents=True, exist_ok=True)
        return create_key_file(path, name)
    signer = read_key_file(path)
    if signer.name != name:
        raise SetupError(
            f"key file {path} was made for witness name {signer.name!r} but the config says {name!r}; "
            "the name is part of the key ID, so changing it changes the witness's identity"
        )
    return signer


def cosigner(signer: Ed25519Signer) -> CosignatureV1Signer:
    return CosignatureV1Signer(signer.name, signer.seed, time.time)


async def run_server(
    config: WitnessConfig,
    signer: CosignatureV1Signer,
    database: Path,
    host: str,
    port: int,
    log_level: str,
    access_log: bool,
) -> None:
    try:
        storage = await SQLiteStorage.open(str(database))
    except (sqlite3.Error, OSError, RuntimeError) as exc:
        raise SetupError(f"cannot open the database {database}: {exc}") from None
    try:
        app = create_app(config, storage, signer, time.time)
        settings = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level=log_level,
            access_log=access_log,
            lifespan="off",
            http=header_deadline_protocol(HEADER_TIMEOUT),
            limit_concurrency=MAX_CONNECTIONS,
            timeout_keep_alive=KEEP_ALIVE,
        )
        await uvicorn.Server(settings).serve()
    finally:
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
        config = read_config(config_path)
        host, port = parse_listen(listen if listen is not None else config.listen)
        signer = cosigner(load_or_create_key(data, config.name))
    except (MalformedError, SetupError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"name {signer.name}")
    click.echo(f"vkey {signer.verifier().vkey}")
    try:
        asyncio.run(run_server(config, signer, data / DATABASE_FILE, host, port, log_level, access_log))
    except SetupError as exc:
        raise click.ClickException(str(exc)) from None


def print_identity(signer: CosignatureV1Signer, as_json: bool) -> None:
    if as_json:  # for scripts: no scraping of the text lines
        click.echo(json.dumps({"name": signer.name, "vkey": signer.verifier().vkey}))
        return
    click.echo(f"name {signer.name}")
    click.echo(f"vkey {signer.verifier().vkey}")


JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print name and vkey as one JSON object.")


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
@JSON_OPTION
def init(data: Path, name: str | None, config_path: Path | None, as_json: bool) -> None:
    """Make the witness key (if missing) and print its name and vkey, before the witness first runs, so the log's
    config and the verifiers' trust policy can be written. Example: tlog-witness init --data ./w1 --name w1.example.org
    """
    if (name is None) == (config_path is None):
        raise click.ClickException("give exactly one of --name NAME or --config witness.toml")
    try:
        chosen = read_config(config_path).name if config_path is not None else str(name)
        signer = cosigner(load_or_create_key(data, chosen))
    except (MalformedError, SetupError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    print_identity(signer, as_json)


@main.command()
@DATA_OPTION
@JSON_OPTION
def info(data: Path, as_json: bool) -> None:
    """Print the witness name and its cosignature verifier key (for trust policies)."""
    if not (data / KEY_FILE).exists() and not (data / KEY_FILE).is_symlink():
        raise click.ClickException(f"{data / KEY_FILE} does not exist: run tlog-witness init --data {data} --name NAME")
    try:
        signer = cosigner(read_key_file(data / KEY_FILE))
    except SetupError as exc:
        raise click.ClickException(str(exc)) from None
    print_identity(signer, as_json)


if __name__ == "__main__":
    main()
