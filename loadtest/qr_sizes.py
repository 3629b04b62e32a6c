"""How big is a typical offline proof bundle, and which QR code holds it, at tree sizes 10^3, 10^6 and 10^9?

    .venv/bin/python -m loadtest.qr_sizes

A realistic bundle: an `issue` statement (origin of 30 characters, issuer key name moeys.gov.kh, a 16-character
ref), the inclusion proof of the worst case (ceil(log2 n) hashes, random values of the right count), and a
checkpoint signed by the log and cosigned by 3 witnesses. Printed side at 0.5 mm per module,
with the 4-module quiet zone. Also: at 10^9 with fewer cosignatures, an early entry proven against an older
checkpoint of 10^6, and the online URL.
"""

import os

import segno

from tlogcore.bundle import make_bundle, to_binary
from tlogcore.checkpoint import Checkpoint
from tlogcore.cosignature import CosignatureV1Signer
from tlogcore.keys import Ed25519Signer
from tlogcore.merkle import inclusion_proof_length
from tlogcore.note import sign_note
from tlogcore.statement import ISSUE, Statement, sign_statement

MODULE_MM, QUIET_ZONE = 0.5, 4  # as tools/qr.py (loadtest may not import tools: DESIGN.md's table)


def make_qr(payload: bytes | str, error: str) -> segno.QRCode:
    """As tools.qr.make_qr: a full QR code, byte mode for bytes, no error-level boost."""
    return segno.make_qr(
        payload, error=error.lower(), boost_error=False, mode="byte" if isinstance(payload, bytes) else None
    )


def printed_mm(code: segno.QRCode) -> float:
    return float(code.symbol_size(scale=1, border=QUIET_ZONE)[0]) * MODULE_MM


def online_url(base_url: str, document: bytes, index: int) -> str:
    return f"{base_url}/verify#h={document.hex()}&i={index}"


ORIGIN = "log.moeys.gov.kh/documents/2026"
LOG = Ed25519Signer(ORIGIN, b"\x01" * 32)
ISSUER = Ed25519Signer("moeys.gov.kh", b"\x02" * 32)
WITNESSES = [
    CosignatureV1Signer(f"witness{i}.example.org", bytes([3 + i]) * 32, lambda: 1_790_000_000.0) for i in range(3)
]


def bundle_bytes(size: int, cosignatures: int, index: int | None = None) -> bytes:
    index = 0 if index is None else index  # entry 0 has the longest proof: ceil(log2 size) hashes
    statement = sign_statement(
        Statement(
            ORIGIN, ISSUE, ISSUER.verifier().vkey, 1_790_000_000, document=os.urandom(32), ref="Diploma 2026/0017"
        ),
        ISSUER,
    )
    proof = [os.urandom(32) for _ in range(inclusion_proof_length(index, size))]
    note = sign_note(Checkpoint(ORIGIN, size, os.urandom(32)).text, [LOG, *WITNESSES[:cosignatures]])
    return to_binary(make_bundle(statement, index, proof, note))


def qr_cell(payload: bytes | str, error: str) -> str:
    try:
        code = make_qr(payload, error)
    except segno.DataOverflowError:
        return "does not fit (over version 40)"
    return f"v{code.version}, {printed_mm(code):.1f} mm"


def main() -> None:
    rows = [(f"10^{e}", bundle_bytes(10**e, 3)) for e in (3, 6, 9)]
    rows.append(("10^9, 1 cosignature", bundle_bytes(10**9, 1)))
    rows.append(("10^9, no cosignature", bundle_bytes(10**9, 0)))
    rows.append(("10^9 log, entry proven in an older checkpoint of 10^6", bundle_bytes(10**6, 3)))
    print("| tree size | binary bundle | QR level L | QR level M |")
    print("|---|---|---|---|")
    for label, data in rows:
        print(f"| {label} | {len(data)} B | {qr_cell(data, 'L')} | {qr_cell(data, 'M')} |")
    url = online_url("https://log.moeys.gov.kh", os.urandom(32), 999_999_999)
    print(f"| online URL (any size) | {len(url)} chars | {qr_cell(url, 'L')} | {qr_cell(url, 'M')} |")


if __name__ == "__main__":
    main()
