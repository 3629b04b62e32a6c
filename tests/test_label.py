"""The printable label (tools/label.py): the PDF rendered by PDFium and the SVG rendered by Debian's Chromium are
both read back by zxing-cpp to the very link; Khmer is shaped (the shaped rendering differs from the unshaped
one); the label fits an A4 certificate; a missing font is one clear error. Renderings go to the screenshots
folder (build/screenshots/; docs/screenshots/ via `python3 dev.py screenshots`)."""

import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pypdfium2
import pytest
from PIL import Image, ImageChops
from qr_scan import scanned_text
from web_browser import SCREENSHOTS, chromium

from tlogcore.errors import MalformedError
from tools import label as labels

VECTORS = json.loads((Path(__file__).parent / "vectors" / "qrlink" / "qrlink.json").read_text(encoding="utf-8"))
LINK = next(g["url"] for g in VECTORS["good"] if g["offline"] and g["paper"])
LABEL = labels.Label(LINK, "Diploma 2026/0003 · #3")


def render_pdf(data: bytes, dpi: int = 300) -> Image.Image:
    document = pypdfium2.PdfDocument(data)
    try:
        assert len(document) == 1
        return document[0].render(scale=dpi / 72).to_pil().convert("L")
    finally:
        document.close()


def test_pdf_label_reads_back_to_the_link_and_fits_a4() -> None:
    data = labels.label_pdf(LABEL)
    assert data.startswith(b"%PDF-") and b"KhmerOS" in data  # the Khmer font is embedded
    document = pypdfium2.PdfDocument(data)
    width_pt, height_pt = document[0].get_size()
    document.close()
    width_mm, height_mm = width_pt * 25.4 / 72, height_pt * 25.4 / 72
    assert width_mm <= 210 - 2 * 20 and height_mm <= 100, (width_mm, height_mm)  # A4 less 20 mm margins
    image = render_pdf(data)
    assert scanned_text(image) == LINK
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    image.save(SCREENSHOTS / "label-pdf.png")


def test_pdf_khmer_is_shaped() -> None:
    """With shaping off, the coeng subscripts and the pre-base vowel are drawn in logical order: another picture."""
    import fpdf

    shaped = render_pdf(labels.label_pdf(LABEL), 150)
    original = fpdf.FPDF.set_text_shaping
    try:
        fpdf.FPDF.set_text_shaping = lambda self, *a, **k: original(self, False)  # type: ignore[method-assign]
        unshaped = render_pdf(labels.label_pdf(LABEL), 150)
    finally:
        fpdf.FPDF.set_text_shaping = original  # type: ignore[method-assign]
    assert ImageChops.difference(shaped, unshaped).getbbox() is not None


def test_svg_label_renders_in_chromium_and_reads_back(tmp_path: Path) -> None:
    data = labels.label_svg(LABEL)
    root = ET.fromstring(data)
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert texts == [labels.SCAN_KM, labels.SCAN_EN, "log.example.gov.kh/verify", "Diploma 2026/0003 · #3"]
    assert root.get("width", "").endswith("mm")
    (tmp_path / "label.svg").write_bytes(data)
    with chromium(tmp_path / "profile") as context:
        page = context.new_page()
        page.set_viewport_size({"width": 1100, "height": 520})
        page.goto((tmp_path / "label.svg").as_uri())
        page.evaluate("document.documentElement.setAttribute('width', '1050px')")
        page.evaluate("document.documentElement.setAttribute('height', '480px')")
        png = page.screenshot()
    image = Image.open(io.BytesIO(png)).convert("L")
    assert scanned_text(image) == LINK
    image.save(SCREENSHOTS / "label-svg.png")


def test_missing_font_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(MalformedError, match="fonts-khmeros"):
        labels.label_pdf(LABEL, tmp_path / "nope.ttf")


def test_an_online_link_makes_a_small_label() -> None:
    online = next(g["url"] for g in VECTORS["good"] if not g["offline"] and not g["paper"])
    small = labels.Label(online, "Diploma 2026/0000 · #0")
    assert scanned_text(render_pdf(labels.label_pdf(small))) == online
    assert labels.layout(small, small.code()).height_mm == labels.MIN_HEIGHT_MM
