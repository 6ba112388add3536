"""Locust load test: each simulated merchant withdraws with a fresh Idempotency-Key.

    python -m app seed --merchants 1000 --credit 1000.00 --password p
    python -m app tokens --count 1000 --redis-key locust:tokens
    locust -f tests/load/locustfile.py --headless --users 500 --spawn-rate 50 --run-time 2m

Environment (the seed's names): TARGET_HOST (default http://127.0.0.1:8000), REDIS_URL,
TOKENS_KEY (default locust:tokens), N_TOKENS (tokens to use, default all in the list),
WITHDRAW_AMOUNT (default 1.00), REQ_TIMEOUT (seconds, default 10; connect and read).
"""

import os
import uuid

import redis
from locust import FastHttpUser, constant, task

TARGET_HOST = os.environ.get("TARGET_HOST", "http://127.0.0.1:8000")
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:56379/0")
TOKENS_KEY = os.environ.get("TOKENS_KEY", "locust:tokens")
N_TOKENS = int(os.environ.get("N_TOKENS", "0"))
WITHDRAW_AMOUNT = os.environ.get("WITHDRAW_AMOUNT", "1.00")
REQ_TIMEOUT = float(os.environ.get("REQ_TIMEOUT", "10"))

_tokens = redis.Redis.from_url(REDIS_URL)


def _next_token() -> str:
    """A different merchant's token for each user (round robin over the preloaded list)."""
    available = _tokens.llen(TOKENS_KEY)
    if available == 0:
        raise RuntimeError(f"no tokens in Redis list {TOKENS_KEY!r}: run `python -m app tokens`")
    count = min(N_TOKENS, available) if N_TOKENS > 0 else available
    index = (_tokens.incr(f"{TOKENS_KEY}:next") - 1) % count
    token = _tokens.lindex(TOKENS_KEY, index)
    assert token is not None
    return token.decode()


class Merchant(FastHttpUser):
    host = TARGET_HOST
    wait_time = constant(0)
    # REQ_TIMEOUT really bounds each request: connecting and waiting for the answer.
    connection_timeout = REQ_TIMEOUT
    network_timeout = REQ_TIMEOUT

    def on_start(self) -> None:
        self.auth = {"Authorization": f"Bearer {_next_token()}"}

    @task
    def withdraw(self) -> None:
        headers = self.auth | {"Idempotency-Key": uuid.uuid4().hex}
        with self.client.post(
            "/api/v1/withdrawals",
            json={"amount": WITHDRAW_AMOUNT},
            headers=headers,
            name="POST /api/v1/withdrawals",
            catch_response=True,
        ) as response:
            if response.status_code in (200, 202):
                response.success()
            else:
                response.failure(f"{response.status_code} {_problem_code(response)}")


def _problem_code(response: object) -> str | None:
    try:
        body = response.json()  # type: ignore[attr-defined]
    except Exception:  # a proxy's HTML error page, a reset connection: no problem+json
        return None
    return body.get("code") if isinstance(body, dict) else None
