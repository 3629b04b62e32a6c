"""For the web verifier's tests: Debian's Chromium driven by Playwright's Python API (never a downloaded browser),
headless, with a fresh profile, and screenshots of each verdict at phone and desktop widths."""

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from log_harness import REPO
from playwright.sync_api import BrowserContext, Page, sync_playwright

from tlogcore.checkpoint import parse_checkpoint
from tlogcore.note import parse_note

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Tests write screenshots to an ignored folder so a test run leaves the checkout clean; `python3 dev.py screenshots`
# points this at docs/screenshots to refresh the README's pictures on purpose.
SCREENSHOTS = Path(os.environ.get("TLOG_SCREENSHOTS_DIR", str(REPO / "build" / "screenshots")))
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}

if not CHROMIUM.exists():  # fail loudly, never skip: `python3 dev.py test` installs it
    raise RuntimeError(f"{CHROMIUM} is missing: run `python3 dev.py test` (it apt-get installs chromium)")


@contextmanager
def chromium(profile: Path) -> Iterator[BrowserContext]:
    """A persistent context (so the service worker and its cache survive navigations) on a fresh profile."""
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            args=ARGS,
            headless=True,
            viewport=DESKTOP,
            service_workers="allow",
            timeout=30_000,
        )
        context.set_default_timeout(20_000)
        try:
            yield context
        finally:
            context.close()


def open_verdict(page: Page, url: str) -> str:
    """Load the page at `url` (fragment included) and return the verdict it settles on."""
    page.goto("about:blank")
    page.goto(url)
    page.wait_for_selector("body[data-done='1']")
    return str(page.get_attribute("#verdict", "data-verdict"))


def screenshot(page: Page, name: str, directory: Path | None = None) -> None:
    """The page as it is, at phone and then desktop width: <directory>/<name>-phone.png / -desktop.png (default
    SCREENSHOTS)."""
    directory = directory or SCREENSHOTS
    directory.mkdir(parents=True, exist_ok=True)
    for label, size in (("phone", PHONE), ("desktop", DESKTOP)):
        page.set_viewport_size(size)
        page.screenshot(path=str(directory / f"{name}-{label}.png"), full_page=True)
    page.set_viewport_size(DESKTOP)


def screenshots_in_both_languages(page: Page, name: str, khmer: str, directory: Path) -> None:
    """Screenshots of the verdict in English, then in Khmer, whose check list must hold `khmer`."""
    screenshot(page, name, directory)
    page.click("#lang-km")
    try:
        checks = page.text_content("#check-list") or ""
        assert khmer in checks, checks
        screenshot(page, f"{name}-km", directory)
    finally:
        page.click("#lang-en")


@contextmanager
def checked_page(browser: BrowserContext) -> Iterator[Page]:
    """A new page that must not trip its own Content-Security-Policy nor throw: checked when the test is done."""
    page = browser.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    yield page
    page.unroute_all()
    page.close()
    assert not problems, problems  # the page itself never trips its own CSP, and its script never throws


def wait_published(url: str, size: int | None = None, cosignatures: int = 2) -> None:
    """Until the published checkpoint covers `size` entries (default: all the log holds now) with the log's
    signature and `cosignatures` witnesses' (the stacks' 2-of-3 quorum)."""
    if size is None:
        size = int(httpx.get(url + "/api/v1/log", timeout=5).json()["size"])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        body = httpx.get(url + "/checkpoint", timeout=5).content
        if parse_checkpoint(parse_note(body).text).size >= size and body.count("\u2014".encode()) >= 1 + cosignatures:
            return
        time.sleep(0.1)
    raise TimeoutError("no cosigned checkpoint covers the new entries")
