"""The faults of `make chaos`, their schedule, and what each does to the running stack.

One fault of each kind per run, spread evenly over the load (in this order unless CHAOS_SEED
shuffles them and moves each within its slot). Each runs in its own thread at its time, so a
long one (settlement frozen 8 s) overlaps the next, as real faults do.
"""

import os
import random
import signal
import threading
import time
from dataclasses import dataclass
from typing import Any

import psutil
import redis

from bench import chaos_hostile
from bench.stack import BenchStack, Servers, wait_healthy

# The fixed order: settlement is frozen while healthy (the hop must time out into unknown
# outcomes), later killed; the hostile burst comes last, when every server is back.
KINDS = (
    "kill_api_worker",
    "freeze_settlement",
    "restart_postgres",
    "kill_settlement",
    "wipe_redis",
    "kill_worker",
    "hostile_burst",
)
RESTART_AFTER_S = 3.0  # a supervisor's delay before it starts a killed process again
FREEZE_S = 8.0  # longer than SETTLEMENT_TIMEOUT_S: the hop times out into unknown outcomes
RECOVERY_TIMEOUT_S = 30.0  # for a killed process to be replaced


@dataclass(frozen=True)
class Fault:
    at_s: float  # after the load starts
    kind: str


def schedule(run_time_s: float, seed: int | None) -> list[Fault]:
    """One fault of each kind in its own slot of the run; `seed` shuffles and jitters them."""
    kinds = list(KINDS)
    slot = run_time_s / (len(kinds) + 1)
    if seed is None:
        return [Fault(round(slot * (i + 1), 1), kind) for i, kind in enumerate(kinds)]
    rng = random.Random(seed)  # noqa: S311 - a reproducible schedule, not a secret
    rng.shuffle(kinds)
    return [
        Fault(round(slot * (i + 1 + rng.uniform(-0.4, 0.4)), 1), kind)
        for i, kind in enumerate(kinds)
    ]


class Injector:
    """Does each fault to `stack` and `servers` and says what happened."""

    def __init__(self, stack: BenchStack, servers: Servers, hostile: chaos_hostile.Target) -> None:
        self.stack = stack
        self.servers = servers
        self.hostile = hostile

    def apply(self, kind: str) -> dict[str, Any]:
        action = getattr(self, kind)
        started = time.monotonic()
        try:
            detail = action()
        except Exception as exc:  # a fault that could not be done is a failed run, not a crash
            detail = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        return {"kind": kind, "took_s": round(time.monotonic() - started, 1)} | detail

    def kill_api_worker(self) -> dict[str, Any]:
        """SIGKILL one uvicorn worker; uvicorn's supervisor must start a replacement."""
        master = psutil.Process(self.stack.pids["api"])
        before = _uvicorn_workers(master)
        victim = before[0]
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + RECOVERY_TIMEOUT_S
        while time.monotonic() < deadline:
            now = _uvicorn_workers(master)
            if victim not in now and len(now) == len(before):
                return {
                    "ok": True,
                    "killed_pid": victim,
                    "replaced_by": sorted(set(now) - {victim}),
                }
            time.sleep(0.1)
        return {"ok": False, "killed_pid": victim, "error": "uvicorn did not replace the worker"}

    def kill_settlement(self) -> dict[str, Any]:
        self._kill_and_restart("settlement")
        started = time.monotonic()
        wait_healthy(self.stack.settlement_url, self.stack.processes["settlement"])
        return {"ok": True, "healthy_after_s": round(time.monotonic() - started, 1)}

    def kill_worker(self) -> dict[str, Any]:
        self._kill_and_restart("worker")
        return {"ok": True}

    def freeze_settlement(self) -> dict[str, Any]:
        pid = self.stack.pids["settlement"]
        os.kill(pid, signal.SIGSTOP)
        try:
            time.sleep(FREEZE_S)
        finally:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass  # killed meanwhile by another fault, and restarted
        return {"ok": True, "frozen_pid": pid, "frozen_s": FREEZE_S}

    def restart_postgres(self) -> dict[str, Any]:
        self.servers.postgres.restart()  # pg_ctl restart -m fast
        return {"ok": True}

    def wipe_redis(self) -> dict[str, Any]:
        """FLUSHALL (the arq queue, rate-limit windows, Locust's tokens), then a restart."""
        with redis.Redis.from_url(self.servers.redis_url) as client:
            client.flushall()
        self.servers.redis.stop()
        self.servers.redis.start()
        return {"ok": True}

    def hostile_burst(self) -> dict[str, Any]:
        # Hostile requests are for live servers: settlement may be restarting after a kill.
        wait_healthy(self.stack.settlement_url, None, timeout=RECOVERY_TIMEOUT_S)
        # Sent is done; whether each was refused as it must be is the report's own check.
        return {"ok": True} | chaos_hostile.burst(self.hostile)

    def _kill_and_restart(self, name: str) -> None:
        process = self.stack.processes[name]
        process.kill()
        process.wait()
        time.sleep(RESTART_AFTER_S)
        self.stack.restart(name)


def _uvicorn_workers(master: psutil.Process) -> list[int]:
    """The master's worker processes (multiprocessing spawns), not its resource tracker."""
    pids = []
    for child in master.children():
        try:
            if "spawn_main" in " ".join(child.cmdline()):
                pids.append(child.pid)
        except psutil.NoSuchProcess:
            pass
    return pids


class FaultRunner:
    """Runs `plan` against `injector` from __enter__ on; __exit__ waits for every fault."""

    def __init__(self, plan: list[Fault], injector: Injector) -> None:
        self.plan = plan
        self.injector = injector
        self.results: list[dict[str, Any]] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def __enter__(self) -> "FaultRunner":
        start = time.monotonic()
        for fault in self.plan:
            thread = threading.Thread(target=self._run, args=(fault, start), name=fault.kind)
            thread.start()
            self._threads.append(thread)
        return self

    def _run(self, fault: Fault, start: float) -> None:
        time.sleep(max(0.0, start + fault.at_s - time.monotonic()))
        result = {"at_s": fault.at_s} | self.injector.apply(fault.kind)
        with self._lock:
            self.results.append(result)

    def __exit__(self, *_exc: object) -> None:
        for thread in self._threads:
            thread.join()
        self.results.sort(key=lambda result: result["at_s"])
