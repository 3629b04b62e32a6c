"""A printable label per document, SVG and PDF: the QR link, "scan to verify" in Khmer and English, the verifier's
address as text and a short reference, sized to sit in a corner of an A4 certificate.

    ┌──────────────┬───────────────────────────────┐
    │ ▛▀▀▌ QR ▛▀▀▌ │ ស្កេនដើម្បីផ្ទៀងផ្ទាត់                │
    │   (link)     │ Scan to verify                 │
    │ ▙▄▄▌    ▗▄▖  │ log.moeys.gov.kh/verify        │
    │              │ Diploma 2026/0017 · #12345     │
    └──────────────┴───────────────────────────────┘

The QR code is printed at 0.45 mm per module with its 4-module quiet zone (ISO/IEC 18004): an offline link for a
log of 10^6 entries is about 60 mm wide (loadtest/qr_sizes.py), the label about 135 × 60 mm, well inside A4's
210 mm width. Khmer needs a shaping engine (subscript consonants, vowel signs placed around the base): the PDF
is laid out by fpdf2 with HarfBuzz (uharfbuzz) shaping and embeds the Khmer OS font (Debian fonts-khmeros); the
SVG leaves shaping to the viewer and names the same font.
"""

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

import segno

from tlogcore.errors import MalformedError
from tools.qr import MODULE_MM, QUIET_ZONE, dark_runs, link_qr

TEXT_WIDTH_MM = 72.0
GAP_MM = 3.0
MIN_HEIGHT_MM = 40.0
KHMER_FONT = Path("/usr/share/fonts/truetype/khmeros/KhmerOS.ttf")
SCAN_KM = "ស្កេនដើម្បីផ្ទៀងផ្ទាត់"
SCAN_EN = "Scan to verify"
_PT_MM = 25.4 / 72


@dataclass(frozen=True)
class Label:
    """What goes on one label. `link`: the URL in the QR code; `reference`: e.g. "Diploma 2026/0017 · #12345"."""

    link: str
    reference: str
    error: str = "M"

    @property
    def verifier_text(self) -> str:
        """The verifier's address as a person would type it: host and path, no scheme, no fragment."""
        parts = urlsplit(self.link)
        return parts.netloc + parts.path

    def code(self) -> segno.QRCode:
        return link_qr(self.link, self.error)

    def lines(self) -> list[tuple[str, float, bool]]:
        """(text, size in pt, bold-looking weight) from top to bottom of the text column."""
        return [
            (SCAN_KM, 15.0, True),
            (SCAN_EN, 15.0, True),
            (self.verifier_text, 9.5, False),
            (self.reference, 9.5, False),
        ]


@dataclass(frozen=True)
class Layout:
    qr_mm: float
    width_mm: float
    height_mm: float
    text_x_mm: float
    baselines_mm: tuple[float, ...]


def layout(label: Label, code: segno.QRCode) -> Layout:
    side = float(code.symbol_size(scale=1, border=QUIET_ZONE)[0]) * MODULE_MM
    height = max(side, MIN_HEIGHT_MM)
    steps = [2.2 * size * _PT_MM for _, size, _ in label.lines()]  # Khmer needs room above and below the line
    top = (height - sum(steps)) / 2
    baselines, y = [], top
    for step, (_, size, _) in zip(steps, label.lines(), strict=True):
        y += step
        baselines.append(y - 0.7 * size * _PT_MM)
    return Layout(side, side + GAP_MM + TEXT_WIDTH_MM, height, side + GAP_MM, tuple(baselines))


def label_svg(label: Label) -> bytes:
    code = label.code()
    box = layout(label, code)
    top = (box.height_mm - box.qr_mm) / 2
    path = "".join(f"M{c},{r}h{n}v1h-{n}z" for r, c, n in dark_runs(code))
    texts = []
    for (text, size, bold), baseline in zip(label.lines(), box.baselines_mm, strict=True):
        weight = ' font-weight="bold"' if bold else ""
        texts.append(
            f'<text x="{box.text_x_mm:.2f}" y="{baseline:.2f}" font-size="{size * _PT_MM:.2f}"{weight}>'
            f"{escape(text)}</text>"
        )
    svg = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{box.width_mm:.2f}mm" height="{box.height_mm:.2f}mm" '
        f'viewBox="0 0 {box.width_mm:.2f} {box.height_mm:.2f}">\n'
        f'<rect width="100%" height="100%" fill="#fff"/>\n'
        f'<path transform="translate(0 {top:.3f}) scale({MODULE_MM})" fill="#000" d="{path}"/>\n'
        f"<g font-family=\"'Khmer OS', 'Khmer OS System', 'Noto Sans Khmer', sans-serif\" fill=\"#000\">\n"
        + "\n".join(texts)
        + "\n</g>\n</svg>\n"
    )
    return svg.encode()


def label_pdf(label: Label, font: Path = KHMER_FONT) -> bytes:
    """One page the size of the label. Raises MalformedError naming the font file when it is missing."""
    from fpdf import FPDF

    if not font.is_file():
        raise MalformedError(f"{font}: Khmer font not found; install the Debian package fonts-khmeros")
    code = label.code()
    box = layout(label, code)
    pdf = FPDF(unit="mm", format=(box.width_mm, box.height_mm))
    pdf.set_auto_page_break(False)
    pdf.set_margin(0)
    pdf.add_page()
    pdf.add_font("khmer", "", str(font))
    pdf.set_text_shaping(True)
    pdf.set_fill_color(0, 0, 0)
    top = (box.height_mm - box.qr_mm) / 2
    for row, column, length in dark_runs(code):
        pdf.rect(column * MODULE_MM, top + row * MODULE_MM, length * MODULE_MM, MODULE_MM, style="F")
    for (text, size, _), baseline in zip(label.lines(), box.baselines_mm, strict=True):
        pdf.set_font("khmer", size=size)
        pdf.set_xy(box.text_x_mm, baseline - 0.8 * size * _PT_MM)
        pdf.cell(TEXT_WIDTH_MM, size * _PT_MM, text)
    return bytes(pdf.output())
