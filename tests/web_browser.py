"""For the web verifier's tests: Debian's Chromium driven by Playwright's Python API (never a downloaded browser),
headless, with a fresh profile, and screenshots of each verdict at phone and desktop widths."""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from log_harness import REPO
from playwright.sync_api import BrowserContext, Page, sync_playwright

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


def screenshot(page: Page, name: str) -> None:
    """The page as it is, at phone and then desktop width: SCREENSHOTS/<name>-phone.png / -desktop.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for label, size in (("phone", PHONE), ("desktop", DESKTOP)):
        page.set_viewport_size(size)
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{label}.png"), full_page=True)
    page.set_viewport_size(DESKTOP)
