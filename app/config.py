"""One settings object for every process, read from the environment and `.env`."""

import math
import os
from decimal import Decimal
from functools import lru_cache
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.database_roles import API_ROLE, SETTLEMENT_ROLE

# Refused outside dev/test; 32+ bytes so even dev tokens meet HS256's key-length advice.
DEFAULT_SECRET_KEY = "dev-secret-key-change-me-0000000000"
DEFAULT_INTERNAL_TOKEN = "dev-internal-token-change-me-000000"
# PgBouncer's usual port, the documented example (DB_PGBOUNCER says whether one is in front).
PGBOUNCER_PORT = 6432
# Next to the private servers' data (EMBEDDED_DATA_DIR, read from the environment only).
DEV_ENV_FILE = os.path.join(os.environ.get("EMBEDDED_DATA_DIR", ".data"), "dev.env")
# DEV_ENV_FILE (dev mode, a running `make run`'s private servers) is read only when this is
# "1": set by `make run` on the processes it starts and by `python -m app` commands that find
# the file. A server started any other way in a checkout where `make run` once ran (or
# crashed, leaving the file) is never silently put in dev mode.
DEV_ENV_FLAG = "CREDITPOOL_DEV_ENV"


def env_files() -> tuple[str, ...]:
    return (".env", DEV_ENV_FILE) if os.environ.get(DEV_ENV_FLAG) == "1" else (".env",)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    # "dev" is what `make run` uses; "test" is the test suite; anything else is production.
    ENVIRONMENT: Literal["dev", "test", "production"] = "production"

    # This process's runtime role (app/database_roles.py): creditpool_api for the api, the
    # worker and CLI commands, creditpool_settlement for settlement.
    DATABASE_URL: str | None = None
    # The owner, for `python -m app migrate` only; unset: DATABASE_URL (a single-role setup).
    MIGRATION_DATABASE_URL: str | None = None
    # Read by `python -m app migrate` only: it gives each runtime role LOGIN with its password
    # (unset: the role is left as it is; migration 0009 creates the roles NOLOGIN).
    API_DB_PASSWORD: str | None = None
    SETTLEMENT_DB_PASSWORD: str | None = None
    POSTGRES_DB: str = "creditpool"
    POSTGRES_USER: str = "postgres"
    POSTGRES_PASSWORD: str = ""
    DB_HOST: str | None = None
    DB_PORT: int = 5432
    # Each process has one pool, its engine's (app/db.py); batching needs few connections.
    DB_POOL_SIZE: int = 10
    # Unset (the default): the runtime roles' own settings apply (app/database_roles.py
    # ROLE_TIMEOUTS: 5 s, 3 s, 30 s, migration 0009), which hold behind any pooler. Set: sent at
    # connect on direct connections only (PgBouncer refuses them), overriding the role's.
    DB_STATEMENT_TIMEOUT_MS: int | None = Field(default=None, ge=0)
    DB_LOCK_TIMEOUT_MS: int | None = Field(default=None, ge=0)
    DB_IDLE_IN_TRANSACTION_TIMEOUT_MS: int | None = Field(default=None, ge=0)
    # The most withdrawals one money transaction carries (app/batching.py): the pool row's
    # hold and a batch's statements grow with it, the per-withdrawal fixed cost shrinks.
    BATCH_MAX: int = Field(default=128, ge=1, le=10_000)
    # PgBouncer (or any transaction-mode pooler) in front of PostgreSQL (README "Operators").
    # Said explicitly: a pooler may listen on any port, and PostgreSQL on 6432.
    DB_PGBOUNCER: bool = False
    # asyncpg's client-side bound on one statement, a little above the server's
    # statement_timeout: it ends a wait on a server or pooler that no longer answers.
    DB_COMMAND_TIMEOUT_S: float = Field(default=10.0, gt=0)

    REDIS_URL: str | None = None

    # The api's JWT key (`secret_key`); settlement and the worker need none.
    SECRET_KEY: str | None = None
    INTERNAL_TOKEN: str = DEFAULT_INTERNAL_TOKEN
    # During a rotation settlement accepts this one too (README "Operations"); unset otherwise.
    INTERNAL_TOKEN_PREVIOUS: str | None = None
    ACCESS_TOKEN_LIFETIME_MINUTES: int = Field(default=60, gt=0)
    REFRESH_TOKEN_LIFETIME_DAYS: int = Field(default=7, gt=0)
    # Unset: 1 in dev (the seed's walkthrough logs in as m1/p), 8 otherwise; production refuses
    # to start below 8 (see password_min_length).
    PASSWORD_MIN_LENGTH: int | None = Field(default=None, ge=1)
    LOGIN_MAX_FAILURES: int = Field(default=5, ge=1)
    LOGIN_FAILURE_WINDOW_SEC: int = Field(default=300, gt=0)
    # Per client address, each of POST /auth/token and /auth/register (0 disables).
    AUTH_RL_WINDOW_SEC: int = Field(default=60, gt=0)
    AUTH_RL_MAX_REQUESTS: int = Field(default=30, ge=0)

    ASYNC_SETTLEMENT: bool = False
    SETTLEMENT_URL: str = "http://127.0.0.1:9000/api/settlement/withdraw"
    SETTLEMENT_TIMEOUT_S: float = Field(default=5.0, gt=0)
    # A QUEUED/PROCESSING withdrawal untouched this long is picked up by the sweeper/reconciler.
    RECONCILE_AFTER_S: int = Field(default=60, ge=0)

    # Async payouts (arq worker): retries of an unknown settlement outcome, then reconciliation.
    PAYOUT_MAX_TRIES: int = Field(default=6, ge=1)
    PAYOUT_RETRY_BASE_S: float = Field(default=0.5, gt=0)
    PAYOUT_RETRY_MAX_S: float = Field(default=30.0, gt=0)
    # Payout jobs running at once: their bodies coalesce into the worker's payout batches
    # (app/withdrawals/payout.py), so 2 x BATCH_MAX lets a full batch gather while one runs.
    # A waiting job holds no database connection.
    WORKER_MAX_JOBS: int = Field(default=256, ge=1)
    # The worker's CPU niceness (0 = as the apps). On a host shared with the api, e.g. 10 lets
    # intake win the CPU while queued payouts (durable either way) drain behind it.
    WORKER_NICENESS: int = Field(default=0, ge=0, le=19)
    # A job killed with its worker is retried once this has passed (arq adds 10 s).
    WORKER_JOB_TIMEOUT_S: int = Field(default=30, ge=1)
    # How often the worker sweeps for withdrawals whose job was lost (a divisor of 60).
    SWEEP_EVERY_S: int = Field(default=10, ge=1, le=60)
    # The worker's own reconciler timer (no Redis): how often, and how many per run.
    RECONCILE_EVERY_S: float = Field(default=30.0, gt=0)
    RECONCILE_BATCH: int = Field(default=100, ge=1)
    # Touched by that timer every round; `python -m app worker-alive` is the liveness probe.
    WORKER_HEARTBEAT_FILE: str = "/tmp/creditpool-worker.alive"  # noqa: S108 - per container

    RL_WINDOW_SEC: int = Field(default=10, gt=0)
    RL_MAX_REQUESTS: int = Field(default=300, ge=0)

    IDEMPOTENCY_KEY_TTL_HOURS: int = Field(default=24, gt=0)
    MAX_BODY_BYTES: int = 64 * 1024
    # Above it a withdrawal is 422 AMOUNT_ABOVE_MAXIMUM; no amount may pass 10^15 anyway.
    MAX_WITHDRAWAL_AMOUNT: Decimal = Field(
        default=Decimal("1000000000000000"), gt=0, le=Decimal("1000000000000000")
    )

    # Bootstrap admin for `make run` (a password is generated and printed once when unset).
    ADMIN_USERNAME: str = "admin"
    ADMIN_PASSWORD: str | None = None

    # Where `make run` serves the two apps (127.0.0.1).
    API_PORT: int = 8000
    SETTLEMENT_PORT: int = 9000

    # Private servers that `make run` starts when DATABASE_URL / REDIS_URL are unset.
    EMBEDDED_DATA_DIR: str = ".data"
    EMBEDDED_PG_PORT: int = 55432
    EMBEDDED_REDIS_PORT: int = 56379

    # Settlement / simulated bank: latency and transient-failure injection for load tests.
    BANK_LATENCY_MS: int = Field(default=0, ge=0)
    # Fraction (0..1) of bank calls that fail transiently before anything is recorded.
    BANK_FAILURE_RATE: float = Field(default=0.0, ge=0.0, le=1.0)
    # How long the request paying a PENDING payout owns its bank call: a duplicate meanwhile
    # answers PENDING without calling the bank. It must outlast a bank call; after a crash the
    # payout waits this long before a later request re-drives it.
    PAYOUT_LEASE_S: float = Field(default=30.0, gt=0)

    # Below it the pool alert fires (deploy/prometheus/alerts.yml); the api exports it as the
    # gauge creditpool_pool_low_water.
    POOL_LOW_WATER: Decimal = Field(default=Decimal("1000.00"), ge=0)

    # --- guard rails and observability (request log, logs, metrics) ---
    # The request log is buffered in memory and written in batches off the request path; at
    # most this many rows wait per process, later ones are dropped (and counted) until the
    # writer catches up, so a slow database cannot exhaust memory.
    REQUEST_LOG_BUFFER_ROWS: int = Field(default=10_000, ge=1)
    REQUEST_LOG_BATCH_ROWS: int = Field(default=500, ge=1)
    REQUEST_LOG_FLUSH_INTERVAL_S: float = Field(default=1.0, gt=0)
    # Whole UTC days of api_request_log kept; the worker drops older partitions hourly.
    REQUEST_LOG_RETENTION_DAYS: int = Field(default=30, ge=1)
    # Level of the JSON log lines on stdout (per request, per money event, warnings).
    LOG_LEVEL: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # --- end guard rails and observability ---

    @field_validator("SECRET_KEY", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # Compose blanks the secrets a service must not hold (deploy/docker-compose.yml).
        return None if value == "" else value

    @model_validator(mode="after")
    def _refuse_default_secrets(self) -> "Settings":
        if self.ENVIRONMENT == "production":
            for name, default in (
                ("SECRET_KEY", DEFAULT_SECRET_KEY),
                ("INTERNAL_TOKEN", DEFAULT_INTERNAL_TOKEN),
            ):
                value = getattr(self, name)
                if name == "SECRET_KEY" and value is None:
                    continue  # not every process signs tokens: see secret_key
                if value == default or len(value) < 32:
                    raise ValueError(
                        f"{name} must be set to a secret of at least 32 characters "
                        "outside ENVIRONMENT=dev/test"
                    )
            if self.PASSWORD_MIN_LENGTH is not None and self.PASSWORD_MIN_LENGTH < 8:
                raise ValueError(
                    "PASSWORD_MIN_LENGTH must be at least 8 outside ENVIRONMENT=dev/test"
                )
            if self.BANK_LATENCY_MS or self.BANK_FAILURE_RATE:
                raise ValueError(
                    "BANK_LATENCY_MS and BANK_FAILURE_RATE inject faults into the simulated "
                    "bank; they are for ENVIRONMENT=dev/test only"
                )
        return self

    @property
    def secret_key(self) -> str:
        """The JWT key; only the api asks (at start), so settlement runs without one."""
        if self.SECRET_KEY is not None:
            return self.SECRET_KEY
        if self.is_dev:
            return DEFAULT_SECRET_KEY
        raise RuntimeError("SECRET_KEY must be set (32+ characters) for the api")

    @property
    def password_min_length(self) -> int:
        if self.PASSWORD_MIN_LENGTH is not None:
            return self.PASSWORD_MIN_LENGTH
        return 1 if self.ENVIRONMENT == "dev" else 8

    @property
    def worker_alive_within_s(self) -> float:
        """A heartbeat older than this means the worker's timer is stuck. A round pays
        RECONCILE_BATCH withdrawals BATCH_MAX at a time: per chunk one settlement call
        (SETTLEMENT_TIMEOUT_S) and about a dozen database round trips (the claim, the finish
        transaction), each bounded by DB_COMMAND_TIMEOUT_S."""
        chunks = math.ceil(self.RECONCILE_BATCH / self.BATCH_MAX)
        worst_round = chunks * (self.SETTLEMENT_TIMEOUT_S + 12 * self.DB_COMMAND_TIMEOUT_S)
        return self.RECONCILE_EVERY_S + worst_round + 60

    @property
    def is_dev(self) -> bool:
        return self.ENVIRONMENT in ("dev", "test")

    @property
    def database_url(self) -> str:
        """The asyncpg URL: DATABASE_URL, else one built from the POSTGRES_* / DB_* parts."""
        if self.DATABASE_URL:
            return to_asyncpg_url(self.DATABASE_URL)
        if not self.DB_HOST:
            raise RuntimeError("set DATABASE_URL or DB_HOST (make run provides one)")
        auth = self.POSTGRES_USER + (f":{self.POSTGRES_PASSWORD}" if self.POSTGRES_PASSWORD else "")
        return f"postgresql+asyncpg://{auth}@{self.DB_HOST}:{self.DB_PORT}/{self.POSTGRES_DB}"

    @property
    def migration_database_url(self) -> str:
        """The owner's asyncpg URL: MIGRATION_DATABASE_URL, else this process's own."""
        if self.MIGRATION_DATABASE_URL:
            return to_asyncpg_url(self.MIGRATION_DATABASE_URL)
        return self.database_url

    @property
    def runtime_role_passwords(self) -> dict[str, str]:
        """The runtime roles `python -m app migrate` gives LOGIN, with their passwords."""
        given = {API_ROLE: self.API_DB_PASSWORD, SETTLEMENT_ROLE: self.SETTLEMENT_DB_PASSWORD}
        return {role: password for role, password in given.items() if password}

    @property
    def behind_pgbouncer(self) -> bool:
        return self.DB_PGBOUNCER

    @property
    def redis_url(self) -> str:
        if not self.REDIS_URL:
            raise RuntimeError("set REDIS_URL (make run provides one)")
        return self.REDIS_URL


def to_asyncpg_url(url: str) -> str:
    for prefix in ("postgresql://", "postgres://", "postgresql+psycopg://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    return url


@lru_cache
def get_settings() -> Settings:
    return Settings(_env_file=env_files())
