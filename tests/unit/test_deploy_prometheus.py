"""deploy/prometheus/alerts.yml: valid for Prometheus, and about metrics the apps export."""

import re
import shutil
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
EXPECTED = {
    "CreditpoolWithdrawalStuck",
    "CreditpoolRateLimitUnavailable",
    "CreditpoolRequestLogDrops",
    "CreditpoolPoolLow",
}


def test_promtool_accepts_the_rules() -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: .ci/system-deps installs Debian's prometheus"
    result = subprocess.run(
        [promtool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(EXPECTED)} rules found" in result.stdout


def test_the_alerts_are_the_documented_ones_on_exported_metrics() -> None:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    assert {rule["alert"] for rule in rules} == EXPECTED
    sources = "\n".join(path.read_text() for path in (ROOT / "app").rglob("*.py"))
    for rule in rules:
        for metric in re.findall(r"creditpool_\w+", rule["expr"]):
            # prometheus-client adds _total to a counter's name.
            assert f'"{metric.removesuffix("_total")}"' in sources, (rule["alert"], metric)
    stuck = next(rule for rule in rules if rule["alert"] == "CreditpoolWithdrawalStuck")
    assert stuck["expr"].endswith("> 600")  # ten minutes
