"""`python -m app audit` as an operator runs it: a report on stdout and a telling exit code."""

import asyncio
import os
import sys
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.support.factories import seed_consistent_book
from tests.support.stack import ServerStack

pytestmark = pytest.mark.usefixtures("clean_db")

ROOT = Path(__file__).resolve().parents[2]


async def run_cli(stack: ServerStack) -> tuple[int, str]:
    env = os.environ | {
        "ENVIRONMENT": "test",
        "DATABASE_URL": stack.database_url,
        "REDIS_URL": stack.redis_url,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app",
        "audit",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, output.decode()


async def test_audit_command_exits_0_when_clean_and_1_naming_the_broken_check(
    stack: ServerStack, sessionmaker: async_sessionmaker[AsyncSession]
):
    async with sessionmaker() as session, session.begin():
        await seed_consistent_book(session)

    clean_code, clean_output = await run_cli(stack)

    assert (clean_code, clean_output.splitlines()[0]) == (0, "Creditpool audit: PASS"), clean_output
    assert "pool available 940.00" in clean_output

    async with sessionmaker() as session, session.begin():
        await session.execute(
            text(
                "INSERT INTO ledger_entries (tx_id, kind, account, amount)"
                " VALUES (gen_random_uuid(), 'TOPUP', 'FUNDING', -2.00)"
            )
        )

    broken_code, broken_output = await run_cli(stack)

    assert broken_code == 1, broken_output
    assert "FAIL  ledger_transactions_balance" in broken_output
    assert "entries [TOPUP FUNDING -2.00] sum to -2.00" in broken_output
