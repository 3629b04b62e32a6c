"""The log's home page at `/` in a real headless Chromium against a real log with three real witnesses: its identity,
size and newest checkpoint, the witnesses and their last cosignature, the issuers with their labels and key history,
the trust policy download and the links, in English and Khmer, under the verifier's strict CSP; screenshots of both."""

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from log_harness import LogProcess, free_port
from playwright.sync_api import BrowserContext, Page
from tools_stack import Stack, tlog, witnessed_log
from web_browser import chromium, screenshot, wait_published

from logserver.webpage import CSP

PDF = b"%PDF-1.7\n% Certificate 2026/1, Chan Sophea\n%%EOF\n" * 10


@dataclass
class Home:
    stack: Stack
    tmp: Path
    old_key: str  # retired
    new_key: str  # in use


def keygen(tmp: Path, name: str, file: str) -> tuple[Path, str]:
    made = tlog("keygen", "--name", name, "--out", str(tmp / file))
    assert made.exit_code == 0, made.output
    return tmp / file, made.stdout.strip()


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Home]:
    tmp = tmp_path_factory.mktemp("home")
    with witnessed_log(tmp) as stack:
        registry = ["--log", stack.url, "--registry-key", str(stack.server.data / "registry.key")]
        _, old_key = keygen(tmp, "moeys.gov.kh", "old.key")
        new_file, new_key = keygen(tmp, "moeys.gov.kh", "new.key")
        for key, rotation in ((old_key, []), (new_key, ["--continues", old_key])):  # the new key continues the old
            added = tlog("issuer", "add", *registry, "--issuer", key, "--label", "Ministry of Education", *rotation)
            assert added.exit_code == 0, added.output
        retired = tlog("issuer", "retire", *registry, "--issuer", old_key, "--reason", "key rotated")
        assert retired.exit_code == 0, retired.output
        (tmp / "cert.pdf").write_bytes(PDF)
        done = tlog("submit", "--log", stack.url, "--key", str(new_file), "--ref", "2026/1", str(tmp / "cert.pdf"))
        assert done.exit_code == 0, done.output
        wait_published(stack.url, 4)
        yield Home(stack, tmp, old_key, new_key)


@pytest.fixture(scope="module")
def browser(home: Home) -> Iterator[BrowserContext]:
    with chromium(home.tmp / "profile") as context:
        yield context


@pytest.fixture
def page(browser: BrowserContext) -> Iterator[Page]:
    page = browser.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    yield page
    page.close()
    assert not problems, problems  # no CSP violation, no script error


def open_home(page: Page, url: str) -> None:
    page.goto("about:blank")
    page.goto(url + "/")
    page.wait_for_selector("body[data-done='1']")


def test_served_with_the_verifiers_strict_csp(home: Home) -> None:
    url = home.stack.url
    for path in ("/", "/home/home.js", "/home/home.css"):
        response = httpx.get(url + path)
        assert response.status_code == 200 and response.headers["content-security-policy"] == CSP, path
    html = httpx.get(url + "/").text
    assert "<script>" not in html and "style=" not in html and "http" not in html.replace('"http', "")
    missing = httpx.get(url + "/home/nope.js")
    assert missing.status_code == 404 and missing.headers["content-security-policy"] == CSP


def test_shows_identity_size_witnesses_and_issuers(home: Home, page: Page) -> None:
    stack = home.stack
    open_home(page, stack.url)
    assert page.inner_text("#status").startswith("Up to date")
    info = httpx.get(stack.url + "/api/v1/log").json()
    assert page.inner_text("#f-size") == str(info["size"]) == "4"
    assert page.inner_text("#f-origin") == stack.origin
    assert page.inner_text("#f-log-key") == stack.log_vkey
    assert page.inner_text("#f-registry-key") == info["registry_vkeys"][0]
    assert page.inner_text("#f-age").startswith(f"size {info['published_size']}, less than a minute ago")
    witnesses = page.inner_text("#witnesses")
    for i, witness in enumerate(stack.witnesses):
        assert f"witness{i}.example.org" in witnesses and witness.vkey in witnesses
    assert witnesses.count("vouched for size") == 3
    issuers = page.inner_text("#issuers")
    assert "Ministry of Education — moeys.gov.kh" in issuers
    assert home.old_key in issuers and home.new_key in issuers
    retired = page.inner_text(".keys li.retired")
    assert home.old_key in retired and "retired" in retired and "reason: key rotated" in retired
    active = page.inner_text(".keys li.active")
    assert home.new_key in active
    # Lane 16 (d): the rotation the registry recorded (issuer-add ... --continues) is shown on the new key, naming
    # the key it continues; the first key continues none.
    assert "continues key " + home.old_key in active and "may revoke what that key issued" in active
    assert "continues" not in retired
    screenshot(page, "home")


def test_links_and_the_policy_download(home: Home, page: Page) -> None:
    url = home.stack.url
    open_home(page, url)
    link = page.locator("#policy-download")
    assert link.get_attribute("download") == "trust-policy.txt"
    with page.expect_download() as download:
        link.click()
    saved = home.tmp / "downloaded-policy.txt"
    download.value.save_as(saved)
    assert saved.read_text() == httpx.get(url + "/api/v1/policy").text
    hrefs = page.eval_on_selector_all("a", "links => links.map(a => a.getAttribute('href'))")
    assert {"/verify", "/openapi.json", "/checkpoint", "/api/v1/policy", "/tile/entries/000.p/4"} <= set(hrefs)
    for href in hrefs:
        assert httpx.get(url + href).status_code == 200, href


def test_in_khmer(home: Home, page: Page) -> None:
    open_home(page, home.stack.url)
    page.click("#lang-km")
    assert page.get_attribute("html", "lang") == "km"
    assert page.inner_text("#log-h") == "បញ្ជីនេះ"
    assert page.inner_text("#witnesses").count("បានធានាទំហំ") == 3
    assert "ឈប់ប្រើ" in page.inner_text(".keys li.retired")
    assert "បន្តពីកូនសោ " + home.old_key in page.inner_text(".keys li.active")
    screenshot(page, "home-km")
    page.click("#lang-en")  # the choice is remembered; leave English for the other tests


def test_a_log_without_witnesses_or_issuers_says_so(tmp_path: Path, page: Page) -> None:
    server = LogProcess(tmp_path / "log", free_port()).start()
    try:
        open_home(page, server.url)
        assert "no witnesses configured" in page.inner_text("#witnesses")
        assert page.inner_text("#issuers") == "No issuer is registered yet."
        assert page.inner_text("#f-size") == "0"
    finally:
        server.stop()
