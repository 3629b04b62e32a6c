"""`tlog revoke`: log a signed `revoke` statement for a document this issuer key issued.

Before submitting, the log is asked about the document: a key may revoke only what it issued, or what a key it
continues issued (tlogcore/status.py), and only once. Anything else is refused here, so the log never holds a
revocation that does not count."""

import time
from pathlib import Path

import click

from logserver import api
from logserver.client import LogClient
from tlogcore.encoding import parse_hash_hex
from tlogcore.errors import TlogError
from tlogcore.statement import ISSUE, REVOKE, parse_statement
from tlogcore.status import REVOKED, continued_keys, document_status
from tools.clikit import log_option, read_key, run
from tools.hashing import sha256_file
from tools.submit import (
    revoke_statement,
)


def revocation_refusal(history: api.DocumentHistory, issuers: api.IssuerRegistry, vkey: str) -> str | None:
    """Why this key may not revoke the document, by the one status rule; None when it may."""
    statements = [parse_statement(item.statement) for item in history.statements]
    keys = [key for issuer in issuers.issuers for key in issuer.keys]
    continues = {key.vkey: key.continues for key in keys if key.continues is not None}
    mine = continued_keys(vkey, continues)
    issued = [s for s in statements if s.kind == ISSUE and s.signer in mine]
    if not issued:
        return "this key (or a key it continues) never issued this document in this log"
    if document_status(issued + [s for s in statements if s.kind == REVOKE], continues) == REVOKED:
        return "this document is already revoked by its issuer"
    return None


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
            history, issuers = await client.document(document), await client.issuers()
            refusal = revocation_refusal(history, issuers, signer.verifier().vkey)
            if refusal is not None:
                raise click.ClickException(f"{document.hex()}: {refusal}; nothing was submitted")
            result = await client.submit([revoke_statement(origin, signer, document, reason, int(time.time()))])
            click.echo(f"revoked {document.hex()}: entry {result.entries[0].index}")

    run(go())
