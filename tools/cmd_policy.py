"""`tlog policy check`: parse a trust policy strictly and show what it trusts."""

import time
from pathlib import Path

import click

from tlogcore.errors import TlogError
from tlogcore.policy import Policy
from tools.clikit import (
    fetch_checkpoint,
    read_policy,
    run,
)


@click.group()
def policy() -> None:
    """Trust policies (C2SP tlog-policy text: log keys, witness keys, k-of-n quorum)."""


def describe_policy(p: Policy) -> list[str]:
    lines = [f"log {log.name} ({log.key_id:08x})" for log in p.logs]
    lines += [f"witness {name}: {w.name} ({w.key_id:08x})" for name, w in p.witnesses.items()]
    lines += [f"group {g.name}: {g.threshold} of {', '.join(g.members)}" for g in p.groups.values()]
    lines.append(f"quorum: {p.quorum or 'none (no cosignatures required)'}")
    return lines


@policy.command("check")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--log", "log_url", default=None, metavar="URL", help="Also check the log's current checkpoint.")
def policy_check(path: Path, log_url: str | None) -> None:
    """Parse a trust policy strictly and show what it trusts; with --log, check the current checkpoint too.

    Example: tlog policy check trust.policy --log http://127.0.0.1:8080
    """
    p = read_policy(path)
    for line in describe_policy(p):
        click.echo(line)
    if log_url is not None:
        note = run(fetch_checkpoint(log_url))
        try:
            trusted = p.verify_checkpoint(note, time.time())
        except TlogError as exc:
            raise click.ClickException(f"the log's checkpoint does not meet this policy: {exc}") from exc
        click.echo(
            f"ok: checkpoint of {trusted.checkpoint.origin} at size {trusted.checkpoint.size}, cosigned by "
            f"{', '.join(sorted(trusted.witnesses)) or 'none'}"
        )
