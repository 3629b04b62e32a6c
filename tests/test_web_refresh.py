"""The web verifier page refreshes an old offline proof (docs/thirty-years.md, "Refresh"), in a real headless
Chromium against a real log with three real witnesses: the verdict stands on the log's newest cosigned checkpoint
and says so; a proof whose checkpoint the log's history contradicts is "log misbehaved", never genuine."""

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page
from refresh_helpers import forked_bundle
from test_web_verifier import b64url, wait_published
from tools_stack import Stack, register_issuer, tlog, witnessed_log
from web_browser import chromium, open_verdict, screenshot

from tlogcore.bundle import parse_tlog_proof, to_binary

PDF = b"%PDF-1.7\n% Diploma 2026/21, Chan Sophea\n%%EOF\n" * 10


@dataclass
class World:
    stack: Stack
    tmp: Path
    old: bytes  # the diploma's bundle (text form) as issued, before the log grew
    size: int  # its checkpoint's tree size


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("web-refresh")
    with witnessed_log(tmp) as stack:
        key = tmp / "moeys.key"
        register_issuer(stack, key)
        (tmp / "diploma.pdf").write_bytes(PDF)
        done = tlog("submit", "--log", stack.url, "--key", str(key), "--qr", "none", str(tmp / "diploma.pdf"))
        assert done.exit_code == 0, done.output
        old = (tmp / "diploma.pdf.tlog-proof").read_bytes()
        size = int(old.split(b"\n\n", 1)[1].split(b"\n")[1])
        for i in range(3):
            (tmp / f"other{i}.pdf").write_bytes(PDF + bytes([i]))
            more = tlog("submit", "--log", stack.url, "--key", str(key), "--qr", "none", str(tmp / f"other{i}.pdf"))
            assert more.exit_code == 0, more.output
        wait_published(stack.url, int(httpx.get(stack.url + "/api/v1/log").json()["size"]))
        yield World(stack, tmp, old, size)


@pytest.fixture(scope="module")
def browser(world: World) -> Iterator[BrowserContext]:
    with chromium(world.tmp / "profile") as context:
        yield context


def _url(world: World, text_bundle: bytes) -> str:
    return f"{world.stack.url}/verify#b={b64url(to_binary(parse_tlog_proof(text_bundle)))}"


def test_an_old_offline_proof_is_judged_against_the_newest_checkpoint(world: World, page: Page) -> None:
    assert open_verdict(page, _url(world, world.old)) == "genuine"
    newest = int(httpx.get(world.stack.url + "/api/v1/log").json()["published_size"])
    assert newest > world.size
    entry = page.text_content("#f-entry") or ""
    assert f" · {newest} — " in entry and f"the proof carried size {world.size}" in entry, entry
    checks = page.text_content("#check-list") or ""
    assert "brought up to the log's newest checkpoint" in checks and f"size {world.size} → {newest}" in checks
    screenshot(page, "refreshed")
    page.click("#lang-km")
    assert f"({world.size})" not in (page.text_content("#f-entry") or "")  # the Khmer words, with the size
    assert "ភស្តុតាងមានទំហំ" in (page.text_content("#f-entry") or "")
    page.click("#lang-en")


def test_a_proof_from_a_forked_tree_is_log_misbehaved(world: World, page: Page) -> None:
    forked = forked_bundle(world.stack, world.old)
    assert open_verdict(page, _url(world, forked)) == "log_misbehaved"
    assert "contradict each other" in (page.text_content("#verdict-reason") or "")
    assert "not a prefix" in (page.text_content("#verdict-detail") or "")
    assert page.is_hidden("#verdict-note")  # not "offline, revocation not checked": the log was asked
    screenshot(page, "log-misbehaved")
    page.click("#lang-km")
    assert (page.text_content("#verdict-label") or "") == "បញ្ជីប្រព្រឹត្តខុស"
    screenshot(page, "log-misbehaved-km")
    page.click("#lang-en")


def test_a_proof_on_a_bigger_tree_than_the_logs_newest_is_log_misbehaved(world: World, page: Page) -> None:
    ahead = forked_bundle(world.stack, world.old, size=1000)
    assert open_verdict(page, _url(world, ahead)) == "log_misbehaved"
    assert "is smaller than this proof's (1000)" in (page.text_content("#verdict-detail") or "")


def test_a_damaged_consistency_proof_from_the_log_is_not_genuine(world: World, page: Page) -> None:
    """The page computes the consistency itself: a log answering another proof cannot make a fork pass."""
    page.route("**/api/v1/proof/consistency*", lambda route: route.fulfill(status=200, json={"proof": []}))
    assert open_verdict(page, _url(world, world.old)) == "log_misbehaved"
    page.unroute("**/api/v1/proof/consistency*")
