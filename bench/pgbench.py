"""Yardstick (a): PostgreSQL's rate for one withdrawal's minimum SQL, measured with pgbench.

A fixed script, never changed with the product (ARCHITECTURE section 9): transaction 1 of one
withdrawal as plain statements in one transaction (key INSERT, the line's SELECT ... FOR
UPDATE and UPDATE, the withdrawal INSERT, two ledger INSERTs, the pool UPDATE last), on tables
of its own in a database of its own (`yardstick`, created by `setup`), with synchronous_commit
on. The product's completed/s divided by this tps is a figure that means the same thing on a
fast day and a slow one.
"""

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from app.dev.embedded.postgres import BIN_DIR

DATABASE = "yardstick"
CLIENTS = 16
THREADS = 2
AMOUNT = "0.01"
MERCHANTS = 1000  # the rows SCHEMA seeds in `lines`

SCHEMA = """\
CREATE TABLE pool (
    id int PRIMARY KEY,
    available numeric(18, 2) NOT NULL CHECK (available >= 0)
);
CREATE TABLE lines (
    merchant_id bigint PRIMARY KEY,
    credit_limit numeric(18, 2) NOT NULL,
    utilized numeric(18, 2) NOT NULL,
    CHECK (utilized >= 0 AND utilized <= credit_limit)
);
CREATE TABLE keys (
    merchant_id bigint NOT NULL,
    key text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, key)
);
CREATE TABLE withdrawals (
    id uuid PRIMARY KEY,
    merchant_id bigint NOT NULL,
    idempotency_key text NOT NULL,
    amount numeric(18, 2) NOT NULL CHECK (amount > 0),
    status text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (merchant_id, idempotency_key)
);
CREATE TABLE ledger (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tx_id uuid NOT NULL,
    withdrawal_id uuid NOT NULL,
    account text NOT NULL,
    amount numeric(18, 2) NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO pool VALUES (1, 1000000000000.00);
INSERT INTO lines SELECT g, 1000000000.00, 0 FROM generate_series(1, 1000) AS g;
"""

# :mid and :amount are pgbench variables; \gset keeps a statement's answer for the next ones.
SCRIPT = """\
\\set mid random(1, :merchants)
BEGIN;
INSERT INTO keys (merchant_id, key) VALUES (:mid, md5(random()::text)) RETURNING key \\gset
SELECT utilized, credit_limit FROM lines WHERE merchant_id = :mid FOR UPDATE;
UPDATE lines SET utilized = utilized + :amount WHERE merchant_id = :mid;
INSERT INTO withdrawals (id, merchant_id, idempotency_key, amount, status)
    VALUES (gen_random_uuid(), :mid, :key, :amount, 'PROCESSING')
    RETURNING id AS wid, gen_random_uuid() AS tx \\gset
INSERT INTO ledger (tx_id, withdrawal_id, account, amount)
    VALUES (:tx, :wid, 'POOL', -(:amount::numeric));
INSERT INTO ledger (tx_id, withdrawal_id, account, amount)
    VALUES (:tx, :wid, 'IN_FLIGHT', :amount);
UPDATE pool SET available = available - :amount WHERE id = 1 AND available >= :amount;
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


def _binary(name: str) -> str:
    return str(BIN_DIR / name) if (BIN_DIR / name).exists() else name


def _psql(port: int, database: str, sql: str) -> None:
    subprocess.run(  # noqa: S603 - a fixed binary, our own arguments
        [
            _binary("psql"),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-U",
            "postgres",
            "-d",
            database,
            "-v",
            "ON_ERROR_STOP=1",
            "-q",
            "-c",
            sql,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


def setup(*, port: int) -> None:
    """A fresh `yardstick` database with the script's own tables and seeded rows."""
    _psql(port, "postgres", f"DROP DATABASE IF EXISTS {DATABASE}")
    _psql(port, "postgres", f"CREATE DATABASE {DATABASE}")
    _psql(port, DATABASE, SCHEMA)


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


def run(*, port: int, duration_s: int = 20, clients: int = CLIENTS) -> PgbenchResult:
    """pgbench over TCP against the `yardstick` database (`setup` first)."""
    with tempfile.NamedTemporaryFile("w", suffix=".sql", prefix="yardstick-") as script:
        script.write(SCRIPT)
        script.flush()
        result = subprocess.run(  # noqa: S603 - a fixed binary, our own arguments
            [
                _binary("pgbench"),
                *("-h", "127.0.0.1", "-p", str(port), "-U", "postgres"),
                "-n",  # no vacuum of pgbench's own tables: we have none
                *("-M", "prepared", "-c", str(clients), "-j", str(THREADS)),
                *("-T", str(duration_s)),
                *("-D", f"merchants={MERCHANTS}", "-D", f"amount={AMOUNT}"),
                *("-f", str(Path(script.name)), DATABASE),
            ],
            # Durable commits whatever the server's default: each COMMIT waits for its flush.
            env=os.environ | {"PGOPTIONS": "-c synchronous_commit=on"},
            capture_output=True,
            text=True,
            timeout=duration_s + 60,
            check=False,
        )
    if result.returncode != 0:
        raise RuntimeError(f"pgbench failed ({result.returncode}): {result.stderr[-2000:]}")
    return parse_output(result.stdout, clients=clients, duration_s=duration_s)
