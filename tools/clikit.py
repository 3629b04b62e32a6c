"""What every `tlog` command shares: reading key and policy files, writing files safely, running a client
coroutine with its errors shown as one line, and the --log option."""

import asyncio
import os
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import click

from logserver.client import LogClient, LogClientError
from tlogcore.errors import TlogError
from tlogcore.keys import Ed25519Signer, check_private_key_mode, parse_signer_key
from tlogcore.policy import Policy, parse_policy
from tools.verdict import plain_client_error, private_key_refusal

T = TypeVar("T")


def read_key(path: Path) -> Ed25519Signer:
    """A private key, refused if anyone but its owner can read it."""
    try:
        check_private_key_mode(path.stat().st_mode, str(path))
        return parse_signer_key(path.read_text().strip())
    except (OSError, TlogError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"{path}: {exc}") from exc


def read_policy(path: Path) -> Policy:
    try:
        text = path.read_text(encoding="utf-8")
        refusal = private_key_refusal(path, text)
        if refusal is not None:
            raise click.ClickException(refusal)
        return parse_policy(text)
    except (OSError, UnicodeDecodeError, TlogError) as exc:
        raise click.ClickException(f"policy {path}: {exc}") from exc


def write_private(path: Path, text: str) -> None:
    """Owner-only (0600) and never over an existing file."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise click.ClickException(f"{path} exists; refusing to overwrite a key") from exc
    except OSError as exc:
        raise click.ClickException(f"{path}: {exc}") from exc
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(coroutine)
    except LogClientError as exc:
        raise click.ClickException(plain_client_error(None, exc)) from exc
    except TlogError as exc:
        raise click.ClickException(str(exc)) from exc


log_option = click.option("--log", "log_url", required=True, metavar="URL", help="The log's base URL.")


def policy_option(help_text: str, required: bool = True) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`--policy FILE` (env TLOG_POLICY): the trust policy, the one thing a verifying command trusts."""
    path = click.Path(path_type=Path, dir_okay=False)
    return click.option("--policy", "policy_path", envvar="TLOG_POLICY", required=required, type=path, help=help_text)


async def fetch_checkpoint(log_url: str) -> bytes:
    async with LogClient(log_url) as client:
        return await client.checkpoint()
