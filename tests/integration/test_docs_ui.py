"""/docs, the admins' UI, works without the internet: in a real headless Chromium.

The api runs under uvicorn on 127.0.0.1; Chromium (Debian's, from .ci/system-deps) driven by
Selenium logs in with Swagger UI's Authorize dialog, tops up the pool from the page and sees
200, and every request the page made went to the api itself.
"""

import asyncio
import json
import shutil
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from redis.asyncio import Redis
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth.admins import create_admin
from app.config import Settings
from app.ledger import repository as ledger_repository
from app.main import create_app
from tests.support.money import assert_books_balance
from tests.support.servers import serve

ADMIN = ("docs-admin", "docs-admin-password")
TOPUP = "operations-admin-top_up_api_v1_admin_pool_topup_post"
# As root, on a machine with no route out: without the background-networking flags Chromium
# waits on Google's services and hangs.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,1600",
]


def _chromium(profile: Path) -> WebDriver:
    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if browser is None or driver is None:
        pytest.fail("chromium and chromium-driver are missing: run `make system-deps` as root")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    return webdriver.Chrome(options=options, service=Service(executable_path=driver))


def _requested_urls(browser: WebDriver) -> list[str]:
    urls = []
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def _top_up_from_the_docs_page(base_url: str, tmp_path: Path) -> tuple[str, list[str]]:
    """Authorize with the admin's password, run POST /admin/pool/topup; its status and the
    URLs the page requested."""
    browser = _chromium(tmp_path / "profile")
    wait = WebDriverWait(browser, 15)
    try:
        browser.get(f"{base_url}/docs")
        wait.until(ready.element_to_be_clickable((By.CSS_SELECTOR, "button.authorize"))).click()
        browser.find_element(By.ID, "oauth_username").send_keys(ADMIN[0])
        browser.find_element(By.ID, "oauth_password").send_keys(ADMIN[1])
        browser.find_element(By.CSS_SELECTOR, ".auth-btn-wrapper button.authorize").click()
        wait.until(ready.element_to_be_clickable((By.CSS_SELECTOR, "button.btn-done"))).click()

        operation = wait.until(ready.presence_of_element_located((By.ID, TOPUP)))
        operation.find_element(By.CSS_SELECTOR, ".opblock-summary").click()
        wait.until(lambda _: operation.find_element(By.CSS_SELECTOR, ".try-out__btn")).click()
        body = wait.until(
            lambda _: operation.find_element(By.CSS_SELECTOR, "textarea.body-param__text")
        )
        body.clear()
        body.send_keys('{"amount": "250.00"}')
        operation.find_element(By.CSS_SELECTOR, "button.execute").click()
        status = wait.until(
            lambda _: operation.find_element(
                By.CSS_SELECTOR, ".live-responses-table .response .response-col_status"
            )
        )
        browser.execute_script("arguments[0].scrollIntoView()", status)
        browser.save_screenshot(str(tmp_path / "docs-topup.png"))
        return status.text.strip(), _requested_urls(browser)
    finally:
        browser.quit()


async def test_an_admin_tops_up_the_pool_from_the_offline_docs_page(
    settings: Settings,
    clean_db: None,
    redis: Redis,
    sessionmaker: async_sessionmaker[AsyncSession],
    tmp_path: Path,
) -> None:
    async with sessionmaker() as session, session.begin():
        await create_admin(session, username=ADMIN[0], password=ADMIN[1])
    async with serve(create_app(settings)) as base_url:
        # Selenium blocks; the server must go on serving on this event loop meanwhile.
        status, urls = await asyncio.to_thread(_top_up_from_the_docs_page, base_url, tmp_path)
    assert status.startswith("200"), status
    assert (tmp_path / "docs-topup.png").stat().st_size > 0
    api = urlsplit(base_url).netloc
    assert f"{base_url}/docs/assets/swagger-ui-bundle.js" in urls
    web = [urlsplit(url) for url in urls if urlsplit(url).scheme in ("http", "https")]
    assert [url.geturl() for url in web if url.netloc != api] == []
    async with sessionmaker() as session:
        assert await ledger_repository.pool_available(session) == Decimal("250.00")
    await assert_books_balance(sessionmaker)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_docs_pages_reference_no_outside_host(
    api: httpx.AsyncClient, settlement_api: httpx.AsyncClient, page: str
) -> None:
    for client in (api, settlement_api):
        html = await client.get(page)
        assert html.status_code == 200
        assert "http://" not in html.text and "https://" not in html.text, html.text
        asset = "swagger-ui-bundle.js" if page == "/docs" else "redoc.standalone.js"
        served = await client.get(f"/docs/assets/{asset}")
        assert served.status_code == 200
        assert len(served.content) > 100_000


async def test_settlement_has_no_docs_in_production(settings: Settings) -> None:
    from app.settlement.main import create_app as create_settlement

    production = settings.model_copy(
        update={"ENVIRONMENT": "production", "SECRET_KEY": "s" * 40, "INTERNAL_TOKEN": "i" * 40}
    )
    app = create_settlement(production)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://settlement.test") as client:
        for path in ("/docs", "/redoc", "/openapi.json", "/docs/assets/swagger-ui-bundle.js"):
            assert (await client.get(path)).status_code == 404, path
