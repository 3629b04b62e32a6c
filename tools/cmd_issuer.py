"""`tlog issuer add|retire|list`: the operator's registry statements."""

import json
import time
from pathlib import Path

import click

from logserver import api
from logserver.client import LogClient
from tlogcore.keys import Signer
from tlogcore.statement import ISSUER_ADD, ISSUER_RETIRE, Statement, sign_statement
from tools.clikit import log_option, read_key, run


@click.group()
def issuer() -> None:
    """Operator: add, retire and list issuer keys (registry statements, signed by the registry key)."""


async def _registry_statement(
    log_url: str,
    registry: Signer,
    kind: str,
    issuer_vkey: str,
    label: str | None,
    reason: str | None,
    continues: str | None = None,
    unsafe_from: int | None = None,
) -> None:
    async with LogClient(log_url) as client:
        origin = (await client.info()).origin
        statement = Statement(
            origin,
            kind,
            registry.verifier().vkey,
            int(time.time()),
            issuer=issuer_vkey,
            ref=label,
            reason=reason,
            continues=continues,
            unsafe_from=unsafe_from,
        )
        result = await client.submit([sign_statement(statement, registry)])
        click.echo(f"{kind} {issuer_vkey.split('+')[0]}: entry {result.entries[0].index}")


@issuer.command("add")
@log_option
@click.option("--registry-key", type=click.Path(path_type=Path, exists=True), required=True)
@click.option("--issuer", "issuer_vkey", required=True, help="The issuer's verifier key (from tlog keygen).")
@click.option("--label", default=None, help="The issuer's display name, e.g. 'Ministry of Education'.")
@click.option(
    "--continues",
    default=None,
    metavar="VKEY",
    help="Rotation: the registered key of the same issuer that this new key continues (it may then keep that "
    "issuer's key name and label, and revoke what the old key issued).",
)
def issuer_add(log_url: str, registry_key: Path, issuer_vkey: str, label: str | None, continues: str | None) -> None:
    """Register an issuer key. Example: tlog issuer add --log URL --registry-key data/registry.key --issuer VKEY

    A key name and a label belong to the issuer that registered them first; another issuer's key with the same
    name or label is refused. A new key for the same issuer: add it with --continues OLD_VKEY."""
    run(_registry_statement(log_url, read_key(registry_key), ISSUER_ADD, issuer_vkey, label, None, continues))


@issuer.command("retire")
@log_option
@click.option("--registry-key", type=click.Path(path_type=Path, exists=True), required=True)
@click.option("--issuer", "issuer_vkey", required=True)
@click.option("--reason", default=None)
@click.option(
    "--unsafe-from",
    type=click.IntRange(min=0),
    default=None,
    metavar="N",
    help="The key was stolen: whatever it signed at log entry N or later is flagged to every verifier "
    "(N: the first entry you cannot vouch for; its documents before N stay valid).",
)
def issuer_retire(
    log_url: str, registry_key: Path, issuer_vkey: str, reason: str | None, unsafe_from: int | None
) -> None:
    """Retire an issuer key; what it issued stays valid (retiring is not revoking). A stolen key: add
    --unsafe-from N. Example: tlog issuer retire --log URL --registry-key data/registry.key --issuer VKEY"""
    run(
        _registry_statement(
            log_url, read_key(registry_key), ISSUER_RETIRE, issuer_vkey, None, reason, unsafe_from=unsafe_from
        )
    )


@issuer.command("list")
@log_option
@click.option("--json", "as_json", is_flag=True)
def issuer_list(log_url: str, as_json: bool) -> None:
    """List every issuer key the log's registry ever held. Example: tlog issuer list --log URL"""

    async def go() -> api.IssuerRegistry:
        async with LogClient(log_url) as client:
            return await client.issuers()

    registry = run(go())
    if as_json:
        click.echo(json.dumps(registry.to_json(), ensure_ascii=False))
        return
    for entry in registry.issuers:
        for key in entry.keys:
            state = f"retired in entry {key.retired.index}" if key.retired else "active"
            if key.retired is not None and key.retired.unsafe_from is not None:
                state += f", reported stolen: unsafe from entry {key.retired.unsafe_from}"
            label = f" {key.label!r}" if key.label else ""
            click.echo(f"{entry.name}{label}: {state} (added in entry {key.added.index}) {key.vkey}")
