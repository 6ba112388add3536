"""PostgreSQL's ceiling for transaction 1 (the reservation), measured with pgbench.

The script sends what app/withdrawals/service.py reserve() sends in sync mode: one call of
creditpool_reserve() (alembic/versions/0003) as a statement of its own (autocommit), on
seeded merchants picked at random. Prepared statements (-M prepared), as asyncpg uses. What
it leaves out is everything Python does: the HTTP request, auth, the settlement hop and
transaction 2. So api completed/s divided by this tps says how much of the database's
capacity the whole product turns into withdrawals.
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
SELECT * FROM creditpool_reserve(:mid, md5(random()::text), 'pgbench', :amount, 'PROCESSING',
                                 gen_random_uuid(), gen_random_uuid(), NULL,
                                 '{"code": "INSUFFICIENT_MERCHANT_CREDIT"}',
                                 '{"code": "INSUFFICIENT_POOL"}');
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
