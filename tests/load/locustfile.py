"""Locust load test: each simulated merchant withdraws with a fresh Idempotency-Key.

    python -m app seed --merchants 1000 --credit 1000.00 --password p
    python -m app tokens --count 1000 --redis-key locust:tokens
    locust -f tests/load/locustfile.py --headless --users 500 --spawn-rate 50 --run-time 2m

Environment (the seed's names): TARGET_HOST (default http://127.0.0.1:8000), REDIS_URL,
TOKENS_KEY (default locust:tokens), N_TOKENS (tokens to use, default all in the list),
WITHDRAW_AMOUNT (default 1.00), REQ_TIMEOUT (seconds, default 10; connect and read),
USER_PACE_S (each user starts a withdrawal at most every this many seconds; default 0: at once),
ANSWERS_DIR (when set, each Locust process appends one JSON line per answer to
answers-<pid>.jsonl there: what the merchant was told, for `make chaos` to check).
"""

import json
import os
import uuid
from pathlib import Path
from typing import Any

import redis
from locust import FastHttpUser, constant, constant_pacing, task

TARGET_HOST = os.environ.get("TARGET_HOST", "http://127.0.0.1:8000")
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:56379/0")
TOKENS_KEY = os.environ.get("TOKENS_KEY", "locust:tokens")
N_TOKENS = int(os.environ.get("N_TOKENS", "0"))
WITHDRAW_AMOUNT = os.environ.get("WITHDRAW_AMOUNT", "1.00")
REQ_TIMEOUT = float(os.environ.get("REQ_TIMEOUT", "10"))
USER_PACE_S = float(os.environ.get("USER_PACE_S", "0"))
ANSWERS_DIR = os.environ.get("ANSWERS_DIR")

_tokens = redis.Redis.from_url(REDIS_URL)
# Line-buffered: every answer is on disk even if Locust is stopped abruptly.
_answers = (
    (Path(ANSWERS_DIR) / f"answers-{os.getpid()}.jsonl").open("a", buffering=1)
    if ANSWERS_DIR
    else None
)


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
    wait_time = constant_pacing(USER_PACE_S) if USER_PACE_S > 0 else constant(0)
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
            if _answers is not None:
                _answers.write(json.dumps(_answer(headers["Idempotency-Key"], response)) + "\n")
            if response.status_code in (200, 202):
                response.success()
            else:
                response.failure(f"{response.status_code} {_problem_code(response)}")


def _body(response: Any) -> dict[str, Any]:
    try:
        body = response.json()
    except Exception:  # a proxy's HTML error page, a reset connection: no problem+json
        return {}
    return body if isinstance(body, dict) else {}


def _problem_code(response: object) -> str | None:
    return _body(response).get("code")


def _answer(key: str, response: Any) -> dict[str, Any]:
    """What the merchant saw (status 0: no answer, e.g. a timeout or a reset connection)."""
    body = _body(response)
    content_type = (response.headers or {}).get("content-type") if response.status_code else None
    return {
        "key": key,
        "http": response.status_code,
        "content_type": content_type,
        # A withdrawal's status; a refusal's problem body carries it as withdrawal_status.
        "status": body.get("status" if response.status_code < 300 else "withdrawal_status"),
        "withdrawal_id": body.get("withdrawal_id"),
        "code": body.get("code"),
    }
