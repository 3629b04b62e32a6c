"""Trust at the citizen's end (issue 16), in Debian's headless Chromium against real logs on 127.0.0.1:

- a real log with three witnesses: a key that merely carries the issuer's key name cannot revoke (the page, like
  the server and `tlog verify`, says genuine), while the key the registry declares to continue the issuing key can;
  a same-named key of another issuer is refused by the registry; the page names the issuer by its registered label;
- `tlog verifier-site` exports a static verifier, served by a plain static file server on a second loopback port:
  it verifies the pinned log's documents and refuses a look-alike log (same origin string, other keys), whether the
  proof comes in the link or the page is pointed at the look-alike; a changed trust policy raises a loud warning;
- a log with no witnesses (`quorum none`): the page never says "vouched for", in English or Khmer."""

import base64
import hashlib
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from log_harness import REPO, LogProcess, issue, post_statements, register_issuer, running_log
from playwright.sync_api import BrowserContext, Page
from tools_stack import Stack, witnessed_log
from web_browser import checked_page, chromium, open_verdict, screenshot, wait_published

from loadtest.localproc import free_port
from tlogcore.cosignature import CosignatureV1Signer
from tlogcore.keys import Ed25519Signer, format_signer_key, parse_signer_key
from tlogcore.note import sign_note
from tlogcore.statement import REVOKE, Statement, sign_statement
from tlogcore.trustrotation import rotation_text, split_trust_text, trust_digest

OLD_PDF = b"%PDF-1.7\n% Diploma 2025/4, issued with the ministry's first key\n%%EOF\n" * 10
NEW_PDF = b"%PDF-1.7\n% Diploma 2026/8, issued with the ministry's new key\n%%EOF\n" * 10
FORGED_PDF = b"%PDF-1.7\n% Diploma 2026/8, forged on a look-alike log\n%%EOF\n" * 10


@dataclass(frozen=True)
class Ran:
    exit_code: int
    stdout: str
    output: str


def tlog(*args: str) -> Ran:
    """`tlog ARGS` as a real process: Playwright's sync API holds an event loop in this thread, so the tool (which
    runs its own) cannot run in-process once the browser is up."""
    done = subprocess.run(
        [sys.executable, "-c", "from tools.cli import main; main()", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return Ran(done.returncode, done.stdout, done.stdout + done.stderr)


@dataclass
class World:
    stack: Stack
    tmp: Path
    policy: Path
    index: dict[str, int]  # document hex -> its issue entry

    def link(self, base: str, pdf: bytes) -> str:
        digest = hashlib.sha256(pdf).hexdigest()
        return f"{base}#h={digest}&i={self.index[digest]}"


def keyfile(tmp: Path, name: str) -> tuple[Path, str]:
    """A fresh key made by `tlog keygen`: its file and its verifier key."""
    path = tmp / f"{name}-{uuid.uuid4().hex[:8]}.key"
    made = tlog("keygen", "--name", name, "--out", str(path))
    assert made.exit_code == 0, made.output
    return path, made.stdout.strip()


def submitted(url: str, key: Path, pdf: Path) -> int:
    done = tlog("submit", "--log", url, "--key", str(key), "--qr", "online", str(pdf))
    assert done.exit_code == 0, done.output
    digest = hashlib.sha256(pdf.read_bytes()).hexdigest()
    return int(httpx.get(f"{url}/api/v1/documents/{digest}").json()["statements"][0]["index"])


def signed_revoke(url: str, key: Path, pdf: bytes) -> bytes:
    signer = parse_signer_key(key.read_text().strip())
    origin = httpx.get(url + "/api/v1/log").json()["origin"]
    statement = Statement(
        origin, REVOKE, signer.verifier().vkey, int(time.time()), document=hashlib.sha256(pdf).digest()
    )
    return sign_statement(statement, signer)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("web-trust")
    with witnessed_log(tmp) as stack:
        registry = ["--log", stack.url, "--registry-key", str(stack.server.data / "registry.key")]
        old_file, old_key = keyfile(tmp, "moeys.gov.kh")
        new_file, new_key = keyfile(tmp, "moeys.gov.kh")
        for key, rotation in ((old_key, []), (new_key, ["--continues", old_key])):
            added = tlog("issuer", "add", *registry, "--issuer", key, "--label", "Ministry of Education", *rotation)
            assert added.exit_code == 0, added.output
        index = {}
        for name, data, key in (("old.pdf", OLD_PDF, old_file), ("new.pdf", NEW_PDF, new_file)):
            (tmp / name).write_bytes(data)
            index[hashlib.sha256(data).hexdigest()] = submitted(stack.url, key, tmp / name)
        with httpx.Client(base_url=stack.url, timeout=20) as client:
            # The old key carries the same key name as the new one but does not continue it: logged (it is an
            # active key), yet it must not revoke what the new key issued. The new key continues the old one: its
            # revocation of the old key's document counts.
            for key, pdf in ((old_file, NEW_PDF), (new_file, OLD_PDF)):
                assert post_statements(client, [signed_revoke(stack.url, key, pdf)]).status_code == 200
        wait_published(stack.url)
        policy = tmp / "trust.policy"
        policy.write_text(stack.policy_text)
        yield World(stack, tmp, policy, index)


@pytest.fixture(scope="module")
def browser(world: World) -> Iterator[BrowserContext]:
    with chromium(world.tmp / "profile") as context:
        yield context


def test_a_same_named_key_cannot_revoke_but_its_continuation_can(world: World, page: Page) -> None:
    new_hash, old_hash = hashlib.sha256(NEW_PDF).hexdigest(), hashlib.sha256(OLD_PDF).hexdigest()
    assert httpx.get(f"{world.stack.url}/api/v1/documents/{new_hash}").json()["status"] == "valid"
    assert httpx.get(f"{world.stack.url}/api/v1/documents/{old_hash}").json()["status"] == "revoked"
    for pdf, verdict in ((NEW_PDF, "genuine"), (OLD_PDF, "revoked")):
        (world.tmp / "check.pdf").write_bytes(pdf)
        line = tlog("verify", str(world.tmp / "check.pdf"), "--policy", str(world.policy), "--log", world.stack.url)
        assert line.stdout.startswith(verdict.upper()), line.output
    assert open_verdict(page, world.link(world.stack.url + "/verify", NEW_PDF)) == "genuine"
    assert (page.text_content("#f-issuer") or "").startswith("Ministry of Education — registered")
    assert open_verdict(page, world.link(world.stack.url + "/verify", OLD_PDF)) == "revoked"


def test_a_same_named_key_of_another_issuer_is_refused(world: World) -> None:
    _, impostor = keyfile(world.tmp, "moeys.gov.kh")
    registry = ["--log", world.stack.url, "--registry-key", str(world.stack.server.data / "registry.key")]
    refused = tlog("issuer", "add", *registry, "--issuer", impostor, "--label", "Private school X")
    assert refused.exit_code == 1 and "already held by issuer 'Ministry of Education'" in refused.output
    assert "Traceback" not in refused.output


# --- the static verifier --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def site(world: World) -> Iterator[tuple[str, Path]]:
    """The exported folder, served by Python's plain static file server on a second loopback port."""
    out = world.tmp / "site"
    made = tlog("verifier-site", "--policy", str(world.policy), "--log", world.stack.url, "--out", str(out))
    assert made.exit_code == 0, made.output
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 10
        while True:
            try:
                httpx.get(url + "/", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield url, out
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture(scope="module")
def lookalike(world: World) -> Iterator[tuple[LogProcess, bytes]]:
    """A second log with the real log's origin string and its own keys, a "Ministry of Education" of its own and a
    forged diploma in it; yields the log and the forged diploma's offline bundle (binary)."""
    origin = world.stack.origin
    with running_log(world.tmp, "lookalike", f'[log]\norigin = "{origin}"\n') as server:
        forger = Ed25519Signer("moeys.gov.kh", b"\x66" * 32)
        with httpx.Client(base_url=server.url, timeout=20) as client:
            register_issuer(client, server, forger, "Ministry of Education")
            answer = post_statements(client, [issue(origin, forger, hashlib.sha256(FORGED_PDF).digest())])
            assert answer.status_code == 200, answer.text
            index = int(answer.json()["entries"][0]["index"])
            world.index[hashlib.sha256(FORGED_PDF).hexdigest()] = index
            binary = client.get(f"/api/v1/bundle/{index}?format=binary").content
        yield server, binary


def test_the_static_verifier_verifies_the_pinned_log(world: World, site: tuple[str, Path], page: Page) -> None:
    url, out = site
    html = (out / "index.html").read_text()
    assert '<script type="application/json" id="tlog-trust">' in html and 'integrity="sha384-' in html
    assert open_verdict(page, world.link(url + "/", NEW_PDF)) == "genuine", page.text_content("#verdict-reason")
    assert page.text_content("#site-host") == url.removeprefix("http://")
    assert page.text_content("#site-log") == world.stack.origin
    assert (page.text_content("#f-issuer") or "").startswith("Ministry of Education — registered")
    screenshot(page, "static-verifier-genuine")
    assert open_verdict(page, world.link(url + "/", OLD_PDF)) == "revoked"


def test_the_static_verifier_refuses_a_lookalike_log(
    world: World, site: tuple[str, Path], lookalike: tuple[LogProcess, bytes], page: Page
) -> None:
    url, _ = site
    server, binary = lookalike
    offline = base64.urlsafe_b64encode(binary).rstrip(b"=").decode()
    assert open_verdict(page, f"{url}/#b={offline}") == "cannot_verify"
    assert page.text_content("#verdict-reason") == (
        "The record is not signed by the log this page trusts. It may come from a look-alike log."
    )
    screenshot(page, "static-verifier-lookalike")
    # The same page built with the real log's policy but pointed at the look-alike (say, a hijacked address).
    pointed = world.tmp / "site-pointed"
    made = tlog("verifier-site", "--policy", str(world.policy), "--log", server.url, "--out", str(pointed))
    assert made.exit_code == 0, made.output
    (world.tmp / "site" / "pointed").mkdir(exist_ok=True)
    for item in pointed.iterdir():
        (world.tmp / "site" / "pointed" / item.name).write_bytes(item.read_bytes())
    assert open_verdict(page, world.link(url + "/pointed/", FORGED_PDF)) not in ("genuine", "revoked")


def test_a_changed_trust_policy_raises_a_loud_warning(
    world: World, site: tuple[str, Path], lookalike: tuple[LogProcess, bytes], page: Page
) -> None:
    url, out = site
    # Each visit asks for the page under its own query, so that no HTTP cache of the browser or its service worker
    # hands back the file as it was before this test rewrote it (python's file server sends no Cache-Control).
    assert open_verdict(page, world.link(url + "/?visit=1", NEW_PDF)) == "genuine"
    assert not page.is_visible("#trust-warning")  # first use: remembered, nothing to warn about
    lookalike_policy = world.tmp / "lookalike.policy"
    lookalike_policy.write_text(f"log {lookalike[0].key('log.key').verifier().vkey}\nquorum none\n")
    original = (out / "index.html").read_bytes()
    made = tlog("verifier-site", "--policy", str(lookalike_policy), "--log", lookalike[0].url, "--out", str(out))
    assert made.exit_code == 0, made.output
    try:
        # Not checked with keys that changed: no verdict on the look-alike's document until the person accepts.
        assert open_verdict(page, world.link(url + "/?visit=2", FORGED_PDF)) == "cannot_verify"
        assert page.is_visible("#trust-warning")
        assert "keys this site trusts have changed" in (page.text_content("#verdict-reason") or "")
        assert "have changed since your last visit" in (page.text_content("#trust-warning") or "")
        screenshot(page, "trust-changed-warning")
        page.click("#lang-km")
        assert "ប្រយ័ត្ន" in (page.text_content("#trust-warning") or "")
        page.click("#lang-en")
    finally:
        (out / "index.html").write_bytes(original)
    assert open_verdict(page, world.link(url + "/?visit=3", NEW_PDF)) == "genuine"
    assert not page.is_visible("#trust-warning")  # back to the remembered keys


def test_a_trust_change_signed_by_the_old_registry_key_is_accepted_quietly(
    world: World, site: tuple[str, Path], page: Page
) -> None:
    """Lane 16 (a): every change of a site's trust warned, even one its operator signed with the old keys. A change
    a registry key of the remembered trust signed (tlog trust-rotation) is accepted with a notice; a rotation
    signed by any other key still raises the loud warning."""
    url, out = site
    original = {name: (out / name).read_bytes() for name in ("index.html", "trust-policy.txt")}
    old_site = world.tmp / "site-old"  # the site's trust as the page remembers it (the fixture's export, again)
    assert (
        tlog("verifier-site", "--policy", str(world.policy), "--log", world.stack.url, "--out", str(old_site)).exit_code
        == 0
    )
    old_text = old_site / "trust-policy.txt"
    real_registry = (world.stack.server.data / "registry.key").read_text().strip()
    real_vkey = parse_signer_key(real_registry).verifier().vkey
    _, extra = keyfile(world.tmp, "registry2.log.example")
    base = ["verifier-site", "--policy", str(world.policy), "--log", world.stack.url, "--registry-key", real_vkey]
    try:
        assert open_verdict(page, world.link(url + "/?visit=r1", NEW_PDF)) == "genuine"  # remembers the old trust
        new_site = world.tmp / "site-new"
        assert tlog(*base, "--registry-key", extra, "--out", str(new_site)).exit_code == 0
        rotation = world.tmp / "rotation.json"
        signed = tlog(
            "trust-rotation",
            *("--from", str(old_text), "--to", str(new_site / "trust-policy.txt")),
            *("--registry-key", str(world.stack.server.data / "registry.key"), "--out", str(rotation)),
        )
        assert signed.exit_code == 0, signed.output
        made = tlog(*base, "--registry-key", extra, "--rotation", str(rotation), "--out", str(out))
        assert made.exit_code == 0, made.output
        assert open_verdict(page, world.link(url + "/?visit=r2", NEW_PDF)) == "genuine"
        assert not page.is_visible("#trust-warning")
        assert page.is_visible("#trust-notice")
        assert "signed by the keys you trusted before" in (page.text_content("#trust-notice") or "")
        screenshot(page, "trust-rotated-notice")
        # The next change, "signed" by a key the remembered trust does not hold: loud, as any other change.
        forger = Ed25519Signer("registry2.log.example", b"\x77" * 32)
        _, third = keyfile(world.tmp, "registry3.log.example")
        third_site = world.tmp / "site-third"
        assert tlog(*base, "--registry-key", third, "--out", str(third_site)).exit_code == 0
        refused = tlog(
            "trust-rotation",
            *("--from", str(new_site / "trust-policy.txt"), "--to", str(third_site / "trust-policy.txt")),
            *("--registry-key", str(forger_file(world.tmp, forger)), "--out", str(world.tmp / "forged.json")),
        )
        assert refused.exit_code == 1 and "not one of the registry keys" in refused.output
        forged = world.tmp / "forged.json"
        new_trust = split_trust_text((new_site / "trust-policy.txt").read_text())
        third_trust = split_trust_text((third_site / "trust-policy.txt").read_text())
        note = sign_note(rotation_text(trust_digest(*new_trust), trust_digest(*third_trust)), [forger]).decode()
        forged.write_text(json.dumps({"policy": third_trust[0], "registry": third_trust[1], "note": note}))
        made = tlog(*base, "--registry-key", third, "--rotation", str(forged), "--out", str(out))
        assert made.exit_code == 0, made.output
        assert open_verdict(page, world.link(url + "/?visit=r3", NEW_PDF)) == "cannot_verify"
        assert page.is_visible("#trust-warning") and not page.is_visible("#trust-notice")
    finally:
        for name, data in original.items():
            (out / name).write_bytes(data)
        page.evaluate("localStorage.removeItem('tlog-trust')")  # the next visit pins the original trust again
    assert open_verdict(page, world.link(url + "/?visit=r4", NEW_PDF)) == "genuine"


def test_the_logs_own_page_follows_a_rotation_in_its_data_directory(tmp_path: Path, browser: BrowserContext) -> None:
    """Lane 16 (a), the log's own /verify: its trust comes from the log's configuration, so adding a witness changes
    it. A rotation signed by the registry key, dropped into <data>/trust-rotations/, makes the change quiet at the
    next visit (read at each request: no restart)."""
    server = LogProcess(tmp_path / "log", free_port()).start()
    try:
        with checked_page(browser) as page:
            open_verdict(page, server.url + "/verify?visit=1")  # first use: remembers this trust
            assert not page.is_visible("#trust-warning") and not page.is_visible("#trust-notice")
            registry = server.key("registry.key")
            registry_vkey = registry.verifier().vkey
            old = httpx.get(server.url + "/api/v1/policy").text
            server.stop()
            witness = CosignatureV1Signer("witness.new.example", b"\x42" * 32, time.time).verifier().vkey
            server.config = tmp_path / "log.toml"
            server.config.write_text(f'[[witness]]\nurl = "http://127.0.0.1:9"\nvkey = "{witness}"\n')
            server.start(init=False)
            new = httpx.get(server.url + "/api/v1/policy").text
            assert witness in new and new != old
            open_verdict(page, server.url + "/verify?visit=2")
            assert page.is_visible("#trust-warning")  # a change nobody signed: loud
            rotations = server.data / "trust-rotations"
            rotations.mkdir()
            text = rotation_text(trust_digest(old, [registry_vkey]), trust_digest(new, [registry_vkey]))
            note = sign_note(text, [registry]).decode()
            rotation = {"policy": new, "registry": [registry_vkey], "note": note}
            (rotations / "2026-12-witness.json").write_text(json.dumps(rotation))
            open_verdict(page, server.url + "/verify?visit=3")
            assert not page.is_visible("#trust-warning") and page.is_visible("#trust-notice")
    finally:
        server.stop()


def forger_file(tmp: Path, signer: Ed25519Signer) -> Path:
    path = tmp / f"forger-{uuid.uuid4().hex[:8]}.key"
    path.write_text(format_signer_key(signer) + "\n")
    path.chmod(0o600)
    return path


def test_the_export_refuses_bad_input_in_one_line(world: World) -> None:
    bad = tlog("verifier-site", "--policy", str(world.policy), "--log", "ftp://x", "--out", str(world.tmp / "x"))
    assert bad.exit_code == 1 and "http(s)" in bad.output and "Traceback" not in bad.output
    key = tlog("verifier-site", "--policy", str(world.policy), "--log", world.stack.url, "--registry-key", "nope")
    assert key.exit_code == 2  # --out missing: click's usage error
    broken = world.tmp / "broken.policy"
    broken.write_text("log nonsense\n")
    result = tlog("verifier-site", "--policy", str(broken), "--log", world.stack.url, "--out", str(world.tmp / "y"))
    assert result.exit_code == 1 and str(broken) in result.output and "Traceback" not in result.output


# --- no witnesses ---------------------------------------------------------------------------------------------


def test_with_no_witnesses_the_page_never_says_vouched_for(tmp_path: Path, browser: BrowserContext) -> None:
    with running_log(tmp_path) as server, httpx.Client(base_url=server.url, timeout=20) as client:
        assert httpx.get(server.url + "/api/v1/policy").text.endswith("quorum none\n")
        issuer = Ed25519Signer("mptc.gov.kh", b"\x31" * 32)
        register_issuer(client, server, issuer, "Ministry of Posts")
        origin = client.get("/api/v1/log").json()["origin"]
        digest = hashlib.sha256(b"a licence on a log without witnesses").digest()
        index = post_statements(client, [issue(origin, issuer, digest)]).json()["entries"][0]["index"]
        wait_published(server.url, cosignatures=0)
        page = browser.new_page()
        try:
            assert open_verdict(page, f"{server.url}/verify#h={digest.hex()}&i={index}") == "genuine"
            text = page.inner_text("main")  # what a person sees
            assert "vouched" not in text.lower(), text
            assert "only the log itself stands behind its record" in (page.text_content("#verdict-reason") or "")
            assert page.text_content("#f-witnesses") == "none: this log has no witnesses configured"
            screenshot(page, "no-witnesses")
            page.click("#lang-km")
            khmer = page.inner_text("main")
            assert "ធានាដោយសាក្សីគ្រប់គ្រាន់" not in khmer and "គ្មានសាក្សីឯករាជ្យ" in khmer
            screenshot(page, "no-witnesses-km")
            page.click("#lang-en")
        finally:
            page.close()
