"""The page checks the log's status index proof (logserver/web/statusproof.js and `provenStatus` in verify.js),
in headless Chromium: the JS twin of the record and proof verifier runs the same vectors as Python
(tests/vectors/statusindex/), and on a real log with the index on, "not revoked" and "not logged" are shown as
proven, while a log whose answer leaves a revocation out (a proxy, here Playwright's request routing) is caught."""

import base64
import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import load_vectors
from log_harness import LogProcess, issue, post_statements, register_issuer, running_log
from playwright.sync_api import BrowserContext, Page, Route
from web_browser import chromium, open_verdict, screenshot

from tlogcore.keys import Ed25519Signer
from tlogcore.statement import REVOKE, Statement, sign_statement

PROOFS = load_vectors("statusindex/proofs.json")["cases"]
RECORDS = load_vectors("statusindex/records.json")
ROOTS = load_vectors("statusindex/index_root.json")["good"]
ISSUER = Ed25519Signer("moeys.gov.kh", b"\x41" * 32)
INDEXED = "[status_index]\nindex_interval_ms = 50\n"
DOCS = {name: hashlib.sha256(name.encode()).digest() for name in ("kept", "revoked", "never")}
# This log has no witnesses (its published policy says `quorum none`): nothing dates its newest checkpoint, so a
# replay of its older answers cannot be told apart, and the page says so beside the proven status, as `tlog verify`
UNDATED = "No witness vouches that the log's newest record is recent"
UNDATED_KM = "គ្មានសាក្សីណាធានាថា"


@dataclass
class World:
    server: LogProcess
    index: dict[str, int]


def wait_indexed(url: str, size: int) -> None:
    """Until lookups carry a proof for an index covering `size` entries (bounded)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        served = httpx.get(f"{url}/api/v1/documents/{DOCS['never'].hex()}").json()["index"]
        if served is not None and served["size"] >= size:
            return
        time.sleep(0.1)
    raise TimeoutError(f"no index proof covering {size} entries")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp: Path = tmp_path_factory.mktemp("web-status-proofs")
    with running_log(tmp, config_text=INDEXED) as server, httpx.Client(base_url=server.url, timeout=20) as client:
        register_issuer(client, server, ISSUER, "Ministry of Education")
        origin = client.get("/api/v1/log").json()["origin"]
        index = {}
        for name in ("kept", "revoked"):
            index[name] = post_statements(client, [issue(origin, ISSUER, DOCS[name])]).json()["entries"][0]["index"]
        revoke = Statement(origin, REVOKE, ISSUER.verifier().vkey, int(time.time()), document=DOCS["revoked"])
        answer = post_statements(client, [sign_statement(revoke, ISSUER)]).json()
        wait_indexed(server.url, answer["entries"][0]["index"] + 1)
        yield World(server, index)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    with chromium(tmp_path_factory.mktemp("profile")) as context:
        yield context


def hexed(b64: str | None) -> str | None:
    return None if b64 is None else base64.b64decode(b64).hex()


def test_the_page_runs_the_python_vectors(world: World, page: Page) -> None:
    page.goto(f"{world.server.url}/verify")
    page.wait_for_selector("body[data-done='1']")
    script = """async ({proofs, good, bad, roots}) => {
      const SP = window.TLOG_STATUS_PROOF;
      const bytes = (h) => h === null ? null : Uint8Array.from((h.match(/../g) || []), (x) => parseInt(x, 16));
      const outcome = async (f) => {
        try { await f(); return true; } catch (e) { return e instanceof SP.StatusProofError ? false : String(e); }
      };
      const proofResults = [];
      for (const c of proofs) {
        const check = () => SP.verifyStatus(bytes(c.key), bytes(c.record), bytes(c.proof), bytes(c.root));
        proofResults.push(await outcome(check));
      }
      const goodRecords = good.map((r) => {
        const p = SP.parseRecord(bytes(r.bytes));
        return [p.issued.map(String), p.revoked.map(String)];
      });
      const badRecords = [];
      for (const r of bad) badRecords.push(await outcome(() => SP.parseRecord(bytes(r.bytes))));
      const mutations = [];
      for (const c of proofs.filter((x) => x.expect_valid)) {
        const proof = bytes(c.proof);
        let accepted = 0;
        for (let i = 0; i < proof.length; i++) {
          const changed = proof.slice(); changed[i] ^= 0x01;
          const check = () => SP.verifyStatus(bytes(c.key), bytes(c.record), changed, bytes(c.root));
          if (await outcome(check) === true) accepted++;
        }
        mutations.push(accepted);
      }
      const parsedRoots = roots.map((r) => { const t = r.signed.slice(0, r.signed.lastIndexOf("\\n\\n") + 1);
        const p = SP.parseIndexRootText(t); return [p.origin, p.signer, String(p.time), String(p.size)]; });
      return { proofResults, goodRecords, badRecords, mutations, parsedRoots };
    }"""
    result: dict[str, Any] = page.evaluate(
        script, {"proofs": PROOFS, "good": RECORDS["good"], "bad": RECORDS["bad"], "roots": ROOTS}
    )
    assert result["proofResults"] == [case["expect_valid"] for case in PROOFS]
    assert result["goodRecords"] == [
        [[str(i) for i in r["issued"]], [str(i) for i in r["revoked"]]] for r in RECORDS["good"]
    ]
    assert result["badRecords"] == [False] * len(RECORDS["bad"])
    assert result["mutations"] == [0] * len(result["mutations"])  # a flipped bit in any byte: rejected
    assert result["parsedRoots"] == [[r["origin"], r["signer"], str(r["time"]), str(r["size"])] for r in ROOTS]


def checks_text(page: Page) -> str:
    return page.text_content("#check-list") or ""


def undated_notes(page: Page) -> list[list[str]]:
    """The "!" lines saying that no witness dates the log's checkpoint: [text, its detail's language]."""
    notes = page.eval_on_selector_all(
        "#check-list li.note", "lis => lis.map((li) => [li.textContent, li.querySelector('.detail').lang])"
    )
    return [note for note in notes if UNDATED in note[0] or UNDATED_KM in note[0]]


def test_not_revoked_and_not_logged_are_shown_as_proven(world: World, page: Page) -> None:
    url = world.server.url
    assert open_verdict(page, f"{url}/verify#h={DOCS['kept'].hex()}&i={world.index['kept']}") == "genuine"
    text = checks_text(page)
    assert "The log's complete list of entries about this document: proven #0–" in text, text
    assert "✗" not in text and "its word only" not in text, text
    # Proven, and said to stand on the log's word for time (before: "proven" with nothing about time)
    [[undated, lang]] = undated_notes(page)
    assert "the log's word only" in undated and "quorum none" in undated and lang == "en", undated
    screenshot(page, "status-proven")
    page.click("#lang-km")
    assert "អំពីឯកសារនេះ៖ បានបញ្ជាក់" in checks_text(page)
    [[undated, lang]] = undated_notes(page)
    assert UNDATED_KM in undated and "តាមពាក្យរបស់បញ្ជីតែប៉ុណ្ណោះ" in undated and lang == "km", undated
    assert "vouches" not in checks_text(page) and "c_undated" not in checks_text(page), checks_text(page)
    assert "ដោយ none" not in checks_text(page), checks_text(page)  # "cosigned by none", its English word kept
    screenshot(page, "status-proven-km")
    page.click("#lang-en")
    assert open_verdict(page, f"{url}/verify#h={DOCS['revoked'].hex()}&i={world.index['revoked']}") == "revoked"
    assert "about this document: proven #0–" in checks_text(page) and len(undated_notes(page)) == 1
    assert open_verdict(page, f"{url}/verify#h={DOCS['never'].hex()}&i=0") == "not_logged"
    assert "about this document: proven #0–" in checks_text(page), checks_text(page)
    assert len(undated_notes(page)) == 1, checks_text(page)
    screenshot(page, "status-not-logged-proven")


def test_a_proxy_that_drops_the_revocation_is_caught(world: World, page: Page) -> None:
    def drop_revocations(route: Route) -> None:
        answer = route.fetch().json()
        answer["statements"] = [s for s in answer["statements"] if s["kind"] != REVOKE]
        answer["status"] = "valid"
        route.fulfill(status=200, content_type="application/json", body=json.dumps(answer))

    page.route(f"**/api/v1/documents/{DOCS['revoked'].hex()}", drop_revocations)
    url = f"{world.server.url}/verify#h={DOCS['revoked'].hex()}&i={world.index['revoked']}"
    assert open_verdict(page, url) == "tampered", page.text_content("#verdict-reason")
    assert "did not return it" in checks_text(page), checks_text(page)
    screenshot(page, "status-hidden-revocation")


def test_without_the_index_the_page_says_not_proven(tmp_path: Path, browser: BrowserContext) -> None:
    with running_log(tmp_path) as server, httpx.Client(base_url=server.url, timeout=20) as client:
        register_issuer(client, server, ISSUER, "Ministry of Education")
        origin = client.get("/api/v1/log").json()["origin"]
        index = post_statements(client, [issue(origin, ISSUER, DOCS["kept"])]).json()["entries"][0]["index"]
        page = browser.new_page()
        try:
            assert open_verdict(page, f"{server.url}/verify#h={DOCS['kept'].hex()}&i={index}") == "genuine"
            text = checks_text(page)
            assert "its word only: it gave no proof that its list is complete" in text, text
            assert "proven #" not in text and len(undated_notes(page)) == 1, text
            screenshot(page, "status-not-proven")
        finally:
            page.close()
