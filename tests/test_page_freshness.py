"""The verifier page refuses to call a status proven on a checkpoint its witnesses vouched for too long ago
(tlogcore/freshness.py, the page's twin `vouchedAt` in verify.js; `tlog verify` does the same online).

A real log with its status index on and three real witnesses, headless Chromium, and a proxy (Playwright's request
routing) that replays the log's newest checkpoint as it would have been 2 hours ago: the genuine checkpoint text
and log signature, with cosignatures made by the witnesses' own keys (read from their data directories) under a
clock 2 hours back. Everything verifies, and that time's answers would hide a revocation logged since: the page
keeps the verdict the statements give, but says the status is the log's word, not proven up to date.

And a log whose one witness cosigns with ML-DSA-44 only, behind a proxy that hands the page that witness's
cosignature made again by its own key with timestamp 0, as a cosigner with a multi-year certificate signs them
(c2sp.org/tlog-cosignature: time 0 makes no claim of being the latest): it still counts for the quorum, but dates
nothing, so the page says the cosignatures carry no time (never "vouched for in 1970")."""

import dataclasses
import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import mldsa
from log_harness import LogProcess, free_port, issue, post_statements
from log_harness import register_issuer as register_issuer_key
from playwright.sync_api import BrowserContext, Page, Route
from tools_stack import Stack, register_issuer, tlog, witnessed_log
from web_browser import chromium, open_verdict, screenshots_in_both_languages, wait_published
from witness_helpers import WitnessProcess, write_config

from loadtest.localproc import log_identity
from tlogcore.bundle import parse_tlog_proof
from tlogcore.checkpoint import parse_checkpoint
from tlogcore.cosignature import subtree_message
from tlogcore.keys import Ed25519Signer, Signer
from tlogcore.mldsa import MLDSA44CosignatureSigner
from tlogcore.note import Note, Signature, parse_note, signature_for
from witness.config import ED25519, ML_DSA_44
from witness.keyfiles import read_key

PDF = b"%PDF-1.7\n% Diploma 2026/44, Keo Sreymom\n%%EOF\n" * 10
NEVER = hashlib.sha256(b"a diploma nobody logged").hexdigest()
AGO = 2 * 3600  # the replayed cosignatures' age: two hours, beyond the hour the page accepts
SHOTS = Path(os.environ.get("TLOG_FRESHNESS_SHOTS", "/tmp/page-freshness/shots"))

PROVEN = "The log's complete list of entries about this document: proven"
FRESH = "within the hour this page accepts"
STALE = "NOT proven up to date"
WORD_ONLY = '("not revoked" is its word only: not proven)'
STALE_KM = "មិនត្រូវបានបញ្ជាក់ថាទាន់សម័យទេ"
FRESH_KM = "ក្នុងរយៈពេលមួយម៉ោង"
UNTIMED = "cosignatures on the log's newest record carry no time"
UNTIMED_KM = "មិនមានពេលវេលាទេ"


@dataclass
class World:
    stack: Stack
    tmp: Path
    digest: str  # the diploma, logged and not revoked
    index: int  # its issue entry
    witnesses: list[Signer]  # the witnesses' own keys, their clock 2 hours back


def published(url: str) -> tuple[int, int]:
    """The published checkpoint's size and how many signature lines it carries."""
    body = httpx.get(url + "/checkpoint", timeout=5).content
    return parse_checkpoint(parse_note(body).text).size, body.count("\u2014".encode())


def wait_status_proven(url: str, digest: str, entry: int) -> None:
    """Until the lookups for the diploma and for NEVER carry an index proof covering `entry` whose index-root entry
    is inside a published checkpoint cosigned by the 2-of-3 quorum (what the page needs to say "proven")."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        size, lines = published(url)
        served = [httpx.get(f"{url}/api/v1/documents/{h}", timeout=5).json()["index"] for h in (digest, NEVER)]
        if lines >= 3 and all(s and s["size"] > entry and int(s["index_root"]["index"]) < size for s in served):
            return
        time.sleep(0.2)
    raise TimeoutError("no cosigned checkpoint holds an index root covering the diploma")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("page-freshness")
    with witnessed_log(tmp, more_config="[status_index]\nindex_interval_ms = 50\n") as stack:
        key = tmp / "moeys.key"
        register_issuer(stack, key, label="Ministry of Education")
        (tmp / "diploma.pdf").write_bytes(PDF)
        done = tlog("submit", "--log", stack.url, "--key", str(key), "--qr", "none", str(tmp / "diploma.pdf"))
        assert done.exit_code == 0, done.output
        digest = hashlib.sha256(PDF).hexdigest()
        index = int(httpx.get(f"{stack.url}/api/v1/documents/{digest}").json()["statements"][0]["index"])
        wait_status_proven(stack.url, digest, index)
        witnesses = [read_key(w.data, ED25519, lambda: time.time() - AGO) for w in stack.witnesses]
        yield World(stack, tmp, digest, index, witnesses)


@pytest.fixture(scope="module")
def browser(world: World) -> Iterator[BrowserContext]:
    with chromium(world.tmp / "profile") as context:
        yield context


def replayed(note_bytes: bytes, witnesses: list[Signer]) -> bytes:
    """The same checkpoint and log signature, each witness's cosignature made again by its own key 2 hours back:
    what a replay of that checkpoint, cosigned 2 hours ago, looks like."""
    note = parse_note(note_bytes)
    keys = {w.name: w for w in witnesses}
    kept = tuple(s for s in note.signatures if s.name not in keys)
    again = tuple(signature_for(note.text, keys[s.name]) for s in note.signatures if s.name in keys)
    assert len(again) >= 2, note_bytes  # the quorum cosigned it: the replay carries as many
    return Note(note.text, kept + again).to_bytes()


def proxied(page: Page, cosigned: Callable[[bytes], bytes]) -> None:
    """The proxy: the newest checkpoint, and the checkpoint in a bundle, with the cosignatures `cosigned` makes."""

    def checkpoint(route: Route) -> None:
        route.fulfill(status=200, content_type="text/plain", body=cosigned(route.fetch().body()))

    def bundle(route: Route) -> None:
        proof = parse_tlog_proof(route.fetch().body())
        old = dataclasses.replace(proof, checkpoint=cosigned(proof.checkpoint))
        route.fulfill(status=200, content_type="text/plain", body=old.to_text())

    page.route("**/checkpoint", checkpoint)
    page.route("**/api/v1/bundle/*", bundle)


def replaying(page: Page, world: World) -> None:
    """The newest checkpoint, and the checkpoint in the diploma's bundle, cosigned 2 hours ago."""
    proxied(page, lambda note: replayed(note, world.witnesses))


def link(world: World, digest: str, index: int = 0) -> str:
    return f"{world.stack.url}/verify#h={digest}&i={index}"


def checks(page: Page) -> str:
    return page.text_content("#check-list") or ""


def notes(page: Page) -> list[str]:
    """The "!" lines of the checks list: neither passed nor failed."""
    return [str(t) for t in page.eval_on_selector_all("#check-list li.note", "lis => lis.map((li) => li.textContent)")]


def test_fresh_cosignatures_prove_the_status(world: World, page: Page) -> None:
    """(a) No proxy: the witnesses vouched for the newest checkpoint minutes ago; the status is proven, and the
    list says the witnesses vouched for it within the hour (before: no such line)."""
    assert open_verdict(page, link(world, world.digest, world.index)) == "genuine", checks(page)
    text = checks(page)
    assert PROVEN in text and FRESH in text and WORD_ONLY not in text and STALE not in text, text
    assert not notes(page), notes(page)
    screenshots_in_both_languages(page, "fresh-genuine", FRESH_KM, SHOTS)


def test_a_checkpoint_cosigned_two_hours_ago_proves_no_status(world: World, page: Page) -> None:
    """(b) The replay: the verdict stays "genuine" (the statements say so), but the status is not shown proven,
    "not revoked" is the log's word, and a "!" line says why (before: "proven", as if current)."""
    replaying(page, world)
    assert open_verdict(page, link(world, world.digest, world.index)) == "genuine", checks(page)
    assert "vouched for by enough independent witnesses" in (page.text_content("#verdict-reason") or "")
    text = checks(page)
    assert PROVEN not in text and FRESH not in text and WORD_ONLY in text, text
    stale = [n for n in notes(page) if STALE in n]
    assert len(stale) == 1 and "2 hours ago" in stale[0] and "revocation might not show" in stale[0], notes(page)
    screenshots_in_both_languages(page, "stale-genuine", STALE_KM, SHOTS)


def test_never_logged_is_proven_only_on_a_fresh_checkpoint(world: World, page: Page) -> None:
    """(c) "Not logged" stands on the newest checkpoint too: proven when fresh, the log's word under the replay."""
    assert open_verdict(page, link(world, NEVER)) == "not_logged", checks(page)
    assert PROVEN in checks(page) and FRESH in checks(page), checks(page)
    replaying(page, world)
    assert open_verdict(page, link(world, NEVER)) == "not_logged", checks(page)
    text = checks(page)
    assert PROVEN not in text and any(STALE in n and "2 hours ago" in n for n in notes(page)), text
    screenshots_in_both_languages(page, "stale-not-logged", STALE_KM, SHOTS)


def test_the_freshness_lines_in_both_languages(world: World, page: Page) -> None:
    """(d) Each new line has its Khmer words, and its technical detail (the checkpoint's size and when it was
    vouched for) is Khmer too, the numbers kept: no key name, no English line left in the Khmer view."""
    replaying(page, world)
    assert open_verdict(page, link(world, world.digest, world.index)) == "genuine"
    page.click("#lang-km")
    try:
        stale = page.eval_on_selector_all(
            "#check-list li.note", "lis => lis.map((li) => [li.textContent, li.querySelector('.detail').lang])"
        )
        assert any(STALE_KM in text and "2 ម៉ោងមុន" in text and lang == "km" for text, lang in stale), stale
        assert "c_stale" not in checks(page) and "vouched" not in checks(page), checks(page)
    finally:
        page.click("#lang-en")
    page.unroute_all()
    assert open_verdict(page, link(world, world.digest, world.index)) == "genuine"
    page.click("#lang-km")
    try:
        assert FRESH_KM in checks(page) and "c_fresh" not in checks(page) and "vouched" not in checks(page)
    finally:
        page.click("#lang-en")
    keys = page.evaluate("() => [TLOG_I18N.en, TLOG_I18N.km].map((l) => [l.c_fresh, l.c_stale].every(Boolean))")
    assert keys == [True, True], keys


def chained_groups(policy: str, depth: int) -> str:
    """The same quorum (two of the three witnesses) reached through `depth` groups, each naming the two before it:
    a walk that evaluates every member's member again takes Fibonacci(depth) steps."""
    body, _ = policy.rsplit("quorum ", 1)
    witnesses = " ".join(line.split()[1] for line in policy.splitlines() if line.startswith("witness "))
    chain = [f"group c0 2 {witnesses}", f"group c1 2 {witnesses}"]
    chain += [f"group c{i} all c{i - 1} c{i - 2}" for i in range(2, depth)]
    return body + "\n".join(chain) + f"\nquorum c{depth - 1}\n"


def test_a_policy_of_groups_sharing_members_is_judged_at_once(world: World, page: Page) -> None:
    """The page judged the quorum by walking each group's members again for every group naming them: with 40
    groups each naming the two before it (a policy a site could build), every checkpoint took Fibonacci(40) steps
    and the page never settled (before: no verdict within the test's wait). Now one pass, as Policy.is_satisfied:
    the same verdict and freshness line as with the plain two-of-three policy."""

    def deep_policy(route: Route) -> None:
        html = route.fetch().text()
        found = re.search(r'(<script type="application/json" id="tlog-trust">)(.*?)(</script>)', html, re.S)
        assert found, html[:300]
        trust = json.loads(found.group(2))
        trust["policy"] = chained_groups(trust["policy"], 40)
        data = json.dumps(trust).replace("<", "\\u003c")
        route.fulfill(status=200, content_type="text/html", body=html.replace(found.group(2), data))

    page.route("**/verify", deep_policy)
    assert open_verdict(page, link(world, world.digest, world.index)) == "genuine", checks(page)
    assert PROVEN in checks(page) and FRESH in checks(page), checks(page)


@dataclass
class PQWorld:
    url: str
    digest: str  # the diploma, logged
    index: int  # its issue entry
    witness: MLDSA44CosignatureSigner  # the only witness's own key, read from its data directory


@pytest.fixture(scope="module")
def pq_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PQWorld]:
    """A log whose one witness cosigns with ML-DSA-44 only: the log's published policy rests on that key alone."""
    tmp = tmp_path_factory.mktemp("page-freshness-pq")
    ident = log_identity(tmp / "log")
    logs = [(ident.origin, ident.log_vkey)]
    config = write_config(tmp / "w.toml", "pq.witness.example.org", logs, algorithms=["ml-dsa-44"])
    with WitnessProcess(tmp / "w", config) as witness:
        (tmp / "log.toml").write_text(f'[[witness]]\nurl = "{witness.url}"\nvkey = "{witness.vkey}"\n')
        server = LogProcess(tmp / "log", free_port(), config=tmp / "log.toml").start()
        try:
            issuer = Ed25519Signer("moeys.gov.kh", b"\x44" * 32)
            with httpx.Client(base_url=server.url, timeout=20) as client:
                register_issuer_key(client, server, issuer, "Ministry of Education")
                logged = post_statements(client, [issue(ident.origin, issuer, hashlib.sha256(PDF).digest())])
            wait_published(server.url, cosignatures=1)
            key = read_key(tmp / "w", ML_DSA_44, time.time)
            assert isinstance(key, MLDSA44CosignatureSigner)
            yield PQWorld(server.url, hashlib.sha256(PDF).hexdigest(), logged.json()["entries"][0]["index"], key)
        finally:
            server.stop()


def undated(note_bytes: bytes, witness: MLDSA44CosignatureSigner) -> bytes:
    """The same checkpoint and log signature, the witness's cosignature made again by its own ML-DSA-44 key with
    timestamp 0 (its signer refuses 0 for itself, so the subtree/v1 message is signed here with the same seed)."""
    note = parse_note(note_bytes)
    checkpoint = parse_checkpoint(note.text)
    stamp = bytes(8)
    message = subtree_message(witness.name, stamp, checkpoint.origin, checkpoint.size, checkpoint.root)
    assert message is not None
    cosignature = stamp + mldsa.MLDSA44PrivateKey.from_seed_bytes(witness.seed).sign(message)
    assert witness.verifier().verify(note.text.encode(), cosignature)  # a valid cosignature, only claiming no time
    kept = tuple(s for s in note.signatures if s.name != witness.name)
    assert len(kept) < len(note.signatures), note_bytes  # the witness cosigned it: the proxy changes only the time
    return Note(note.text, (*kept, Signature(witness.name, witness.key_id, cosignature))).to_bytes()


def test_cosignatures_with_time_0_vouch_for_no_time(pq_world: PQWorld, page: Page) -> None:
    """Timestamp 0 counts for the quorum (the verdict stays genuine, the witness is named) but dates nothing: the
    checkpoint was never vouched current, so no status is proven, and the "!" line says the cosignatures carry no
    time, in English and Khmer (before: "vouched for at 1970-01-01 00:00 UTC", some 20,000 days ago)."""
    proxied(page, lambda note: undated(note, pq_world.witness))
    link = f"{pq_world.url}/verify#h={pq_world.digest}&i={pq_world.index}"
    assert open_verdict(page, link) == "genuine", checks(page)
    assert "pq.witness.example.org" in (page.text_content("#f-witnesses") or "")
    assert page.text_content("#f-age") == "—"  # no time to tell the checkpoint's age by
    text = checks(page)
    assert FRESH not in text and "1970" not in text and "days ago" not in text, text
    [stale] = [n for n in notes(page) if STALE in n]
    assert UNTIMED in stale and "revocation might not show" in stale, stale
    screenshots_in_both_languages(page, "untimed-genuine", UNTIMED_KM, SHOTS)
    page.click("#lang-km")
    try:
        lines = page.eval_on_selector_all(
            "#check-list li.note", "lis => lis.map((li) => [li.textContent, li.querySelector('.detail').lang])"
        )
        assert any(STALE_KM in line and UNTIMED_KM in line and lang == "km" for line, lang in lines), lines
        assert "c_stale" not in checks(page) and "1970" not in checks(page) and "time" not in checks(page)
    finally:
        page.click("#lang-en")
