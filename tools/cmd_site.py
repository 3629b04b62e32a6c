"""`tlog verifier-site`: a self-contained static copy of the verifier page, with its trust built in, for others to
host (a ministry, an NGO, a witness) on their own domain. QR links may point to any of these copies.

The folder holds index.html (the page, the trust policy and registry keys in a JSON data block, each asset pinned by
its SHA-384), the page's scripts and style sheet, its service worker, and trust-policy.txt (a copy of the policy, for
people to compare). The page asks the log at --log for proofs and trusts nothing it says without them."""

import json
import time
import urllib.parse
from pathlib import Path

import click

from logserver import verifierpage
from logserver.client import LogClient
from tlogcore.errors import TlogError
from tlogcore.note import sign_note
from tlogcore.policy import Policy
from tlogcore.trustrotation import REGISTRY_LINE, rotation_text, split_trust_text, trust_digest
from tlogcore.vkeys import parse_verifier_key
from tools.clikit import read_key, read_policy, run, write_atomic
from tools.logkeys import announced_rotations

FILES = (*verifierpage.ASSETS, verifierpage.SERVICE_WORKER)


def site_csp(log_url: str) -> str:
    """The static page's CSP, as a <meta> (its host may set none): as strict as the log's, plus the log's origin."""
    parts = urllib.parse.urlsplit(log_url)
    origin = f"{parts.scheme}://{parts.netloc}"
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src 'self' {origin}; object-src 'none'; base-uri 'none'"
    )


async def _registry_of(log_url: str) -> tuple[str, ...]:
    async with LogClient(log_url) as client:
        return (await client.info()).registry_vkeys


async def _log_key_ranges(log_url: str, policy: Policy) -> tuple[dict[str, str], ...]:
    """The key rotations the log announced, proven in its newest checkpoint under `policy` and followed by it (both
    keys listed), as the page's ranges (docs/thirty-years.md, "Log key rotation")."""
    async with LogClient(log_url) as client:
        rotations = await announced_rotations(client, await client.checkpoint(), policy, time.time())
    policy.following(rotations)  # UnverifiedError naming the key to add when the policy does not list it
    return verifierpage.log_key_ranges(rotations)


def write_site(out: Path, trust: verifierpage.Trust) -> list[Path]:
    """Write the static verifier into `out` (created if needed; the files it names are replaced)."""
    out.mkdir(parents=True, exist_ok=True)
    meta = f'<meta http-equiv="Content-Security-Policy" content="{site_csp(trust.log_url)}">\n'
    written = [out / "index.html", out / "trust-policy.txt"]
    written[0].write_bytes(verifierpage.render_page(trust, verifierpage.FOLDER_LAYOUT, meta))
    written[1].write_text(trust.policy + "".join(f"{REGISTRY_LINE}{k}\n" for k in trust.registry_vkeys))
    for name in FILES:
        (out / name).write_bytes(verifierpage.asset(name))
        written.append(out / name)
    return written


@click.command("verifier-site")
@click.option("--policy", "policy_path", type=click.Path(path_type=Path, dir_okay=False), required=True)
@click.option("--log", "log_url", required=True, metavar="URL", help="Where the page asks the log for proofs.")
@click.option(
    "--registry-key",
    "registry_vkeys",
    multiple=True,
    metavar="VKEY",
    help="The log's registry key to pin (repeatable). Default: the one the log names now (compare it with the "
    "key its operator publishes).",
)
@click.option(
    "--rotation",
    "rotation_paths",
    multiple=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="A rotation from `tlog trust-rotation` (repeatable, oldest first): pages that remember an older trust "
    "accept this one quietly when a chain of rotations signed by the old registry keys leads here.",
)
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), required=True)
def verifier_site(
    policy_path: Path, log_url: str, registry_vkeys: tuple[str, ...], rotation_paths: tuple[Path, ...], out: Path
) -> None:
    """Write a static verifier page, with the trust policy built in, for any web host.

    Example: tlog verifier-site --policy trust.policy --log https://log.example.gov.kh --out ./verify-site
    """
    policy = read_policy(policy_path)
    if len({log.name for log in policy.logs}) != 1:  # a rotated log is listed once per key, under one origin
        raise click.ClickException(f"{policy_path}: the policy must name exactly one log for a verifier site")
    if not log_url.startswith(("https://", "http://")):
        raise click.ClickException(f"--log {log_url!r}: give the log's http(s) URL")
    try:
        for vkey in registry_vkeys:
            parse_verifier_key(vkey)
    except TlogError as exc:
        raise click.ClickException(f"--registry-key: {exc}") from exc
    pinned = registry_vkeys or run(_registry_of(log_url))
    log = policy.logs[0]
    text = policy_path.read_text(encoding="utf-8")
    rotations = tuple(read_rotation(path) for path in rotation_paths)
    # A policy with one key of the log cannot follow a rotation (Policy.following): nothing to fetch then.
    ranges = run(_log_key_ranges(log_url, policy)) if len(policy.logs) > 1 else ()
    current = ranges[-1]["new"] if ranges else log.vkey  # the key the log signs with now, as the log's own page
    trust = verifierpage.Trust(log.name, current, tuple(pinned), text, log_url.rstrip("/"), rotations, ranges)
    try:
        written = write_site(out, trust)
    except OSError as exc:
        raise click.ClickException(f"{out}: cannot write the site: {exc.strerror or exc}") from exc
    click.echo(json.dumps({"out": str(out), "log": log.name, "registry_keys": list(pinned), "files": len(written)}))


def read_rotation(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise click.ClickException(
            f"--rotation {path}: cannot read it ({exc}); give a file from tlog trust-rotation"
        ) from None
    rotation = verifierpage.rotation_from_json(data)
    if rotation is None:
        raise click.ClickException(f"--rotation {path}: not a rotation from tlog trust-rotation")
    return rotation


def read_trust(path: Path, what: str) -> tuple[str, list[str]]:
    try:
        return split_trust_text(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"{what} {path}: cannot read it ({exc})") from None


@click.command("trust-rotation")
@click.option(
    "--from",
    "old_path",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="The trust-policy.txt of the site as pages remember it.",
)
@click.option(
    "--to",
    "new_path",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="The trust-policy.txt of the new site.",
)
@click.option(
    "--registry-key",
    "key_path",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="A registry key of the OLD trust (its private key file).",
)
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), required=True)
def trust_rotation(old_path: Path, new_path: Path, key_path: Path, out: Path) -> None:
    """Sign the move of verifier pages from one trust to another, with a registry key of the old one.

    Example: tlog trust-rotation --from old-site/trust-policy.txt --to new-site/trust-policy.txt
    --registry-key registry.key --out rotation.json; then tlog verifier-site ... --rotation rotation.json
    """
    old_policy, old_registry = read_trust(old_path, "--from")
    new_policy, new_registry = read_trust(new_path, "--to")
    signer = read_key(key_path)
    if signer.verifier().vkey not in old_registry:
        raise click.ClickException(
            f"--registry-key {key_path}: not one of the registry keys in {old_path}; sign with the old trust's key"
        )
    text = rotation_text(trust_digest(old_policy, old_registry), trust_digest(new_policy, new_registry))
    note = sign_note(text, [signer]).decode()
    rotation = {"policy": new_policy, "registry": new_registry, "note": note}
    write_atomic(out, (json.dumps(rotation, indent=1, ensure_ascii=False) + "\n").encode())
    click.echo(json.dumps({"out": str(out), "from": trust_digest(old_policy, old_registry), "to": text.split()[-1]}))
