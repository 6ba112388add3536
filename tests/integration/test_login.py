import httpx

from app.config import Settings
from tests.support.api import PASSWORD, register, unique_name


async def _login(api: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await api.post("/api/v1/auth/token", json={"username": username, "password": password})


async def test_wrong_password_and_unknown_user_answer_alike(api: httpx.AsyncClient) -> None:
    username = unique_name()
    await register(api, username=username)
    wrong = await _login(api, username, "not-the-password")
    unknown = await _login(api, unique_name("ghost"), "not-the-password")
    assert wrong.status_code == unknown.status_code == 401
    strip = lambda body: {k: v for k, v in body.items() if k != "request_id"}  # noqa: E731
    assert strip(wrong.json()) == strip(unknown.json())
    assert wrong.json()["code"] == "INVALID_CREDENTIALS"


async def test_repeated_failures_are_throttled_then_even_the_right_password_waits(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    username = unique_name()
    await register(api, username=username)
    for _ in range(settings.LOGIN_MAX_FAILURES):
        assert (await _login(api, username, "wrong-password")).status_code == 401
    throttled = await _login(api, username, PASSWORD)
    assert throttled.status_code == 429
    assert throttled.json()["code"] == "LOGIN_THROTTLED"
    assert 0 < int(throttled.headers["retry-after"]) <= settings.LOGIN_FAILURE_WINDOW_SEC


async def test_throttle_is_per_username(api: httpx.AsyncClient, settings: Settings) -> None:
    victim, other = unique_name(), unique_name()
    await register(api, username=victim)
    await register(api, username=other)
    for _ in range(settings.LOGIN_MAX_FAILURES):
        await _login(api, victim, "wrong-password")
    assert (await _login(api, other, PASSWORD)).status_code == 200


async def test_success_clears_earlier_failures(api: httpx.AsyncClient, settings: Settings) -> None:
    username = unique_name()
    await register(api, username=username)
    for _ in range(settings.LOGIN_MAX_FAILURES - 1):
        await _login(api, username, "wrong-password")
    assert (await _login(api, username, PASSWORD)).status_code == 200
    for _ in range(settings.LOGIN_MAX_FAILURES - 1):
        await _login(api, username, "wrong-password")
    assert (await _login(api, username, PASSWORD)).status_code == 200


async def test_login_still_works_when_redis_is_down(settings: Settings, clean_db: None) -> None:
    """The throttle fails open: an outage of Redis must not lock every merchant out."""
    from app.dev.embedded.process import free_port
    from app.main import create_app
    from tests.conftest import _client_for

    down = settings.model_copy(update={"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"})
    async for api in _client_for(create_app(down), "http://api.test"):
        username = unique_name()
        await register(api, username=username)
        assert (await _login(api, username, "wrong-password")).status_code == 401
        assert (await _login(api, username, PASSWORD)).status_code == 200
