"""QR codes for proof bundles, in two modes, and reading them back.

Online: a short URL to the log's verify page, `<log base URL>/verify#h=<hex SHA-256>&i=<index>`.
The fragment never reaches a server, so the page (and `tlog verify --qr-text`) looks the entry up itself.

Offline: the whole proof bundle in its compact binary form (tlogcore.bundle.to_binary), QR byte mode, with
no prefix: the binary form already starts with its own magic, "TL" 0x01, which a scanner app can recognise.
As text (what a scanner copies out, or `tlog verify --qr-text`) we accept the base64url of those bytes, the
bytes themselves (as Latin-1, which is how most scanners hand out binary QR codes), a tlog-proof text
bundle, or an online URL as above.
"""

import base64
import binascii
import io
import re
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import segno

from tlogcore.bundle import BINARY_MAGIC, HEADER, TlogProof, from_binary, parse_tlog_proof, to_binary
from tlogcore.encoding import MAX_INT64, parse_decimal, parse_hash_hex
from tlogcore.errors import MalformedError

ERROR_LEVELS = ("L", "M", "Q", "H")
MODULE_MM = 0.5  # printed size of one module in the README's table
QUIET_ZONE = 4  # modules on each side (ISO/IEC 18004)


@dataclass(frozen=True)
class OnlineRef:
    """What an online QR code carries: where to ask, and which entry about which document."""

    base_url: str
    document: bytes
    index: int


def online_url(base_url: str, document: bytes, index: int) -> str:
    return f"{base_url.rstrip('/')}/verify#h={document.hex()}&i={index}"


_FRAGMENT = re.compile(r"h=([0-9a-f]{64})&i=(0|[1-9][0-9]{0,18})")


def parse_online_url(url: str) -> OnlineRef:
    parts = urlsplit(url)
    match = _FRAGMENT.fullmatch(parts.fragment)
    if parts.scheme not in ("http", "https") or not parts.path.endswith("/verify") or match is None:
        raise MalformedError("not a verify URL: want <log URL>/verify#h=<64 hex>&i=<index>")
    base = urlunsplit((parts.scheme, parts.netloc, parts.path[: -len("/verify")], "", ""))
    return OnlineRef(base, parse_hash_hex(match[1], "document hash"), parse_decimal(match[2], "index", MAX_INT64))


def make_qr(payload: bytes | str, error: str = "M") -> segno.QRCode:
    """A QR code (never a Micro QR); bytes go in byte mode. segno raises DataOverflowError past version 40."""
    if error not in ERROR_LEVELS:
        raise MalformedError(f"error correction must be one of {', '.join(ERROR_LEVELS)}")
    return segno.make_qr(
        payload, error=error.lower(), boost_error=False, mode="byte" if isinstance(payload, bytes) else None
    )


def offline_qr(bundle: TlogProof, error: str = "M") -> segno.QRCode:
    return make_qr(to_binary(bundle), error)


def png_bytes(qr: segno.QRCode, scale: int = 4) -> bytes:
    out = io.BytesIO()
    qr.save(out, kind="png", scale=scale, border=QUIET_ZONE)
    return out.getvalue()


def svg_bytes(qr: segno.QRCode) -> bytes:
    out = io.BytesIO()
    qr.save(out, kind="svg", border=QUIET_ZONE, unit="mm", scale=MODULE_MM)
    return out.getvalue()


def printed_mm(qr: segno.QRCode, module_mm: float = MODULE_MM) -> float:
    """Side of the printed symbol, quiet zone included."""
    width, _ = qr.symbol_size(scale=1, border=QUIET_ZONE)
    return float(width) * module_mm


def decode_image(data: bytes) -> bytes:
    """The bytes of the one QR code in an image (PNG, JPEG, ...), read with zxing-cpp."""
    import zxingcpp
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError) as exc:
        raise MalformedError(f"not an image: {exc}") from exc
    found = [r for r in zxingcpp.read_barcodes(image) if r.valid and r.format == zxingcpp.BarcodeFormat.QRCode]
    if len(found) != 1:
        raise MalformedError(f"want exactly one QR code in the image, found {len(found)}")
    return bytes(found[0].bytes)


def parse_payload(data: bytes) -> TlogProof | OnlineRef:
    """Whatever a QR code (or its text) carries: a bundle, binary or text, or an online reference."""
    if data.startswith(BINARY_MAGIC):
        return from_binary(data)
    if data.startswith(HEADER.encode()):
        return parse_tlog_proof(data)
    text = data.decode("latin-1").strip()
    if text.startswith(("http://", "https://")):
        return parse_online_url(text)
    if not re.fullmatch(r"[A-Za-z0-9_-]+=*", text):
        raise MalformedError("QR text is neither base64url, a tlog-proof bundle nor a verify URL")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise MalformedError(f"QR text is not base64url: {exc}") from exc
    return parse_payload(raw) if raw.startswith((BINARY_MAGIC, HEADER.encode())) else from_binary(raw)


def payload_text(bundle: TlogProof) -> str:
    """The offline payload as base64url text (unpadded), for pasting."""
    return base64.urlsafe_b64encode(to_binary(bundle)).rstrip(b"=").decode()
