"""`tlog keygen` and `tlog vkey`: make a key file, print a verifier key."""

from pathlib import Path

import click

from tlogcore.errors import TlogError
from tools.clikit import read_key, write_private
from tools.keyfiles import KINDS, new_key, vkey_for


@click.command()
@click.option(
    "--name",
    required=True,
    help="Key name, e.g. moeys.gov.kh (no spaces, no '+'). A log key's name is the log's origin.",
)
@click.option("--out", "out", type=click.Path(path_type=Path), required=True, help="Private key file to create.")
@click.option(
    "--kind",
    type=click.Choice(KINDS),
    default="issuer",
    show_default=True,
    help="witness keys publish a cosignature (type 0x04) verifier key; the others Ed25519 (0x01).",
)
def keygen(name: str, out: Path, kind: str) -> None:
    """Generate an Ed25519 key (file mode 0600; never overwrites) and print its verifier key.

    Example: tlog keygen --name moeys.gov.kh --out moeys.key
    """
    try:
        text, vkey = new_key(name, kind)
    except TlogError as exc:
        raise click.ClickException(str(exc)) from exc
    write_private(out, text)
    click.echo(vkey)


@click.command()
@click.option("--key", "key_path", type=click.Path(path_type=Path, exists=True, dir_okay=False), required=True)
@click.option("--kind", type=click.Choice(KINDS), default="issuer", show_default=True)
def vkey(key_path: Path, kind: str) -> None:
    """Print the verifier key of a private key file.

    Example: tlog vkey --key witness.key --kind witness
    """
    click.echo(vkey_for(read_key(key_path), kind))
