"""The web verifier page (/verify) in a real headless Chromium against a real log with three witnesses and the
2-of-3 quorum it publishes: every verdict, computed in the browser by the page's own JavaScript, screenshotted at
phone and desktop widths into build/screenshots/ (docs/screenshots/ via `python3 dev.py screenshots`); damaged
bundles must not verify; offline works with the log down."""

import base64
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page
from qr_scan import scanned_text
from tools_stack import Stack, register_issuer, tlog, witnessed_log
from web_browser import chromium, open_verdict, screenshot, wait_published

from logserver.webpage import CSP
from tlogcore.bundle import from_binary, to_binary, verify_bundle
from tlogcore.checkpoint import parse_checkpoint
from tlogcore.note import Note, Signature, parse_note
from tlogcore.policy import parse_policy
from tlogcore.qrlink import link_url, online_payload

PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n% Diploma 2026/17, Sok Dara\n%%EOF\n" * 20
REVOKED_PDF = b"%PDF-1.7\n% Licence 2026/3, issued in error\n%%EOF\n" * 20


@dataclass
class World:
    stack: Stack
    tmp: Path
    online_url: str  # decoded from the online QR code the tool printed
    index: int
    revoked_url: str
    binary: bytes  # the offline bundle of PDF


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("web")
    with witnessed_log(tmp) as stack:
        key = tmp / "moeys.key"
        register_issuer(stack, key, label="Ministry of Education")
        urls = []
        for name, data, ref in (("diploma.pdf", PDF, "Diploma 2026/17"), ("licence.pdf", REVOKED_PDF, "Licence 3")):
            (tmp / name).write_bytes(data)
            done = tlog(
                "submit", "--log", stack.url, "--key", str(key), "--ref", ref, "--qr", "online", str(tmp / name)
            )
            assert done.exit_code == 0, done.output
            urls.append(scanned_text(tmp / f"{name}.qr.png"))
        revoked = tlog(
            "revoke", "--log", stack.url, "--key", str(key), str(tmp / "licence.pdf"), "--reason", "issued in error"
        )
        assert revoked.exit_code == 0, revoked.output
        wait_published(stack.url)
        digest = hashlib.sha256(PDF).hexdigest()
        index = int(httpx.get(f"{stack.url}/api/v1/documents/{digest}").json()["statements"][0]["index"])
        assert urls[0] == link_url(f"{stack.url}/verify", online_payload(bytes.fromhex(digest), index))
        binary = httpx.get(f"{stack.url}/api/v1/bundle/{index}?format=binary").content
        yield World(stack, tmp, urls[0], index, urls[1], binary)


@pytest.fixture(scope="module")
def browser(world: World) -> Iterator[BrowserContext]:
    with chromium(world.tmp / "profile") as context:
        yield context


ENGLISH = re.compile(r"\b(is|not|by|does|verify|none|size|of|the|no|quorum|needs|cosigned)\b")


def offline_url(world: World, binary: bytes) -> str:
    return f"{world.stack.url}/verify#b={b64url(binary)}"


def checkpoint_with(binary: bytes, change) -> bytes:  # type: ignore[no-untyped-def]
    """The offline bundle with its checkpoint's signature lines changed by `change`."""
    bundle = from_binary(binary)
    note = parse_note(bundle.checkpoint)
    signatures = change(parse_checkpoint(note.text).origin, list(note.signatures))
    changed = type(bundle)(bundle.index, bundle.proof, Note(note.text, tuple(signatures)).to_bytes(), bundle.extra)
    return to_binary(changed)


def test_served_with_a_strict_csp_and_the_published_policy(world: World) -> None:
    url = world.stack.url
    for path in ("/verify", "/verify/verify.js", "/verify/verify.css", "/verify/i18n.js", "/verify-sw.js"):
        response = httpx.get(url + path)
        assert response.status_code == 200 and response.headers["content-security-policy"] == CSP, path
    html = httpx.get(url + "/verify").text
    assert "<script>" not in html and "style=" not in html and "http" not in html.replace('"http', "")
    assert httpx.get(url + "/verify/nope.js").status_code == 404
    text = httpx.get(url + "/api/v1/policy").text
    policy = parse_policy(text)
    assert [log.vkey for log in policy.logs] == [world.stack.log_vkey]
    assert sorted(w.vkey for w in policy.witnesses.values()) == sorted(w.vkey for w in world.stack.witnesses)
    names = " ".join(f"witness{i}.example.org" for i in range(3))
    assert f"group majority 2 {names}\nquorum majority\n" in text
    assert verify_bundle(from_binary(world.binary), policy)


def test_genuine_online_then_the_right_file(world: World, page: Page) -> None:
    verdict = open_verdict(page, world.online_url)
    assert verdict == "genuine", (page.text_content("#verdict-reason"), page.text_content("#check-list"))
    issuer = page.text_content("#f-issuer") or ""
    assert issuer.startswith("Ministry of Education — registered by the log's registry in entry #0"), issuer
    assert "(moeys.gov.kh+" in issuer  # the key, beside the registered label
    assert page.text_content("#site-host") == world.stack.url.removeprefix("http://")
    assert page.text_content("#site-log") == world.stack.origin
    assert page.text_content("#f-ref") == "Diploma 2026/17"
    assert page.text_content("#f-hash") == hashlib.sha256(PDF).hexdigest()
    vouched = page.text_content("#f-witnesses") or ""
    assert "2 of 3" in vouched or "3 of 3" in vouched, vouched
    assert (page.text_content("#policy-text") or "").startswith(f"log {world.stack.log_vkey}\n")
    assert "Registered issuer" not in (page.text_content("#check-list") or "")
    assert "Issuer's key registered before the document" in (page.text_content("#check-list") or "")
    assert open_verdict(page, world.online_url) == "genuine"
    page.set_input_files("#file-input", str(world.tmp / "diploma.pdf"))
    page.wait_for_selector("#file-result.ok")
    assert page.get_attribute("#verdict", "data-verdict") == "genuine"
    screenshot(page, "genuine")


def test_genuine_in_khmer_with_a_khmer_font(world: World, page: Page) -> None:
    assert open_verdict(page, world.online_url) == "genuine"
    page.focus("#lang-km")
    page.keyboard.press("Enter")  # keyboard operable
    assert page.get_attribute("html", "lang") == "km"
    assert page.text_content("#verdict-label") == "ពិតប្រាកដ"
    cdp = page.context.new_cdp_session(page)
    cdp.send("DOM.enable")
    cdp.send("CSS.enable")
    root = cdp.send("DOM.getDocument")["root"]["nodeId"]
    node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": "#verdict-label"})["nodeId"]
    fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
    assert any("Khmer" in f["familyName"] for f in fonts), fonts  # rendered with a Khmer font, not tofu
    screenshot(page, "genuine-km")
    page.click("#lang-en")
    assert page.get_attribute("html", "lang") == "en"


def test_wrong_file_dropped(world: World, page: Page) -> None:
    assert open_verdict(page, world.online_url) == "genuine"
    other = world.tmp / "other.pdf"
    other.write_bytes(PDF + b"% one more line\n")
    page.set_input_files("#file-input", str(other))
    page.wait_for_selector("#verdict[data-verdict='tampered']")
    assert page.get_attribute("#file-result", "class") == "file-result fail"
    screenshot(page, "wrong-file")


def test_revoked(world: World, page: Page) -> None:
    assert open_verdict(page, world.revoked_url) == "revoked"
    assert page.text_content("#verdict-reason") == "The issuer has revoked this document."
    assert page.text_content("#verdict-why") == "Reason given by the issuer: issued in error"
    screenshot(page, "revoked")


def test_not_logged(world: World, page: Page) -> None:
    unknown = hashlib.sha256(b"never issued").hexdigest()
    assert open_verdict(page, f"{world.stack.url}/verify#h={unknown}&i={world.index}") == "not_logged"
    screenshot(page, "not-logged")


def test_link_to_another_documents_entry_is_tampered(world: World, page: Page) -> None:
    revoked_hash = hashlib.sha256(REVOKED_PDF).hexdigest()
    url = f"{world.stack.url}/verify#h={revoked_hash}&i={world.index}"  # entry of the diploma, hash of the licence
    assert open_verdict(page, url) == "tampered"


def test_genuine_offline_bundle_and_every_damage(world: World, page: Page) -> None:
    assert open_verdict(page, offline_url(world, world.binary)) == "genuine"
    assert "offline" in (page.text_content("#f-mode") or "")
    bundle = from_binary(world.binary)
    assert bundle.proof, "the diploma's proof has hashes to damage"
    for what, position in (
        ("proof hash", world.binary.index(bundle.proof[0]) + 3),
        ("statement signature", world.binary.index(parse_note(bundle.extra or b"").signatures[0].signature) + 7),
        ("document hash", world.binary.index(hashlib.sha256(PDF).digest()) + 1),
        ("checkpoint root", world.binary.index(parse_checkpoint(parse_note(bundle.checkpoint).text).root) + 2),
    ):
        damaged = bytearray(world.binary)
        damaged[position] ^= 0x01
        assert open_verdict(page, offline_url(world, bytes(damaged))) == "tampered", what
        if what == "proof hash":
            screenshot(page, "tampered")
    assert open_verdict(page, offline_url(world, world.binary[:-1])) == "tampered"


def test_bad_cosignature(world: World, page: Page) -> None:
    def break_one(origin: str, signatures: list[Signature]) -> list[Signature]:
        position = next(i for i, s in enumerate(signatures) if s.name != origin)
        bad = bytearray(signatures[position].signature)
        bad[-1] ^= 0x01
        signatures[position] = Signature(signatures[position].name, signatures[position].key_id, bytes(bad))
        return signatures

    assert open_verdict(page, offline_url(world, checkpoint_with(world.binary, break_one))) == "tampered"
    assert page.text_content("#verdict-reason") == (
        "A witness's signature on the log's record does not match: the proof was changed."
    )
    assert "cosignature" in (page.text_content("#verdict-detail") or "")  # the technical detail, one click away
    assert not page.is_visible("#verdict-detail")
    page.click("#verdict-more summary")
    assert page.is_visible("#verdict-detail")
    screenshot(page, "bad-cosignature")


def test_quorum_not_met(world: World, page: Page) -> None:
    def keep_one(origin: str, signatures: list[Signature]) -> list[Signature]:
        witnesses = [s for s in signatures if s.name != origin]
        return [s for s in signatures if s.name == origin] + witnesses[:1]

    assert open_verdict(page, offline_url(world, checkpoint_with(world.binary, keep_one))) == "cannot_verify"
    assert page.text_content("#verdict-reason") == "Not enough independent witnesses vouched for the log's record."
    assert "quorum" in (page.text_content("#verdict-detail") or "")
    screenshot(page, "quorum-not-met")

    def no_log_signature(origin: str, signatures: list[Signature]) -> list[Signature]:
        return [s for s in signatures if s.name != origin]

    assert open_verdict(page, offline_url(world, checkpoint_with(world.binary, no_log_signature))) == "cannot_verify"


def test_technical_detail_in_khmer_keeps_identifiers(world: World, page: Page) -> None:
    """Lane 16 (e): the technical detail lines (the checks list and "technical detail") were English in the Khmer
    view. In Khmer they are Khmer, with key names, origins and sizes as they are."""

    def keep_one(origin: str, signatures: list[Signature]) -> list[Signature]:
        witnesses = [s for s in signatures if s.name != origin]
        return [s for s in signatures if s.name == origin] + witnesses[:1]

    kept = next(s.name for s in parse_note(from_binary(world.binary).checkpoint).signatures if "witness" in s.name)
    assert open_verdict(page, offline_url(world, checkpoint_with(world.binary, keep_one))) == "cannot_verify"
    page.click("#lang-km")
    try:
        detail = page.text_content("#verdict-detail") or ""
        assert page.get_attribute("#verdict-detail", "lang") == "km", detail
        assert "សាក្សីមិនគ្រប់ចំនួន" in detail and kept in detail and " of " not in detail, detail
        spans = page.eval_on_selector_all("#check-list .detail", "ds => ds.map(d => [d.lang, d.textContent])")
        assert any(world.stack.origin in text for _, text in spans), spans  # the origin is kept as it is
        names = [world.stack.origin, kept, "moeys.gov.kh", "Ministry of Education"]  # identifiers and data
        for lang, text in spans:
            words = text
            for name in names:
                words = words.replace(name, "")
            assert not ENGLISH.search(words), (lang, text)  # an English line left in the Khmer view
            assert lang == "km" or not words.strip(" #/…0123456789abcdef,"), (lang, text)
        screenshot(page, "quorum-not-met-km")
    finally:
        page.click("#lang-en")
    assert page.get_attribute("#verdict-detail", "lang") == "en"
    assert "quorum" in (page.text_content("#verdict-detail") or "")


def test_no_link(world: World, page: Page) -> None:
    assert open_verdict(page, world.stack.url + "/verify") == "cannot_verify"


def test_zz_offline_with_the_server_stopped(world: World, page: Page) -> None:
    """Last in this module: it stops the log. The page, once cached by its service worker, verifies the offline
    bundle from the URL with nothing listening on the port any more."""
    open_verdict(page, world.stack.url + "/verify")
    page.wait_for_function("navigator.serviceWorker && navigator.serviceWorker.controller !== null")
    page.wait_for_function("caches.open('tlog-verify-v2').then(c => c.keys()).then(k => k.length >= 5)")
    world.stack.server.stop()
    with pytest.raises(httpx.HTTPError):
        httpx.get(world.stack.url + "/healthz", timeout=2)
    assert open_verdict(page, offline_url(world, world.binary)) == "genuine"
    assert (page.text_content("#f-issuer") or "").startswith("moeys.gov.kh — registration not checked (offline)")
    screenshot(page, "offline-server-stopped")
    damaged = bytearray(world.binary)
    damaged[world.binary.index(from_binary(world.binary).proof[0]) + 3] ^= 0x01
    assert open_verdict(page, offline_url(world, bytes(damaged))) == "tampered"
