"""/docs in a real browser: Debian's Chromium driven by Playwright, against the served app."""

from __future__ import annotations

from urllib.parse import urlsplit

from playwright.async_api import async_playwright

from tests.conftest import client_of
from tests.helpers import API, DEFAULT_PASSWORD
from tests.integration.served import Server

CHROMIUM = "/usr/bin/chromium"
# Flags a closed network needs: no background calls home, no GPU, no sandbox as root.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
UI_TIMEOUT_MS = 20_000


async def test_docs_authorize_and_execute_users_me_with_nothing_loaded_from_outside(
    server: Server,
) -> None:
    async with client_of(None, base_url=server.base_url) as http:
        registered = await http.post(
            f"{API}/auth/register", json={"username": "docs-user", "password": DEFAULT_PASSWORD}
        )
        registered.raise_for_status()
    requested: list[str] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = await browser.new_page()
            page.set_default_timeout(UI_TIMEOUT_MS)
            page.on("request", lambda request: requested.append(request.url))

            await page.goto(f"{server.base_url}/docs")
            await page.locator("button.authorize").first.click()
            await page.locator("#oauth_username").fill("docs-user")
            await page.locator("#oauth_password").fill(DEFAULT_PASSWORD)
            await page.locator(".auth-btn-wrapper button.authorize").click()
            await page.locator(".auth-btn-wrapper button.btn-done").click()

            operation = page.locator("#operations-users-readCurrentUser")
            await operation.locator(".opblock-summary").click()
            await operation.locator("button.try-out__btn").click()
            await operation.locator("button.execute").click()
            status = operation.locator(".live-responses-table tbody .response-col_status").first
            await status.wait_for()
            assert (await status.inner_text()).strip() == "200"
            body = await operation.locator(".live-responses-table .microlight").first.inner_text()
            assert '"username": "docs-user"' in body
        finally:
            await browser.close()

    origin = urlsplit(server.base_url).netloc
    outside = [url for url in requested if urlsplit(url).netloc != origin]
    assert requested, "the page made no request at all"
    assert outside == [], f"/docs requested something outside the server: {outside}"
