"""`tlog checkpoint` and `tlog proof inclusion|consistency`: read the log, check what it says."""

import time
from pathlib import Path

import click

from logserver.client import LogClient
from tlogcore import merkle
from tlogcore.bundle import BINARY_MAGIC
from tlogcore.checkpoint import parse_checkpoint
from tlogcore.encoding import b64encode
from tlogcore.errors import TlogError
from tlogcore.merkle import leaf_hash, verify_consistency, verify_inclusion
from tlogcore.note import parse_note
from tools.clikit import fetch_checkpoint, log_option, policy_option, read_policy, run, write_atomic
from tools.tileproofs import proof_from_tiles
from tools.verify import load_bundle

from_tiles_option = click.option(
    "--from-tiles",
    is_flag=True,
    help="Compute the proof from the log's tiles, each checked against the checkpoint, not from its proof API.",
)


@click.command()
@log_option
@policy_option("Verify the checkpoint under this trust policy (env TLOG_POLICY).", required=False)
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), default=None, help="Save the note here.")
def checkpoint(log_url: str, policy_path: Path | None, out: Path | None) -> None:
    """Fetch the log's current checkpoint, verify it (with --policy) and show it.

    Example: tlog checkpoint --log http://127.0.0.1:8080 --policy trust.policy
    """
    note = run(fetch_checkpoint(log_url))
    try:
        if policy_path is not None:
            trusted = read_policy(policy_path).verify_checkpoint(note, time.time())
            cp, verified = trusted.checkpoint, f"verified; cosigned by {', '.join(sorted(trusted.witnesses)) or 'none'}"
        else:
            cp, verified = parse_checkpoint(parse_note(note).text), "NOT verified (no --policy)"
    except TlogError as exc:
        raise click.ClickException(f"the checkpoint does not verify: {exc}") from exc
    click.echo(f"origin {cp.origin}\nsize {cp.size}\nroot {cp.root.hex()}\n{verified}")
    if out is not None:
        write_atomic(out, note)


@click.group()
def proof() -> None:
    """Fetch inclusion and consistency proofs (and check them against a verified checkpoint with --policy)."""


@proof.command("inclusion")
@log_option
@click.option("--index", type=click.IntRange(0), default=None, help="Entry index.")
@click.option(
    "--bundle",
    "bundle_path",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    default=None,
    help="Take the entry from a bundle and prove it in the current checkpoint.",
)
@policy_option("Check the proof's checkpoint under this trust policy (env TLOG_POLICY).", required=False)
@from_tiles_option
def proof_inclusion(
    log_url: str, index: int | None, bundle_path: Path | None, policy_path: Path | None, from_tiles: bool
) -> None:
    """Inclusion proof of an entry in the current tree.

    Example: tlog proof inclusion --log http://127.0.0.1:8080 --bundle diploma.pdf.tlog-proof --policy trust.policy
    """
    leaf = None
    if bundle_path is not None:
        try:
            b = load_bundle(bundle_path.read_bytes())
        except (OSError, TlogError) as exc:
            raise click.ClickException(f"{bundle_path}: {exc}") from exc
        index = b.index
        leaf = leaf_hash(b.extra or b"")
    if index is None:
        raise click.UsageError("give --index or --bundle")
    trust = read_policy(policy_path) if policy_path is not None else None

    async def go(i: int) -> None:
        async with LogClient(log_url) as client:
            note = await client.checkpoint()
            cp = (
                trust.verify_checkpoint(note, time.time()).checkpoint
                if trust is not None
                else parse_checkpoint(parse_note(note).text)
            )
            if from_tiles:
                hashes = await proof_from_tiles(client, cp.size, cp.root, merkle.inclusion_plan(i, cp.size))
            else:
                hashes = list((await client.inclusion_proof(i, cp.size)).proof)
            click.echo(f"index {i}\nsize {cp.size}\nroot {cp.root.hex()}")
            for h in hashes:
                click.echo(b64encode(h))
            if leaf is not None and trust is not None:
                verify_inclusion(leaf, i, cp.size, hashes, cp.root)
                click.echo("ok: the entry is included in the verified checkpoint")

    run(go(index))


@proof.command("consistency")
@log_option
@click.option(
    "--old",
    "old_path",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    required=True,
    help="An older checkpoint (saved with tlog checkpoint --out, or a bundle) to prove consistent.",
)
@policy_option("Trust policy (C2SP tlog-policy text) both checkpoints must meet (env TLOG_POLICY).")
@from_tiles_option
def proof_consistency(log_url: str, old_path: Path, policy_path: Path, from_tiles: bool) -> None:
    """Prove that the log's current tree extends an older checkpoint (no fork, no rewrite).

    Example: tlog proof consistency --log http://127.0.0.1:8080 --old saved.checkpoint --policy trust.policy
    """
    trust = read_policy(policy_path)
    try:
        data = old_path.read_bytes()
        if data.startswith(b"c2sp.org/tlog-proof@v1") or data.startswith(BINARY_MAGIC):
            data = load_bundle(data).checkpoint
        old = trust.verify_checkpoint(data, time.time()).checkpoint
    except (OSError, TlogError) as exc:
        raise click.ClickException(f"{old_path}: {exc}") from exc

    async def go() -> None:
        async with LogClient(log_url) as client:
            new = trust.verify_checkpoint(await client.checkpoint(), time.time()).checkpoint
            hashes: list[bytes] = []
            if old.size and from_tiles:
                plan = merkle.consistency_plan(old.size, new.size)
                hashes = await proof_from_tiles(client, new.size, new.root, plan)
            elif old.size:
                hashes = list((await client.consistency_proof(old.size, new.size)).proof)
            click.echo(f"old {old.size} {old.root.hex()}\nnew {new.size} {new.root.hex()}")
            for h in hashes:
                click.echo(b64encode(h))
            verify_consistency(old.size, new.size, old.root, new.root, hashes)
            click.echo("ok: the current checkpoint is consistent with the old one")

    run(go())
