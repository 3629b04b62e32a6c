"""`tlog-monitor report --html OUT` after real audits of a real log: a self-contained page (no script, nothing from
another origin) with the issuers' counts, key history, the log's growth and the alerts with their evidence, in
English and Khmer; rendered in Chromium with every network request refused, and screenshotted."""

import re
import time
from pathlib import Path

from log_harness import free_port
from monitor_helpers import doc, issuer_key, monitor_cli, monitor_config, start_log
from web_browser import chromium, screenshot

from monitor.daily import count_days
from monitor.htmlreport import MAX_DAYS, days_chart
from tlogcore.keys import Ed25519Signer
from tlogcore.statement import ISSUE, ISSUER_RETIRE, REVOKE, Statement, sign_statement

WATCH = '[[watch]]\nname = "moeys-key"\nissuer_names = ["moeys.example.gov.kh"]\n'


def audit(config: Path) -> int:
    result = monitor_cli("audit-once", "--config", str(config))
    assert result.returncode in (0, 3), result.stderr  # 3: alerts raised (the watch rule)
    return result.returncode


def test_html_report_is_self_contained_and_shows_the_audit(tmp_path: Path) -> None:
    log = start_log(tmp_path)
    try:
        log.register("moeys", issuer_key("moeys.example.gov.kh", 21))
        log.register("other", issuer_key("other.example.gov.kh", 22))
        log.submit(log.issue("moeys", [doc(i) for i in range(3)]))
        log.submit(log.issue("other", [doc(i, b"o") for i in range(5)]))
        policy = f"log {log.log_vkey}\nquorum none\n"
        config = monitor_config(tmp_path / "monitor.toml", log.server.url, policy, watch=WATCH)
        log.wait_published(log.size)
        assert audit(config) == 3  # the watched key K was registered and used: documented in docs/monitoring.md
        other = log.issuers["other"]
        revoke = Statement(log.origin, REVOKE, other.verifier().vkey, int(time.time()), document=doc(0, b"o"))
        log.submit([sign_statement(revoke, other), log.registry_statement(ISSUER_RETIRE, other, "key rotated")])
        log.wait_published(log.size)
        time.sleep(1.1)  # a second checkpoint seen a second later: two points on the growth chart
        audit(config)
        out = tmp_path / "public" / "report.html"
        out.parent.mkdir()
        made = monitor_cli("report", "--config", str(config), "--html", str(out))
        assert made.returncode == 0 and made.stdout == f"wrote {out}\n", made.stderr
    finally:
        log.close()
    page_html = out.read_text(encoding="utf-8")
    assert "<script" not in page_html and "<link" not in page_html and "@import" not in page_html
    urls = set(re.findall(r"(?:src|href)\s*=\s*\"([^\"]+)\"", page_html))
    assert urls == set(), urls  # images are inline SVG; nothing is fetched
    # growth, issued/revoked, key timeline, and (lane 16, f) one per-day chart per issuer key that issued
    assert page_html.count("<svg") == 5
    today = time.strftime("%Y-%m-%d", time.gmtime())
    assert page_html.count('class="days"') == 2
    assert f"<title>{today}: 3 issued, 0 revoked</title>" in page_html  # moeys, per day
    assert f"<title>{today}: 5 issued, 1 revoked</title>" in page_html  # other: its revocation on its day
    assert "តាមថ្ងៃ" in page_html
    assert "Content-Security-Policy" in page_html and "default-src 'none'" in page_html
    assert "របាយការណ៍" in page_html  # Khmer alongside English

    with chromium(tmp_path / "profile") as context:
        requests: list[str] = []
        context.route("**/*", lambda route: (requests.append(route.request.url), route.abort()))
        page = context.new_page()
        page.set_content(page_html, wait_until="load")  # from memory: any fetch would be a routed request
        text = page.inner_text("body")
        assert requests == [], requests
        assert log.origin in text
        assert re.search(r"Size\s*ទំហំ\s*12\b", text), text[:400]  # 2 registrations + 8 issued + revoke + retire
        rows = page.inner_text("table")
        assert re.search(r"moeys\.example\.gov\.kh.*\n?.*in use.*\s3\s+0", rows, re.S) is not None, rows
        assert "key rotated" in rows and re.search(r"\t5\t1\b", rows) is not None, rows
        assert "moeys-key" in text and "watch" in text
        page.click("details:has(.alert) summary, .alert details summary")
        assert '"entry"' in page.inner_text(".alert pre")  # the evidence to re-check the alert
        screenshot(page, "monitor-report")


def test_audit_with_the_log_down_says_not_audited_and_claims_nothing(tmp_path: Path) -> None:
    vkey = Ed25519Signer("log.down.example", bytes(range(32))).verifier().vkey
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    config = monitor_config(tmp_path / "monitor.toml", url, f"log {vkey}\nquorum none\n")
    result = monitor_cli("audit-once", "--config", str(config))
    assert result.returncode == 2, result.stderr
    assert "not audited" in result.stderr
    assert "verified size" not in result.stderr, result.stderr  # it verified nothing: it must not print a size
    assert "log.down.example: no checkpoint verified yet" in result.stderr


def test_the_per_day_chart_has_every_calendar_day_and_only_the_newest_quarter() -> None:
    chart = days_chart("moeys", [("2026-11-01", 3, 0), ("2026-11-03", 0, 1)])
    assert chart.count("<title>") == 6  # issued and revoked for each of the 3 days, the empty one included
    assert "<title>2026-11-02: 0 issued, 0 revoked</title>" in chart
    assert "<title>2026-11-03: 0 issued, 1 revoked</title>" in chart
    long = days_chart("moeys", [("2025-01-01", 1, 0), ("2026-11-30", 2, 0)])
    assert long.count("<title>") == 2 * MAX_DAYS and "2025-01-01" not in long


def test_days_are_counted_per_signer_by_the_statements_utc_date() -> None:
    key = issuer_key("moeys.example.gov.kh", 21)
    vkey = key.verifier().vkey
    at = 1_790_000_000  # 2026-09-21 UTC
    made = [
        Statement("log.example", kind, vkey, at + offset, document=bytes([n]) * 32)
        for n, (kind, offset) in enumerate([(ISSUE, 0), (ISSUE, 60), (REVOKE, 86_400)])
    ]
    assert count_days(made) == {(vkey, "2026-09-21"): (2, 0), (vkey, "2026-09-22"): (0, 1)}


def test_a_day_ends_at_midnight_utc_in_the_count() -> None:
    """count_days names each day once (by its POSIX day number): the last second of a day and the first of the next
    are two days, as `utc_day` says."""
    vkey = issuer_key("moeys.example.gov.kh", 21).verifier().vkey
    midnight = 20_352 * 86_400  # 2025-09-21 00:00:00 UTC
    made = [
        Statement("log.example", ISSUE, vkey, at, document=bytes([n]) * 32)
        for n, at in enumerate([midnight - 1, midnight, midnight + 86_399, midnight - 86_400])
    ]
    assert count_days(made) == {(vkey, "2025-09-20"): (2, 0), (vkey, "2025-09-21"): (2, 0)}
