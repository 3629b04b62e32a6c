"""The verifier page follows a log key rotation (docs/thirty-years.md, "Log key rotation"), in a real headless
Chromium against a real rotated log (tests/test_rotate_key.py's fixture): the page's trust carries which key signs
which sizes, so a checkpoint signed only by the replaced key after the overlap is refused ("log misbehaved", in
plain words), while a bundle from before the rotation still verifies offline and refreshes onto the new key; the
static copy `tlog verifier-site` writes carries the same ranges."""

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from monitor_faults import FaultProxy
from playwright.sync_api import BrowserContext, Page
from test_rotate_key import (  # noqa: F401  (`rotated` is the module-scoped fixture `world` builds on)
    Rotated,
    both_keys_policy,
    forged_with_the_old_key,
    key_id,
    log_signers,
    past_the_overlap,
    rotated,
    submit,
)
from test_web_verifier import b64url
from tools_stack import tlog
from web_browser import chromium, open_verdict, screenshot

from loadtest.localproc import free_port
from tlogcore.bundle import TlogProof, parse_tlog_proof, to_binary
from tlogcore.logkey import LogKeyRotation

REPLACED = "signed by a log key that was replaced"


@dataclass
class World:
    log: Rotated
    rotation: LogKeyRotation
    published: bytes  # the log's checkpoint past the overlap: signed by the new key only
    old: TlogProof  # the bundle made before the rotation
    forged: TlogProof  # a bundle after the overlap, its checkpoint re-signed by the replaced key alone
    site: Path  # `tlog verifier-site` with both keys' policy
    one_key_site: Path  # the same with the policy from before the rotation (one log key)


def forged_bundle(log: Rotated, name: str) -> TlogProof:
    pdf = submit(log.stack, log.tmp, log.issuer_key, both_keys_policy(log), name)
    bundle = parse_tlog_proof(Path(f"{pdf}.tlog-proof").read_bytes())
    return TlogProof(bundle.index, bundle.proof, forged_with_the_old_key(log, bundle.checkpoint), bundle.extra)


def verifier_site(log: Rotated, policy: Path, out: Path) -> Path:
    made = tlog("verifier-site", "--policy", str(policy), "--log", log.stack.url, "--out", str(out))
    assert made.exit_code == 0, made.output
    return out


@pytest.fixture(scope="module")
def world(rotated: Rotated) -> World:  # noqa: F811
    """Every use of the in-process CLI happens here, before the browser runs its own event loop."""
    rotation, published = past_the_overlap(rotated)
    forged = forged_bundle(rotated, "forged-after-overlap")
    site = verifier_site(rotated, both_keys_policy(rotated), rotated.tmp / "site")
    one_key = verifier_site(rotated, rotated.tmp / "before.policy", rotated.tmp / "site-one-key")
    old = parse_tlog_proof(rotated.old_bundle.read_bytes())
    return World(rotated, rotation, published, old, forged, site, one_key)


@pytest.fixture(scope="module")
def browser(world: World) -> Iterator[BrowserContext]:
    with chromium(world.log.tmp / "profile") as context:
        yield context


def offline(base: str, bundle: TlogProof) -> str:
    return f"{base}#b={b64url(to_binary(bundle))}"


def embedded_trust(html: str) -> dict[str, object]:
    found = re.search(r'<script type="application/json" id="tlog-trust">(.*?)</script>', html, re.S)
    assert found, html[:500]
    trust: dict[str, object] = json.loads(found.group(1))
    return trust


def ranges(world: World) -> list[dict[str, str]]:
    """The key ranges the page's trust must carry for this log."""
    old, new = world.log.stack.log_vkey, world.log.new_vkey
    sizes = {"from": str(world.rotation.start), "until": str(world.rotation.until)}
    return [{"origin": world.log.stack.origin, "old": old, "new": new, **sizes}]


def test_the_page_carries_the_key_ranges_and_refreshes_an_old_bundle_onto_the_new_key(world: World, page: Page) -> None:
    stack = world.log.stack
    assert log_signers(world.published) == {key_id(world.log.new_vkey)}
    assert embedded_trust(httpx.get(stack.url + "/verify", timeout=5).text)["log_keys"] == ranges(world)
    assert open_verdict(page, offline(stack.url + "/verify", world.old)) == "genuine"
    checks = page.text_content("#check-list") or ""
    assert "brought up to the log's newest checkpoint" in checks, checks
    assert "Signed by the log key in use at this size" in checks, checks
    assert f"Trust policy loaded {stack.origin}" in checks and f"{stack.origin}, {stack.origin}" not in checks, checks


def test_a_checkpoint_signed_by_the_replaced_key_after_the_overlap_is_refused_on_the_page(
    world: World, page: Page
) -> None:
    stack = world.log.stack
    with FaultProxy(stack.url) as proxy:
        assert open_verdict(page, offline(proxy.url + "/verify", world.old)) == "genuine"  # the proxy is harmless
        proxy.checkpoint = forged_with_the_old_key(world.log, world.published)
        assert open_verdict(page, offline(proxy.url + "/verify", world.old)) == "log_misbehaved"
        assert REPLACED in (page.text_content("#verdict-reason") or "")
        detail = page.text_content("#verdict-detail") or ""
        assert f"signed by the log key {stack.log_vkey}" in detail and world.log.new_vkey in detail, detail
        size = world.published.split(b"\n")[1].decode()
        assert (page.text_content("#f-newest") or "") == f"{size} entries, REFUSED: {REPLACED}"
        screenshot(page, "log-key-replaced")
        page.click("#lang-km")
        assert "សោរបស់បញ្ជីដែលត្រូវបានជំនួស" in (page.text_content("#verdict-reason") or "")
        screenshot(page, "log-key-replaced-km")
        page.click("#lang-en")
        assert "checkpoint" in proxy.requests  # the page asked the proxy, which served the forged checkpoint


def test_an_offline_bundle_on_a_checkpoint_by_the_replaced_key_is_refused(world: World, page: Page) -> None:
    assert open_verdict(page, offline(world.log.stack.url + "/verify", world.forged)) == "log_misbehaved"
    assert REPLACED in (page.text_content("#verdict-reason") or "")


def serve_folder(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    """`folder` served by Python's plain static file server on a free loopback port."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(folder)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while True:
        try:
            httpx.get(url + "/", timeout=1)
            return server, url
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                server.kill()
                raise


def test_the_static_verifier_site_carries_the_rotation_and_refuses_the_replaced_key(world: World, page: Page) -> None:
    trust = embedded_trust((world.site / "index.html").read_text())
    assert trust["log_vkey"] == world.log.new_vkey and trust["log_keys"] == ranges(world)
    assert embedded_trust((world.one_key_site / "index.html").read_text())["log_keys"] == []
    server, url = serve_folder(world.site)
    try:
        assert open_verdict(page, offline(url + "/", world.forged)) == "log_misbehaved"
        assert REPLACED in (page.text_content("#verdict-reason") or "")
        assert open_verdict(page, offline(url + "/", world.old)) == "genuine", (
            page.text_content("#verdict-reason"),
            page.text_content("#check-list"),
        )
    finally:
        server.kill()
        server.wait(timeout=10)
