"""Login and registration are limited per client address, and argon2 never stalls the loop."""

import asyncio

import httpx
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.main import create_app
from app.models import User
from tests.support.api import PASSWORD, register, unique_name
from tests.support.observability import core_api
from tests.support.servers import serve


async def _login(api: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await api.post("/api/v1/auth/token", json={"username": username, "password": password})


def _assert_rate_limited(response: httpx.Response, window_s: int) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "RATE_LIMITED"
    assert 0 < int(response.headers["retry-after"]) <= window_s


async def test_logins_with_ever_new_usernames_are_limited_per_address(
    settings: Settings, clean_db: None, redis: Redis
) -> None:
    """Spraying usernames dodges the per-username throttle, not the per-address limit."""
    async with core_api(settings, AUTH_RL_MAX_REQUESTS=3, AUTH_RL_WINDOW_SEC=60) as running:
        api = running.client
        username = unique_name()
        await register(api, username=username)
        answers = [await _login(api, unique_name("ghost"), "guess") for _ in range(3)]
        assert [a.status_code for a in answers] == [401, 401, 401]
        _assert_rate_limited(await _login(api, unique_name("ghost"), "guess"), 60)
        # The right password waits too: the limit is on the address, before any lookup.
        _assert_rate_limited(await _login(api, username, PASSWORD), 60)


async def test_registrations_are_limited_per_address_and_a_refused_one_creates_nothing(
    settings: Settings,
    clean_db: None,
    redis: Redis,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    async with core_api(settings, AUTH_RL_MAX_REQUESTS=2, AUTH_RL_WINDOW_SEC=60) as running:
        answers = [await register(running.client) for _ in range(3)]
    assert [a.status_code for a in answers[:2]] == [201, 201]
    _assert_rate_limited(answers[2], 60)
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(User)) == 2


async def test_an_unknown_username_is_throttled_like_a_known_one(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    ghost = unique_name("ghost")
    for _ in range(settings.LOGIN_MAX_FAILURES):
        assert (await _login(api, ghost, "guess")).status_code == 401
    throttled = await _login(api, ghost, "guess")
    assert throttled.status_code == 429
    assert throttled.json()["code"] == "LOGIN_THROTTLED"


async def test_the_event_loop_answers_healthz_in_the_middle_of_a_login_flood(
    settings: Settings, clean_db: None, redis: Redis
) -> None:
    """40 logins cost 40 argon2 verifications; hashed in threads, they leave the loop free.

    Were argon2 run on the event loop, every login that reached it would run before the
    health check got another turn, so it would answer only once nearly all had finished.
    """
    app = create_app(settings.model_copy(update={"AUTH_RL_MAX_REQUESTS": 0}))
    logins, finished = 40, 0
    first_answered = asyncio.Event()
    async with serve(app) as base_url, httpx.AsyncClient(base_url=base_url, timeout=60) as client:

        async def login_with_a_random_username() -> None:
            nonlocal finished
            answer = await _login(client, unique_name("flood"), "not-a-password")
            assert answer.status_code == 401
            finished += 1
            first_answered.set()

        flood = [asyncio.create_task(login_with_a_random_username()) for _ in range(logins)]
        await first_answered.wait()  # the server is now busy with the flood
        health = [(await client.get("/healthz")).status_code for _ in range(20)]
        finished_before_health = finished
        await asyncio.gather(*flood)
    assert health == [200] * 20
    assert finished == logins
    assert finished_before_health <= logins // 2, finished_before_health
