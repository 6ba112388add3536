"""The image's entrypoint (deploy/entrypoint.sh) runs the one-shot roles against real servers."""

import os
import subprocess
import sys
from pathlib import Path

from tests.support.stack import ServerStack

ROOT = Path(__file__).resolve().parents[2]


def run(stack: ServerStack, *args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "ENVIRONMENT": "test",
        "DATABASE_URL": stack.database_url,
        "REDIS_URL": stack.redis_url,
    }
    return subprocess.run(
        ["/bin/sh", str(ROOT / "deploy" / "entrypoint.sh"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_migrate_is_idempotent_and_other_commands_pass_through(stack: ServerStack) -> None:
    # The session already migrated: a second upgrade (a re-run Job) changes nothing.
    migrated = run(stack, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    audited = run(stack, "python", "-m", "app", "audit")
    assert audited.returncode == 0, audited.stdout + audited.stderr
    assert "PASS" in audited.stdout
