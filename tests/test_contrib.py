"""contrib/: the systemd units pass `systemd-analyze verify` (with their paths pointed at this checkout), every
metric the Prometheus alert rules use is one a real `tlog-server` exports at /metrics, and the status index's alerts
fire (and stay quiet) as their rules say, evaluated by Prometheus's own `promtool test rules`."""

import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import yaml
from log_harness import REPO, running_log

UNITS = sorted((REPO / "contrib" / "systemd").glob("*.service"))
RULES = REPO / "contrib" / "prometheus" / "tlog-alerts.yml"
PROMETHEUS_BUILTINS = {"up"}
PROMTOOL = Path(sys.executable).parent / "promtool"  # from Debian's prometheus package (dev.py fetches it)
STATUS_INDEX_ON = "[status_index]\nindex_interval_ms = 50\n"  # its lag gauge exported too


def test_systemd_units_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze is not None, "systemd-analyze is missing (Debian package systemd)"
    assert len(UNITS) == 3
    venv = Path(sys.executable).parent.parent
    for unit in UNITS:
        # The units name /opt/doc-tlog; point them at this checkout so the programs exist for the check.
        text = unit.read_text().replace("/opt/doc-tlog/.venv", str(venv)).replace("/opt/doc-tlog", str(REPO))
        copy = tmp_path / unit.name
        copy.write_text(text)
        result = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True, timeout=60)
        problems = [
            line
            for line in (result.stdout + result.stderr).splitlines()
            if (copy.name in line and "Failed to" not in line) or "Unknown" in line or "not executable" in line
        ]
        assert result.returncode == 0 and problems == [], f"{unit.name}: {result.stdout}{result.stderr}"


def rule_metrics() -> set[str]:
    document = yaml.safe_load(RULES.read_text())
    names: set[str] = set()
    for group in document["groups"]:
        for rule in group["rules"]:
            assert {"alert", "expr", "annotations"} <= set(rule), rule
            assert rule["labels"]["severity"] in ("page", "warn"), rule
            names |= set(re.findall(r"\b(tlog_[a-z_]+|up)\b", rule["expr"]))
    return names - PROMETHEUS_BUILTINS


def exported_metrics(url: str, timeout: float = 20.0) -> str:
    """/metrics once the status index's first cycle has set its lag (the gauge is absent before it)."""
    deadline = time.monotonic() + timeout
    while True:
        text = httpx.get(url + "/metrics").text
        if "# TYPE tlog_status_index_lag_entries " in text or time.monotonic() > deadline:
            return text
        time.sleep(0.1)


def families(metrics_text: str) -> set[str]:
    return {line.split()[2] for line in metrics_text.splitlines() if line.startswith("# TYPE ")}


def test_alert_rules_name_only_metrics_the_log_exports(tmp_path: Path) -> None:
    used = rule_metrics()
    assert len(used) >= 9
    with running_log(tmp_path, config_text=STATUS_INDEX_ON) as server:
        exported = families(exported_metrics(server.url))
    suffixes = ("_bucket", "_sum", "_count")
    missing = {m for m in used if m not in exported and not any(m.removesuffix(s) in exported for s in suffixes)}
    assert missing == set(), f"alert rules use metrics the log does not export: {missing}"


SAWTOOTH = " ".join(["0 150000 30000 160000 20000"] * 8)  # a heavy load: the lag rises and falls by about a step
LAG_SCENARIOS = [  # (the lag gauge, one value a minute; when evaluated; the alert; whether it fires then)
    ("0x5 250000x20", "10m", "TlogStatusIndexBehind", False),  # far behind for 5 minutes only
    ("0x5 250000x20", "22m", "TlogStatusIndexBehind", True),  # far behind for 16 minutes
    (SAWTOOTH, "35m", "TlogStatusIndexBehind", False),
    ("5000x40", "31m", "TlogStatusIndexStuck", True),  # frozen with entries waiting: the updates stopped
    ("1x40", "31m", "TlogStatusIndexStuck", False),  # caught up and idle: only the newest index-root uncovered
    (SAWTOOTH, "35m", "TlogStatusIndexStuck", False),
]


FRESH, STOPS = "0+60x60", "0+60x10 600x50"  # a witness's last cosignature time: kept up, or stopped at minute 10
COSIGNED = "tlog_witness_last_cosigned_timestamp_seconds"
COSIGN_SCENARIOS = [  # ({series: values}; when; fires): the log's published policy needs 2 of 3
    ({"a": FRESH, "b": FRESH, "c": FRESH}, "45m", False),
    ({"a": FRESH, "b": STOPS, "c": STOPS}, "35m", False),  # stopped 25 minutes ago: not yet
    ({"a": FRESH, "b": STOPS, "c": STOPS}, "45m", True),  # 35 minutes: one of three left
    ({"a": FRESH, "b": FRESH, "c": STOPS}, "45m", False),  # two of three: the quorum
    ({"a": STOPS, "b": STOPS, "c": STOPS}, "45m", True),  # none at all
    # a takeover: the former sequencing process still exports its old times, the new one fresh ones
    ({f"{w}@old": STOPS for w in "abc"} | {f"{w}@new": FRESH for w in "abc"}, "45m", False),
]


def alert_test(rule: dict[str, Any], series: dict[str, str], when: str, fires: bool, labels: dict[str, str]) -> Any:
    """One `promtool test rules` case: `series` (a series' selector text -> its values, a minute apart)."""
    expected = [{"exp_labels": {**rule["labels"], **labels}, "exp_annotations": rule["annotations"]}]
    return {
        "interval": "1m",
        "input_series": [{"series": name, "values": values} for name, values in series.items()],
        "alert_rule_test": [{"eval_time": when, "alertname": rule["alert"], "exp_alerts": expected if fires else []}],
    }


def cosigned_series(spec: str) -> str:
    witness, _, process = spec.partition("@")
    return f'{COSIGNED}{{job="tlog",witness="{witness}",instance="{process or "one"}"}}'


def lag_alert_tests(rules: Path) -> dict[str, Any]:
    """A `promtool test rules` file for LAG_SCENARIOS and COSIGN_SCENARIOS against `rules` (its annotations are what
    each alert must carry)."""
    by_name = {rule["alert"]: rule for group in yaml.safe_load(rules.read_text())["groups"] for rule in group["rules"]}
    tests = [
        alert_test(by_name[name], {'tlog_status_index_lag_entries{job="tlog"}': values}, when, fires, {"job": "tlog"})
        for values, when, name, fires in LAG_SCENARIOS
    ]
    for series, when, fires in COSIGN_SCENARIOS:
        named = {cosigned_series(spec): values for spec, values in series.items()}
        tests.append(alert_test(by_name["TlogCosignaturesGrowingOld"], named, when, fires, {}))
    return {"rule_files": [rules.name], "evaluation_interval": "1m", "tests": tests}


def promtool_test(tmp: Path, rules_text: str) -> subprocess.CompletedProcess[str]:
    rules = tmp / RULES.name
    rules.write_text(rules_text)
    tests = tmp / "lag-alerts.test.yml"
    tests.write_text(yaml.safe_dump(lag_alert_tests(rules), allow_unicode=True))
    return subprocess.run([str(PROMTOOL), "test", "rules", str(tests)], capture_output=True, text=True, timeout=60)


def test_the_status_index_alerts_fire_as_their_rules_say(tmp_path: Path) -> None:
    assert PROMTOOL.exists(), f"{PROMTOOL} is missing: python3 dev.py test fetches it"
    checked = subprocess.run([str(PROMTOOL), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    result = promtool_test(tmp_path, RULES.read_text())
    assert result.returncode == 0, result.stdout + result.stderr
    # The scenarios can tell: with the threshold moved past the far-behind scenario's lag, one of them fails.
    moved = RULES.read_text().replace("[15m]) > 200000", "[15m]) > 300000")
    assert moved != RULES.read_text()
    failed = promtool_test(tmp_path, moved)
    assert failed.returncode != 0 and "TlogStatusIndexBehind" in failed.stdout + failed.stderr, failed.stdout
    # and the witnesses' rule: without `max by (witness)`, the takeover's old times count as witnesses gone
    naive = RULES.read_text().replace("max by (witness) (tlog_witness_last_cosigned_timestamp_seconds)", COSIGNED)
    assert naive != RULES.read_text()
    failed = promtool_test(tmp_path, naive)
    assert failed.returncode != 0 and "TlogCosignaturesGrowingOld" in failed.stdout + failed.stderr, failed.stdout
