"""contrib/: the systemd units pass `systemd-analyze verify` (with their paths pointed at this checkout), and every
metric the Prometheus alert rules use is one a real `tlog-server` exports at /metrics."""

import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml
from log_harness import REPO, running_log

UNITS = sorted((REPO / "contrib" / "systemd").glob("*.service"))
RULES = REPO / "contrib" / "prometheus" / "tlog-alerts.yml"
PROMETHEUS_BUILTINS = {"up"}
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
