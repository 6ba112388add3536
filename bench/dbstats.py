"""What the database says about a run: the withdrawals it completed, and when."""

import asyncio
import threading
import time
from dataclasses import dataclass

import asyncpg

from bench.summary import WithdrawalTimes

OPEN = ("QUEUED", "PROCESSING")


async def _fetch(database_url: str, query: str, *args: object) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(database_url)
    try:
        return list(await connection.fetch(query, *args))
    finally:
        await connection.close()


def fetch(database_url: str, query: str, *args: object) -> list[asyncpg.Record]:
    return asyncio.run(_fetch(database_url, query, *args))


def withdrawal_times(database_url: str) -> list[WithdrawalTimes]:
    """Status, created and last-updated time (epoch seconds) of every withdrawal."""
    rows = fetch(
        database_url,
        "SELECT status, extract(epoch FROM created_at)::float8 AS created,"
        " extract(epoch FROM updated_at)::float8 AS updated FROM withdrawals",
    )
    return [WithdrawalTimes(row["status"], row["created"], row["updated"]) for row in rows]


def request_log_rows(database_url: str) -> dict[str, int]:
    rows = fetch(database_url, "SELECT service, count(*) FROM api_request_log GROUP BY service")
    return {row["service"]: row["count"] for row in rows}


def merchant_id_range(database_url: str) -> tuple[int, int]:
    (row,) = fetch(database_url, "SELECT min(id), max(id) FROM merchants")
    return int(row[0]), int(row[1])


@dataclass(frozen=True)
class Drain:
    drained: bool
    waited_s: float
    open_at_start: int
    still_open: int


def wait_until_drained(database_url: str, *, timeout_s: float) -> Drain:
    """Wait until no withdrawal is QUEUED or PROCESSING (the worker has paid them all)."""
    started = time.monotonic()
    at_start = None
    while True:
        (row,) = fetch(
            database_url, "SELECT count(*) FROM withdrawals WHERE status = ANY($1)", list(OPEN)
        )
        open_now = int(row[0])
        at_start = open_now if at_start is None else at_start
        waited = time.monotonic() - started
        if open_now == 0 or waited >= timeout_s:
            return Drain(open_now == 0, round(waited, 1), at_start, open_now)
        time.sleep(0.5)


class ActivitySampler:
    """Samples what the apps' PostgreSQL sessions are doing, once a second, in a thread: the
    average number of sessions running, in each wait event (a queue on the pool row shows as
    Lock/transactionid, commit flushes as IO/WalSync or LWLock/WALWrite) and idle in a
    transaction (holding its locks while the app prepares the next statement)."""

    QUERY = """
        SELECT CASE WHEN state = 'active'
                    THEN coalesce(wait_event_type || '/' || wait_event, 'running')
                    ELSE state END AS what,
               count(*)
        FROM pg_stat_activity
        WHERE application_name = 'creditpool' AND state IN ('active', 'idle in transaction')
        GROUP BY 1
    """

    def __init__(self, database_url: str, *, every_s: float = 1.0) -> None:
        self.database_url = database_url
        self.every_s = every_s
        self.samples = 0
        self.totals: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pg-activity", daemon=True)

    def _run(self) -> None:
        asyncio.run(self._sample())

    async def _sample(self) -> None:
        connection = await asyncpg.connect(self.database_url)
        try:
            while not self._stop.is_set():
                for row in await connection.fetch(self.QUERY):
                    self.totals[row["what"]] = self.totals.get(row["what"], 0) + row["count"]
                self.samples += 1
                await asyncio.to_thread(self._stop.wait, self.every_s)
        finally:
            await connection.close()

    def averages(self, top: int = 6) -> dict[str, float]:
        """Average sessions per sample in each state, busiest first."""
        ranked = sorted(self.totals.items(), key=lambda item: -item[1])[:top]
        return {what: round(total / max(self.samples, 1), 1) for what, total in ranked}

    def __enter__(self) -> "ActivitySampler":
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
