"""`tlog revoke`: log a signed `revoke` statement for a document this issuer key issued."""

import time
from pathlib import Path

import click

from logserver.client import LogClient
from tlogcore.encoding import parse_hash_hex
from tlogcore.errors import TlogError
from tools.clikit import log_option, read_key, run
from tools.hashing import sha256_file
from tools.submit import (
    revoke_statement,
)


@click.command()
@log_option
@click.option("--key", "key_path", type=click.Path(path_type=Path, exists=True, dir_okay=False), required=True)
@click.option("--sha256", "sha256_hex", default=None, help="The document's SHA-256 (instead of FILE).")
@click.option("--reason", default=None, help="Why, e.g. 'issued in error'.")
@click.argument("file", required=False, type=click.Path(path_type=Path, exists=True, dir_okay=False))
def revoke(log_url: str, key_path: Path, sha256_hex: str | None, reason: str | None, file: Path | None) -> None:
    """Revoke a document this issuer key issued: log a signed `revoke` statement.

    Example: tlog revoke --log http://127.0.0.1:8080 --key moeys.key diploma.pdf --reason "issued in error"
    """
    if (file is None) == (sha256_hex is None):
        raise click.UsageError("give FILE or --sha256, one of them")
    signer = read_key(key_path)
    try:
        document = sha256_file(file) if file is not None else parse_hash_hex(sha256_hex or "", "--sha256")
    except (OSError, TlogError) as exc:
        raise click.ClickException(str(exc)) from exc

    async def go() -> None:
        async with LogClient(log_url) as client:
            origin = (await client.info()).origin
            result = await client.submit([revoke_statement(origin, signer, document, reason, int(time.time()))])
            click.echo(f"revoked {document.hex()}: entry {result.entries[0].index}")

    run(go())
