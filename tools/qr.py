"""QR codes: every code `tlog submit` writes is a link a phone camera opens (tlogcore/qrlink.py), and reading
codes back (a picture, PNG/JPEG or the SVG this tool writes, or their text).

    online form    <verifier URL>#TL1:<entry reference, and paper fields if any>
    offline form   <verifier URL>#TL1:<the whole proof bundle>      (falls back to online past version 40)

The verifier URL is the log's page `<log>/verify` unless the issuer names another (a pinned static verifier).
The fragment never reaches a server. In the symbol the URL up to `#` is a byte segment and the fragment an
alphanumeric segment (11 bits per 2 characters).

As text (`tlog verify --qr-text`, or a code read back) we accept such a link, and, for codes printed before
links: the older online URL `<log>/verify#h=<hex SHA-256>&i=<index>`, the binary bundle (magic "TL" 0x01, raw or
base64url) and a tlog-proof text bundle.
"""

import base64
import binascii
import io
import re
from dataclasses import dataclass
from itertools import combinations
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import segno
from PIL import Image, ImageDraw, UnidentifiedImageError

from tlogcore.bundle import BINARY_MAGIC, HEADER, TlogProof, from_binary, parse_tlog_proof
from tlogcore.encoding import MAX_INT64, parse_decimal, parse_hash_hex
from tlogcore.errors import MalformedError
from tlogcore.paperfields import PaperFields
from tlogcore.policy import Policy
from tlogcore.qrlink import (
    PREFIX,
    decode_payload,
    link_url,
    offline_payload,
    online_payload,
    qr_segments,
    split_link,
    to_bundle,
)

if TYPE_CHECKING:
    import zxingcpp  # imported where a picture is read: `tlog` starts without it

ERROR_LEVELS = ("L", "M", "Q", "H")
AUTO = "auto"  # level M, or L where M would be wider than GOAL_MM and L is not (fitted_qr)
MODULE_MM = 0.45  # printed size of one module (docs/printed-code.md)
GOAL_MM = 60.0  # issue 17: an offline code at most this wide, quiet zone included
QUIET_ZONE = 4  # modules on each side (ISO/IEC 18004)
_SEGMENT_MODES = {"byte": segno.consts.MODE_BYTE, "alphanumeric": segno.consts.MODE_ALPHANUMERIC}


class NotACodeError(MalformedError):
    """The input is not a bundle, link or QR payload at all (a user error, never 'tampered')."""


@dataclass(frozen=True)
class OnlineRef:
    """What an online code carries: where to ask, and which entry about which document (or which paper)."""

    base_url: str
    document: bytes
    index: int
    paper: PaperFields | None = None


# --- writing -----------------------------------------------------------------------------------------------


def link_qr(url: str, error: str = "M") -> segno.QRCode:
    """A QR code of a link: the URL prefix in byte mode, the TL1 fragment in alphanumeric mode."""
    if error not in ERROR_LEVELS:
        raise MalformedError(f"error correction must be one of {', '.join(ERROR_LEVELS)}")
    segments = [(text, _SEGMENT_MODES[mode]) for text, mode in qr_segments(url)]
    # segno takes a list of (text, mode) segments (segno.encoder.prepare_data); its type hints do not say so
    return segno.make_qr(segments, error=error.lower(), boost_error=False)  # type: ignore[arg-type]


def fitted_qr(url: str, error: str = AUTO) -> segno.QRCode:
    """`link_qr` at `error`; with "auto", level M (15 % of the symbol may be damaged) unless that is wider than
    GOAL_MM at MODULE_MM and level L (7 %) is not: a paper-fields offline code of a log of 10^6 entries is v28 at M,
    61.6 mm, and v24 at L, 54.5 mm (docs/printed-code.md, "Sizes"; loadtest/qr_sizes.py photographs both)."""
    if error != AUTO:
        return link_qr(url, error)
    code = link_qr(url, "M")
    if printed_mm(code) <= GOAL_MM:
        return code
    lower = link_qr(url, "L")
    return lower if printed_mm(lower) <= GOAL_MM else code


def quorum_cosigners(bundle: TlogProof, policy: Policy) -> list[int]:
    """Key IDs of the fewest cosignatures in `bundle` that still meet the policy's quorum (a smaller code)."""
    cosigned = sorted(policy.verify_checkpoint(bundle.checkpoint).witnesses)
    for count in range(len(cosigned) + 1):
        for subset in combinations(cosigned, count):
            if policy.is_satisfied(set(subset)):
                return [policy.witnesses[name].key_id for name in subset]
    return [policy.witnesses[name].key_id for name in cosigned]


@dataclass(frozen=True)
class Link:
    url: str
    form: str  # "online" | "offline"
    code: segno.QRCode


def document_link(
    verifier_url: str,
    bundle: TlogProof,
    document: bytes,
    form: str,
    error: str = AUTO,
    paper: PaperFields | None = None,
    policy: Policy | None = None,
) -> Link:
    """The code for one logged document. The offline form keeps only the cosignatures the policy's quorum needs
    (all, without a policy) and names the log only when the policy trusts several; past version 40 it falls back
    to the online form."""
    if form == "offline":
        cosigners = quorum_cosigners(bundle, policy) if policy is not None else None
        several = policy is not None and len({log.name for log in policy.logs}) > 1  # origins, not keys
        url = link_url(verifier_url, offline_payload(bundle, paper, several, cosigners))
        try:
            return Link(url, "offline", fitted_qr(url, error))
        except segno.DataOverflowError:
            pass
    url = link_url(verifier_url, online_payload(document, bundle.index, paper))
    return Link(url, "online", fitted_qr(url, error))


def png_bytes(qr: segno.QRCode, scale: int = 4) -> bytes:
    out = io.BytesIO()
    qr.save(out, kind="png", scale=scale, border=QUIET_ZONE)
    return out.getvalue()


def dark_runs(code: segno.QRCode) -> list[tuple[int, int, int]]:
    """(row, first column, length) of each horizontal run of dark modules, quiet zone included in the numbering."""
    runs = []
    for row, modules in enumerate(code.matrix_iter(scale=1, border=QUIET_ZONE)):
        start = None
        for column, dark in enumerate([*modules, 0]):
            if dark and start is None:
                start = column
            elif not dark and start is not None:
                runs.append((row, start, column - start))
                start = None
    return runs


_RUN = re.compile(r"M(\d+),(\d+)h(\d+)v1h-\3z")


def svg_bytes(qr: segno.QRCode) -> bytes:
    """The symbol at MODULE_MM per module, one path of `M<column>,<row>h<length>v1h-<length>z` runs in module
    units: the form `decode_image` reads back."""
    side = qr.symbol_size(scale=1, border=QUIET_ZONE)[0]
    path = "".join(f"M{c},{r}h{n}v1h-{n}z" for r, c, n in dark_runs(qr))
    mm = side * MODULE_MM
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{mm:.2f}mm" height="{mm:.2f}mm" viewBox="0 0 {side} {side}">'
        f'<rect width="{side}" height="{side}" fill="#fff"/><path fill="#000" d="{path}"/></svg>\n'
    ).encode()


def printed_mm(qr: segno.QRCode, module_mm: float = MODULE_MM) -> float:
    """Side of the printed symbol, quiet zone included."""
    width, _ = qr.symbol_size(scale=1, border=QUIET_ZONE)
    return float(width) * module_mm


# --- reading -----------------------------------------------------------------------------------------------


def _svg_image(data: bytes) -> Image.Image:
    """Our own SVG (svg_bytes) drawn back into a picture, 8 pixels per module."""
    text = data.decode("utf-8", "replace")
    size = re.search(r'viewBox="0 0 (\d+) (\d+)"', text)
    path = re.search(r'<path fill="#000" d="([^"]*)"', text)
    if size is None or path is None or _RUN.sub("", path[1]):
        raise NotACodeError("this SVG was not written by tlog: give a PNG or JPEG picture of the code")
    scale = 8
    image = Image.new("L", (int(size[1]) * scale, int(size[2]) * scale), 255)
    draw = ImageDraw.Draw(image)
    for column, row, length in ((int(a), int(b), int(c)) for a, b, c in _RUN.findall(path[1])):
        draw.rectangle([column * scale, row * scale, (column + length) * scale - 1, (row + 1) * scale - 1], fill=0)
    return image


def read_qr_codes(image: Image.Image) -> list["zxingcpp.Barcode"]:
    """The QR codes zxing-cpp finds in `image`, and nothing else: in about one in 200 of the codes `tlog submit`
    writes, the random modules also read as a linear barcode (Codabar has no check digit; EAN-13's is one digit), so
    a reader looking for every symbology finds two codes in a picture of one (docs/printed-code.md)."""
    import zxingcpp

    found = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode))
    return [code for code in found if code.valid and code.format == zxingcpp.BarcodeFormat.QRCode]


def decode_image(data: bytes) -> bytes:
    """The bytes of the one QR code in an image (PNG, JPEG, ..., or an SVG this tool wrote), read with zxing-cpp."""
    image: Image.Image
    if data.lstrip().startswith((b"<?xml", b"<svg")):
        image = _svg_image(data)
    else:
        try:
            image = Image.open(io.BytesIO(data))
            image.load()
        except (UnidentifiedImageError, OSError) as exc:
            raise NotACodeError("not a picture (PNG, JPEG) or an SVG written by tlog") from exc
    found = read_qr_codes(image)
    if len(found) != 1:
        raise MalformedError(f"want exactly one QR code in the image, found {len(found)}")
    return bytes(found[0].bytes)


_OLD_FRAGMENT = re.compile(r"h=([0-9a-f]{64})&i=(0|[1-9][0-9]{0,18})")


def _verify_base(url: str) -> str:
    parts = urlsplit(url)
    path = parts.path[: -len("/verify")] if parts.path.endswith("/verify") else parts.path
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def parse_url(url: str, policy: Policy | None) -> TlogProof | OnlineRef:
    """A link (TL1, needing the trust policy for its offline form) or an older online URL."""
    if "#" + PREFIX in url:
        verifier, raw = split_link(url)
        payload = decode_payload(raw)
        if payload.offline is None:
            return OnlineRef(_verify_base(verifier), payload.document_hash, payload.index, payload.paper)
        if policy is None:
            raise MalformedError("an offline link needs the trust policy to be read")
        return to_bundle(payload.offline, policy)
    parts = urlsplit(url)
    match = _OLD_FRAGMENT.fullmatch(parts.fragment)
    if parts.scheme not in ("http", "https") or not parts.path.endswith("/verify") or match is None:
        raise NotACodeError(f"not a verification link: want <verifier URL>#{PREFIX}<code>")
    base = _verify_base(url)
    return OnlineRef(base, parse_hash_hex(match[1], "document hash"), parse_decimal(match[2], "index", MAX_INT64))


def paper_fields_in(data: bytes) -> PaperFields | None:
    """The paper fields a link carries, if it is a link of a paper document (else None, also for non-links)."""
    text = data.decode("latin-1").strip()
    if "#" + PREFIX not in text:
        return None
    try:
        return decode_payload(split_link(text)[1]).paper
    except MalformedError:
        return None


def parse_payload(data: bytes, policy: Policy | None = None) -> TlogProof | OnlineRef:
    """Whatever a QR code (or its text, or a bundle file) carries. Raises NotACodeError for input that is none
    of the known forms (e.g. the document itself), MalformedError for a damaged one."""
    if data.startswith(BINARY_MAGIC):
        return from_binary(data)
    if data.startswith(HEADER.encode()):
        return parse_tlog_proof(data)
    text = data.decode("latin-1").strip()
    if text.startswith(("http://", "https://")):
        return parse_url(text, policy)
    if not text or not re.fullmatch(r"[A-Za-z0-9_-]+=*", text):
        raise NotACodeError("neither a proof bundle, a verification link nor a QR code's text")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise NotACodeError(f"QR text is not base64url: {exc}") from exc
    if raw.startswith((BINARY_MAGIC, HEADER.encode())):
        return parse_payload(raw, policy)
    raise NotACodeError("neither a proof bundle, a verification link nor a QR code's text")
