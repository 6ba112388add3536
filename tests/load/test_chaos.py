"""`make chaos`'s short version: every fault once per mode under load, and nothing lost.

It runs the harness as `make chaos` does (its own durable PostgreSQL, Redis, the api with 2
uvicorn workers, settlement, the arq worker, Locust), only smaller: CHAOS_SHORT=1.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

from bench.chaos_faults import KINDS


def _chaos(results: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bench.chaos"],
        env=os.environ | {"CHAOS_RESULTS_DIR": str(results)} | env,
        capture_output=True,
        text=True,
        timeout=480,
        check=False,
    )


def test_every_fault_under_load_loses_nothing_and_contradicts_no_answer(tmp_path: Path) -> None:
    done = _chaos(tmp_path, ENVIRONMENT="test", CHAOS_SHORT="1")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    (report,) = tmp_path.glob("chaos-*.json")
    result = json.loads(report.read_text())
    assert result["ok"] is True
    assert [run["mode"] for run in result["runs"]] == ["sync", "async"]
    for run in result["runs"]:
        assert run["checks"] == dict.fromkeys(run["checks"], True), run["mode"]
        assert [f["kind"] for f in run["faults"]] == list(KINDS)
        # The supervisor replaced the killed api worker; the burst was answered and refused.
        (killed,) = [f for f in run["faults"] if f["kind"] == "kill_api_worker"]
        assert killed["replaced_by"] and killed["killed_pid"] not in killed["replaced_by"]
        assert run["hostile"]["sent"] > 0 and run["hostile"]["unanswered"] == 0
        assert run["accepted"] == run["finished"] > 0 and run["still_open"] == 0
    assert "| sync |" in done.stdout and "| async |" in done.stdout


def test_it_refuses_to_inject_faults_outside_dev_or_test(tmp_path: Path) -> None:
    done = _chaos(tmp_path, ENVIRONMENT="production")
    assert done.returncode == 2
    assert "refusing to run fault injection with ENVIRONMENT=production" in done.stderr
    assert list(tmp_path.iterdir()) == []
