"""The printed code in the web verifier (/verify), in Debian's headless Chromium against a real log with three
witnesses and a 2-of-3 quorum: QR links (tlogcore.qrlink) decoded by zxing-cpp from a photo-like image open the
page; the page's own JavaScript decodes the shared vector file; offline codes look up revocations when the log is
reachable and say so at the top when it is not; paper fields are shown and a one-character change is refused;
a wrong file then the right one ends genuine."""

import csv
import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import segno
from PIL import Image, ImageFilter
from playwright.sync_api import BrowserContext, Page, Route
from qr_scan import scanned_text
from tools_stack import Stack, register_issuer, tlog, witnessed_log
from web_browser import chromium, open_verdict, screenshot, wait_published

from logserver.verifierpage import LOG_LAYOUT, Trust, render_page
from logserver.webpage import CSP
from tlogcore.bundle import parse_tlog_proof
from tlogcore.paperfields import PaperFields
from tlogcore.qrlink import link_url, offline_payload, online_payload, qr_segments, split_link

VECTORS = json.loads((Path(__file__).parent / "vectors" / "qrlink" / "qrlink.json").read_text(encoding="utf-8"))
PDF = b"%PDF-1.7\n% Diploma 2026/21, Chan Sophea\n%%EOF\n" * 20
REVOKED_PDF = b"%PDF-1.7\n% Licence 2026/9, issued in error\n%%EOF\n" * 20
PAPER = PaperFields(
    (("ឈ្មោះ / Name", "ចាន់ សុភា / Chan Sophea"), ("Diploma", "Bachelor of Law"), ("Date", "2026-07-01")),
    bytes(range(16)),
)


@dataclass
class World:
    stack: Stack
    tmp: Path
    index: dict[str, int]  # document hex -> log index of its issue statement

    def bundle(self, document: bytes) -> Any:
        text = httpx.get(f"{self.stack.url}/api/v1/bundle/{self.index[document.hex()]}").content
        return parse_tlog_proof(text)

    def offline_link(self, document: bytes, paper: PaperFields | None = None) -> str:
        return link_url(self.stack.url + "/verify", offline_payload(self.bundle(document), paper))

    def online_link(self, document: bytes, paper: PaperFields | None = None) -> str:
        return link_url(self.stack.url + "/verify", online_payload(document, self.index[document.hex()], paper))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("printed")
    with witnessed_log(tmp) as stack:
        key = tmp / "moeys.key"
        register_issuer(stack, key)
        rows = io.StringIO()
        writer = csv.writer(rows)
        writer.writerow(["sha256", "name", "ref"])
        for data, ref in ((PDF, "Diploma 2026/21"), (REVOKED_PDF, "Licence 2026/9")):
            writer.writerow([hashlib.sha256(data).hexdigest(), ref.replace("/", "-"), ref])
        writer.writerow([PAPER.document.hex(), "paper", "Diploma 2026/22"])
        (tmp / "docs.csv").write_text(rows.getvalue(), encoding="utf-8")
        done = tlog("submit", "--log", stack.url, "--key", str(key), "--csv", str(tmp / "docs.csv"))
        assert done.exit_code == 0, done.output
        (tmp / "licence.pdf").write_bytes(REVOKED_PDF)
        revoked = tlog("revoke", "--log", stack.url, "--key", str(key), str(tmp / "licence.pdf"), "--reason", "error")
        assert revoked.exit_code == 0, revoked.output
        wait_published(stack.url)
        index = {}
        for document in (hashlib.sha256(PDF).digest(), hashlib.sha256(REVOKED_PDF).digest(), PAPER.document):
            listing = httpx.get(f"{stack.url}/api/v1/documents/{document.hex()}").json()
            index[document.hex()] = next(int(s["index"]) for s in listing["statements"] if s["kind"] == "issue")
        (tmp / "diploma.pdf").write_bytes(PDF)
        yield World(stack, tmp, index)


@pytest.fixture(scope="module")
def browser(world: World) -> Iterator[BrowserContext]:
    with chromium(world.tmp / "profile") as context:
        yield context


def photo_of(url: str) -> Image.Image:
    """The QR code as a phone would see it on paper: printed small, rotated, blurred, JPEG-compressed."""
    code = segno.make_qr(
        [
            (text, segno.consts.MODE_BYTE if mode == "byte" else segno.consts.MODE_ALPHANUMERIC)
            for text, mode in qr_segments(url)
        ],
        error="m",
        boost_error=False,
    )
    out = io.BytesIO()
    code.save(out, kind="png", scale=6, border=4)
    image = Image.open(io.BytesIO(out.getvalue())).convert("L")
    image = image.rotate(7, expand=True, fillcolor=255).filter(ImageFilter.GaussianBlur(1.2))
    jpeg = io.BytesIO()
    image.save(jpeg, "JPEG", quality=55)
    return Image.open(io.BytesIO(jpeg.getvalue()))


def scanned(url: str) -> str:
    return scanned_text(photo_of(url))


def offline_note(page: Page) -> bool:
    return page.is_visible("#verdict-note")


def test_qr_photo_decodes_to_the_link_that_opens_the_page_genuine(world: World, page: Page) -> None:
    document = hashlib.sha256(PDF).digest()
    link = world.offline_link(document)
    text = scanned(link)
    assert text == link and text.startswith("http://127.0.0.1")  # the decoded text is the URL itself
    assert open_verdict(page, text) == "genuine", page.text_content("#verdict-reason")
    assert not offline_note(page), "the log is reachable: revocation was looked up"
    assert "revocation" in (page.text_content("#check-list") or "").lower()
    page.set_input_files("#file-input", str(world.tmp / "diploma.pdf"))
    page.wait_for_selector("#file-result.ok")
    assert open_verdict(page, scanned(world.online_link(document))) == "genuine"


def test_revoked_documents_offline_code_with_the_log_reachable_is_revoked(world: World, page: Page) -> None:
    link = world.offline_link(hashlib.sha256(REVOKED_PDF).digest())
    assert open_verdict(page, link) == "revoked", page.text_content("#verdict-reason")
    assert "error" in (page.text_content("#verdict-why") or "")  # the reason the issuer gave
    screenshot(page, "printed-revoked-offline-code")


def test_offline_code_with_the_network_cut_after_load_says_so_at_the_top(
    world: World, page: Page, browser: BrowserContext
) -> None:
    open_verdict(page, world.stack.url + "/verify")
    page.wait_for_function("navigator.serviceWorker && navigator.serviceWorker.controller !== null")
    page.wait_for_function("caches.open('tlog-verify-v2').then(c => c.keys()).then(k => k.length >= 6)")
    browser.set_offline(True)
    try:
        link = world.offline_link(hashlib.sha256(REVOKED_PDF).digest())
        assert open_verdict(page, link) == "genuine"  # all a proof can say without the log
        assert offline_note(page)
        note_box = page.locator("#verdict-note").bounding_box()
        assert note_box is not None and note_box["y"] < 300, note_box  # at the top, not below the fold
        assert "not checked for revocation" in (page.text_content("#verdict-note") or "")
        # Lane 16 (b): the offline code does not carry the issuer's registration (it would not fit: docs/trust.md);
        # the note says so plainly.
        assert "nor that the issuer's key is registered" in (page.text_content("#verdict-note") or "")
        screenshot(page, "printed-offline-not-checked")
        page.click("#lang-km")
        assert "ដកហូត" in (page.text_content("#verdict-note") or "")
        assert "ចុះឈ្មោះ" in (page.text_content("#verdict-note") or "")
        page.click("#lang-en")
    finally:
        browser.set_offline(False)


@pytest.mark.parametrize("form", ["online", "offline"])
def test_paper_fields_shown_and_a_one_character_change_refused(world: World, page: Page, form: str) -> None:
    make = world.online_link if form == "online" else world.offline_link
    assert open_verdict(page, make(PAPER.document, PAPER)) == "genuine", page.text_content("#verdict-reason")
    shown = page.text_content("#paper") or ""
    for name, value in PAPER.fields:
        assert name in shown and value in shown
    assert "compare" in shown.lower()
    assert page.is_hidden("#file"), "a paper document has no file to drop"
    screenshot(page, f"printed-paper-{form}")
    link = make(PAPER.document, PAPER)
    forged = PaperFields((("ឈ្មោះ / Name", "ចាន់ សុភី / Chan Sophea"), *PAPER.fields[1:]), PAPER.salt)
    forged_link = forged_link_of(link, PAPER, forged)  # one character of the name changed
    assert open_verdict(page, forged_link) == "tampered"
    assert "do not match" in (page.text_content("#verdict-reason") or "")
    assert page.is_hidden("#paper"), "fields that do not verify are never shown for comparison"
    assert open_verdict(page, link) == "genuine"
    resalted = PaperFields(PAPER.fields, bytes(range(1, 17)))
    assert open_verdict(page, forged_link_of(link, PAPER, resalted)) == "tampered"
    screenshot(page, f"printed-paper-{form}-changed")


def forged_link_of(link: str, genuine: PaperFields, forged: PaperFields) -> str:
    verifier, raw = split_link(link)
    assert genuine.body() in raw
    return link_url(verifier, raw.replace(genuine.body(), forged.body()))


def test_wrong_file_then_the_right_one_is_genuine(world: World, page: Page) -> None:
    digest = hashlib.sha256(PDF).hexdigest()
    assert open_verdict(page, f"{world.stack.url}/verify#h={digest}&i={world.index[digest]}") == "genuine"
    wrong = world.tmp / "wrong.pdf"
    wrong.write_bytes(PDF + b"% changed\n")
    page.set_input_files("#file-input", str(wrong))
    page.wait_for_selector("#verdict[data-verdict='tampered']")
    page.set_input_files("#file-input", str(world.tmp / "diploma.pdf"))
    page.wait_for_selector("#file-result.ok")
    assert page.get_attribute("#verdict", "data-verdict") == "genuine"
    assert "✗" not in (page.text_content("#check-list") or "")
    page.set_input_files("#file-input", str(wrong))
    page.wait_for_selector("#verdict[data-verdict='tampered']")


def serve_vectors(page: BrowserContext, offline: dict[str, bool]) -> None:
    """The vector file's trust (built into the page, as the log builds its own) and entries in place of the real
    log's; no newest checkpoint. The vectors' issuer key was never added by any registry: while `offline["now"]` the
    log is unreachable (the offline proof stands alone), else it answers with no registration for that key. Routed on
    the context, so that requests the page's service worker makes are served from the vectors too."""
    bundles = {g["index"]: g["bundle"] for g in VECTORS["good"] if g["bundle"]}
    log_vkey = VECTORS["policy"].split("\n")[0].removeprefix("log ")
    trust = Trust(log_vkey.split("+")[0], log_vkey, (), VECTORS["policy"])

    def documents(route: Route) -> None:
        if offline["now"]:
            route.abort()
            return
        document = route.request.url.rsplit("/", 1)[1]
        found = [g for g in VECTORS["good"] if g["document"] == document and g["bundle"]]
        statements = [{"kind": "issue", "index": g["index"], "bundle": g["bundle"]} for g in found[:1]]
        listing = {"statements": statements, "registrations": []}
        route.fulfill(status=200, content_type="application/json", body=json.dumps(listing))

    def bundle(route: Route) -> None:
        index = int(route.request.url.rsplit("/", 1)[1].split("?")[0])
        route.fulfill(status=200, content_type="text/plain", body=bundles[index])

    page_html = render_page(trust, LOG_LAYOUT)
    page.route("**/verify", lambda r: r.fulfill(status=200, content_type="text/html", body=page_html))
    page.route("**/api/v1/documents/*", documents)
    page.route("**/api/v1/bundle/*", bundle)
    page.route("**/checkpoint", lambda r: r.abort())


def test_the_pages_decoder_reads_the_shared_vectors(world: World, browser: BrowserContext, page: Page) -> None:
    """The vectors' trust is served for this test only; the service worker's cache is emptied afterwards so that it
    never reaches another test."""
    offline = {"now": False}
    serve_vectors(browser, offline)
    try:
        # The vectors' trust replaces the real log's at the same site: forget the pinned one, as the person would
        # by accepting new keys, so that the page pins the vectors' on this first use (and the real one after).
        page.goto(world.stack.url + "/verify")
        page.evaluate(FORGET_PINNED_TRUST)
        check_vectors(page, world.stack.url + "/verify#", offline)
    finally:
        page.evaluate(FORGET_PINNED_TRUST)
        browser.unroute_all()
        page.evaluate(FORGET_SERVICE_WORKER)


FORGET_PINNED_TRUST = "localStorage.removeItem('tlog-trust')"


FORGET_SERVICE_WORKER = """async () => {
  for (const key of await caches.keys()) await caches.delete(key);
  for (const r of await navigator.serviceWorker.getRegistrations()) await r.unregister();
}"""


def check_vectors(page: Page, base: str, offline: dict[str, bool]) -> None:
    """Every good link decodes and its proofs verify: offline codes with the log unreachable are genuine on the
    proof alone; online codes are "not from a registered issuer" (the vectors' key is in no registry), with every
    other check passed. Bad links are never genuine."""
    for item in VECTORS["good"]:
        offline["now"] = item["offline"]
        verdict = open_verdict(page, base + item["url"].partition("#")[2])
        wanted = "genuine" if item["offline"] else "unregistered"
        assert verdict == wanted, (item["name"], page.text_content("#verdict-reason"))
        failed = page.locator("#check-list li.fail").all_text_contents()
        if item["offline"]:
            assert failed == [], (item["name"], failed)
        else:  # the one failed check is the registration
            assert len(failed) == 1 and failed[0].startswith("✗Issuer's key registered"), (item["name"], failed)
        assert page.text_content("#f-hash") == item["document"], item["name"]
        assert page.text_content("#f-entry", timeout=1000).startswith(f"#{item['index']} "), item["name"]
        if item["paper"] and item["offline"]:  # the paper is shown only for a verified genuine or revoked document
            for _name, value in item["paper"]["fields"]:
                assert value in (page.text_content("#paper") or ""), item["name"]
    offline["now"] = False
    for item in VECTORS["bad"]:
        assert open_verdict(page, base + item["url"].partition("#")[2]) != "genuine", item["why"]


def test_the_link_decoder_is_served_with_the_pages_csp_and_cached_for_offline(world: World) -> None:
    response = httpx.get(world.stack.url + "/verify/qrlink.js")
    assert response.status_code == 200 and response.headers["content-security-policy"] == CSP
    assert "TLOG_QRLINK" in response.text
    assert '"qrlink.js"' in httpx.get(world.stack.url + "/verify-sw.js").text
