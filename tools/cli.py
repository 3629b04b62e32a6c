"""`tlog`: the issuer, operator and verifier tool (this is its first part: keys, submit, issuer registry).

    tlog keygen --name moeys.gov.kh --out issuer.key
    tlog issuer add --log http://127.0.0.1:8080 --registry-key data/registry.key --issuer <vkey> --label "Ministry"
    tlog submit --log http://127.0.0.1:8080 --key issuer.key diploma.pdf ...
"""

import asyncio
import hashlib
import os
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import click

from logserver.client import LogClient, LogClientError
from tlogcore.bundle import make_bundle
from tlogcore.cosignature import CosignatureV1Signer
from tlogcore.errors import TlogError
from tlogcore.keys import (
    Ed25519Signer,
    check_key_name,
    check_private_key_mode,
    format_signer_key,
    generate_ed25519_seed,
    parse_signer_key,
)
from tlogcore.statement import ISSUE, ISSUER_ADD, ISSUER_RETIRE, Statement, sign_statement

BATCH = 1000
BUNDLE_SUFFIX = ".tlog-proof"


def read_key(path: Path) -> Ed25519Signer:
    try:
        check_private_key_mode(path.stat().st_mode, str(path))
        return parse_signer_key(path.read_text().strip())
    except (OSError, TlogError) as exc:
        raise click.ClickException(f"{path}: {exc}") from exc


def run(coroutine: Coroutine[Any, Any, None]) -> None:
    try:
        asyncio.run(coroutine)
    except (LogClientError, TlogError) as exc:
        raise click.ClickException(str(exc)) from exc


@click.group()
def main() -> None:
    """Issue, submit and verify documents on a transparency log."""


@main.command()
@click.option("--name", required=True, help="Key name, e.g. moeys.gov.kh (no spaces, no '+').")
@click.option("--out", "out", type=click.Path(path_type=Path), required=True, help="Private key file to create.")
@click.option("--kind", type=click.Choice(["issuer", "log", "registry", "witness"]), default="issuer")
def keygen(name: str, out: Path, kind: str) -> None:
    """Generate an Ed25519 key (file mode 0600; never overwrites) and print its verifier key.

    Example: tlog keygen --name moeys.gov.kh --out moeys.key
    """
    try:
        signer = Ed25519Signer(check_key_name(name), generate_ed25519_seed())
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise click.ClickException(f"{out} exists; refusing to overwrite a key") from exc
    except (OSError, TlogError) as exc:
        raise click.ClickException(str(exc)) from exc
    with os.fdopen(fd, "w") as handle:
        handle.write(format_signer_key(signer) + "\n")
    if kind == "witness":  # witnesses cosign with type 0x04 keys
        click.echo(CosignatureV1Signer(name, signer.seed, time.time).verifier().vkey)
    else:
        click.echo(signer.verifier().vkey)


def sha256_file(path: Path) -> bytes:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.digest()


@main.command()
@click.option("--log", "log_url", required=True, help="The log's base URL.")
@click.option("--key", "key_path", type=click.Path(path_type=Path, exists=True), required=True, help="Issuer key.")
@click.option("--ref", default=None, help="Optional reference put in every statement (document type or number).")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path, exists=True, dir_okay=False))
def submit(log_url: str, key_path: Path, ref: str | None, files: tuple[Path, ...]) -> None:
    """Hash files locally, sign `issue` statements, submit them, and save FILE.tlog-proof next to each.

    Example: tlog submit --log http://127.0.0.1:8080 --key moeys.key diploma.pdf
    """
    signer = read_key(key_path)

    async def go() -> None:
        async with LogClient(log_url) as client:
            origin = (await client.info())["origin"]
            vkey = signer.verifier().vkey
            now = int(time.time())
            for start in range(0, len(files), BATCH):
                chunk = files[start:start + BATCH]
                statements = [
                    sign_statement(Statement(origin, ISSUE, vkey, now, document=sha256_file(f), ref=ref), signer)
                    for f in chunk
                ]
                result = await client.submit(statements)
                for path, statement, entry in zip(chunk, statements, result.entries, strict=True):
                    bundle = make_bundle(statement, entry.index, entry.inclusion_proof, result.checkpoint)
                    bundle_path = path.with_name(path.name + BUNDLE_SUFFIX)
                    bundle_path.write_bytes(bundle.to_text())
                    note = " (already logged)" if entry.duplicate else ""
                    click.echo(f"{path}: entry {entry.index}{note}, bundle {bundle_path}")

    run(go())


@main.group()
def issuer() -> None:
    """Operator: add or retire issuer keys (registry statements, signed by the registry key)."""


async def _registry_statement(log_url: str, registry: Ed25519Signer, kind: str, issuer_vkey: str,
                              label: str | None, reason: str | None) -> None:
    async with LogClient(log_url) as client:
        origin = (await client.info())["origin"]
        statement = Statement(origin, kind, registry.verifier().vkey, int(time.time()), issuer=issuer_vkey,
                              ref=label, reason=reason)
        result = await client.submit([sign_statement(statement, registry)])
        click.echo(f"{kind} {issuer_vkey.split('+')[0]}: entry {result.entries[0].index}")


@issuer.command("add")
@click.option("--log", "log_url", required=True)
@click.option("--registry-key", type=click.Path(path_type=Path, exists=True), required=True)
@click.option("--issuer", "issuer_vkey", required=True, help="The issuer's verifier key (from tlog keygen).")
@click.option("--label", default=None, help="The issuer's display name, e.g. 'Ministry of Education'.")
def issuer_add(log_url: str, registry_key: Path, issuer_vkey: str, label: str | None) -> None:
    """Register an issuer key. Example: tlog issuer add --log URL --registry-key data/registry.key --issuer VKEY"""
    run(_registry_statement(log_url, read_key(registry_key), ISSUER_ADD, issuer_vkey, label, None))


@issuer.command("retire")
@click.option("--log", "log_url", required=True)
@click.option("--registry-key", type=click.Path(path_type=Path, exists=True), required=True)
@click.option("--issuer", "issuer_vkey", required=True)
@click.option("--reason", default=None)
def issuer_retire(log_url: str, registry_key: Path, issuer_vkey: str, reason: str | None) -> None:
    """Retire an issuer key. Example: tlog issuer retire --log URL --registry-key data/registry.key --issuer VKEY"""
    run(_registry_statement(log_url, read_key(registry_key), ISSUER_RETIRE, issuer_vkey, None, reason))
