"""Issue 22's "Done when", end to end with real processes on 127.0.0.1: a bundle made before a log-key rotation
verifies after it through refresh, on the page and in `tlog verify`, with a post-quantum witness quorum.

Three real `tlog-witness` processes cosign with Ed25519 and ML-DSA-44 (docs/thirty-years.md's recommendation: the
printed offline link carries the Ed25519 cosignatures, the log's newest checkpoint the ML-DSA-44 ones). A diploma is
issued, its bundle and its offline QR link kept; `tlog-server rotate-key` runs; more diplomas follow until the
checkpoints are signed by the new log key only. Then:
(a) `tlog verify --log --bundle` under a policy listing both log keys and requiring 2 of 3 post-quantum witnesses
    says GENUINE and names the newest checkpoint; `tlog refresh` writes a bundle that verifies offline under it;
(b) the log's /verify page in headless Chromium opens the OLD offline link: genuine, on the newest checkpoint, the
    ML-DSA-44 cosignatures verified in the checks list;
(c) a policy with only the old log key refuses the refreshed bundle; one whose post-quantum group cannot be met says
    the quorum is not met."""

import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest
from log_harness import LogProcess
from playwright.sync_api import Page
from test_rotate_key import OVERLAP, key_id, log_signers, published_checkpoint, submit, tlog_server
from test_web_pq import key_type
from tools_stack import Stack, all_entries, register_issuer, tlog
from web_browser import chromium, open_verdict, screenshot, wait_published
from witness_helpers import WitnessProcess

from loadtest.localproc import free_port, log_identity
from monitor.splitview import open_witness_checkpoint
from tlogcore.bundle import TlogProof, parse_tlog_proof, verify_bundle
from tlogcore.errors import TlogError, UnverifiedError
from tlogcore.logkey import is_log_key, parse_log_key_rotation
from tlogcore.mldsa import MLDSA44CosignatureSigner, generate_mldsa44_seed
from tlogcore.note import Note, parse_note
from tlogcore.policy import parse_policy
from tools.qr import decode_image, parse_url

MLDSA44 = 0x06


def witness_config(path: Path, number: int, logs: list[tuple[str, str]]) -> Path:
    """A witness that signs Ed25519 first, then ML-DSA-44, for each (origin, log vkey)."""
    path.write_text(
        f'name = "witness{number}.example.org"\nalgorithms = ["ed25519", "ml-dsa-44"]\n'
        + "".join(f'[[log]]\norigin = "{origin}"\nvkey = "{vkey}"\n' for origin, vkey in logs),
        encoding="utf-8",
    )
    return path


def witness_vkeys(witness: WitnessProcess) -> tuple[str, str]:
    """(Ed25519, ML-DSA-44) verifier keys, as `tlog-witness serve` printed them."""
    ed, pq = [line[5:] for line in witness.stdout_path.read_text().splitlines() if line.startswith("vkey ")]
    assert key_type(pq) == MLDSA44 and key_type(ed) == 0x04
    return ed, pq


def verifier_policy(log_vkeys: list[str], witnesses: list[tuple[str, str]], pq_keys: list[str] | None = None) -> str:
    """What a verifier in 2056 holds: the log's keys, every witness key, and a quorum of 2 post-quantum witnesses
    (docs/thirty-years.md, "Requiring post-quantum witnesses"). `pq_keys` replaces the witnesses' ML-DSA-44 keys."""
    pq = pq_keys or [pq for _, pq in witnesses]
    lines = [f"log {vkey}" for vkey in log_vkeys]
    lines += [f"witness E{i} {ed}" for i, (ed, _) in enumerate(witnesses)]
    lines += [f"witness P{i} {vkey}" for i, vkey in enumerate(pq)]
    lines += [f"group post-quantum 2 {' '.join(f'P{i}' for i in range(len(pq)))}", "quorum post-quantum"]
    return "\n".join(lines) + "\n"


@dataclass
class Decades:
    stack: Stack
    tmp: Path
    witness_keys: list[tuple[str, str]]
    new_vkey: str
    old_bundle: Path  # the diploma's bundle as issued, before the rotation
    old_link: str  # the offline link read back from its printed QR code
    old_size: int  # the tree size of the checkpoint that bundle and link carry
    newest: bytes  # the log's published checkpoint past the overlap, signed by the new key only

    @property
    def pdf(self) -> Path:
        return self.tmp / "diploma.pdf"

    def policy(self, name: str, text: str) -> Path:
        path = self.tmp / name
        path.write_text(text, encoding="utf-8")
        return path


def rotate(stack: Stack, tmp: Path) -> str:
    """`tlog-server rotate-key` on the stopped log; each witness operator adds the new key; the new log key."""
    stack.server.stop()
    data, config = str(stack.server.data), str(stack.server.config)
    done = tlog_server("rotate-key", "--data", data, "--config", config, "--overlap", str(OVERLAP))
    assert done.returncode == 0, done.stdout + done.stderr
    new_vkey = next(line[4:] for line in done.stdout.splitlines() if line.startswith("log "))
    for number, witness in enumerate(stack.witnesses):
        witness.stop()
        witness_config(witness.config, number, [(stack.origin, stack.log_vkey), (stack.origin, new_vkey)])
        witness.start()
    stack.server.start(init=False)
    return new_vkey


def issue_diploma(stack: Stack, tmp: Path, key: Path) -> tuple[Path, str]:
    """`tlog submit --qr offline` under the log's published policy: the bundle, and the link read from the PNG."""
    published = tmp / "published.policy"
    published.write_text(httpx.get(stack.url + "/api/v1/policy", timeout=5).text)
    (tmp / "diploma.pdf").write_bytes(b"%PDF-1.7\n% Diploma 2026/30, Keo Bopha, valid for life\n%%EOF\n" * 10)
    sent = tlog("submit", "--log", stack.url, "--key", str(key), "--policy", str(published), "--qr", "offline",
                str(tmp / "diploma.pdf"))  # fmt: skip
    assert sent.exit_code == 0 and "offline QR" in sent.output, sent.output
    [png] = tmp.glob("diploma.pdf*.png")
    return tmp / "diploma.pdf.tlog-proof", decode_image(png.read_bytes()).decode()


def past_the_overlap(stack: Stack, tmp: Path, key: Path, policy: Path) -> bytes:
    """More diplomas until the published checkpoint is past the rotation's overlap (new key only)."""
    rotation = next(parse_log_key_rotation(e) for e in all_entries(stack.url) if is_log_key(e))
    for i in range(OVERLAP + 1):
        submit(stack, tmp, key, policy, f"later{i}")
    wait_published(stack.url, rotation.until, cosignatures=6)
    return published_checkpoint(stack, rotation.until)


@pytest.fixture(scope="module")
def decades(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Decades]:
    tmp = tmp_path_factory.mktemp("thirty-years")
    ident = log_identity(tmp / "log")
    witnesses: list[WitnessProcess] = []
    try:
        for i in range(3):
            config = witness_config(tmp / f"w{i}.toml", i, [(ident.origin, ident.log_vkey)])
            witnesses.append(WitnessProcess(tmp / f"w{i}", config))
            witnesses[-1].start()
        keys = [witness_vkeys(w) for w in witnesses]
        log_config = tmp / "log.toml"
        log_config.write_text(
            "[witnessing]\nwitness_timeout_ms = 3000\nwitness_retries = 1\n"
            + "".join(
                f'[[witness]]\nurl = "{w.url}"\nvkey = ["{ed}", "{pq}"]\n'
                for w, (ed, pq) in zip(witnesses, keys, strict=True)
            )
        )
        server = LogProcess(tmp / "log", free_port(), config=log_config).start()
        try:
            stack = Stack(server, witnesses, ident.origin, ident.log_vkey, "")
            yield build(stack, tmp, keys)
        finally:
            server.stop()
    finally:
        for w in witnesses:
            w.stop()


def build(stack: Stack, tmp: Path, keys: list[tuple[str, str]]) -> Decades:
    issuer = tmp / "issuer.key"
    register_issuer(stack, issuer)
    bundle, link = issue_diploma(stack, tmp, issuer)
    shutil.copy(bundle, tmp / "old.tlog-proof")
    old_size = parse_tlog_proof(bundle.read_bytes()).checkpoint.split(b"\n")[1]
    new_vkey = rotate(stack, tmp)
    both = tmp / "both.policy"
    both.write_text(verifier_policy([stack.log_vkey, new_vkey], keys))
    newest = past_the_overlap(stack, tmp, issuer, both)
    return Decades(stack, tmp, keys, new_vkey, tmp / "old.tlog-proof", link, int(old_size), newest)


def test_refresh_asks_the_old_checkpoint_for_the_log_signature_not_todays_quorum(decades: Decades) -> None:
    """The core rule the printed code needs: its checkpoint carries Ed25519 cosignatures only, so under a policy
    requiring post-quantum witnesses it fails alone, and verifies for refresh (the newest meets the quorum)."""
    policy = parse_policy(verifier_policy([decades.stack.log_vkey, decades.new_vkey], decades.witness_keys))
    printed = parse_url(decades.old_link, policy)
    assert isinstance(printed, TlogProof)
    with pytest.raises(UnverifiedError, match="quorum"):
        verify_bundle(printed, policy)
    assert verify_bundle(printed, policy.for_refresh()).index == printed.index
    unsigned = replace(printed, checkpoint=Note(parse_note(printed.checkpoint).text, ()).to_bytes())
    with pytest.raises(TlogError):  # the log's signature is still required
        verify_bundle(unsigned, policy.for_refresh())


def test_the_scenario_holds_what_it_claims(decades: Decades) -> None:
    """Guards the premises: the old proof predates the rotation, the newest checkpoint is the new key's alone and
    carries the three ML-DSA-44 cosignatures, the printed code is the offline form."""
    old = parse_tlog_proof(decades.old_bundle.read_bytes())
    assert log_signers(old.checkpoint) == {key_id(decades.stack.log_vkey)}
    assert log_signers(decades.newest) == {key_id(decades.new_vkey)}
    pq_ids = {key_id(pq) for _, pq in decades.witness_keys}
    assert pq_ids <= {s.key_id for s in parse_note(decades.newest).signatures}
    assert "#TL1:" in decades.old_link and decades.old_link.startswith(decades.stack.url + "/verify")


def test_tlog_verify_relies_on_the_newest_checkpoint_and_refresh_verifies_offline(decades: Decades) -> None:
    policy = decades.tmp / "both.policy"
    newest_size = int(decades.newest.split(b"\n")[1])
    online = tlog("verify", str(decades.pdf), "--policy", str(policy), "--bundle", str(decades.old_bundle),
                  "--log", decades.stack.url)  # fmt: skip
    assert online.exit_code == 0 and online.stdout.startswith("GENUINE"), online.output
    assert f"relied on the log's newest checkpoint of tree size {newest_size}" in online.stdout, online.stdout
    assert f"refreshed from the bundle's (tree size {decades.old_size})" in online.stdout
    assert "P0, P1, P2" in online.stdout  # the post-quantum witnesses it counted
    refreshed = decades.tmp / "refreshed.tlog-proof"
    shutil.copy(decades.old_bundle, refreshed)
    done = tlog("refresh", str(refreshed), "--log", decades.stack.url, "--policy", str(policy))
    assert done.exit_code == 0, done.output
    assert log_signers(parse_tlog_proof(refreshed.read_bytes()).checkpoint) == {key_id(decades.new_vkey)}
    offline = tlog("verify", str(decades.pdf), "--policy", str(policy), "--bundle", str(refreshed))
    assert offline.exit_code == 0 and offline.stdout.startswith("GENUINE"), offline.output


def test_the_old_offline_link_verifies_in_tlog_verify_through_refresh(decades: Decades) -> None:
    """The printed code carries only Ed25519 cosignatures and the old key's signature: online it reaches the
    post-quantum quorum through the newest checkpoint."""
    policy = decades.tmp / "both.policy"
    online = tlog("verify", str(decades.pdf), "--policy", str(policy), "--qr-text", decades.old_link,
                  "--log", decades.stack.url)  # fmt: skip
    assert online.exit_code == 0 and online.stdout.startswith("GENUINE"), online.output
    assert f"refreshed from the bundle's (tree size {decades.old_size})" in online.stdout


def test_the_page_opens_the_old_offline_link_genuine_on_the_newest_checkpoint(decades: Decades) -> None:
    newest_size = int(decades.newest.split(b"\n")[1])
    with chromium(decades.tmp / "profile") as browser:
        page: Page = browser.new_page()
        problems: list[str] = []
        page.on("pageerror", lambda e: problems.append(str(e)))
        assert open_verdict(page, decades.old_link) == "genuine", page.text_content("#verdict-reason")
        entry = page.text_content("#f-entry") or ""
        assert f" · {newest_size} — " in entry and f"the proof carried size {decades.old_size}" in entry, entry
        checks = page.text_content("#check-list") or ""
        refreshed = checks.split(f"size {decades.old_size} → {newest_size}, cosigned by ", 1)[1]
        for number in range(3):  # each witness's ML-DSA-44 key (its second key in the log's policy) verified
            assert f"witness{number}.example.org-key2" in refreshed.split("✓", 1)[0], checks
        assert "cannot check the post-quantum" not in checks
        # Three witnesses, each cosigning with two keys: people are told of three witnesses, not six keys.
        vouched = page.text_content("#f-witnesses") or ""
        assert vouched.startswith("witness0.example.org, witness1.example.org, witness2.example.org — 3 of 3"), vouched
        screenshot(page, "thirty-years-refreshed-pq")
        page.click("#lang-km")
        assert f"ទំហំ {decades.old_size} → {newest_size}, ចុះហត្ថលេខាដោយ" in (page.text_content("#check-list") or "")
        screenshot(page, "thirty-years-refreshed-pq-km")
        assert not problems, problems


def test_a_policy_with_only_the_old_log_key_refuses_the_refreshed_bundle(decades: Decades) -> None:
    refreshed = decades.tmp / "refreshed-for-old-policy.tlog-proof"
    shutil.copy(decades.old_bundle, refreshed)
    both = decades.tmp / "both.policy"
    assert tlog("refresh", str(refreshed), "--log", decades.stack.url, "--policy", str(both)).exit_code == 0
    old_only = decades.policy("old-only.policy", verifier_policy([decades.stack.log_vkey], decades.witness_keys))
    refused = tlog("verify", str(decades.pdf), "--policy", str(old_only), "--bundle", str(refreshed))
    assert refused.exit_code != 0 and not refused.stdout.startswith("GENUINE"), refused.output
    assert "not signed by the log key" in refused.output, refused.output


def test_a_post_quantum_group_that_cannot_be_met_gives_quorum_not_met(decades: Decades) -> None:
    """The verifier's policy names two ML-DSA-44 witnesses that never cosigned this log: one of 2 is not a quorum."""
    strangers = [
        MLDSA44CosignatureSigner(f"gone{i}.example.org", generate_mldsa44_seed(), time.time).verifier().vkey
        for i in (1, 2)
    ]
    pq_keys = [decades.witness_keys[0][1], *strangers]
    unmet = decades.policy(
        "unmet.policy", verifier_policy([decades.stack.log_vkey, decades.new_vkey], decades.witness_keys, pq_keys)
    )
    result = tlog("verify", str(decades.pdf), "--policy", str(unmet), "--bundle", str(decades.old_bundle),
                  "--log", decades.stack.url)  # fmt: skip
    assert result.exit_code != 0 and not result.stdout.startswith("GENUINE"), result.output
    assert "quorum not met" in result.output, result.output


def test_the_monitor_reads_a_witness_checkpoint_signed_by_the_new_key(decades: Decades) -> None:
    """The split-view check opens each witness's checkpoint with the log's keys: after the rotation the new one
    (listed second, as the log publishes them) must be accepted, not reported as a witness's bad answer."""
    policy = parse_policy(verifier_policy([decades.stack.log_vkey, decades.new_vkey], decades.witness_keys))
    signed = open_witness_checkpoint(decades.newest, policy, decades.stack.origin, "P0")
    assert signed.size == int(decades.newest.split(b"\n")[1]) and signed.note == decades.newest
