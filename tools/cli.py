"""`tlog`: the issuer, operator and verifier tool. Click wiring only; this is the one module that reads and writes
files (and the environment: TLOG_POLICY). Every command has --help with an example.

    tlog keygen --name moeys.gov.kh --out issuer.key          [--kind issuer|log|registry|witness]
    tlog issuer add|retire|list --log URL ...
    tlog submit --log URL --key issuer.key diploma.pdf docs/ [--csv hashes.csv] [--out DIR] [--qr offline]
    tlog revoke --log URL --key issuer.key diploma.pdf --reason "issued in error"
    tlog verify diploma.pdf --policy trust.policy              [--bundle F | --qr-image F | --qr-text T] [--log URL]
    tlog policy check trust.policy
    tlog checkpoint --log URL --policy trust.policy
    tlog proof inclusion|consistency --log URL ...
"""

import asyncio
import json
import os
import sys
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import click
import segno

from logserver.client import LogClient, LogClientError
from tlogcore.bundle import BINARY_MAGIC, TlogProof, parse_tlog_proof
from tlogcore.checkpoint import parse_checkpoint
from tlogcore.encoding import b64encode, parse_hash_hex
from tlogcore.errors import TlogError
from tlogcore.keys import Ed25519Signer, check_private_key_mode, parse_signer_key
from tlogcore.merkle import leaf_hash, verify_consistency, verify_inclusion
from tlogcore.note import parse_note
from tlogcore.policy import Policy, parse_policy
from tlogcore.statement import ISSUER_ADD, ISSUER_RETIRE, Statement, parse_statement, sign_statement
from tools import qr as qrcodes
from tools.hashing import BUNDLE_SUFFIX, Item, file_items, parse_csv, sha256_file, unique
from tools.keyfiles import KINDS, new_key, vkey_for
from tools.submit import (
    BATCH,
    Progress,
    SubmitState,
    fetch_bundles,
    revoke_statement,
    submit_items,
    wait_for_checkpoint,
)
from tools.verdict import EXIT_CODES, INPUT_ERROR, TAMPERED, Outcome, verdict_for_error
from tools.verify import check_bundle, check_online, load_bundle

T = TypeVar("T")
STATE_NAME = ".tlog-submit.json"


# --- helpers: files, keys, running coroutines ---------------------------------------------------------------


def read_key(path: Path) -> Ed25519Signer:
    """A private key, refused if anyone but its owner can read it."""
    try:
        check_private_key_mode(path.stat().st_mode, str(path))
        return parse_signer_key(path.read_text().strip())
    except (OSError, TlogError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"{path}: {exc}") from exc


def read_policy(path: Path) -> Policy:
    try:
        return parse_policy(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, TlogError) as exc:
        raise click.ClickException(f"policy {path}: {exc}") from exc


def write_private(path: Path, text: str) -> None:
    """Owner-only (0600) and never over an existing file."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise click.ClickException(f"{path} exists; refusing to overwrite a key") from exc
    except OSError as exc:
        raise click.ClickException(f"{path}: {exc}") from exc
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(coroutine)
    except (LogClientError, TlogError) as exc:
        raise click.ClickException(str(exc)) from exc


log_option = click.option("--log", "log_url", required=True, metavar="URL", help="The log's base URL.")


@click.group()
def main() -> None:
    """Issue, submit and verify documents on a transparency log."""


# --- keys ---------------------------------------------------------------------------------------------------


@main.command()
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


@main.command()
@click.option("--key", "key_path", type=click.Path(path_type=Path, exists=True, dir_okay=False), required=True)
@click.option("--kind", type=click.Choice(KINDS), default="issuer", show_default=True)
def vkey(key_path: Path, kind: str) -> None:
    """Print the verifier key of a private key file.

    Example: tlog vkey --key witness.key --kind witness
    """
    click.echo(vkey_for(read_key(key_path), kind))


# --- trust policy -------------------------------------------------------------------------------------------


@main.group()
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
        note = run(_fetch_checkpoint(log_url))
        try:
            trusted = p.verify_checkpoint(note, time.time())
        except TlogError as exc:
            raise click.ClickException(f"the log's checkpoint does not meet this policy: {exc}") from exc
        click.echo(
            f"ok: checkpoint of {trusted.checkpoint.origin} at size {trusted.checkpoint.size}, cosigned by "
            f"{', '.join(sorted(trusted.witnesses)) or 'none'}"
        )


async def _fetch_checkpoint(log_url: str) -> bytes:
    async with LogClient(log_url) as client:
        return await client.checkpoint()


# --- issuers: submit, revoke --------------------------------------------------------------------------------


class TerminalProgress:
    """A one-line progress display on stderr (entries/s and ETA), only when stderr is a terminal."""

    def __init__(self, enabled: bool) -> None:
        self.enabled, self.started = enabled, time.monotonic()

    def __call__(self, p: Progress) -> None:
        if not self.enabled:
            return
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = p.done / elapsed
        eta = (p.total - p.done) / rate if rate else 0.0
        click.echo(
            f"\r{p.done}/{p.total} documents, {p.submitted} logged, {p.skipped} already logged, "
            f"{rate:,.0f} entries/s, ETA {eta:,.0f} s   ",
            nl=False,
            err=True,
        )
        if p.done == p.total:
            click.echo("", err=True)


def _existing_bundle(path: Path, item: Item, vkey_: str) -> int | None:
    """The index in an existing bundle for this document by this issuer (a finished earlier run), if any."""
    try:
        bundle = parse_tlog_proof(path.read_bytes())
        statement = parse_statement(bundle.extra or b"")
    except (OSError, TlogError):
        return None
    return bundle.index if statement.document == item.sha256 and statement.signer == vkey_ else None


def _outputs(item: Item, out: Path | None) -> Path:
    """The bundle path; QR codes go beside it as <name>.qr.png and <name>.qr.svg."""
    if out is not None:
        return out / (item.name + BUNDLE_SUFFIX)
    assert item.path is not None  # cli checks: CSV input without --out writes no bundles
    return item.path.with_name(item.path.name + BUNDLE_SUFFIX)


def _write_qr(bundle_path: Path, bundle: TlogProof, mode: str, error: str, public_url: str) -> str:
    stem = bundle_path.with_name(bundle_path.name[: -len(BUNDLE_SUFFIX)])
    if mode == "offline":
        try:
            code = qrcodes.offline_qr(bundle, error)
        except segno.DataOverflowError:
            mode = "online"  # too big even for version 40: fall back to the URL, and say so
    if mode == "online":
        statement = parse_statement(bundle.extra or b"")
        assert statement.document is not None
        code = qrcodes.make_qr(qrcodes.online_url(public_url, statement.document, bundle.index), error)
    write_atomic(stem.with_name(stem.name + ".qr.png"), qrcodes.png_bytes(code))
    write_atomic(stem.with_name(stem.name + ".qr.svg"), qrcodes.svg_bytes(code))
    return f"{mode} QR version {code.version}"


@main.command()
@log_option
@click.option(
    "--key",
    "key_path",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    required=True,
    help="Issuer key (from tlog keygen; registered with tlog issuer add).",
)
@click.option(
    "--csv",
    "csv_path",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    default=None,
    help="A CSV of precomputed hashes: header 'sha256[,name][,ref]'.",
)
@click.option("--ref", default=None, help="Reference put in every statement (document type or number).")
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Write bundles and QR codes here as <name>.tlog-proof (default: beside each file).",
)
@click.option(
    "--qr",
    "qr_mode",
    type=click.Choice(["offline", "online", "none"]),
    default=None,
    help="QR codes (PNG and SVG) per document: the whole bundle, or a URL to the verify page. "
    "Default: offline for files, none for --csv.",
)
@click.option(
    "--qr-ec",
    type=click.Choice(qrcodes.ERROR_LEVELS),
    default="M",
    show_default=True,
    help="QR error-correction level.",
)
@click.option("--public-url", default=None, help="Base URL in online QR codes (default: --log).")
@click.option(
    "--policy",
    "policy_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Trust policy: wait for a checkpoint that meets it and check every bundle before writing it.",
)
@click.option(
    "--wait",
    "wait_seconds",
    type=float,
    default=60.0,
    show_default=True,
    help="How long to wait for a published (cosigned) checkpoint covering the new entries.",
)
@click.option("--batch", type=click.IntRange(1, 1000), default=BATCH, show_default=True)
@click.option(
    "--state",
    "state_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help=f"Resume file (default: <out>/{STATE_NAME}, or <csv>.tlog-submit.json).",
)
@click.option(
    "--lookup/--no-lookup",
    default=None,
    help="Ask the log which documents this key already logged before submitting them. Default: only "
    "when there is no state file to resume from (a resumed run re-signs with the saved time, so a "
    "statement the log already holds comes back as a duplicate, not a second entry).",
)
@click.argument("inputs", nargs=-1, type=click.Path(path_type=Path, exists=True))
def submit(
    log_url: str,
    key_path: Path,
    csv_path: Path | None,
    ref: str | None,
    out: Path | None,
    qr_mode: str | None,
    qr_ec: str,
    public_url: str | None,
    policy_path: Path | None,
    wait_seconds: float,
    batch: int,
    state_path: Path | None,
    lookup: bool | None,
    inputs: tuple[Path, ...],
) -> None:
    """Hash documents locally (they never leave this machine), sign `issue` statements and log them in batches;
    write each document's proof bundle (and QR codes). Re-running skips what this key already logged.

    INPUTS are files and directories (walked recursively). Examples:

        tlog submit --log http://127.0.0.1:8080 --key moeys.key diploma.pdf

        tlog submit --log URL --key moeys.key --out proofs/ --qr offline diplomas/

        tlog submit --log URL --key moeys.key --csv hashes.csv            # log only; add --out DIR for bundles
    """
    signer = read_key(key_path)
    trust = read_policy(policy_path) if policy_path is not None else None
    if not inputs and csv_path is None:
        raise click.UsageError("give files, directories or --csv")
    try:
        items = file_items(inputs)
        if csv_path is not None:
            items += parse_csv(csv_path.read_text(encoding="utf-8"), str(csv_path))
    except (OSError, UnicodeDecodeError, TlogError) as exc:
        raise click.ClickException(str(exc)) from exc
    items = unique(items)
    want_bundles = out is not None or csv_path is None
    if qr_mode is None:
        qr_mode = "offline" if csv_path is None else "none"
    if qr_mode != "none" and not want_bundles:
        raise click.UsageError("QR codes for --csv input need --out DIR")
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    if state_path is None:
        state_path = (
            out / STATE_NAME
            if out is not None
            else csv_path.with_name(csv_path.name + ".tlog-submit.json")
            if csv_path is not None
            else None
        )
    progress = TerminalProgress(sys.stderr.isatty())

    async def go() -> None:
        async with LogClient(log_url) as client:
            origin = str((await client.info())["origin"])
            signer_vkey = signer.verifier().vkey
            state = SubmitState(origin, signer_vkey)
            if state_path is not None and state_path.exists():
                state = SubmitState.from_text(state_path.read_text(encoding="utf-8"), origin, signer_vkey)
            resumed = bool(state.logged) or state.pending_time is not None
            done_bundles: set[str] = set()
            if want_bundles:
                for item in items:
                    index = _existing_bundle(_outputs(item, out), item, signer_vkey)
                    if index is not None:
                        state.logged[item.sha256.hex()] = index
                        done_bundles.add(item.sha256.hex())

            def save(s: SubmitState) -> None:
                if state_path is not None:
                    write_atomic(state_path, s.to_text().encode())

            await submit_items(
                client,
                signer,
                items,
                state,
                save,
                progress,
                ref=ref,
                batch=batch,
                lookup=not resumed if lookup is None else lookup,
            )
            missing = [i for i in items if i.sha256.hex() not in done_bundles] if want_bundles else []
            if missing:
                indexes = [state.logged[i.sha256.hex()] for i in missing]
                await wait_for_checkpoint(client, max(indexes) + 1, trust, wait_seconds)
                bundles = await fetch_bundles(client, indexes, trust)
                for item, bundle in zip(missing, bundles, strict=True):
                    path = _outputs(item, out)
                    write_atomic(path, bundle.to_text())
                    qr_note = (
                        ""
                        if qr_mode == "none"
                        else ", " + _write_qr(path, bundle, str(qr_mode), qr_ec, public_url or log_url)
                    )
                    click.echo(f"{item.path or item.name}: entry {bundle.index}, bundle {path}{qr_note}")
            already = len(items) - len(missing) if want_bundles else 0
            click.echo(
                f"{len(items)} documents: all logged by {signer.name} in {origin}"
                + (f" ({already} bundles were already written)" if already else "")
            )

    run(go())


@main.command()
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
            origin = str((await client.info())["origin"])
            result = await client.submit([revoke_statement(origin, signer, document, reason, int(time.time()))])
            click.echo(f"revoked {document.hex()}: entry {result.entries[0].index}")

    run(go())


# --- verifiers ----------------------------------------------------------------------------------------------


class VerifyCommand(click.Command):
    """Usage errors exit 6, not click's 2 (which `verify` uses for 'not logged')."""

    def make_context(
        self, info_name: str | None, args: list[str], parent: click.Context | None = None, **extra: Any
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as exc:
            raise VerifyUsageError(exc.format_message(), exc.ctx) from exc


class VerifyUsageError(click.UsageError):
    exit_code = EXIT_CODES[INPUT_ERROR]


def _emit(outcome: Outcome, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(outcome.to_json(), ensure_ascii=False))
    else:
        click.echo(outcome.line())
    sys.exit(outcome.exit_code)


def _fail(message: str, as_json: bool, document: bytes | None = None) -> None:
    _emit(Outcome(INPUT_ERROR, document, message), as_json)


@main.command(
    cls=VerifyCommand,
    epilog="Exit codes: 0 genuine, 1 revoked, 2 not logged, 3 tampered, "
    "4 signature invalid, 5 quorum not met or untrusted log, 6 usage or input error, 7 network error.",
)
@click.argument("document", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--policy",
    "policy_path",
    envvar="TLOG_POLICY",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Trust policy (C2SP tlog-policy text): the only thing trusted. Env: TLOG_POLICY.",
)
@click.option(
    "--bundle",
    "bundle_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Proof bundle, text or binary (default: DOCUMENT.tlog-proof, when not --log).",
)
@click.option(
    "--qr-image",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="A picture of the document's QR code (PNG, JPEG).",
)
@click.option(
    "--qr-text",
    default=None,
    help="The QR code's content as text: base64url of the binary bundle, "
    "tlog-proof text, or a verify URL (which means online).",
)
@click.option(
    "--log",
    "log_url",
    default=None,
    metavar="URL",
    help="Online: ask this log for the current checkpoint, proofs and revocation status.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of the verdict line.")
def verify(
    document: Path,
    policy_path: Path,
    bundle_path: Path | None,
    qr_image: Path | None,
    qr_text: str | None,
    log_url: str | None,
    as_json: bool,
) -> None:
    """Check DOCUMENT: offline against a bundle or QR code (no network: only the trust policy is trusted), or
    online with --log. Prints one verdict line: genuine, revoked, not logged, tampered, signature invalid,
    quorum not met.

    Examples:

        tlog verify diploma.pdf --policy trust.policy                        # uses diploma.pdf.tlog-proof

        tlog verify diploma.pdf --policy trust.policy --qr-image scan.png

        tlog verify diploma.pdf --policy trust.policy --log https://log.example.gov.kh --json
    """
    if sum(x is not None for x in (bundle_path, qr_image, qr_text)) > 1:
        _fail("give at most one of --bundle, --qr-image, --qr-text", as_json)
    try:
        digest = sha256_file(document)
    except OSError as exc:
        _fail(f"cannot read the document: {exc.strerror or exc}: {document}", as_json)
        return
    try:
        trust = parse_policy(policy_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, TlogError) as exc:
        _fail(f"the trust policy {policy_path} is not usable: {exc}", as_json, digest)
        return
    bundle: TlogProof | None = None
    source: bytes | None = None
    try:
        if qr_image is not None:
            source = qrcodes.decode_image(qr_image.read_bytes())
        elif qr_text is not None:
            text = qr_text.strip()
            source = text.encode("latin-1") if text.isascii() else qr_text.encode("latin-1", "strict")
        elif bundle_path is not None:
            source = bundle_path.read_bytes()
        elif log_url is None:
            default = document.with_name(document.name + BUNDLE_SUFFIX)
            if not default.exists():
                _fail(
                    f"no bundle: give --bundle, --qr-image or --qr-text, or --log for online ({default} is missing)",
                    as_json,
                    digest,
                )
            source = default.read_bytes()
    except (OSError, UnicodeEncodeError) as exc:
        _fail(f"cannot read the bundle or QR code: {exc}", as_json, digest)
    except TlogError as exc:  # an image with no readable QR code in it
        _fail(f"cannot read the QR code: {exc}", as_json, digest)
    if source is not None:
        try:
            found = qrcodes.parse_payload(source)
        except TlogError as exc:
            _emit(Outcome(verdict_for_error(exc), digest, f"the bundle is damaged: {exc}"), as_json)
            return
        if isinstance(found, qrcodes.OnlineRef):
            if found.document != digest:
                _emit(
                    Outcome(
                        TAMPERED,
                        digest,
                        f"the QR code names document {found.document.hex()[:16]}..., this "
                        f"document's SHA-256 is {digest.hex()[:16]}...: the document was changed",
                    ),
                    as_json,
                )
            log_url = log_url or found.base_url
        else:
            bundle = found
    if log_url is None:
        assert bundle is not None
        _emit(check_bundle(digest, bundle, trust, time.time()), as_json)
        return

    async def online(url: str) -> Outcome:
        async with LogClient(url, timeout=20) as client:
            return await check_online(client, digest, trust, time.time(), bundle)

    _emit(asyncio.run(online(log_url)), as_json)


# --- operators ----------------------------------------------------------------------------------------------


@main.group()
def issuer() -> None:
    """Operator: add, retire and list issuer keys (registry statements, signed by the registry key)."""


async def _registry_statement(
    log_url: str, registry: Ed25519Signer, kind: str, issuer_vkey: str, label: str | None, reason: str | None
) -> None:
    async with LogClient(log_url) as client:
        origin = (await client.info())["origin"]
        statement = Statement(
            origin, kind, registry.verifier().vkey, int(time.time()), issuer=issuer_vkey, ref=label, reason=reason
        )
        result = await client.submit([sign_statement(statement, registry)])
        click.echo(f"{kind} {issuer_vkey.split('+')[0]}: entry {result.entries[0].index}")


@issuer.command("add")
@log_option
@click.option("--registry-key", type=click.Path(path_type=Path, exists=True), required=True)
@click.option("--issuer", "issuer_vkey", required=True, help="The issuer's verifier key (from tlog keygen).")
@click.option("--label", default=None, help="The issuer's display name, e.g. 'Ministry of Education'.")
def issuer_add(log_url: str, registry_key: Path, issuer_vkey: str, label: str | None) -> None:
    """Register an issuer key. Example: tlog issuer add --log URL --registry-key data/registry.key --issuer VKEY"""
    run(_registry_statement(log_url, read_key(registry_key), ISSUER_ADD, issuer_vkey, label, None))


@issuer.command("retire")
@log_option
@click.option("--registry-key", type=click.Path(path_type=Path, exists=True), required=True)
@click.option("--issuer", "issuer_vkey", required=True)
@click.option("--reason", default=None)
def issuer_retire(log_url: str, registry_key: Path, issuer_vkey: str, reason: str | None) -> None:
    """Retire an issuer key. Example: tlog issuer retire --log URL --registry-key data/registry.key --issuer VKEY"""
    run(_registry_statement(log_url, read_key(registry_key), ISSUER_RETIRE, issuer_vkey, None, reason))


@issuer.command("list")
@log_option
@click.option("--json", "as_json", is_flag=True)
def issuer_list(log_url: str, as_json: bool) -> None:
    """List every issuer key the log's registry ever held. Example: tlog issuer list --log URL"""

    async def go() -> dict[str, Any]:
        async with LogClient(log_url) as client:
            return await client.issuers()

    data = run(go())
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False))
        return
    for entry in data.get("issuers", []):
        for key in entry["keys"]:
            state = "active" if key["active"] else f"retired in entry {key['retired']['index']}"
            label = f" {key['label']!r}" if key.get("label") else ""
            click.echo(f"{entry['name']}{label}: {state} (added in entry {key['added']['index']}) {key['vkey']}")


@main.command()
@log_option
@click.option(
    "--policy",
    "policy_path",
    envvar="TLOG_POLICY",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Verify the checkpoint under this trust policy (env TLOG_POLICY).",
)
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), default=None, help="Save the note here.")
def checkpoint(log_url: str, policy_path: Path | None, out: Path | None) -> None:
    """Fetch the log's current checkpoint, verify it (with --policy) and show it.

    Example: tlog checkpoint --log http://127.0.0.1:8080 --policy trust.policy
    """
    note = run(_fetch_checkpoint(log_url))
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


@main.group()
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
@click.option(
    "--policy", "policy_path", envvar="TLOG_POLICY", type=click.Path(path_type=Path, dir_okay=False), default=None
)
def proof_inclusion(log_url: str, index: int | None, bundle_path: Path | None, policy_path: Path | None) -> None:
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
            hashes = await client.inclusion_proof(i, cp.size)
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
@click.option(
    "--policy", "policy_path", envvar="TLOG_POLICY", type=click.Path(path_type=Path, dir_okay=False), required=True
)
def proof_consistency(log_url: str, old_path: Path, policy_path: Path) -> None:
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
            hashes = await client.consistency_proof(old.size, new.size) if old.size else []
            click.echo(f"old {old.size} {old.root.hex()}\nnew {new.size} {new.root.hex()}")
            for h in hashes:
                click.echo(b64encode(h))
            verify_consistency(old.size, new.size, old.root, new.root, hashes)
            click.echo("ok: the current checkpoint is consistent with the old one")

    run(go())
