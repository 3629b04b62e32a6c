"""The printed-size goal of the QR link (issue 17), checked on the benchmark's own realistic entry: a log of 10^6
entries, 2-of-3 quorum, level M, offline form at most 60 mm wide at 0.45 mm/module with the quiet zone, and
read back by zxing-cpp from a rotated, blurred JPEG photo of it."""

import segno

from loadtest import qr_sizes
from tlogcore.qrlink import link_url, offline_payload
from tools import qr as qrcodes


def test_offline_link_for_a_million_entries_fits_60_mm_and_reads_from_a_photo() -> None:
    url = link_url(qr_sizes.VERIFIER, offline_payload(qr_sizes.bundle(10**6, 2)))
    code = qr_sizes.make_code(url, "M")
    assert qr_sizes.printed_mm(code) <= 60.0, (code.version, qr_sizes.printed_mm(code))
    assert qr_sizes.read_back(code, url)


def test_a_damaged_photo_is_not_read_as_some_other_url() -> None:
    url = link_url(qr_sizes.VERIFIER, offline_payload(qr_sizes.bundle(10**3, 2)))
    code = qr_sizes.make_code(url, "M")
    assert not qr_sizes.read_back(code, url + "0")  # read_back compares the whole text


def test_a_paper_fields_offline_code_is_fitted_to_60_mm_at_level_l_and_reads_from_a_photo() -> None:
    # Lane 16 (l): with paper fields the level-M code is v28, 61.6 mm (over the goal); "auto" (tlog submit's
    # default) takes level L, which fits, and a photo of it still reads. A code that fits at M stays at M.
    paper = link_url(
        qr_sizes.VERIFIER, offline_payload(qr_sizes.bundle(10**6, 2, qr_sizes.PAPER.document), qr_sizes.PAPER)
    )
    assert qr_sizes.printed_mm(qr_sizes.make_code(paper, "M")) > 60.0
    code = qrcodes.fitted_qr(paper)
    assert code.error.upper() == "L" and qr_sizes.printed_mm(code) <= 60.0, (code.version, code.error)
    assert qr_sizes.read_back(code, paper)
    plain = link_url(qr_sizes.VERIFIER, offline_payload(qr_sizes.bundle(10**6, 2)))
    assert qrcodes.fitted_qr(plain).error.upper() == "M"
    assert qrcodes.fitted_qr(paper, "M").error.upper() == "M"  # a level given is kept


def test_one_mldsa44_cosignature_does_not_fit_any_qr_code_so_paper_carries_the_online_form() -> None:
    """Issue 22: a bundle with one ML-DSA-44 cosignature (2420 signature bytes) is over a version-40 code even at
    level L, in byte mode and as a link; the online link of the same entry fits in a small code."""
    with_pq = qr_sizes.bundle(10**6, 2, post_quantum=1)
    for content in (qr_sizes.to_binary(with_pq), qr_sizes.pq_link(with_pq)):
        try:
            qr_sizes.make_code(content, "L")
        except segno.DataOverflowError:
            continue
        raise AssertionError(f"{len(content)} units fit a QR code: the recommendation in docs/thirty-years.md is stale")
