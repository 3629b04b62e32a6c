"""The verifier page against a proxy that lies about a document's status with genuine, logged material (found by an
adversarial review in the forty-fifth round; docs/status-proofs.md §9, §10; the `tlog verify` twin is
tests/test_status_verify_attacks.py). A real log with its index on, headless Chromium, and the lie a rewrite of the
lookup answer by Playwright's request routing (as in tests/test_web_status_proofs.py):

- a revocation's place in the answer filled with the issue statement's bundle (the kind read from the JSON);
- an early index root replayed with the revocation logged after it left out (a gap the page reads through the
  log's tiles, and one longer than it reads: then nothing about the status is proven);
- the rotated key's registration left out (a revocation made not to count);
- the stolen-key report left out: the log's key index lists it (docs/status-proofs.md §12), so the answer is
  tampered (before the key index: "genuine", the report's absence the log's word; tests/test_page_key_status.py has
  the rest)."""

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from log_harness import LogProcess, issue, post_statements, register_issuer, running_log
from playwright.sync_api import BrowserContext, Page, Route
from reference import mth
from web_browser import chromium, open_verdict, screenshots_in_both_languages

from tlogcore.keys import Ed25519Signer
from tlogcore.merkle import inclusion_proof_length
from tlogcore.statement import ISSUER_ADD, ISSUER_RETIRE, REVOKE, Statement, sign_statement
from tlogcore.tiles import ENTRIES_LEVEL, Tile

K1 = Ed25519Signer("moeys.gov.kh", b"\x41" * 32)
K2 = Ed25519Signer("moeys.gov.kh", b"\x42" * 32)  # K1's next key: continues it
THEFT = Ed25519Signer("victim.gov.kh", b"\x43" * 32)
PAGE_GAP = 1024  # the page's MAX_PAGE_GAP (verify.js), as tools/statusproof.py MAX_GAP
DOCS = {n: hashlib.sha256(n.encode()).digest() for n in ("swap", "near", "far", "never", "rotated", "stolen")}
SHOTS = Path(os.environ.get("TLOG_ATTACK_SHOTS", "/tmp/review-a/shots"))
Answer = dict[str, Any]


@dataclass
class World:
    server: LogProcess
    index: dict[str, int]  # each document's issue entry
    early: dict[str, Answer]  # answers kept from before the revocations (an old index root)
    early_bundle: bytes  # the "far" document's bundle as served then: its checkpoint an early one


def answer(url: str, name: str) -> Answer:
    return dict(httpx.get(f"{url}/api/v1/documents/{DOCS[name].hex()}", timeout=20).json())


def indexed(url: str, size: int, name: str = "never") -> Answer:
    """The answer about `name` once lookups carry an index covering `size` entries (bounded)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = answer(url, name)
        if found["index"] is not None and found["index"]["size"] >= size:
            return found
        time.sleep(0.1)
    raise TimeoutError(f"no index proof covering {size} entries")


class Log:
    def __init__(self, client: httpx.Client, server: LogProcess) -> None:
        self.client, self.registry = client, server.key("registry.key")
        self.origin = client.get("/api/v1/log").json()["origin"]

    def post(self, statements: list[bytes]) -> int:
        response = post_statements(self.client, statements)
        response.raise_for_status()
        return int(response.json()["entries"][-1]["index"])

    def signed(self, key: Ed25519Signer, kind: str, **fields: Any) -> bytes:
        return sign_statement(Statement(self.origin, kind, key.verifier().vkey, int(time.time()), **fields), key)

    def fill(self, count: int, tag: bytes) -> int:
        last = 0
        for start in range(0, count, 1000):
            docs = [hashlib.sha256(tag + b"%d" % i).digest() for i in range(start, min(count, start + 1000))]
            last = self.post([issue(self.origin, K1, d) for d in docs])
        return last


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("page-status-attacks")
    config = "[status_index]\nindex_interval_ms = 50\n"
    with running_log(tmp, config_text=config) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        log = Log(client, server)
        register_issuer(client, server, K1, "Ministry of Education")
        register_issuer(client, server, THEFT, "Victim office")
        index = {n: log.post([issue(log.origin, K1, DOCS[n])]) for n in ("swap", "near", "far", "rotated")}
        index["stolen"] = log.post([issue(log.origin, THEFT, DOCS["stolen"])])
        early = {n: indexed(server.url, index["stolen"] + 1, n) for n in ("far", "never")}
        early_bundle = client.get(f"/api/v1/bundle/{index['far']}").content
        indexed(server.url, log.fill(PAGE_GAP + 100, b"far") + 1)
        early["near"] = indexed(server.url, log.fill(10, b"near") + 1, "near")  # an index root 200 entries back
        log.fill(200, b"gap")
        k2 = K2.verifier().vkey
        log.post([log.signed(log.registry, ISSUER_ADD, issuer=k2, ref="Ministry of Education",
                             continues=K1.verifier().vkey)])  # fmt: skip
        log.post([log.signed(K2, REVOKE, document=DOCS["rotated"], reason="fraud")])
        log.post([log.signed(K1, REVOKE, document=DOCS[n], reason="fraud") for n in ("swap", "near", "far")])
        unsafe = log.signed(log.registry, ISSUER_RETIRE, issuer=THEFT.verifier().vkey, unsafe_from=index["stolen"])
        indexed(server.url, log.post([unsafe]) + 1)
        yield World(server, index, early, early_bundle)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    with chromium(tmp_path_factory.mktemp("profile")) as context:
        yield context


def link(world: World, name: str) -> str:
    return f"{world.server.url}/verify#h={DOCS[name].hex()}&i={world.index.get(name, 0)}"


def lying(page: Page, name: str, change: Callable[[Answer], Answer]) -> None:
    def route(r: Route) -> None:
        r.fulfill(status=200, content_type="application/json", body=json.dumps(change(r.fetch().json())))

    page.route(f"**/api/v1/documents/{DOCS[name].hex()}", route)


def checks(page: Page) -> str:
    return page.text_content("#check-list") or ""


def without_revocations(early: Answer | None = None) -> Callable[[Answer], Answer]:
    def change(a: Answer) -> Answer:
        a["statements"] = [s for s in a["statements"] if s["kind"] != REVOKE]
        return a if early is None else a | {"index": early["index"]}

    return change


def test_a_revocation_whose_bundle_is_the_issue_statements_is_tampering(world: World, page: Page) -> None:
    """The revoke item keeps its index and its JSON kind, but carries the issue statement's bundle: the page took
    the kind from the JSON and the bundle for any entry about the document, and said "genuine"."""
    assert open_verdict(page, link(world, "swap")) == "revoked"

    def swap(a: Answer) -> Answer:
        issued = next(s["bundle"] for s in a["statements"] if s["kind"] == "issue")
        for s in a["statements"]:
            if s["kind"] == REVOKE:
                s["bundle"] = issued
        return a

    lying(page, "swap", swap)
    assert open_verdict(page, link(world, "swap")) == "tampered", checks(page)
    assert "Do not trust this answer" in (page.text_content("#verdict-reason") or "")


def test_a_revocation_relabelled_as_an_issue_is_still_a_revocation(world: World, page: Page) -> None:
    """Only the signed statement says what an entry is: the JSON `kind` relabelled changes nothing."""
    lying(page, "swap", lambda a: a | {"statements": [s | {"kind": "issue"} for s in a["statements"]]})
    assert open_verdict(page, link(world, "swap")) == "revoked", checks(page)


def test_an_early_index_root_with_the_revocation_in_the_gap_is_caught(world: World, page: Page) -> None:
    """The gap after the replayed root is longer than the page's old limit (64) but within the one it reads now:
    the revocation in it is found, and its absence from the answer is tampering (before: "genuine, proven")."""
    assert open_verdict(page, link(world, "near")) == "revoked"
    lying(page, "near", without_revocations(world.early["near"]))
    assert open_verdict(page, link(world, "near")) == "tampered", checks(page)
    assert "did not return it" in checks(page), checks(page)
    issuer = page.text_content("#f-issuer") or ""  # the check stopped before the registration: not "NOT registered"
    assert "registration not checked (the check stopped before it)" in issuer and "NOT a registered" not in issuer


def test_an_index_root_too_old_to_check_the_gap_proves_nothing(world: World, page: Page) -> None:
    """More entries after the replayed root than the page reads: the verdict on the statements stays, but nothing
    says "proven"; the page says the newer entries were too many to check (before: "proven #0–…")."""
    lying(page, "far", without_revocations(world.early["far"]))
    assert open_verdict(page, link(world, "far")) == "genuine", checks(page)
    text = checks(page)
    assert "proven #0–" not in text and "too many to check" in text and "its word only" in text, text
    assert "the log's word, not proven" in text and "proven from the log's complete list" not in text, text  # §12
    screenshots_in_both_languages(page, "status-not-proven-old-root", "ច្រើនពេក", SHOTS)
    lying(page, "never", lambda a: a | {"index": world.early["never"]["index"]})
    assert open_verdict(page, link(world, "never")) == "not_logged", checks(page)
    assert "proven #0–" not in checks(page) and "too many to check" in checks(page), checks(page)


def test_an_early_root_with_the_bundle_of_its_time_is_judged_against_the_newest_checkpoint(
    world: World, page: Page
) -> None:
    """The proxy also serves the issue's bundle as it was then, with an early checkpoint: the gap from the early root
    to that checkpoint is short, read, and holds no revocation. The page stood on the bundle's checkpoint online,
    and said "proven" (tlog verify stands on the newest); now it stands on the newest, where that gap is too long."""
    lying(page, "far", without_revocations(world.early["far"]))
    page.route(f"**/api/v1/bundle/{world.index['far']}", lambda r: r.fulfill(status=200, body=world.early_bundle))
    assert open_verdict(page, link(world, "far")) == "genuine", checks(page)
    text = checks(page)
    assert "proven #0–" not in text and "too many to check" in text, text


def test_a_revocation_by_a_rotated_key_whose_registration_is_dropped_is_tampering(world: World, page: Page) -> None:
    assert open_verdict(page, link(world, "rotated")) == "revoked"
    k2 = K2.verifier().vkey
    lying(page, "rotated", lambda a: a | {"registrations": [r for r in a["registrations"] if r["key"] != k2]})
    assert open_verdict(page, link(world, "rotated")) == "tampered", checks(page)
    assert "Do not trust this answer" in (page.text_content("#verdict-reason") or "")
    detail = page.text_content("#verdict-detail") or ""
    assert k2 in detail and "registration" in detail, detail


def test_a_stolen_key_report_left_out_is_tampering(world: World, page: Page) -> None:
    """The key index lists the report, which the answer leaves out (before: "genuine", the report's absence the
    log's word, and this test asserted so)."""
    assert open_verdict(page, link(world, "stolen")) == "stolen"
    lying(page, "stolen", lambda a: a | {"retirements": []})
    assert open_verdict(page, link(world, "stolen")) == "tampered", checks(page)
    detail = page.text_content("#verdict-detail") or ""
    assert "left out entry" in detail and THEFT.verifier().vkey in detail, detail
    screenshots_in_both_languages(page, "stolen-key-hidden", "បញ្ជីពេញលេញនៃកំណត់ត្រាទាំងអស់អំពីសោរបស់អ្នកចេញ", SHOTS)


def test_every_text_is_in_both_languages(world: World, page: Page) -> None:
    page.goto(f"{world.server.url}/verify")
    keys = page.evaluate("() => [Object.keys(TLOG_I18N.en).sort(), Object.keys(TLOG_I18N.km).sort()]")
    assert keys[0] == keys[1], set(keys[0]) ^ set(keys[1])


def test_the_pages_tile_helpers_agree_with_python(world: World, page: Page) -> None:
    """The gap is read from entry tiles (statusproof.js): their paths, tree hashes and proof lengths as tlogcore's."""
    page.goto(f"{world.server.url}/verify")
    sizes = [1, 2, 3, 5, 7, 8, 82, 255, 256]
    got = page.evaluate(
        """async (sizes) => { const SP = window.TLOG_STATUS_PROOF; const out = [];
          for (const n of sizes) { const entries = []; for (let i = 0; i < n; i++) entries.push(new Uint8Array([i, n]));
            const leaves = []; for (const e of entries) leaves.push(new Uint8Array(await crypto.subtle.digest("SHA-256",
              new Uint8Array([0, ...e])))); const h = await SP.logTreeHash(leaves);
            out.push([Array.from(h, (b) => b.toString(16).padStart(2, "0")).join(""),
                      SP.inclusionLength(BigInt(n - 1), BigInt(n)), SP.inclusionLength(0n, BigInt(n))]); }
          return [out, SP.entryTilePath(1234067n, 256n), SP.entryTilePath(273n, 112n), SP.entryTilePath(0n, 5n)]; }""",
        sizes,
    )
    want = [
        [
            mth(tuple(bytes([i, n % 256]) for i in range(n))).hex(),
            inclusion_proof_length(n - 1, n),
            inclusion_proof_length(0, n),
        ]
        for n in sizes
    ]
    assert got[0] == want
    assert got[1:] == [Tile(ENTRIES_LEVEL, 1234067).path, Tile(ENTRIES_LEVEL, 273, 112).path, "tile/entries/000.p/5"]
