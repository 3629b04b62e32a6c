"""`tlog-monitor report --html OUT`: one self-contained page (Khmer and English) a civil-society group can publish.

Per log: the last verified checkpoint, the log's growth over time (the sizes the monitor verified, from its
state), documents issued and revoked per issuer key, key additions and retirements on a timeline, and every
alert with its evidence. Charts are inline SVG; the page has no script and loads nothing from anywhere (its
Content-Security-Policy says so), so it can be hosted as a single file or opened from disk.

Pure: data in (`monitor.report.report` plus each log's alerts and checkpoint history), text out.
"""

import datetime
import html
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
STYLE = """
body { font-family: "Noto Sans Khmer", "Khmer OS", system-ui, sans-serif; color: #1a1a1a; margin: 0;
  line-height: 1.6; }
main { max-width: 60rem; margin: 0 auto; padding: 1rem; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.25rem; border-top: 2px solid #1a1a1a; padding-top: .5rem; }
h3 { font-size: 1.05rem; } .km { display: block; color: #333; font-weight: normal; }
.ok { color: #146c2e; font-weight: 700; } .bad { color: #8a1c1c; font-weight: 700; }
.mono, pre { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: .8rem; overflow-wrap: anywhere;
  white-space: pre-wrap; }
table { border-collapse: collapse; width: 100%; } th, td { text-align: left; padding: .25rem .5rem;
  border-bottom: 1px solid #ccc; vertical-align: top; }
svg { max-width: 100%; height: auto; } .alert { border-left: 4px solid #8a1c1c; padding-left: .75rem; margin: 1rem 0; }
details summary { cursor: pointer; }
"""
ISSUED, REVOKED, ADDED, RETIRED, LINE = "#1f5fa8", "#c0392b", "#146c2e", "#6b6b6b", "#1f5fa8"


@dataclass(frozen=True)
class LogPage:
    """What the page shows for one log: its `report()` entry, its alerts (full records), its verified sizes."""

    report: dict[str, Any]
    alerts: Sequence[dict[str, Any]]
    history: Sequence[tuple[float, int]]  # (when seen, size), oldest first
    days: Mapping[str, Sequence[tuple[str, int, int]]] = field(default_factory=dict)  # vkey -> (day, issued, revoked)


def both(english: str, khmer: str) -> str:
    """A heading or label in English with its Khmer beneath (the page is read by both)."""
    return f'{html.escape(english)}<span class="km" lang="km">{html.escape(khmer)}</span>'


def day(unix_seconds: float) -> str:
    return datetime.datetime.fromtimestamp(unix_seconds, datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


def bar_chart(rows: Sequence[tuple[str, int, int]]) -> str:
    """Issued (blue) and revoked (red) per issuer key, horizontal bars on one scale."""
    if not rows:
        return ""
    width, label_width, row_height = 640, 220, 34
    top = max(1, max(max(issued, revoked) for _, issued, revoked in rows))
    scale = (width - label_width - 60) / top
    parts = []
    for i, (label, issued, revoked) in enumerate(rows):
        y = i * row_height + 4
        parts.append(f'<text x="0" y="{y + 16}" font-size="12">{html.escape(label[:34])}</text>')
        parts.append(f'<rect x="{label_width}" y="{y}" width="{issued * scale:.1f}" height="12" fill="{ISSUED}"/>')
        parts.append(f'<text x="{label_width + issued * scale + 4:.1f}" y="{y + 11}" font-size="11">{issued}</text>')
        parts.append(
            f'<rect x="{label_width}" y="{y + 14}" width="{revoked * scale:.1f}" height="12" fill="{REVOKED}"/>'
        )
        parts.append(f'<text x="{label_width + revoked * scale + 4:.1f}" y="{y + 25}" font-size="11">{revoked}</text>')
    height = len(rows) * row_height + 8
    return (
        f'<svg role="img" aria-label="issued and revoked per issuer key" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">{"".join(parts)}</svg>'
    )


def growth_chart(history: Sequence[tuple[float, int]]) -> str:
    """The verified size over time: a step line from the checkpoints the monitor verified."""
    if len(history) < 2:
        return ""
    width, height, pad = 640, 200, 40
    t0, t1 = history[0][0], history[-1][0]
    top = max(1, max(size for _, size in history))
    span = max(1.0, t1 - t0)
    points = " ".join(
        f"{pad + (t - t0) / span * (width - 2 * pad):.1f},{height - pad - size / top * (height - 2 * pad):.1f}"
        for t, size in history
    )
    return (
        f'<svg role="img" aria-label="log size over time" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" xmlns="http://www.w3.org/2000/svg">'
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="#999"/>'
        f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="#999"/>'
        f'<polyline points="{points}" fill="none" stroke="{LINE}" stroke-width="2"/>'
        f'<text x="{pad}" y="{pad - 8}" font-size="11">{top:,}</text>'
        f'<text x="{pad}" y="{height - 12}" font-size="11">{html.escape(day(t0))}</text>'
        f'<text x="{width - pad}" y="{height - 12}" font-size="11" text-anchor="end">{html.escape(day(t1))}</text>'
        "</svg>"
    )


MAX_DAYS = 92  # the newest days a chart shows: a quarter, readable at 640 px


def days_chart(label: str, rows: Sequence[tuple[str, int, int]]) -> str:
    """One issuer key over time: per calendar day, issued above the axis (blue) and revoked below it (red)."""
    if not rows:
        return ""
    counts = {d: (i, r) for d, i, r in rows}
    last = datetime.date.fromisoformat(rows[-1][0])
    first = max(datetime.date.fromisoformat(rows[0][0]), last - datetime.timedelta(days=MAX_DAYS - 1))
    days = [first + datetime.timedelta(days=n) for n in range((last - first).days + 1)]
    width, height, pad = 640, 150, 30
    axis = pad + (height - 2 * pad) * 2 / 3
    top = max(1, max(max(i, r) for i, r in counts.values()))
    step = (width - 2 * pad) / len(days)
    bar = min(24.0, max(1.0, step - 1))  # a single day is a bar, not a wall
    parts = [f'<line x1="{pad}" y1="{axis:.1f}" x2="{width - pad}" y2="{axis:.1f}" stroke="#999"/>']
    for n, d in enumerate(days):
        issued, revoked = counts.get(d.isoformat(), (0, 0))
        x, up, down = pad + n * step, issued / top * (axis - pad), revoked / top * (height - pad - axis)
        title = f"{d.isoformat()}: {issued} issued, {revoked} revoked"
        parts.append(
            f'<rect x="{x:.1f}" y="{axis - up:.1f}" width="{bar:.1f}" height="{up:.1f}" '
            f'fill="{ISSUED}"><title>{title}</title></rect>'
            f'<rect x="{x:.1f}" y="{axis:.1f}" width="{bar:.1f}" height="{down:.1f}" '
            f'fill="{REVOKED}"><title>{title}</title></rect>'
        )
    parts.append(f'<text x="{pad}" y="{pad - 10}" font-size="12">{html.escape(label[:60])} · max {top:,}/day</text>')
    parts.append(f'<text x="{pad}" y="{height - 6}" font-size="11">{days[0].isoformat()}</text>')
    parts.append(
        f'<text x="{width - pad}" y="{height - 6}" font-size="11" text-anchor="end">{days[-1].isoformat()}</text>'
    )
    return (
        f'<svg role="img" aria-label="issued and revoked per day: {html.escape(label)}" class="days" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">'
        f"{''.join(parts)}</svg>"
    )


def key_timeline(issuers: Sequence[dict[str, Any]], now: float) -> str:
    """One bar per issuer key from its addition to its retirement (or to now): green in use, grey retired."""
    if not issuers:
        return ""
    width, label_width, row_height = 640, 220, 26
    start = min(k["added"]["time"] for k in issuers)
    span = max(1.0, now - start)
    scale = (width - label_width - 10) / span
    parts = []
    for i, key in enumerate(issuers):
        y = i * row_height + 4
        end = key["retired"]["time"] if key["retired"] else now
        x = label_width + (key["added"]["time"] - start) * scale
        color = ADDED if key["active"] else RETIRED
        parts.append(f'<text x="0" y="{y + 13}" font-size="12">{html.escape(key["name"][:34])}</text>')
        parts.append(
            f'<rect x="{x:.1f}" y="{y}" width="{max(2.0, (end - key["added"]["time"]) * scale):.1f}" '
            f'height="16" fill="{color}"><title>{html.escape(key["vkey"])}</title></rect>'
        )
    height = len(issuers) * row_height + 24
    parts.append(f'<text x="{label_width}" y="{height - 4}" font-size="11">{html.escape(day(start))}</text>')
    parts.append(f'<text x="{width}" y="{height - 4}" font-size="11" text-anchor="end">{html.escape(day(now))}</text>')
    return (
        f'<svg role="img" aria-label="issuer keys over time" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" xmlns="http://www.w3.org/2000/svg">{"".join(parts)}</svg>'
    )


def issuer_rows(issuers: Sequence[dict[str, Any]]) -> str:
    rows = []
    for key in issuers:
        state = both("in use", "កំពុងប្រើ") if key["active"] else both("retired", "ឈប់ប្រើ")
        retired = "" if key["active"] else f"{day(key['retired']['time'])} ({key['retired'].get('reason') or ''})"
        rows.append(
            f"<tr><td>{html.escape(key['label'] or key['name'])}<div class=mono>{html.escape(key['vkey'])}</div></td>"
            f"<td>{state}</td><td>{day(key['added']['time'])}</td><td>{html.escape(retired)}</td>"
            f"<td>{key['issued']:,}</td><td>{key['revoked']:,}</td></tr>"
        )
    head = "".join(
        f"<th>{both(en, km)}</th>"
        for en, km in (
            ("Issuer key", "កូនសោអ្នកចេញឯកសារ"),
            ("State", "ស្ថានភាព"),
            ("Added", "បានបន្ថែម"),
            ("Retired", "ឈប់ប្រើ"),
            ("Issued", "បានចេញ"),
            ("Revoked", "បានដកហូត"),
        )
    )
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def alert_items(alerts: Sequence[dict[str, Any]]) -> str:
    if not alerts:
        return f'<p class="ok">{both("No alerts.", "គ្មានការជូនដំណឹង។")}</p>'
    items = []
    for alert in alerts:
        evidence = json.dumps(alert.get("evidence", {}), indent=2, sort_keys=True, ensure_ascii=False)
        items.append(
            f'<div class="alert"><p><strong>{html.escape(alert["rule"])}</strong> ({html.escape(alert["category"])}),'
            f" {day(alert['time'])}</p><p>{html.escape(alert['summary'])}</p>"
            f"<details><summary>{both('Evidence (to re-check it)', 'ភស្តុតាង (ដើម្បីពិនិត្យឡើងវិញ)')}</summary>"
            f"<pre>{html.escape(evidence)}</pre></details></div>"
        )
    return "".join(items)


def per_day_charts(issuers: Sequence[dict[str, Any]], days: Mapping[str, Sequence[tuple[str, int, int]]]) -> str:
    charts = [days_chart(k["label"] or k["name"], days.get(k["vkey"], ())) for k in issuers]
    shown = "".join(c for c in charts if c)
    return shown or f"<p>{both('Nothing issued yet.', 'មិនទាន់មានឯកសារបានចេញទេ។')}</p>"


def log_section(page: LogPage, now: float) -> str:
    report = page.report
    origin = html.escape(report["origin"])
    verified = report.get("verified")
    if verified is None:
        checkpoint = f'<p class="bad">{both("No verified checkpoint yet.", "មិនទាន់មានចំណុចត្រួតពិនិត្យដែលបានផ្ទៀងផ្ទាត់។")}</p>'
    else:
        checkpoint = (
            f"<p>{both('Size', 'ទំហំ')} <strong>{verified['size']:,}</strong></p>"
            f"<details><summary>{both('The signed checkpoint', 'ចំណុចត្រួតពិនិត្យដែលបានចុះហត្ថលេខា')}</summary>"
            f"<pre>{html.escape(verified['checkpoint'])}</pre></details>"
        )
    issuers = report.get("issuers", [])
    bars = [(k["label"] or k["name"], k["issued"], k["revoked"]) for k in issuers]
    legend = (
        f'<p><span style="color:{ISSUED}">■</span> {both("issued", "បានចេញ")} '
        f'<span style="color:{REVOKED}">■</span> {both("revoked", "បានដកហូត")}</p>'
    )
    return (
        f"<section><h2>{origin}</h2>"
        f"<h3>{both('Last verified checkpoint', 'ចំណុចត្រួតពិនិត្យចុងក្រោយដែលបានផ្ទៀងផ្ទាត់')}</h3>{checkpoint}"
        f"<h3>{both('Size of the log over time', 'ទំហំបញ្ជីតាមពេលវេលា')}</h3>{growth_chart(page.history)}"
        f"<h3>{both('Documents issued and revoked, per issuer key', 'ឯកសារបានចេញ និងដកហូត តាមកូនសោ')}</h3>"
        f"{legend}{bar_chart(bars)}"
        f"<h3>{both('Issued and revoked per day, per issuer key', 'ឯកសារបានចេញ និងដកហូត តាមថ្ងៃ តាមកូនសោ')}</h3>"
        f"{legend}{per_day_charts(issuers, page.days)}"
        f"<h3>{both('Issuer keys: added and retired', 'កូនសោ៖ បន្ថែម និងឈប់ប្រើ')}</h3>{key_timeline(issuers, now)}"
        f"{issuer_rows(issuers)}"
        f"<h3>{both('Alerts', 'ការជូនដំណឹង')}</h3>{alert_items(page.alerts)}</section>"
    )


def render_html(pages: Sequence[LogPage], now: float) -> str:
    sections = "".join(log_section(page, now) for page in pages)
    title = "Transparency log monitor report"
    intro = both(
        f"What an independent monitor checked, as of {day(now)}. Every number below comes from entries it "
        "verified against the logs' signed checkpoints.",
        "អ្វីដែលអ្នកតាមដានឯករាជ្យបានពិនិត្យ។ លេខទាំងអស់ខាងក្រោមមកពីធាតុដែលវាបានផ្ទៀងផ្ទាត់ជាមួយចំណុចត្រួតពិនិត្យដែលបានចុះហត្ថលេខា។",
    )
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title><style>{STYLE}</style></head><body><main>"
        f"<h1>{both(title, 'របាយការណ៍អ្នកតាមដានបញ្ជីឯកសារ')}</h1><p>{intro}</p>{sections}</main></body></html>\n"
    )
