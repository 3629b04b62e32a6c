"""`tlog verifier-site`: a self-contained static copy of the verifier page, with its trust built in, for others to
host (a ministry, an NGO, a witness) on their own domain. QR links may point to any of these copies.

The folder holds index.html (the page, the trust policy and registry keys in a JSON data block, each asset pinned by
its SHA-384), the page's scripts and style sheet, its service worker, and trust-policy.txt (a copy of the policy, for
people to compare). The page asks the log at --log for proofs and trusts nothing it says without them."""

import json
import urllib.parse
from pathlib import Path

import click

from logserver import verifierpage
from logserver.client import LogClient
from tlogcore.errors import TlogError
from tlogcore.vkeys import parse_verifier_key
from tools.clikit import read_policy, run

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


def write_site(out: Path, trust: verifierpage.Trust) -> list[Path]:
    """Write the static verifier into `out` (created if needed; the files it names are replaced)."""
    out.mkdir(parents=True, exist_ok=True)
    meta = f'<meta http-equiv="Content-Security-Policy" content="{site_csp(trust.log_url)}">\n'
    written = [out / "index.html", out / "trust-policy.txt"]
    written[0].write_bytes(verifierpage.render_page(trust, verifierpage.FOLDER_LAYOUT, meta))
    written[1].write_text(trust.policy + "".join(f"# registry {k}\n" for k in trust.registry_vkeys))
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
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), required=True)
def verifier_site(policy_path: Path, log_url: str, registry_vkeys: tuple[str, ...], out: Path) -> None:
    """Write a static verifier page, with the trust policy built in, for any web host.

    Example: tlog verifier-site --policy trust.policy --log https://log.example.gov.kh --out ./verify-site
    """
    policy = read_policy(policy_path)
    if len(policy.logs) != 1:
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
    trust = verifierpage.Trust(log.name, log.vkey, tuple(pinned), text, log_url.rstrip("/"))
    try:
        written = write_site(out, trust)
    except OSError as exc:
        raise click.ClickException(f"{out}: cannot write the site: {exc.strerror or exc}") from exc
    click.echo(json.dumps({"out": str(out), "log": log.name, "registry_keys": list(pinned), "files": len(written)}))
