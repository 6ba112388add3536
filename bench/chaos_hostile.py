"""`make chaos`'s burst of malformed and hostile requests, sent beside the load.

Each must be refused with its own problem+json (or a documented 503 while a fault is on),
move no money and store nothing. The one real withdrawal among them (the first of a replayed
key) is recorded with Locust's answers, so the contradiction check covers it too.
"""

import json
import secrets
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt

from bench.chaos_report import DOCUMENTED_5XX, PROBLEM_JSON

ROUNDS = 5
HUGE = 100 * 1024  # over the 64 KiB body limit
AMOUNT = "0.10"


@dataclass(frozen=True)
class Target:
    api_url: str
    settlement_url: str  # its withdraw endpoint
    token: str  # a seeded merchant's access token (one Locust does not use)
    answers: Path  # where the real withdrawal's answers are appended (JSON lines)


@dataclass(frozen=True)
class Probe:
    name: str
    url: str
    headers: dict[str, str]
    body: bytes | Iterator[bytes]
    expected: set[tuple[int, str]]


def burst(target: Target) -> dict[str, Any]:
    """ROUNDS of every hostile request. A request that got no answer (its server is down or
    frozen by another fault) is counted, not judged; each answer must be its refusal."""
    sent, unanswered, unexpected = 0, 0, []
    with httpx.Client(timeout=5) as client, target.answers.open("a") as answers:
        for _ in range(ROUNDS):
            for probe in _probes(target, client, answers):
                sent += 1
                status, code = _send(client, probe)
                if status == 0:
                    unanswered += 1
                elif (status, code) not in probe.expected | DOCUMENTED_5XX:
                    unexpected.append(f"{probe.name}: {status} {code}")
    return {
        "sent": sent,
        "unanswered": unanswered,
        "unexpected": len(unexpected),
        "unexpected_samples": unexpected[:20],
    }


def _probes(target: Target, client: httpx.Client, answers: Any) -> Iterator[Probe]:
    withdraw = f"{target.api_url}/api/v1/withdrawals"
    merchant = {"Authorization": f"Bearer {target.token}", "content-type": "application/json"}

    def fresh(headers: dict[str, str]) -> dict[str, str]:
        return headers | {"Idempotency-Key": uuid.uuid4().hex}

    good = json.dumps({"amount": AMOUNT}).encode()
    huge = json.dumps({"amount": AMOUNT, "pad": "x" * HUGE}).encode()
    yield Probe("bad json", withdraw, fresh(merchant), b'{"amount": ', {(422, "VALIDATION_ERROR")})
    yield Probe("huge body", withdraw, fresh(merchant), huge, {(413, "PAYLOAD_TOO_LARGE")})
    # Chunked, so no Content-Length announces the size: the limit must count what arrives.
    yield Probe(
        "huge chunked", withdraw, fresh(merchant), iter([huge]), {(413, "PAYLOAD_TOO_LARGE")}
    )
    yield Probe(
        "no token",
        withdraw,
        fresh({"content-type": "application/json"}),
        good,
        {(401, "NOT_AUTHENTICATED")},
    )
    garbage = {"Authorization": "Bearer not-a-token", "content-type": "application/json"}
    yield Probe("garbage token", withdraw, fresh(garbage), good, {(401, "INVALID_TOKEN")})
    forged = jwt.encode(
        {"sub": "1", "typ": "access", "exp": int(time.time()) + 600},
        secrets.token_hex(32),
        algorithm="HS256",
    )
    forged_headers = {"Authorization": f"Bearer {forged}", "content-type": "application/json"}
    yield Probe("forged token", withdraw, fresh(forged_headers), good, {(401, "INVALID_TOKEN")})
    payout = json.dumps({"withdrawal_id": str(uuid.uuid4()), "amount": AMOUNT}).encode()
    yield Probe(
        "settlement, no token",
        target.settlement_url,
        {"content-type": "application/json"},
        payout,
        {(401, "INTERNAL_TOKEN_MISSING")},
    )
    wrong = {"X-Internal-Token": secrets.token_urlsafe(32), "content-type": "application/json"}
    yield Probe(
        "settlement, wrong token",
        target.settlement_url,
        wrong,
        payout,
        {(403, "INTERNAL_TOKEN_INVALID")},
    )
    # A real withdrawal, then its key again with another amount: refused, never a second one.
    replayed = fresh(merchant)
    try:
        first: httpx.Response | None = client.post(withdraw, content=good, headers=replayed)
    except httpx.HTTPError:
        first = None  # no answer: its outcome is the books'
    answers.write(json.dumps(_answer(replayed["Idempotency-Key"], first)) + "\n")
    if first is not None and first.status_code in (200, 202):
        other = json.dumps({"amount": "0.20"}).encode()
        reused = {(422, "IDEMPOTENCY_KEY_REUSED"), (409, "IDEMPOTENCY_KEY_IN_USE")}
        yield Probe("replayed key, other body", withdraw, replayed, other, reused)


def _send(client: httpx.Client, probe: Probe) -> tuple[int, str]:
    try:
        response = client.post(probe.url, content=probe.body, headers=probe.headers)
    except httpx.HTTPError as exc:
        return 0, type(exc).__name__
    if response.headers.get("content-type") != PROBLEM_JSON:
        return response.status_code, f"not problem+json: {response.text[:80]!r}"
    return response.status_code, str(response.json().get("code"))


def _answer(key: str, response: httpx.Response | None) -> dict[str, Any]:
    """The first withdrawal's answer, as tests/load/locustfile.py records Locust's."""
    if response is None:
        return {"key": key, "http": 0}
    body = response.json() if response.headers.get("content-type", "").endswith("json") else {}
    return {
        "key": key,
        "http": response.status_code,
        "content_type": response.headers.get("content-type"),
        "status": body.get("status" if response.status_code < 300 else "withdrawal_status"),
        "withdrawal_id": body.get("withdrawal_id"),
        "code": body.get("code"),
    }
