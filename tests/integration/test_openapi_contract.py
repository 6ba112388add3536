"""The OpenAPI documents tell the truth: schemathesis with every check against the real apps.

Each app is served by uvicorn on 127.0.0.1 with its real database and Redis, and the
schemathesis CLI runs every phase (examples, coverage, fuzzing, stateful) with `--checks all`:
every status code, content type, header and body an answer carries must be documented, every
request the document allows must be accepted and every one it forbids refused. Admin routes
are called as an admin, the rest as an approved merchant. One run uses a fixed seed, so a
failure reproduces; a second, shorter one a random seed (printed on failure), so runs over time
explore more. The money audit must be clean afterwards.
"""

import asyncio
import os
import sys
from pathlib import Path

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from tests.support.api import admin_token, approved_merchant
from tests.support.money import assert_books_balance, top_up
from tests.support.servers import serve
from tests.support.stack import settlement_settings

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
PHASES = "examples,coverage,fuzzing,stateful"
# (seed, examples per operation): the fixed run, then a short random one.
RUNS = ((20261201, 15), (None, 5))

# Per-operation headers; the values come from the environment of the CLI process.
CORE_CONFIG = """
[[operations]]
include-path-regex = "^/api/v1/admin/"
headers = { Authorization = "Bearer ${CP_ADMIN_TOKEN}" }

[[operations]]
exclude-path-regex = "^/api/v1/admin/"
headers = { Authorization = "Bearer ${CP_MERCHANT_TOKEN}" }

# Where a schema-valid request may be refused with a documented 422 that no schema can
# foresee: an opaque cursor the API never gave (INVALID_CURSOR), an Idempotency-Key first used
# with another body (IDEMPOTENCY_KEY_REUSED), a payout the bank refused (SETTLEMENT_REFUSED).
[[operations]]
include-name-regex = '''^(GET /api/v1/(withdrawals|admin/merchants|admin/requests)\
|POST /api/v1/(withdrawals|admin/pool/topup))$'''
checks.positive_data_acceptance.expected-statuses = [
    "2xx", "3xx", "401", "403", "404", "409", "422", "429", "5xx"
]
"""
SETTLEMENT_CONFIG = """
headers = { X-Internal-Token = "${CP_INTERNAL_TOKEN}" }

# GET /api/settlement/withdraw/{withdrawal_id} also matches .../withdraw/batch (and answers
# its documented 422 for that id), so the batch path's Allow truthfully lists GET beside POST,
# which the OPTIONS probe would read as undocumented.
[[operations]]
include-path = "/api/settlement/withdraw/batch"
phases.coverage.unexpected-methods = ["put", "patch", "delete", "trace"]
"""


def _command(base_url: str, config: Path, seed: int | None, examples: int) -> list[str]:
    args = [str(SCHEMATHESIS), "--config-file", str(config), "--no-color", "run"]
    args += [f"{base_url}/openapi.json", "--checks", "all", "--phases", PHASES]
    args += ["--max-examples", str(examples), "--workers", "1", "--max-failures", "50"]
    args += ["--suppress-health-check", "all"]
    if seed is None:
        return [*args, "--generation-database", "none"]
    return [*args, "--seed", str(seed), "--generation-deterministic"]


async def _schemathesis(
    base_url: str, config: Path, run: tuple[int | None, int], env: dict[str, str]
) -> str | None:
    """Run the CLI once; returns its output when it found a failure."""
    # The apps run on this test's event loop, which stays free while the CLI runs. Beside the
    # config, not in the repository, the CLI keeps its cache of past failures (which a later
    # run would replay first).
    process = await asyncio.create_subprocess_exec(
        *_command(base_url, config, *run),
        cwd=config.parent,
        env=os.environ | env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    return None if process.returncode == 0 else output.decode(errors="replace")


async def test_the_core_api_does_what_its_openapi_document_says(
    settings: Settings,
    clean_db: None,
    redis: object,
    sessionmaker: async_sessionmaker[AsyncSession],
    tmp_path: Path,
) -> None:
    from app.main import create_app

    # Per-address login/registration limits would turn most of the run into 429s (which the
    # document lists, so they pass, but test nothing else).
    app: FastAPI = create_app(settings.model_copy(update={"AUTH_RL_MAX_REQUESTS": 0}))
    config = tmp_path / "schemathesis.toml"
    config.write_text(CORE_CONFIG)
    failures = []
    async with app.router.lifespan_context(app), serve(app) as base_url:
        for run in RUNS:
            # Fresh callers per run: the last run's admin calls may have suspended its merchant.
            async with httpx.AsyncClient(base_url=base_url) as api:
                admin = await admin_token(api, sessionmaker)
                await top_up(api, admin, "999999999999.99")
                _, merchant = await approved_merchant(api, admin, credit_limit="999999999999.99")
            env = {"CP_ADMIN_TOKEN": admin, "CP_MERCHANT_TOKEN": merchant}
            if output := await _schemathesis(base_url, config, run, env):
                failures.append(f"seed={run[0]}:\n{output}")
    assert failures == [], "\n".join(failures)
    await assert_books_balance(sessionmaker)


async def test_settlement_does_what_its_openapi_document_says(
    settings: Settings, clean_db: None, tmp_path: Path
) -> None:
    from app.settlement.main import create_app

    app = create_app(settlement_settings(settings))
    async with app.router.lifespan_context(app), serve(app) as base_url:
        config = tmp_path / "schemathesis.toml"
        config.write_text(SETTLEMENT_CONFIG)
        # The real token, as the core sends it: schemathesis itself tries none and a wrong
        # one (ignored_auth). Payouts for withdrawals the core never made are settlement's
        # own rows, so the core's audit has nothing to say here (test_fuzz_api covers it).
        env = {"CP_INTERNAL_TOKEN": settings.INTERNAL_TOKEN}
        failures = [
            f"seed={run[0]}:\n{output}"
            for run in RUNS
            if (output := await _schemathesis(base_url, config, run, env))
        ]
    assert failures == [], "\n".join(failures)
