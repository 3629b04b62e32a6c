"""`tlog refresh BUNDLE`: move a proof bundle onto the log's newest cosigned checkpoint (docs/thirty-years.md).

The bundle keeps its statement and index; its checkpoint becomes the log's newest (today's log key and witnesses)
and its inclusion proof is re-derived for that tree. Everything is verified under the trust policy before a byte is
written; the file is replaced atomically, and only by a bundle that is no weaker (a tree at least as large).
"""

import time
from pathlib import Path

import click

from logserver.client import LogClient
from tlogcore.bundle import BINARY_MAGIC, HEADER, InconsistentLogError, Refreshed, TlogProof, to_binary
from tlogcore.errors import TlogError
from tlogcore.policy import Policy
from tools.clikit import log_option, policy_option, read_policy, run, write_atomic
from tools.logkeys import following_rotations
from tools.qr import parse_payload
from tools.verify import refresh_online, relied_on


def _read_bundle(path: Path) -> tuple[TlogProof, bytes]:
    """The bundle and its raw bytes; one line naming the file if it is not a bundle file."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise click.ClickException(f"cannot read {path}: {exc.strerror or exc}") from exc
    if not raw.startswith((BINARY_MAGIC, HEADER.encode())):
        raise click.ClickException(f"{path} is not a proof bundle file (tlog-proof text or binary): give the bundle")
    try:
        found = parse_payload(raw)
    except TlogError as exc:
        raise click.ClickException(f"{path} is a damaged proof bundle: {exc}") from exc
    if not isinstance(found, TlogProof):  # parse_payload gives a bundle for both prefixes checked above
        raise click.ClickException(f"{path} is not a proof bundle file")
    return found, raw


async def _refresh(log_url: str, bundle: TlogProof, policy: Policy, path: Path) -> Refreshed:
    now = time.time()
    try:
        async with LogClient(log_url, timeout=20) as client:
            newest = await client.checkpoint()
            policy = await following_rotations(client, newest, policy, now)  # a rotated log key: tools/logkeys.py
            found = await refresh_online(client, bundle, newest, policy, now)
    except TlogError as exc:  # the bundle's own check, or the log's newest checkpoint, failing under the policy
        raise click.ClickException(f"{path}: cannot refresh, nothing written: {exc}") from exc
    if isinstance(found, InconsistentLogError):
        raise click.ClickException(
            f"the log misbehaved: {found}. The bundle was left as it is: keep it and report this to the log's "
            "operator and its monitors"
        )
    return found


@click.command()
@click.argument("bundle_path", metavar="BUNDLE", type=click.Path(path_type=Path, dir_okay=False))
@log_option
@policy_option("Trust policy (C2SP tlog-policy text); it must list the log's keys, old and new. Env: TLOG_POLICY.")
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write the refreshed bundle here instead of replacing BUNDLE.",
)
def refresh(bundle_path: Path, log_url: str, policy_path: Path, out: Path | None) -> None:
    """Refresh BUNDLE: its statement proven in the log's newest cosigned checkpoint, verified, written atomically
    in the same form (text or binary). A bundle whose checkpoint the log's history contradicts is refused loudly
    and left untouched.

    Example: tlog refresh diploma.pdf.tlog-proof --log https://log.example.gov.kh --policy trust.policy
    """
    policy = read_policy(policy_path)
    bundle, raw = _read_bundle(bundle_path)
    refreshed = run(_refresh(log_url, bundle, policy, bundle_path))
    target = out or bundle_path
    if not refreshed.changed and target == bundle_path:
        click.echo(f"{bundle_path} is up to date: its {relied_on(refreshed.verified.trusted)} is the log's newest")
        return
    new = refreshed.bundle
    try:
        data = to_binary(new) if raw.startswith(BINARY_MAGIC) else new.to_text()
    except TlogError as exc:
        raise click.ClickException(f"cannot write the binary form, nothing written: {exc}; use --out FILE") from exc
    try:
        write_atomic(target, data)
    except OSError as exc:
        raise click.ClickException(f"cannot write {target}: {exc.strerror or exc}; nothing was replaced") from exc
    click.echo(
        f"wrote {target}: now proven in the {relied_on(refreshed.verified.trusted)} "
        f"(was tree size {refreshed.previous.size})"
    )
