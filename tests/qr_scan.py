"""Reading a code back in the tests as a phone's camera app does: QR codes only (tools.qr.read_qr_codes), since the
random modules of about one large code in 200 also read as a linear barcode (tests/test_qr_reading.py)."""

from pathlib import Path

from PIL import Image

from tools.qr import read_qr_codes


def scanned_text(picture: Image.Image | Path) -> str:
    """The text of the one QR code in `picture` (an image, or the path of a PNG)."""
    image = picture if isinstance(picture, Image.Image) else Image.open(picture)
    found = read_qr_codes(image)
    assert len(found) == 1, [code.text for code in found]
    return str(found[0].text)
