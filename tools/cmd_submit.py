"""`tlog submit`: hash documents locally, log signed `issue` statements, write bundles and QR codes."""

import sys
import time
from pathlib import Path

import click
import segno

from logserver.client import LogClient
from tlogcore.bundle import TlogProof, parse_tlog_proof
from tlogcore.errors import TlogError
from tlogcore.statement import parse_statement
from tools import qr as qrcodes
from tools.clikit import log_option, read_key, read_policy, run, write_atomic
from tools.hashing import BUNDLE_SUFFIX, Item, file_items, parse_csv, unique
from tools.submit import (
    BATCH,
    Progress,
    SubmitState,
    fetch_bundles,
    submit_items,
    wait_for_checkpoint,
)

STATE_NAME = ".tlog-submit.json"


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
    if item.path is None:  # `submit` refuses CSV input without --out before it gets here
        raise click.UsageError(f"{item.name}: a document from --csv needs --out DIR for its bundle")
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
        if statement.document is None:
            raise click.ClickException(f"{bundle_path}: the bundle's statement names no document")
        code = qrcodes.make_qr(qrcodes.online_url(public_url, statement.document, bundle.index), error)
    write_atomic(stem.with_name(stem.name + ".qr.png"), qrcodes.png_bytes(code))
    write_atomic(stem.with_name(stem.name + ".qr.svg"), qrcodes.svg_bytes(code))
    return f"{mode} QR version {code.version}"


@click.command()
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
            origin = (await client.info()).origin
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
