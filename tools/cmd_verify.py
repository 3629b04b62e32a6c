"""`tlog verify`: a document against a bundle, a QR code or the log, under a trust policy; one verdict."""

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import click

from logserver.client import LogClient
from tlogcore.bundle import TlogProof
from tlogcore.errors import TlogError
from tlogcore.freshness import MAX_AGE_SECONDS
from tlogcore.policy import parse_policy
from tools import qr as qrcodes
from tools.clikit import policy_option
from tools.hashing import BUNDLE_SUFFIX, sha256_file
from tools.verdict import EXIT_CODES, INPUT_ERROR, TAMPERED, Outcome, private_key_refusal, verdict_for_error
from tools.verify import check_bundle, check_online


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


def _read_source(
    document: Path,
    digest: bytes,
    bundle_path: Path | None,
    qr_image: Path | None,
    qr_text: str | None,
    log_url: str | None,
    as_json: bool,
) -> bytes | None:
    """The bundle or QR payload to check, from the one place given (exits with a verdict if it cannot be read);
    None when only the log is asked."""
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
    if source is not None and qrcodes.paper_fields_in(source) is not None:
        _fail(
            "this code is for a paper document (it carries its fields): open the link on a phone or in a browser "
            "to compare them with the paper; tlog verify checks files",
            as_json,
            digest,
        )
    return source


@click.command(
    cls=VerifyCommand,
    epilog="Exit codes: 0 genuine, 1 revoked, 2 not logged, 3 tampered, "
    "4 signature invalid, 5 quorum not met or untrusted log, 6 usage or input error, 7 network error, "
    "8 not from a registered issuer, 9 log misbehaved, 10 signed with a stolen key (reported stolen by its issuer).",
)
@click.argument("document", type=click.Path(path_type=Path, dir_okay=False))
@policy_option("Trust policy (C2SP tlog-policy text): the only thing trusted. Env: TLOG_POLICY.")
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
@click.option(
    "--max-age",
    type=click.IntRange(min=0),
    default=MAX_AGE_SECONDS,
    show_default=True,
    metavar="SECONDS",
    help="Online: a status (not revoked, never logged) counts as proven only if the witnesses vouched for the log's "
    "newest checkpoint at most this long ago (0: do not check).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of the verdict line.")
def verify(
    document: Path,
    policy_path: Path,
    bundle_path: Path | None,
    qr_image: Path | None,
    qr_text: str | None,
    log_url: str | None,
    max_age: int,
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
        policy_text = policy_path.read_text(encoding="utf-8")
        refusal = private_key_refusal(policy_path, policy_text)
        if refusal is not None:
            _fail(refusal, as_json, digest)
        trust = parse_policy(policy_text)
    except (OSError, UnicodeDecodeError, TlogError) as exc:
        _fail(f"the trust policy {policy_path} is not usable: {exc}", as_json, digest)
        return
    source = _read_source(document, digest, bundle_path, qr_image, qr_text, log_url, as_json)
    bundle: TlogProof | None = None
    if source is not None:
        try:
            found = qrcodes.parse_payload(source, trust)
        except qrcodes.NotACodeError as exc:
            given = f"{bundle_path} is not a proof bundle (is it the document itself?): give {document}{BUNDLE_SUFFIX}"
            _fail(given if bundle_path is not None else f"cannot read the QR code: {exc}", as_json, digest)
            return
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
        if bundle is None:
            _fail("nothing to verify against: give a bundle or QR code, or --log for online", as_json, digest)
            return
        _emit(check_bundle(digest, bundle, trust, time.time()), as_json)
        return

    async def online(url: str) -> Outcome:
        async with LogClient(url, timeout=20) as client:
            return await check_online(client, digest, trust, time.time(), bundle, url, max_age)

    _emit(asyncio.run(online(log_url)), as_json)
