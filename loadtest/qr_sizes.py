"""How big is the printed QR code, and does a phone camera read it? QR links (tlogcore.qrlink) at tree sizes
10^3, 10^6 and 10^9, beside the old binary bundle in byte mode.

    .venv/bin/python -m loadtest.qr_sizes

A realistic entry: an `issue` statement (origin of 30 characters, issuer key name moeys.gov.kh, a 17-character
ref), the inclusion proof of the worst case (entry 0: ceil(log2 n) hashes), a checkpoint signed by the log and
by the witnesses kept in the code (the quorum's 2 of 3 unless said). Printed side at 0.45 mm per module with the
4-module quiet zone (ISO/IEC 18004). Post-quantum (issue 22): one ML-DSA-44 cosignature is 2420 signature bytes,
against 64 for Ed25519; the rows marked ML-DSA-44 say whether a bundle carrying one still fits. The goal: a log of
10^6 entries, 2-of-3 quorum, level M, offline form <= 60 mm wide. Each offline link at level M is also photographed
(rendered at 6 px/module, rotated 7 degrees, Gaussian blur of radius 1.2 px, JPEG quality 55) and read back with
zxing-cpp: "read" means the decoded text is exactly the URL.
"""

import io
import os

import segno
import zxingcpp
from PIL import Image, ImageFilter

from tlogcore.bundle import TlogProof, make_bundle, to_binary
from tlogcore.checkpoint import Checkpoint
from tlogcore.cosignature import CosignatureV1Signer
from tlogcore.encoding import put_uvarint
from tlogcore.keys import Ed25519Signer
from tlogcore.merkle import inclusion_proof_length
from tlogcore.mldsa import MLDSA44CosignatureSigner
from tlogcore.note import parse_note, sign_note
from tlogcore.paperfields import PaperFields
from tlogcore.qrlink import PREFIX, base43_encode, link_url, offline_payload, online_payload, qr_segments
from tlogcore.statement import ISSUE, Statement, sign_statement

MODULE_MM, QUIET_ZONE = 0.45, 4
GOAL_MM = 60.0
VERIFIER = "https://log.moeys.gov.kh/verify"
ORIGIN = "log.moeys.gov.kh/documents/2026"
LOG = Ed25519Signer(ORIGIN, b"\x01" * 32)
ISSUER = Ed25519Signer("moeys.gov.kh", b"\x02" * 32)
WITNESSES = [
    CosignatureV1Signer(f"witness{i}.example.org", bytes([3 + i]) * 32, lambda: 1_790_000_000.0) for i in range(3)
]
PQ_WITNESS = MLDSA44CosignatureSigner("pq-witness.example.org", b"\x09" * 32, lambda: 1_790_000_000.0)
PAPER = PaperFields(
    (("ឈ្មោះ", "សុខ ដារា"), ("Name", "Sok Dara"), ("Degree", "Bachelor of Law"), ("Date", "2026-07-01")),
    os.urandom(16),
)
SEGMENT_MODES = {"byte": segno.consts.MODE_BYTE, "alphanumeric": segno.consts.MODE_ALPHANUMERIC}


def make_code(content: str | bytes, error: str) -> segno.QRCode:
    """As the tools make them: a QR link in its two segments; other text or bytes in one segment."""
    if isinstance(content, str) and "#TL1:" in content:
        segments = [(text, SEGMENT_MODES[mode]) for text, mode in qr_segments(content)]
        # segno takes a list of (text, mode) segments (segno.encoder.prepare_data); its type hints do not say so
        return segno.make_qr(segments, error=error.lower(), boost_error=False)  # type: ignore[arg-type]
    mode = "byte" if isinstance(content, bytes) else None
    return segno.make_qr(content, error=error.lower(), boost_error=False, mode=mode)


def printed_mm(code: segno.QRCode) -> float:
    return float(code.symbol_size(scale=1, border=QUIET_ZONE)[0]) * MODULE_MM


def bundle(size: int, cosignatures: int, document: bytes | None = None, post_quantum: int = 0) -> TlogProof:
    statement = sign_statement(
        Statement(
            ORIGIN,
            ISSUE,
            ISSUER.verifier().vkey,
            1_790_000_000,
            document=document or os.urandom(32),
            ref="Diploma 2026/0017",
        ),
        ISSUER,
    )
    proof = [os.urandom(32) for _ in range(inclusion_proof_length(0, size))]
    signers = [LOG, *WITNESSES[:cosignatures], *[PQ_WITNESS][:post_quantum]]
    note = sign_note(Checkpoint(ORIGIN, size, os.urandom(32)).text, signers)
    return make_bundle(statement, 0, proof, note)


def photographed(code: segno.QRCode) -> Image.Image:
    out = io.BytesIO()
    code.save(out, kind="png", scale=6, border=QUIET_ZONE)
    image = Image.open(io.BytesIO(out.getvalue())).convert("L")
    image = image.rotate(7, expand=True, fillcolor=255).filter(ImageFilter.GaussianBlur(1.2))
    jpeg = io.BytesIO()
    image.save(jpeg, "JPEG", quality=55)
    return Image.open(io.BytesIO(jpeg.getvalue()))


def read_back(code: segno.QRCode, url: str) -> bool:
    # QR codes only, as a phone's camera app reads (tools.qr.read_qr_codes): about one large code in 200 also
    # reads as a Codabar barcode, which counted as a failed read here.
    found = zxingcpp.read_barcodes(photographed(code), formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode))
    return len(found) == 1 and found[0].text == url


def cell(content: str | bytes, error: str, photo: bool = False) -> str:
    try:
        code = make_code(content, error)
    except segno.DataOverflowError:
        return "does not fit (over version 40)"
    size = printed_mm(code)
    mark = " ✓" if size <= GOAL_MM else ""
    read = ""
    if photo and isinstance(content, str):
        read = ", photo read" if read_back(code, content) else ", photo NOT read"
    return f"v{code.version}, {size:.1f} mm{mark}{read}"


def rows() -> list[tuple[str, str | bytes]]:
    out: list[tuple[str, str | bytes]] = []
    for exponent in (3, 6, 9):
        size = 10**exponent
        out.append(
            (f"10^{exponent}, offline link, 2 cosignatures", link_url(VERIFIER, offline_payload(bundle(size, 2))))
        )
    paper_bundle = bundle(10**6, 2, PAPER.document)
    out.append(
        (
            "10^6, offline link, paper fields (4, Khmer and English)",
            link_url(VERIFIER, offline_payload(paper_bundle, PAPER)),
        )
    )
    out.append(("10^6, offline link, 3 cosignatures", link_url(VERIFIER, offline_payload(bundle(10**6, 3)))))
    out.append(("10^6, old binary bundle in byte mode, 3 cosignatures", to_binary(bundle(10**6, 3))))
    with_pq = bundle(10**6, 2, post_quantum=1)
    out.append(("10^6, binary bundle in byte mode, 2 Ed25519 + 1 ML-DSA-44 cosignatures", to_binary(with_pq)))
    out.append(("10^6, offline link if it carried 1 ML-DSA-44 cosignature (2 Ed25519 too)", pq_link(with_pq)))
    out.append(("online link (any size)", link_url(VERIFIER, online_payload(os.urandom(32), 999_999_999))))
    out.append(("online link, paper fields", link_url(VERIFIER, online_payload(PAPER.document, 999_999, PAPER))))
    return out


def pq_link(with_pq: TlogProof) -> str:
    """The offline link's payload plus what one ML-DSA-44 cosignature would add to it in the same layout as an
    Ed25519 one (key ID, time varint, signature): the link format (tlogcore.qrlink, TL1) carries only Ed25519
    cosignatures, so this row measures the size such a link would have, not a link the page reads today."""
    payload = offline_payload(with_pq)
    signature = next(s.signature for s in parse_note(with_pq.checkpoint).signatures if len(s.signature) == 8 + 2420)
    extra = PQ_WITNESS.key_id.to_bytes(4, "big") + put_uvarint(int.from_bytes(signature[:8], "big")) + signature[8:]
    return f"{VERIFIER}#{PREFIX}{base43_encode(payload + extra)}"


def main() -> None:
    print(f"✓ = at most {GOAL_MM:.0f} mm wide at {MODULE_MM} mm/module, quiet zone included\n")
    print("| code | payload | QR level L | QR level M (photo test) |")
    print("|---|---|---|---|")
    for label, content in rows():
        length = f"{len(content)} chars" if isinstance(content, str) else f"{len(content)} B"
        print(f"| {label} | {length} | {cell(content, 'L')} | {cell(content, 'M', photo=True)} |")


if __name__ == "__main__":
    main()
