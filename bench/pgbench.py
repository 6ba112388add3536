"""PostgreSQL's ceiling for transaction 1 (the reservation), measured with pgbench.

The script sends the statements of app/withdrawals/service.py reserve() in sync mode, as
app/withdrawals/repository.py, app/idempotency/repository.py and app/ledger/repository.py
write them, one round trip each, on the seeded merchants picked at random. Prepared
statements (-M prepared), as asyncpg uses. What it leaves out is everything Python does: the
HTTP request, auth, the settlement hop and transaction 2. So api completed/s divided by this
tps says how much of the database's capacity the whole product turns into withdrawals.
"""

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from app.embedded.postgres import BIN_DIR

CLIENTS = 16
THREADS = 2
AMOUNT = "1.00"

RESERVE_SCRIPT = """\
\\set mid random(:lo, :hi)
BEGIN;
INSERT INTO idempotency_keys (merchant_id, key, request_hash)
  VALUES (:mid, md5(random()::text), 'pgbench')
  ON CONFLICT DO NOTHING RETURNING idempotency_keys.key \\gset
SELECT merchants.status, merchants.bank_account, wallet_accounts.id AS account_id,
       merchant_credits.credit_limit, merchant_credits.utilized_amount
  FROM merchant_credits
  JOIN merchants ON merchants.id = merchant_credits.merchant_id
  JOIN wallet_accounts ON wallet_accounts.merchant_id = merchant_credits.merchant_id
  WHERE merchant_credits.merchant_id = :mid FOR UPDATE OF merchant_credits \\gset
INSERT INTO withdrawals (id, merchant_id, account_id, amount, bank_account, status,
                         idempotency_key, reserve_tx_id)
  VALUES (gen_random_uuid(), :mid, :account_id, :amount, :bank_account, 'PROCESSING',
          :key, gen_random_uuid())
  ON CONFLICT DO NOTHING
  RETURNING withdrawals.id AS withdrawal_id, withdrawals.merchant_id, withdrawals.account_id,
            withdrawals.amount, withdrawals.bank_account, withdrawals.status AS w_status,
            withdrawals.idempotency_key, withdrawals.bank_reference, withdrawals.failure_code,
            withdrawals.reserve_tx_id, withdrawals.final_tx_id, withdrawals.attempts,
            withdrawals.created_at, withdrawals.updated_at \\gset
UPDATE merchant_credits SET utilized_amount = merchant_credits.utilized_amount + :amount
  WHERE merchant_credits.merchant_id = :mid;
INSERT INTO ledger_entries (tx_id, kind, account, amount, withdrawal_id)
  VALUES (:reserve_tx_id, 'RESERVE', 'POOL', :negative_amount, :withdrawal_id),
         (:reserve_tx_id, 'RESERVE', 'IN_FLIGHT', :amount, :withdrawal_id);
UPDATE credit_pool SET available = credit_pool.available - :amount, updated_at = now()
  WHERE credit_pool.id = 1 AND credit_pool.available >= :amount
  RETURNING credit_pool.available;
COMMIT;
"""


@dataclass(frozen=True)
class PgbenchResult:
    tps: float
    latency_ms: float
    transactions: int
    failed: int
    clients: int
    duration_s: int


def available() -> bool:
    return (BIN_DIR / "pgbench").exists() or shutil.which("pgbench") is not None


def parse_output(text: str, *, clients: int, duration_s: int) -> PgbenchResult:
    """The summary pgbench prints at the end of a run."""

    def find(pattern: str) -> str:
        match = re.search(pattern, text, re.MULTILINE)
        if match is None:
            raise ValueError(f"pgbench output lacks {pattern!r}:\n{text[-2000:]}")
        return match.group(1)

    failed = re.search(r"^number of failed transactions: (\d+)", text, re.MULTILINE)
    return PgbenchResult(
        tps=float(find(r"^tps = ([\d.]+)")),
        latency_ms=float(find(r"^latency average = ([\d.]+) ms")),
        transactions=int(find(r"^number of transactions actually processed: (\d+)")),
        failed=int(failed.group(1)) if failed else 0,
        clients=clients,
        duration_s=duration_s,
    )


def run_reserve(
    *, port: int, database: str, merchant_ids: tuple[int, int], duration_s: int = 20
) -> PgbenchResult:
    """pgbench over TCP (it may run as root; only the server refuses to)."""
    executable = BIN_DIR / "pgbench" if (BIN_DIR / "pgbench").exists() else "pgbench"
    with tempfile.NamedTemporaryFile("w", suffix=".sql", prefix="reserve-") as script:
        script.write(RESERVE_SCRIPT)
        script.flush()
        result = subprocess.run(  # noqa: S603 - a fixed binary, our own arguments
            [
                str(executable),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-U",
                "postgres",
                "-n",  # no vacuum of pgbench's own tables: we have none
                "-M",
                "prepared",
                "-c",
                str(CLIENTS),
                "-j",
                str(THREADS),
                "-T",
                str(duration_s),
                "-D",
                f"lo={merchant_ids[0]}",
                "-D",
                f"hi={merchant_ids[1]}",
                "-D",
                f"amount={AMOUNT}",
                "-D",
                f"negative_amount=-{AMOUNT}",
                "-f",
                str(Path(script.name)),
                database,
            ],
            capture_output=True,
            text=True,
            timeout=duration_s + 60,
            check=False,
        )
    if result.returncode != 0:
        raise RuntimeError(f"pgbench failed ({result.returncode}): {result.stderr[-2000:]}")
    return parse_output(result.stdout, clients=CLIENTS, duration_s=duration_s)
