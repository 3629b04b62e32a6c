"""`tlog submit`: hash documents locally (or take paper fields), log signed `issue` statements, and write each
document's bundle, QR link codes, labels and one manifest. Everything that can be checked before logging is:
the inputs, the output names, files already there, the trust policy against the log, revoked documents."""

import asyncio
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from logserver.client import LogClient, LogClientError
from tlogcore.errors import MalformedError, SignatureError, TlogError, UnverifiedError
from tlogcore.keys import Ed25519Signer
from tlogcore.note import open_note
from tlogcore.policy import Policy
from tools import qr as qrcodes
from tools.clikit import log_option, read_key, read_policy, write_atomic
from tools.hashing import Item, file_items, parse_csv, unique
from tools.label import Label, label_pdf, label_svg
from tools.outputs import Outputs, manifest_bytes, plan_outputs, written_index
from tools.paperinput import json_items, salt_deriver
from tools.submit import (
    BATCH,
    Lookup,
    Progress,
    SubmitState,
    fetch_bundles,
    lookup_logged,
    submit_items,
    wait_for_checkpoint,
)
from tools.verdict import plain_client_error

STATE_NAME = ".tlog-submit.json"
MANIFEST_NAME = "manifest.json"


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


@dataclass
class Run:
    """One `tlog submit`, decided before the network is touched."""

    log_url: str
    signer: Ed25519Signer
    items: list[Item]
    outputs: dict[bytes, Outputs]
    trust: Policy | None
    policy_path: Path | None
    qr_mode: str
    qr_ec: str
    verifier_url: str
    labels: bool
    ref: str | None
    state_path: Path | None
    manifest: Path | None
    reissue: bool
    lookup: bool | None
    batch: int
    wait_seconds: float


def read_items(inputs: tuple[Path, ...], csv_path: Path | None, fields: bool, signer: Ed25519Signer) -> list[Item]:
    salt_for = salt_deriver(signer) if fields else None
    try:
        items = json_items(inputs, salt_deriver(signer)) if fields else file_items(inputs)
        if csv_path is not None:
            items += parse_csv(csv_path.read_text(encoding="utf-8"), str(csv_path), salt_for)
    except (OSError, UnicodeDecodeError, TlogError) as exc:
        raise click.ClickException(str(exc)) from exc
    if not items:
        what = "JSON files of paper fields" if fields else "documents"
        shown = ", ".join(str(p) for p in inputs) or str(csv_path)
        raise click.ClickException(f"{shown}: no {what} found (hidden files are skipped); give files or a CSV")
    return unique(items)


def default_state(out: Path | None, csv_path: Path | None) -> Path | None:
    if out is not None:
        return out / STATE_NAME
    return csv_path.with_name(csv_path.name + ".tlog-submit.json") if csv_path is not None else None


def prepare_out(out: Path | None) -> None:
    if out is None:
        return
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise click.ClickException(
            f"--out {out}: cannot create this directory ({exc.strerror or exc}); choose another --out"
        ) from exc


async def check_policy(run: Run, client: LogClient, origin: str) -> None:
    """The trust policy must trust the key this log signs with, before anything is submitted."""
    if run.trust is None:
        return
    where = f"{run.policy_path}: the log at {run.log_url} ({origin})"
    try:
        logs = run.trust.log_keys_for(origin)  # a rotated log signs with the new key, listed after the old
        opened = open_note(await client.checkpoint(), list(logs))
    except (UnverifiedError, SignatureError) as exc:
        raise click.ClickException(
            f"{where} does not sign with a key this policy trusts; use the policy of this log "
            f"({run.log_url}/api/v1/policy) or check --log"
        ) from exc
    if all(opened.verified_by(log) is None for log in logs):
        raise click.ClickException(f"{where} is not signed by this policy's log key; check --policy and --log")


def write_document(run: Run, item: Item, outputs: Outputs, bundle: Any) -> dict[str, Any]:
    """The bundle, QR codes and labels of one document; its manifest row."""
    outputs.bundle.parent.mkdir(parents=True, exist_ok=True)  # the input tree, mirrored under --out
    write_atomic(outputs.bundle, bundle.to_text())
    row: dict[str, Any] = {
        "input": item.shown,
        "sha256": item.sha256.hex(),
        "index": bundle.index,
        "ref": item.ref or run.ref or "",
        "bundle": str(outputs.bundle),
    }
    if run.qr_mode == "none":
        click.echo(f"{item.shown}: entry {bundle.index}, bundle {outputs.bundle}")
        return row
    link = qrcodes.document_link(run.verifier_url, bundle, item.sha256, run.qr_mode, run.qr_ec, item.paper, run.trust)
    write_atomic(outputs.qr_png, qrcodes.png_bytes(link.code))
    write_atomic(outputs.qr_svg, qrcodes.svg_bytes(link.code))
    row.update(qr_png=str(outputs.qr_png), qr_svg=str(outputs.qr_svg), link=link.url)
    if run.labels:
        label = Label(link.url, f"{row['ref'] or item.name} · #{bundle.index}", link.code.error.upper())
        write_atomic(outputs.label_svg, label_svg(label))
        write_atomic(outputs.label_pdf, label_pdf(label))
        row.update(label_svg=str(outputs.label_svg), label_pdf=str(outputs.label_pdf))
    click.echo(
        f"{item.shown}: entry {bundle.index}, bundle {outputs.bundle}, {link.form} QR version {link.code.version}"
    )
    return row


async def log_documents(
    run: Run, client: LogClient, origin: str
) -> tuple[SubmitState, set[str], list[tuple[Item, int]]]:
    """Resume or look up, then submit; returns the state, the documents whose bundles an earlier run already
    wrote, and the documents refused as revoked."""
    vkey = run.signer.verifier().vkey
    state = SubmitState(origin, vkey)
    if run.state_path is not None and run.state_path.exists():
        state = SubmitState.from_text(run.state_path.read_text(encoding="utf-8"), origin, vkey)
    resumed = bool(state.logged) or state.pending_time is not None
    written: set[str] = set()
    for item in run.items:
        outputs = run.outputs.get(item.sha256)
        index = written_index(outputs, item, vkey) if outputs is not None else None
        if index is not None:
            state.logged[item.sha256.hex()] = index
            written.add(item.sha256.hex())
    lookup = None
    if (not resumed if run.lookup is None else run.lookup) or run.reissue:

        async def lookup(chunk: list[Item]) -> Lookup:
            return await lookup_logged(client, chunk, state, run.signer.name)

    def save(s: SubmitState) -> None:
        if run.state_path is not None:
            write_atomic(run.state_path, s.to_text().encode())

    progress = TerminalProgress(sys.stderr.isatty())
    refused = await submit_items(
        client, run.signer, run.items, state, save, progress, ref=run.ref, batch=run.batch, lookup=lookup
    )
    return state, written, refused


async def submit_run(run: Run) -> None:
    async with LogClient(run.log_url) as client:
        origin = (await client.info()).origin
        await check_policy(run, client, origin)
        state, written, refused = await log_documents(run, client, origin)
        missing = [i for i in run.items if i.sha256 in run.outputs and i.sha256.hex() in state.logged]
        missing = [i for i in missing if i.sha256.hex() not in written]
        rows: list[dict[str, Any]] = []
        if missing:
            indexes = [state.logged[i.sha256.hex()] for i in missing]
            await wait_for_checkpoint(client, max(indexes) + 1, run.trust, run.wait_seconds)
            bundles = await fetch_bundles(client, indexes, run.trust)
            for item, bundle in zip(missing, bundles, strict=True):
                rows.append(write_document(run, item, run.outputs[item.sha256], bundle))
        if run.manifest is not None:
            done = {row["sha256"] for row in rows}
            rows += [
                {"input": i.shown, "sha256": i.sha256.hex(), "index": state.logged[i.sha256.hex()]}
                for i in run.items
                if i.sha256.hex() not in done and i.sha256.hex() in state.logged
            ]
            header = {"log": origin, "issuer": run.signer.name, "verifier": run.verifier_url}
            write_atomic(run.manifest, manifest_bytes(run.manifest, rows, header))
        if refused:
            (first, at), more = refused[0], len(refused) - 1
            others = f" (and {more} more; the other documents were logged)" if more else ""
            raise click.ClickException(
                f"{first.shown}: revoked by {run.signer.name} in entry {at}{others}; a revocation is final, so it "
                "is not issued again: issue a corrected document instead (a new file, or new paper fields), "
                "or leave it out"
            )
        already = len(written)
        click.echo(
            f"{len(run.items)} documents: all logged by {run.signer.name} in {origin}"
            + (f" ({already} bundles were already written)" if already else "")
        )


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
    help="A CSV of precomputed hashes (header 'sha256[,name][,ref]'), or with --fields of paper documents "
    "(header 'name,ref,field:<name>,...').",
)
@click.option(
    "--fields",
    is_flag=True,
    help="Paper documents: INPUTS are JSON files of fields (one document each) and the CSV has field: columns; "
    "the fields and a salt are hashed and carried in the QR code (docs/printed-code.md).",
)
@click.option("--ref", default=None, help="Reference put in every statement (document type or number).")
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Write outputs here, mirroring the input tree (default: beside each file).",
)
@click.option(
    "--qr",
    "qr_mode",
    type=click.Choice(["offline", "online", "none"]),
    default=None,
    help="QR link per document (PNG and SVG): offline carries the whole proof, online the entry reference. "
    "Default: offline for files and paper documents, none for a CSV of hashes.",
)
@click.option(
    "--qr-ec",
    type=click.Choice([qrcodes.AUTO, *qrcodes.ERROR_LEVELS]),
    default=qrcodes.AUTO,
    show_default=True,
    help="QR error-correction level; auto: M, or L where M would be wider than 60 mm at 0.45 mm/module.",
)
@click.option("--public-url", default=None, help="The log's public base URL (default: --log).")
@click.option(
    "--verifier-url",
    default=None,
    help="The verification page the QR links open (default: <public URL>/verify), e.g. a pinned static verifier.",
)
@click.option("--label", "labels", is_flag=True, help="Also write a printable label per document (SVG and PDF).")
@click.option(
    "--manifest",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help=f"Manifest file, .json or .csv (default: <out>/{MANIFEST_NAME} with --out).",
)
@click.option(
    "--policy",
    "policy_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Trust policy: checked against the log before submitting; bundles are checked with it before writing, "
    "and offline codes keep only the cosignatures its quorum needs.",
)
# Issue 17: a revocation is final (tlogcore/status.py); `--reissue` no longer logs anything new. Kept, hidden, so
# that an old script gets the one line saying why and what to do instead, not "no such option".
@click.option("--reissue", is_flag=True, hidden=True, help="Refused for revoked documents: a revocation is final.")
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
    help="Ask the log, before submitting, which documents this issuer already logged or revoked. Default: only "
    "when there is no state file to resume from. --no-lookup skips the revocation check too.",
)
@click.argument("inputs", nargs=-1, type=click.Path(path_type=Path, exists=True))
def submit(
    log_url: str,
    key_path: Path,
    csv_path: Path | None,
    fields: bool,
    ref: str | None,
    out: Path | None,
    qr_mode: str | None,
    qr_ec: str,
    public_url: str | None,
    verifier_url: str | None,
    labels: bool,
    manifest: Path | None,
    policy_path: Path | None,
    reissue: bool,
    wait_seconds: float,
    batch: int,
    state_path: Path | None,
    lookup: bool | None,
    inputs: tuple[Path, ...],
) -> None:
    """Hash documents locally (they never leave this machine), sign `issue` statements and log them in batches;
    write each document's proof bundle, QR link codes (and labels), and a manifest. Re-running skips what this
    key already logged.

    INPUTS are files and directories (walked recursively). Examples:

        tlog submit --log http://127.0.0.1:8080 --key moeys.key diploma.pdf

        tlog submit --log URL --key moeys.key --policy trust.policy --out proofs/ --label diplomas/

        tlog submit --log URL --key moeys.key --fields --out proofs/ --csv students.csv     # paper documents

        tlog submit --log URL --key moeys.key --csv hashes.csv            # log only; add --out DIR for bundles
    """
    signer = read_key(key_path)
    trust = read_policy(policy_path) if policy_path is not None else None
    if not inputs and csv_path is None:
        raise click.UsageError("give files, directories or --csv")
    items = read_items(inputs, csv_path, fields, signer)
    has_files = bool(inputs) or fields
    qr_mode = qr_mode or ("offline" if has_files else "none")
    if out is None and any(i.path is None for i in items) and (qr_mode != "none" or labels):
        raise click.UsageError("QR codes and labels for CSV rows need --out DIR")
    prepare_out(out)
    try:
        outputs = plan_outputs(items, out)
    except MalformedError as exc:
        raise click.ClickException(str(exc)) from exc
    state_path = state_path or default_state(out, csv_path)
    run = Run(
        log_url,
        signer,
        items,
        outputs,
        trust,
        policy_path,
        qr_mode,
        qr_ec,
        verifier_url or f"{(public_url or log_url).rstrip('/')}/verify",
        labels,
        ref,
        state_path,
        manifest or (out / MANIFEST_NAME if out is not None else None),
        reissue,
        lookup,
        batch,
        wait_seconds,
    )
    try:
        asyncio.run(submit_run(run))
    except LogClientError as exc:
        raise click.ClickException(plain_client_error(log_url, exc)) from exc
    except (TlogError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
