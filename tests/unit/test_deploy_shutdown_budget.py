"""Shutdown fits its budget: every step's bound, added up, stays inside what the
orchestrators allow before SIGKILL, with margin. A step that grows past it fails here."""

import re
from pathlib import Path

import yaml

from app.db import POOL_CLOSE_TIMEOUT_S
from app.requestlog.buffer import DRAIN_TIMEOUT_S
from tests.unit.test_deploy_k8s import container, pod

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
# Room for what no setting bounds: the interpreter's exit, the kubelet's own delays.
MARGIN_S = 5


def graceful_s() -> int:
    """uvicorn's --timeout-graceful-shutdown in the image's entrypoint."""
    match = re.search(r"^GRACEFUL_S=(\d+)$", (DEPLOY / "entrypoint.sh").read_text(), re.M)
    assert match
    return int(match.group(1))


def job_completion_wait_s() -> int:
    source = (DEPLOY.parent / "workers" / "settings.py").read_text()
    match = re.search(r"job_completion_wait = (\d+)", source)
    assert match
    return int(match.group(1))


def app_shutdown_s() -> float:
    """After uvicorn's graceful wait: the request log's drain, then the pools close."""
    return graceful_s() + DRAIN_TIMEOUT_S + POOL_CLOSE_TIMEOUT_S


def test_api_and_settlement_pods_fit_prestop_and_the_whole_shutdown() -> None:
    for name in ("creditpool-api", "creditpool-settlement"):
        # The grace period counts from the start of preStop.
        pre_stop = int(container("Deployment", name)["lifecycle"]["preStop"]["exec"]["command"][-1])
        budget = pod("Deployment", name)["terminationGracePeriodSeconds"]
        assert pre_stop + app_shutdown_s() + MARGIN_S <= budget, name


def test_worker_pod_fits_its_running_jobs_and_pool_close() -> None:
    budget = pod("Deployment", "creditpool-worker")["terminationGracePeriodSeconds"]
    assert job_completion_wait_s() + POOL_CLOSE_TIMEOUT_S + MARGIN_S <= budget


def test_compose_stop_grace_period_fits_every_app() -> None:
    services = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())["services"]
    for name in ("api", "settlement", "worker"):
        period = int(str(services[name]["stop_grace_period"]).rstrip("s"))
        longest = max(app_shutdown_s(), job_completion_wait_s() + POOL_CLOSE_TIMEOUT_S)
        assert longest + MARGIN_S <= period, name
