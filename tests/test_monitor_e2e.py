"""The monitor against a real log of 20,000 entries with two real witnesses (2-of-2 policy), all on 127.0.0.1:
catch up, then follow; a stolen issuer key raises exactly one alert; known-good entries and the watchlist
reload without restart; and a kill -9 in the middle of catching up misses nothing and repeats nothing."""

import json
import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from monitor_helpers import (
    FilledLog,
    MonitorProcess,
    doc,
    issuer_key,
    leaf_hash,
    monitor_cli,
    monitor_config,
    read_alerts,
    report_json,
    start_log,
    state_progress,
    status_head,
    undelivered,
    wait_for,
)
from witness_helpers import WitnessProcess, write_config

from loadtest.localproc import log_identity
from monitor.entryaudit import CHECKS_AHEAD_ENTRIES, STATUS_AHEAD_ENTRIES
from tlogcore.statement import DOCUMENT_KINDS, REVOKE, Statement, sign_statement
from tlogcore.statusindex_nodes import PathPlan, read_paths
from tlogcore.tiles import parse_tile_path

ENTRIES = 20_000
MOEYS, OTHER = "moeys.example.gov.kh", "other.example.gov.kh"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FilledLog, str]]:
    tmp = tmp_path_factory.mktemp("monitor-e2e")
    ident = log_identity(tmp / "log")
    origin, log_vkey = ident.origin, ident.log_vkey
    witnesses = []
    for i in range(2):
        witness = WitnessProcess(
            tmp / f"w{i}", write_config(tmp / f"w{i}.toml", f"w{i}.example.org", [(origin, log_vkey)])
        )
        witness.start()
        witnesses.append(witness)
    config = tmp / "log.toml"
    config.write_text(
        "[witnessing]\nwitness_timeout_ms = 5000\n"
        + "".join(f'[[witness]]\nurl = "{w.url}"\nvkey = "{w.vkey}"\n' for w in witnesses)
    )
    log = start_log(tmp, config=config)
    try:
        log.register("moeys", issuer_key(MOEYS, 11))
        log.register("other", issuer_key(OTHER, 12))
        statements = []
        for i in range(ENTRIES - 20):
            name = "moeys" if i % 10 == 0 else "other"
            statements += log.issue(name, [doc(i)])
        other = log.issuers["other"]
        for i in range(20):  # revocations by the issuer of earlier documents
            statement = Statement(
                log.origin, REVOKE, other.verifier().vkey, 1790000000, document=doc(10 * i + 1), reason="withdrawn"
            )
            statements.append(sign_statement(statement, other))
        log.submit(statements)
        log.wait_published(log.size, timeout=60)
        policy = (
            f"log {log_vkey}\n"
            + "".join(f"witness W{i} {w.vkey} {w.url}\n" for i, w in enumerate(witnesses))
            + "group both 2 W0 W1\nquorum both\n"
        )
        yield log, policy
    finally:
        log.close()
        for witness in witnesses:
            witness.stop()


def status_root_from_scratch(log: FilledLog) -> bytes:
    """The status index root over every issue and revoke statement of the log (all of them accepted)."""
    entries = [(i, s.kind, s.document) for i, s in enumerate(log.parsed()) if s.kind in DOCUMENT_KINDS and s.document]
    plan = read_paths(PathPlan([d for _, _, d in entries]), {})
    return plan.apply_entries(entries).root


def documents_of(log: FilledLog, name: str) -> list[bytes]:
    vkey = log.issuers[name].verifier().vkey
    out = []
    for statement in log.parsed():
        if statement.signer == vkey and statement.kind == "issue" and statement.document is not None:
            out.append(statement.document)
    return out


def counts_by_issuer(log: FilledLog) -> dict[str, tuple[int, int]]:
    counts: Counter[tuple[str, str]] = Counter()
    for statement in log.parsed():
        counts[(statement.signer.split("+")[0], statement.kind)] += 1
    return {name: (counts[(name, "issue")], counts[(name, "revoke")]) for name in (MOEYS, OTHER)}


def wait_verified(config: Path, size: int, monitor: MonitorProcess, timeout: float = 90) -> None:
    def done() -> bool:
        assert monitor.alive(), monitor.stderr()[-3000:]
        db = config.parent / "state.db"
        return state_progress(db)[0] == size and undelivered(db) == 0

    wait_for(done, timeout, f"the monitor verifying size {size}", every=0.1)


WATCH = f"""
[[watch]]
name = "moeys-key"
issuer_names = ["{MOEYS}"]
expected = "moeys-issued"

[[watch]]
name = "registry"
registry = true
"""


def test_catch_up_then_follow_a_stolen_key_raises_exactly_one_alert(
    tmp_path: Path, stack: tuple[FilledLog, str]
) -> None:
    log, policy = stack
    expected = tmp_path / "moeys-issued"  # a directory of hash lists, as an issuer's system might write them
    expected.mkdir()
    listing = "".join(d.hex() + "\n" for d in documents_of(log, "moeys"))
    (expected / "2026.txt").write_text("# issued by MoEYS\n" + listing)
    config = monitor_config(tmp_path / "monitor.toml", log.server.url, policy, watch=WATCH, extra="workers = 2")
    monitor = MonitorProcess(config).start()
    try:
        wait_verified(config, log.size, monitor)
        alerts = read_alerts(tmp_path / "alerts.jsonl")
        assert sorted((a["rule"], a["evidence"]["matched"], a["evidence"]["index"]) for a in alerts) == [
            ("moeys-key", "issuer-added", 0),
            ("registry", "issuer-added", 0),
            ("registry", "issuer-added", 1),
        ]
        # Plain progress lines. The last is written just after the state's commit the wait above saw: wait for it.
        wait_for(lambda: "audited" in monitor.stderr() and "entries/s" in monitor.stderr(), 10, "a progress line")

        # A document the ministry lists before logging it: no alert (the list is re-read without restart).
        listed = log.issue("moeys", [doc(1, b"new diploma")])
        (expected / "2027.txt").write_text(doc(1, b"new diploma").hex() + "\n")
        # One the ministry vouches for afterwards, by leaf hash, before the monitor sees it.
        vouched = log.issue("moeys", [doc(2, b"vouched")])
        result = monitor_cli(
            "mark-good",
            "--config",
            str(config),
            "--log",
            log.origin,
            "--leaf-hash",
            leaf_hash(vouched[0]).hex(),
            "--note",
            "issued by the Phnom Penh office",
        )
        assert result.returncode == 0, result.stderr
        # And one made with the stolen key.
        stolen = log.issue("moeys", [doc(3, b"forged diploma")])
        log.submit(listed + vouched + stolen)
        log.wait_published(log.size)
        wait_verified(config, log.size, monitor)
        new = read_alerts(tmp_path / "alerts.jsonl")[len(alerts) :]
        assert len(new) == 1, new
        alert = new[0]
        assert alert["rule"] == "moeys-key" and alert["category"] == "watch"
        assert alert["evidence"]["matched"] == "unexpected"
        assert alert["evidence"]["index"] == log.size - 1
        assert alert["evidence"]["statement"]["document"] == doc(3, b"forged diploma").hex()
        assert doc(3, b"forged diploma").hex() in alert["summary"] and str(log.size - 1) in alert["summary"]

        # Reload the watch rules with SIGHUP: a new rule applies to the next entries, without a restart.
        config.write_text(config.read_text() + f'\n[[watch]]\nname = "other-key"\nissuer_names = ["{OTHER}"]\n')
        monitor.signal(signal.SIGHUP)
        wait_for(lambda: "reloaded 3 watch rules" in monitor.stderr(), 10, "the reload")
        log.submit(log.issue("other", [doc(4, b"after reload")]))
        log.wait_published(log.size)
        wait_verified(config, log.size, monitor)
        last = read_alerts(tmp_path / "alerts.jsonl")[len(alerts) + 1 :]
        assert [(a["rule"], a["evidence"]["index"]) for a in last] == [("other-key", log.size - 1)]
    finally:
        assert monitor.stop() == 0, monitor.stderr()[-3000:]
    report = report_json(config)
    counts = counts_by_issuer(log)
    assert {k["name"]: (k["issued"], k["revoked"]) for k in report["issuers"]} == counts
    assert report["entries_audited"] == log.size and report["bad_entries"] == 0
    assert report["revocations"] == 20
    assert report["verified"]["size"] == log.size


@pytest.mark.parametrize("workers", [1, 2])  # 2: statement checks in worker processes, the status index in its own
def test_kill_9_mid_catch_up_resumes_without_missing_or_repeating(
    tmp_path: Path, stack: tuple[FilledLog, str], workers: int
) -> None:
    log, policy = stack
    documents = documents_of(log, "other")
    unexpected = {documents[k] for k in (5, 2000, 4000, 7000, 9000, 12000, 15000, len(documents) - 3)}
    (tmp_path / "other-issued.txt").write_text("".join(d.hex() + "\n" for d in documents if d not in unexpected))
    watch = f'[[watch]]\nname = "other-key"\nissuer_names = ["{OTHER}"]\nexpected = "other-issued.txt"\n'
    extra = f"chunk_tiles = 2\nworkers = {workers}"
    config = monitor_config(tmp_path / "monitor.toml", log.server.url, policy, watch=watch, extra=extra)
    server_log = log.server.data.parent / f"server-{log.server.port}.log"
    offset = server_log.stat().st_size
    state = tmp_path / "state.db"
    monitor = MonitorProcess(config).start()
    try:
        wait_for(lambda: state_progress(state)[1] >= log.size // 3, 90, "a third of the catch-up", every=0.02)
        monitor.kill9()
        verified, next_index = state_progress(state)
        assert verified is None and next_index < log.size, "killed too late to test a resume"
        monitor.start()
        wait_verified(config, log.size, monitor)
    finally:
        assert monitor.stop() == 0, monitor.stderr()[-3000:]
    alerts = read_alerts(tmp_path / "alerts.jsonl")
    ids = [a["id"] for a in alerts]
    assert len(ids) == len(set(ids)), "an alert was sent twice"
    found = sorted(
        bytes.fromhex(a["evidence"]["statement"]["document"])
        for a in alerts
        if a["evidence"]["matched"] == "unexpected"
    )
    assert found == sorted(unexpected)  # none missed, none twice
    assert [a["evidence"]["matched"] for a in alerts].count("issuer-added") == 1
    report = report_json(config)
    assert {k["name"]: (k["issued"], k["revoked"]) for k in report["issuers"]} == counts_by_issuer(log)
    assert report["entries_audited"] == log.size  # every entry audited exactly once across the two runs
    # The status index the monitor recomputed across the kill is the one computed from scratch from the log.
    assert status_head(state, log.origin) == (log.size, status_root_from_scratch(log))
    # Nothing committed before the kill was downloaded again: a full entry bundle is fetched twice only for the
    # chunks in flight when the process died, past the last commit (entryaudit.py: the ones resolved and waiting
    # for their status index, up to STATUS_AHEAD_ENTRIES entries, the one being committed, those being checked, up
    # to CHECKS_AHEAD_ENTRIES entries, and the one prefetched).
    bundles: Counter[int] = Counter()
    with server_log.open("rb") as handle:
        handle.seek(offset)
        for line in handle:
            if line.startswith(b"{"):
                path = json.loads(line).get("path", "")
                if path.startswith("/tile/entries/") and ".p/" not in path:
                    bundles[parse_tile_path(path[1:]).index] += 1
    assert len(bundles) == log.size // 256
    again = sorted(tile for tile, count in bundles.items() if count > 1)
    assert all(count <= 2 for count in bundles.values()), bundles.most_common(10)
    assert not again or again[0] >= next_index // 256, (next_index, again)  # none committed before the kill
    assert len(again) <= (STATUS_AHEAD_ENTRIES + CHECKS_AHEAD_ENTRIES) // 256 + 4 * 2, again
