"""Yardstick (a): bench/pgbench.py's fixed script runs on its own schema and books correctly."""

from decimal import Decimal

import asyncpg
from sqlalchemy import make_url

from bench import pgbench
from tests.support.stack import ServerStack


async def test_the_fixed_script_reserves_on_its_own_tables_and_every_transaction_balances(
    stack: ServerStack,
) -> None:
    port = stack.postgres.port
    pgbench.setup(port=port)
    result = pgbench.run(port=port, duration_s=1, clients=4)
    assert result.transactions > 0 and result.failed == 0

    url = make_url(stack.owner_url).set(drivername="postgresql", database=pgbench.DATABASE)
    conn = await asyncpg.connect(url.render_as_string(hide_password=False))
    try:
        n = result.transactions
        spent = Decimal(pgbench.AMOUNT) * n
        # One key, one withdrawal and two ledger entries per transaction, as one unit.
        assert await conn.fetchval("SELECT count(*) FROM keys") == n
        assert await conn.fetchval("SELECT count(*) FROM withdrawals") == n
        assert await conn.fetchval("SELECT count(*) FROM ledger") == 2 * n
        unbalanced = (
            "SELECT count(*) FROM (SELECT tx_id FROM ledger GROUP BY tx_id"
            " HAVING sum(amount) <> 0) AS t"
        )
        assert await conn.fetchval(unbalanced) == 0
        assert await conn.fetchval("SELECT sum(utilized) FROM lines") == spent
        pool = await conn.fetchval("SELECT available FROM pool")
        assert pool == Decimal("1000000000000.00") - spent
    finally:
        await conn.close()
