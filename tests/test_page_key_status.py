"""The verifier page proves that the key which signed a document was not reported stolen, from the log's key index
(docs/status-proofs.md §12; `keyStatusProven` in logserver/web/verify.js, the twin of `tlog verify`'s check).

A real log with its status index on and three real witnesses, headless Chromium, and the lies as rewrites of the
lookup answer by Playwright's request routing (as tests/test_page_status_attacks.py). Before the key index the page
said "genuine" whenever the answer showed no stolen-key report, the report's absence the log's word; now a
`tlog-index-root/v2` root states the key index's root, the answer carries the signer key's record and proof, and:

- an honest key never retired: "not reported stolen" is proven (English and Khmer);
- a key reported stolen, shown honestly: the stolen verdict, as before;
- the report left out of `retirements`; the key's proof left out; its record swapped for one without the report (or
  another key's proof relabelled); the report logged after the index root (in the gap the page reads) left out:
  tampered, never genuine;
- the signing key's registration left out (which the key index lists): tampered, no longer "not from a registered
  issuer";
- a checkpoint the witnesses vouched for 2 hours ago: the key part is not proven current, as the document's status,
  and a report left out is still caught;
- a busy, honest log that logs a revocation of the document, or a retirement of its key, between its answer and the
  newest checkpoint the page fetches after it (the gap then holds an entry the answer could not list): the page asks
  once more and judges the new answer (before: "tampered"); a proxy that always leaves the entry out is still caught;
- a log upgraded from before the key index, whose v1 index roots state none: a proxy replaying an answer under such a
  root, a stolen-key report in the gap the page reads and left out of the answer, is tampered (before: "genuine",
  the key line the log's word)."""

import base64
import dataclasses
import hashlib
import json
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import httpx
import log_harness
import pytest
from conftest import load_vectors
from log_harness import LogProcess, issue, post_statements, register_issuer
from playwright.sync_api import BrowserContext, Page, Route
from tools_stack import Stack, witnessed_log
from web_browser import SCREENSHOTS, chromium, open_verdict, screenshots_in_both_languages

from loadtest.localproc import free_port
from tlogcore.bundle import parse_tlog_proof, to_binary
from tlogcore.checkpoint import parse_checkpoint
from tlogcore.keys import Ed25519Signer, Signer
from tlogcore.note import Note, parse_note, signature_for
from tlogcore.statement import ISSUER_RETIRE, REVOKE, Statement, sign_statement
from tlogcore.statusrecord import new_record, parse_record
from witness.config import ED25519
from witness.keyfiles import read_key

SAFE = Ed25519Signer("moeys.gov.kh", b"\x51" * 32)  # never retired
THEFT = Ed25519Signer("victim.gov.kh", b"\x52" * 32)  # reported stolen before the index root the answers state
LATE = Ed25519Signer("late.gov.kh", b"\x53" * 32)  # reported stolen after the early index root kept below
BUSY = Ed25519Signer("busy.gov.kh", b"\x54" * 32)  # revokes "busy" while the page checks it
RETIRING = Ed25519Signer("retiring.gov.kh", b"\x55" * 32)  # retired (no unsafe-from) while the page checks "retiring"
DOCS = {
    name: hashlib.sha256(b"key-status " + name.encode()).digest()
    for name in ("safe", "stolen", "late", "busy", "retiring")
}
SIGNER = {"safe": SAFE, "stolen": THEFT, "late": LATE, "busy": BUSY, "retiring": RETIRING}
VECTORS = load_vectors("statusindex/key_status.json")
SHOTS = SCREENSHOTS / "key-status"
AGO = 2 * 3600  # a replayed checkpoint's age: beyond the hour the page accepts

PROVEN = "The issuer's key was not reported stolen when it signed: proven from the log's complete list"
PROVEN_KM = "បានបញ្ជាក់ តាមបញ្ជីពេញលេញនៃកំណត់ត្រាទាំងអស់អំពីសោនេះ"
WORD = "The issuer's key was not reported stolen when it signed: the log's word, not proven"
HIDDEN_KM = "ចម្លើយរបស់បញ្ជីបានលាក់ផ្នែកមួយនៃកំណត់ត្រារបស់សោរបស់អ្នកចេញ"
Answer = dict[str, Any]


@dataclass
class World:
    stack: Stack
    tmp: Path
    index: dict[str, int]  # each document's issue entry
    retired: dict[str, int]  # the entry of each key's stolen-key report, by document
    early_late: Answer  # the answer about "late" from before LATE's report (an index root before it)
    witnesses: list[Signer]  # the witnesses' own keys, their clock 2 hours back


def answer(url: str, name: str) -> Answer:
    return dict(httpx.get(f"{url}/api/v1/documents/{DOCS[name].hex()}", timeout=20).json())


def published(url: str) -> tuple[int, int]:
    """The published checkpoint's size and how many signature lines it carries."""
    body = httpx.get(url + "/checkpoint", timeout=5).content
    return parse_checkpoint(parse_note(body).text).size, body.count("\u2014".encode())


def proven_past(url: str, entry: int) -> dict[str, Answer]:
    """The answers once each carries an index covering `entry` whose root is inside a checkpoint the 2-of-3 quorum
    cosigned, with the signer key's proof (bounded)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        size, lines = published(url)
        found = {name: answer(url, name) for name in DOCS}
        served = [a["index"] for a in found.values()]
        if lines >= 3 and all(s and s["size"] > entry and s["index_root"]["index"] < size for s in served):
            assert all(s["keys"] for s in served), served  # the log states v2 roots: each signer key's proof
            return found
        time.sleep(0.2)
    raise TimeoutError(f"no cosigned index root covering entry {entry}")


def stolen_report(client: httpx.Client, stack: Stack, key: Ed25519Signer, unsafe_from: int | None) -> int:
    """An issuer-retire of `key` (a stolen-key report with `unsafe_from`); its entry."""
    registry = stack.server.key("registry.key")
    report = Statement(stack.origin, ISSUER_RETIRE, registry.verifier().vkey, int(time.time()),
                       issuer=key.verifier().vkey, unsafe_from=unsafe_from)  # fmt: skip
    response = post_statements(client, [sign_statement(report, registry)])
    response.raise_for_status()
    return int(response.json()["entries"][0]["index"])


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("page-key-status")
    with witnessed_log(tmp, more_config="[status_index]\nindex_interval_ms = 50\n") as stack:
        with httpx.Client(base_url=stack.url, timeout=30) as client:
            for key in SIGNER.values():
                register_issuer(client, stack.server, key, f"Office {key.verifier().name}")
            index = {}
            for name, key in SIGNER.items():
                posted = post_statements(client, [issue(stack.origin, key, DOCS[name])])
                index[name] = int(posted.json()["entries"][0]["index"])
            retired = {"stolen": stolen_report(client, stack, THEFT, index["stolen"])}
            early_late = proven_past(stack.url, retired["stolen"])["late"]
            retired["late"] = stolen_report(client, stack, LATE, index["late"])
            proven_past(stack.url, retired["late"])
        witnesses = [read_key(w.data, ED25519, lambda: time.time() - AGO) for w in stack.witnesses]
        yield World(stack, tmp, index, retired, early_late, witnesses)


@pytest.fixture(scope="module")
def browser(world: World) -> Iterator[BrowserContext]:
    with chromium(world.tmp / "profile") as context:
        yield context


def link(world: World, name: str) -> str:
    return f"{world.stack.url}/verify#h={DOCS[name].hex()}&i={world.index[name]}"


def checks(page: Page) -> str:
    return page.text_content("#check-list") or ""


def detail(page: Page) -> str:
    return page.text_content("#verdict-detail") or ""


def lying(page: Page, name: str, change: Callable[[Answer], Answer]) -> None:
    def route(r: Route) -> None:
        r.fulfill(status=200, content_type="application/json", body=json.dumps(change(r.fetch().json())))

    page.route(f"**/api/v1/documents/{DOCS[name].hex()}", route)


def without_reports(a: Answer) -> Answer:
    return a | {"retirements": []}


def keys_changed(change: Callable[[list[Answer]], list[Answer]]) -> Callable[[Answer], Answer]:
    """The answer without its stolen-key reports, and its key proofs changed by `change`."""
    return lambda a: without_reports(a) | {"index": a["index"] | {"keys": change(a["index"]["keys"])}}


def hidden(record: str | None) -> str | None:
    """The record without its retirements (the lie that hides a stolen-key report), or with one more if none."""
    if record is None:
        return None
    found = parse_record(bytes.fromhex(record))
    return new_record(found.issued, () if found.revoked else (999,)).to_bytes().hex()


def test_the_python_key_vectors_run_on_the_page(world: World, page: Page) -> None:
    """statusproof.js's key slot and key proof check, on the vectors the slow reference made: each key's slot,
    record and proof accepted, and refused when its record hides its retirements or the proof is another key's."""
    cases = [c | {"hidden": hidden(c["record"])} for c in VECTORS["cases"]]
    page.goto(f"{world.stack.url}/verify")
    page.wait_for_selector("body[data-done='1']")
    got = page.evaluate(
        """async ({root, cases}) => {
          const SP = window.TLOG_STATUS_PROOF;
          const bytes = (h) => h === null ? null : Uint8Array.from(h.match(/../g) || [], (x) => parseInt(x, 16));
          const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
          const refused = async (f) => {
            try { await f(); return false; } catch (e) { return e instanceof SP.StatusProofError; }
          };
          const out = [];
          for (const [i, c] of cases.entries()) {
            const found = await SP.verifyKeyStatus(c.key, bytes(c.record), bytes(c.proof), bytes(root));
            const other = cases[(i + 1) % cases.length];
            out.push([hex(await SP.keySlot(c.key)), found && [found.added.map(String), found.retired.map(String)],
                      await refused(() => SP.verifyKeyStatus(other.key, bytes(c.record), bytes(c.proof), bytes(root))),
                      c.record === null ||
                        await refused(() => SP.verifyKeyStatus(c.key, bytes(c.hidden), bytes(c.proof), bytes(root)))]);
          }
          return out;
        }""",
        {"root": VECTORS["root"], "cases": cases},
    )
    entries: dict[str, tuple[list[str], list[str]]] = {}
    for index, kind, key in VECTORS["entries"]:
        entries.setdefault(key, ([], []))[kind == ISSUER_RETIRE].append(str(index))
    want = [[c["slot"], list(entries[c["key"]]) if c["record"] else None, True, True] for c in VECTORS["cases"]]
    assert got == want


def test_an_honest_key_is_proven_not_reported_stolen(world: World, page: Page) -> None:
    """Before: the line said it was the log's word, not proven."""
    assert open_verdict(page, link(world, "safe")) == "genuine", checks(page)
    text = checks(page)
    assert PROVEN in text and WORD not in text, text
    line = page.eval_on_selector_all("#check-list li.ok", "lis => lis.map((li) => li.textContent)")
    assert any(PROVEN in x and "#0–" in x and "index root #" in x for x in line), line  # the detail: the range read
    screenshots_in_both_languages(page, "key-proven", PROVEN_KM, SHOTS)
    page.click("#lang-km")
    try:
        assert "index root" not in checks(page) and "ឫសលិបិក្រម" in checks(page), checks(page)
    finally:
        page.click("#lang-en")


def stolen_when_honest(world: World, page: Page, name: str) -> None:
    """A key reported stolen, the report shown: the stolen verdict, as before the key index."""
    assert open_verdict(page, link(world, name)) == "stolen", checks(page)
    assert f"unsafe from #{world.index[name]}" in checks(page), checks(page)


def test_a_stolen_key_report_left_out_is_tampering(world: World, page: Page) -> None:
    """Shown, the report gives the stolen verdict; hidden from `retirements` by the proxy, the answer is tampered
    (before: "genuine")."""
    stolen_when_honest(world, page, "stolen")
    lying(page, "stolen", without_reports)
    assert open_verdict(page, link(world, "stolen")) == "tampered", checks(page)
    assert "Do not trust this answer" in (page.text_content("#verdict-reason") or "")
    want = f"the log left out entry {world.retired['stolen']}, which retires key {THEFT.verifier().vkey}"
    assert detail(page) == want, detail(page)
    screenshots_in_both_languages(page, "key-report-hidden", "បញ្ជីពេញលេញនៃកំណត់ត្រាទាំងអស់អំពីសោរបស់អ្នកចេញ", SHOTS)
    page.click("#lang-km")
    try:
        assert HIDDEN_KM in (page.text_content("#verdict-reason") or "")
        assert f"បញ្ជីបានលាក់ធាតុ {world.retired['stolen']}" in detail(page), detail(page)
    finally:
        page.click("#lang-en")


def test_the_key_proof_left_out_is_tampering(world: World, page: Page) -> None:
    """Under a v2 index root the log must give the signer key's proof: the report and the proof both left out, or
    the proof alone for a key never reported (before: "genuine" both)."""
    lying(page, "stolen", keys_changed(lambda keys: []))
    assert open_verdict(page, link(world, "stolen")) == "tampered", checks(page)
    assert "gives no key index proof for key " + THEFT.verifier().vkey in detail(page), detail(page)
    page.unroute_all()
    lying(page, "safe", lambda a: a | {"index": a["index"] | {"keys": []}})
    assert open_verdict(page, link(world, "safe")) == "tampered", checks(page)


def test_a_key_record_without_the_report_does_not_prove(world: World, page: Page) -> None:
    """The key's record rewritten without the report (the proof then leads elsewhere), or SAFE's genuine proof
    relabelled as THEFT's (another slot): tampered (before: "genuine")."""
    registered = answer(world.stack.url, "stolen")["registrations"][0]["index"]
    added_only = base64.b64encode(new_record([registered]).to_bytes()).decode()
    lying(page, "stolen", keys_changed(lambda keys: [k | {"record": added_only} for k in keys]))
    assert open_verdict(page, link(world, "stolen")) == "tampered", checks(page)
    assert "key index proof for key" in detail(page) and "does not hold" in detail(page), detail(page)
    page.unroute_all()
    safe = answer(world.stack.url, "safe")["index"]["keys"]
    lying(page, "stolen", keys_changed(lambda keys: [k | {"key": THEFT.verifier().vkey} for k in safe]))
    assert open_verdict(page, link(world, "stolen")) == "tampered", checks(page)


def test_a_report_after_the_index_root_left_out_is_tampering(world: World, page: Page) -> None:
    """An index root from before LATE's report, whose key record truly lists none, and the report left out: the page
    reads the entries after the root itself and finds it (before: "genuine")."""
    stolen_when_honest(world, page, "late")
    lying(page, "late", lambda a: without_reports(a) | {"index": world.early_late["index"]})
    assert open_verdict(page, link(world, "late")) == "tampered", checks(page)
    want = f"the log left out entry {world.retired['late']}, which retires key {LATE.verifier().vkey}"
    assert detail(page) == want, detail(page)


def test_the_signing_keys_registration_left_out_is_tampering(world: World, page: Page) -> None:
    """The key index lists SAFE's issuer-add, which the answer leaves out (before: "not from a registered issuer",
    as `tlog verify` now says tampered too)."""
    lying(page, "safe", lambda a: a | {"registrations": []})
    assert open_verdict(page, link(world, "safe")) == "tampered", checks(page)
    added = answer(world.stack.url, "safe")["registrations"][0]["index"]
    assert detail(page) == f"the log left out entry {added}, which adds key {SAFE.verifier().vkey}", detail(page)


def replayed(note_bytes: bytes, witnesses: list[Signer]) -> bytes:
    """The same checkpoint and log signature, the witnesses' cosignatures made again 2 hours back."""
    note = parse_note(note_bytes)
    keys = {w.name: w for w in witnesses}
    kept = tuple(s for s in note.signatures if s.name not in keys)
    again = tuple(signature_for(note.text, keys[s.name]) for s in note.signatures if s.name in keys)
    return Note(note.text, kept + again).to_bytes()


def replaying(page: Page, world: World) -> None:
    """The newest checkpoint, and the one in the issue's bundle, as if cosigned 2 hours ago (as test_page_freshness)."""

    def checkpoint(route: Route) -> None:
        route.fulfill(status=200, content_type="text/plain", body=replayed(route.fetch().body(), world.witnesses))

    def bundle(route: Route) -> None:
        proof = parse_tlog_proof(route.fetch().body())
        old = dataclasses.replace(proof, checkpoint=replayed(proof.checkpoint, world.witnesses))
        route.fulfill(status=200, content_type="text/plain", body=old.to_text())

    page.route("**/checkpoint", checkpoint)
    page.route("**/api/v1/bundle/*", bundle)


def test_a_checkpoint_not_vouched_current_proves_no_key_status(world: World, page: Page) -> None:
    """As "not revoked" on such a checkpoint, "not reported stolen" is not proven then; the key's record is still
    checked, so a report left out is still tampering (before: "genuine")."""
    replaying(page, world)
    assert open_verdict(page, link(world, "safe")) == "genuine", checks(page)
    text = checks(page)
    assert WORD in text and PROVEN not in text and "NOT proven up to date" in text, text
    lying(page, "stolen", without_reports)
    assert open_verdict(page, link(world, "stolen")) == "tampered", checks(page)


# --- a busy, honest log: an entry logged between the answer and the newest checkpoint ------------------------------


def cosigned(url: str, entry: int) -> None:
    """Until the log publishes a checkpoint holding `entry` that the quorum cosigned (bounded)."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        size, lines = published(url)
        if size > entry and lines >= 3:
            return
        time.sleep(0.05)
    raise TimeoutError(f"no cosigned checkpoint holding entry {entry}")


def logged_between(page: Page, world: World, name: str, log: Callable[[httpx.Client], int]) -> list[str | int]:
    """The page's requests routed so that, once the log has answered the page's first lookup of `name` and before
    the page's request for the newest checkpoint goes on, `log` logs an entry and the log publishes a cosigned
    checkpoint holding it: what a busy log does between the two. The list returned gets "lookup" for each lookup
    and the entry logged, in order."""
    events: list[str | int] = []

    def lookup(route: Route) -> None:
        events.append("lookup")
        route.continue_()

    def checkpoint(route: Route) -> None:
        if events and not any(isinstance(e, int) for e in events):  # once, after the first answer
            with httpx.Client(base_url=world.stack.url, timeout=30) as client:
                entry = log(client)
            cosigned(world.stack.url, entry)
            events.append(entry)
        route.continue_()

    page.route(f"**/api/v1/documents/{DOCS[name].hex()}", lookup)
    page.route("**/checkpoint", checkpoint)
    return events


def counted(lookups: list[Answer], change: Callable[[Answer], Answer]) -> Callable[[Answer], Answer]:
    """`change`, each answer it changes kept in `lookups`."""

    def counting(a: Answer) -> Answer:
        lookups.append(a)
        return change(a)

    return counting


def revocation_of(name: str, world: World) -> Callable[[httpx.Client], int]:
    def log(client: httpx.Client) -> int:
        signer = SIGNER[name]
        revoke = Statement(world.stack.origin, REVOKE, signer.verifier().vkey, int(time.time()),
                           document=DOCS[name], reason="fraud")  # fmt: skip
        response = post_statements(client, [sign_statement(revoke, signer)])
        response.raise_for_status()
        return int(response.json()["entries"][0]["index"])

    return log


def offline_link(world: World, name: str) -> str:
    """A QR proof of the document's issue (its bundle, binary): checked on the device, then against the log."""
    text = httpx.get(f"{world.stack.url}/api/v1/bundle/{world.index[name]}", timeout=20).content
    binary = base64.urlsafe_b64encode(to_binary(parse_tlog_proof(text))).rstrip(b"=").decode()
    return f"{world.stack.url}/verify#b={binary}"


def test_a_revocation_logged_while_the_page_checks_is_not_tampering(world: World, page: Page) -> None:
    """A revocation logged after the log answered and before the page fetched its newest checkpoint: the page read it
    in the gap, which the first answer could not list, asked again and says "revoked" (before: "tampered", "the log's
    own index lists entry N (revoke), but the log did not return it"). A proxy that leaves the revocation out is
    asked twice and still caught."""
    events = logged_between(page, world, "busy", revocation_of("busy", world))
    assert open_verdict(page, link(world, "busy")) == "revoked", checks(page) + detail(page)
    revoked = events[1]
    assert events == ["lookup", revoked, "lookup"], events  # asked once more, after the checkpoint holding it
    assert f"#{revoked}" in checks(page), checks(page)
    page.unroute_all()
    lookups: list[Answer] = []
    lying(page, "busy", counted(lookups, lambda a: a | {"statements": [
        s for s in a["statements"] if s["index"] != revoked]}))  # fmt: skip
    assert open_verdict(page, link(world, "busy")) == "tampered", checks(page)
    assert f"lists entry {revoked} (revoke), but the log did not return it" in detail(page), detail(page)
    assert len(lookups) == 2, lookups


def test_a_key_retired_while_the_page_checks_a_qr_proof_is_not_tampering(world: World, page: Page) -> None:
    """The signing key retired (no unsafe-from: what it signed stays valid) between the answer and the newest
    checkpoint, while the page checks a QR proof against the log: genuine, the key proven not reported stolen
    (before: "tampered", "the log left out entry N, which retires key ..."). A proxy that leaves the retirement out
    is still caught."""
    offline = offline_link(world, "retiring")  # its checkpoint from before the retirement
    events = logged_between(page, world, "retiring", lambda c: stolen_report(c, world.stack, RETIRING, None))
    assert open_verdict(page, offline) == "genuine", checks(page) + detail(page)
    retired = events[1]
    assert events == ["lookup", retired, "lookup"], events
    assert PROVEN in checks(page), checks(page)
    page.unroute_all()
    lookups: list[Answer] = []
    lying(page, "retiring", counted(lookups, without_reports))
    assert open_verdict(page, link(world, "retiring")) == "tampered", checks(page)
    assert detail(page) == f"the log left out entry {retired}, which retires key {RETIRING.verifier().vkey}"
    assert len(lookups) == 2, lookups


# --- a log upgraded from before the key index: v1 index roots state none ------------------------------------------

# `tlog-server` as it stated index roots before the key index: `tlog-index-root/v1`, no `keys` line (the rest of the
# server as now: under such a root a lookup serves no key proofs, logserver/keyindex.py). The log's API accepts no
# index-root statement from outside (logserver/submission.py parses statements only), so the log states them itself.
V1_SERVER = [sys.executable, "-c", """
from logserver.statusindexer import IndexRootLogger
from tlogcore.indexroot import IndexRoot, sign_index_root

async def state(self, version):
    statement = IndexRoot(self.origin, self.registry_key.verifier().vkey, version.time, version.size, version.root)
    return await self.log_statement(sign_index_root(statement, self.registry_key))

IndexRootLogger.state = state
from logserver.cli import main
main()
"""]  # fmt: skip
V1_DOCS = {name: hashlib.sha256(b"v1 root " + name.encode()).digest() for name in ("safe", "stolen")}
V1_SIGNER = {"safe": SAFE, "stolen": THEFT}


@dataclass
class UpgradedLog:
    server: LogProcess
    index: dict[str, int]  # each document's issue entry
    v1: dict[str, Answer]  # each document's answer under a v1 index root, from before the upgrade
    retired: int  # THEFT's stolen-key report, logged after the upgrade: after those roots


def v1_answer(url: str, name: str, entry: int) -> Answer:
    """The answer about `name` once its index covers `entry`, under a v1 root (bounded)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = dict(httpx.get(f"{url}/api/v1/documents/{V1_DOCS[name].hex()}", timeout=20).json())
        served = found["index"]
        if served and served["size"] > entry:
            assert base64.b64decode(served["index_root"]["statement"]).startswith(b"tlog-index-root/v1\n"), served
            assert served["keys"] == [], served
            return found
        time.sleep(0.1)
    raise TimeoutError(f"no v1 index root covering entry {entry}")


@pytest.fixture(scope="module")
def upgraded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpgradedLog]:
    """A log that stated v1 roots, then upgraded (the same data, today's server): THEFT reported stolen after."""
    tmp = tmp_path_factory.mktemp("page-key-status-v1")
    config = tmp / "log.toml"
    config.write_text("[status_index]\nindex_interval_ms = 50\n")
    server = LogProcess(tmp / "log", free_port(), config=config)
    with mock.patch.object(log_harness, "SERVER", V1_SERVER):
        server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            for key in V1_SIGNER.values():
                register_issuer(client, server, key)
            origin = client.get("/api/v1/log").json()["origin"]
            index = {}
            for name, key in V1_SIGNER.items():
                posted = post_statements(client, [issue(origin, key, V1_DOCS[name])])
                index[name] = int(posted.json()["entries"][0]["index"])
            v1 = {name: v1_answer(server.url, name, max(index.values())) for name in V1_DOCS}
        server.stop()
        server.start()  # the upgrade: it states v2 roots from now on
        with httpx.Client(base_url=server.url, timeout=30) as client:
            registry = server.key("registry.key")
            report = Statement(origin, ISSUER_RETIRE, registry.verifier().vkey, int(time.time()),
                               issuer=THEFT.verifier().vkey, unsafe_from=index["stolen"])  # fmt: skip
            response = post_statements(client, [sign_statement(report, registry)])
            response.raise_for_status()
            retired = int(response.json()["entries"][0]["index"])
            deadline = time.monotonic() + 60
            while True:  # the newest answer: under a v2 root past the report
                served = client.get(f"/api/v1/documents/{V1_DOCS['stolen'].hex()}").json()["index"]
                if served and served["size"] > retired and served["keys"]:
                    break
                assert time.monotonic() < deadline, served
                time.sleep(0.1)
        yield UpgradedLog(server, index, v1, retired)
    finally:
        server.stop()


def test_a_report_in_the_gap_of_a_v1_root_left_out_is_tampering(upgraded: UpgradedLog, page: Page) -> None:
    """A proxy replays an answer under a v1 index root (every logged root verifies) and leaves out the stolen-key
    report logged after it: the page read the report in the gap itself, so tampered (before: "genuine", the key line
    "the log's word"). Shown, the report gives the stolen verdict; for a key not reported, the key line under a v1
    root stays the log's word, not proven."""
    url = upgraded.server.url

    def early(name: str, retirements: bool) -> Callable[[Answer], Answer]:
        return lambda a: upgraded.v1[name] | {"retirements": a["retirements"] if retirements else []}

    def opened(name: str) -> str:
        return open_verdict(page, f"{url}/verify#h={V1_DOCS[name].hex()}&i={upgraded.index[name]}")

    page.route(f"**/api/v1/documents/{V1_DOCS['stolen'].hex()}",
               lambda r: r.fulfill(json=early("stolen", False)(r.fetch().json())))  # fmt: skip
    assert opened("stolen") == "tampered", checks(page)
    assert detail(page) == f"the log left out entry {upgraded.retired}, which retires key {THEFT.verifier().vkey}"
    page.unroute_all()
    page.route(f"**/api/v1/documents/{V1_DOCS['stolen'].hex()}",
               lambda r: r.fulfill(json=early("stolen", True)(r.fetch().json())))  # fmt: skip
    assert opened("stolen") == "stolen", checks(page)
    assert f"unsafe from #{upgraded.index['stolen']}" in checks(page), checks(page)
    page.unroute_all()
    page.route(f"**/api/v1/documents/{V1_DOCS['safe'].hex()}",
               lambda r: r.fulfill(json=early("safe", True)(r.fetch().json())))  # fmt: skip
    assert opened("safe") == "genuine", checks(page)
    assert WORD in checks(page) and PROVEN not in checks(page), checks(page)
    assert f"(index root #{upgraded.v1['safe']['index']['index_root']['index']})" in checks(page), checks(page)
