"""The operator console in a real headless Chromium, one operator's journey: log in with a
wrong and then the right token; a failure group of designs the sandbox rejects shows its
count; a group of transiently failed designs is previewed and retried once the sandbox
recovers, and the designs reach pins.created; a design is found by its product id; a consumer
is paused and resumed; a dead letter is replayed; logout. With CONSOLE_SCREENSHOTS set to a
directory, each page is saved there (``make screenshots``)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

import aio_pika
import msgspec
import pytest
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from contracts.events import DesignRegion
from contracts.fourthwall import PRODUCTS_PATH
from service.broker.codec import event_message
from service.samples import design_event, sample_design
from service.settings import load_settings
from service.testing.broker import Seen, publish, watching
from service.testing.browser import headless_chromium, screenshot
from service.testing.inprocess import running_service
from service.testing.sandbox import SandboxHandle

pytestmark = pytest.mark.e2e
TOKEN = "console-browser-token-0123456789"
INVALID = "customization.DESIGN_PIPELINE_INVALID_REGIONS"
UNAVAILABLE = "product.SERVICE_UNAVAILABLE"
SHOTS = Path(os.environ["CONSOLE_SCREENSHOTS"]) if os.environ.get("CONSOLE_SCREENSHOTS") else None


def _of(ids: set[str]) -> Callable[[Seen], bool]:
    return lambda seen: getattr(seen.data, "design_id", None) in ids


def _until(driver: WebDriver, what: Callable[[WebDriver], object], timeout: float = 15) -> None:
    # a page being replaced by the next one, or a part refreshed in place by the console's
    # script, makes elements read a moment before vanish: polled again until the deadline
    WebDriverWait(
        driver, timeout, poll_frequency=0.1, ignored_exceptions=(WebDriverException,)
    ).until(lambda d: what(d))


def _text(driver: WebDriver, css: str) -> str:
    return driver.find_element(By.CSS_SELECTOR, css).text


async def test_an_operator_fixes_failures_in_the_console(
    service_env: dict[str, str], sandbox: SandboxHandle, amqp_url: str
) -> None:
    settings = load_settings({**service_env, "ADMIN_TOKEN": TOKEN, "MAX_ATTEMPTS": "2"})
    base = f"http://127.0.0.1:{settings.http_port}/admin/ui"
    rejected = [
        msgspec.structs.replace(
            sample_design(shop, 0, "ui-bad"),
            regions=[DesignRegion(region="nowhere", image_id="img_front_1")],
        )
        for shop in ("shop-1", "shop-2")
    ]
    transient = [sample_design(shop, 0, "ui-down") for shop in ("shop-1", "shop-3")]
    good = sample_design("shop-2", 0, "ui-good")
    async with watching(amqp_url) as watcher, running_service(settings):
        await publish(amqp_url, event_message(design_event(good)))
        (made,) = await watcher.wait_for("pins.created", 1)
        product_id = made.data.product_id  # type: ignore[union-attr]
        await sandbox.set_faults(error_rate_5xx=1.0, endpoints=[PRODUCTS_PATH])
        for design in rejected + transient:
            await publish(amqp_url, event_message(design_event(design)))
        await publish(amqp_url, aio_pika.Message(b"{not json", message_id="ui-junk"))
        await watcher.wait_for("product.failed", 4)
        with headless_chromium() as driver:  # Selenium blocks: each step runs in a thread
            await asyncio.to_thread(_log_in_and_see_the_groups, driver, base)
            await sandbox.set_faults()  # the outage is over
            await asyncio.to_thread(_preview_and_retry, driver, base)
            await watcher.wait_for("pins.created", 2, where=_of({d.design_id for d in transient}))
            await asyncio.to_thread(_find_by_product, driver, base, product_id, good.design_id)
            await asyncio.to_thread(_pause_and_resume, driver, base)
            await asyncio.to_thread(_replay_a_dead_letter, driver, base)
            await asyncio.to_thread(_log_out, driver, base)


def _log_in_and_see_the_groups(driver: WebDriver, base: str) -> None:
    driver.get(f"{base}/failures")
    _until(driver, lambda d: d.current_url.endswith("/admin/ui/login"))
    screenshot(driver, SHOTS, "login")
    _log_in(driver, "not-the-token")
    _until(driver, lambda d: d.find_elements(By.ID, "login-error"))
    assert "Wrong token" in _text(driver, "#login-error")
    _log_in(driver, TOKEN)
    _until(driver, lambda d: d.current_url.endswith("/admin/ui/failures"))
    _until(driver, lambda d: d.find_elements(By.CSS_SELECTOR, f'tr[data-signature="{INVALID}"]'))
    invalid = driver.find_element(By.CSS_SELECTOR, f'tr[data-signature="{INVALID}"]')
    assert invalid.find_element(By.CSS_SELECTOR, ".count").text == "2"
    screenshot(driver, SHOTS, "failures")


def _preview_and_retry(driver: WebDriver, base: str) -> None:
    row = driver.find_element(By.CSS_SELECTOR, f'tr[data-signature="{UNAVAILABLE}"]')
    row.find_element(By.LINK_TEXT, "Retry…").click()
    _until(driver, lambda d: d.find_elements(By.ID, "retry-group"))
    outcomes = [e.text for e in driver.find_elements(By.CSS_SELECTOR, ".outcome")]
    assert outcomes == ["requeued", "requeued"]
    screenshot(driver, SHOTS, "retry-preview")
    driver.find_element(By.ID, "retry-group").click()
    _until(driver, lambda d: d.find_element(By.TAG_NAME, "h1").text.startswith("Retried"))


def _find_by_product(driver: WebDriver, base: str, product_id: str, design_id: str) -> None:
    driver.get(f"{base}/designs")
    driver.find_element(By.NAME, "q").send_keys(product_id)
    driver.find_element(By.ID, "search").click()
    _until(driver, lambda d: design_id in _text(d, "#found"))
    driver.find_element(By.LINK_TEXT, design_id).click()
    _until(driver, lambda d: _text(d, "#state") == "published")
    screenshot(driver, SHOTS, "design")


def _pause_and_resume(driver: WebDriver, base: str) -> None:
    driver.get(f"{base}/consumers")
    _switch(driver, "design-approved")
    _until(driver, lambda d: _paused_for(d, "design-approved") == "operator")
    screenshot(driver, SHOTS, "consumers")
    _switch(driver, "design-approved")
    _until(driver, lambda d: _paused_for(d, "design-approved") == "")


def _replay_a_dead_letter(driver: WebDriver, base: str) -> None:
    driver.get(f"{base}/dead-letters")
    letter = next(
        r
        for r in driver.find_elements(By.CSS_SELECTOR, "#dlq-design-approved tr.letter")
        if "ui-junk" in r.text
    )
    screenshot(driver, SHOTS, "dead-letters")
    letter.find_element(By.CSS_SELECTOR, "button.replay").click()
    _until(driver, lambda d: d.find_elements(By.ID, "done"))
    assert "Replayed" in _text(driver, "#done")


def _log_out(driver: WebDriver, base: str) -> None:
    driver.find_element(By.ID, "logout").click()
    _until(driver, lambda d: d.current_url.endswith("/admin/ui/login"))
    driver.get(f"{base}/failures")  # the session is gone: the console asks for a login again
    _until(driver, lambda d: d.current_url.endswith("/admin/ui/login"))


def _log_in(driver: WebDriver, token: str) -> None:
    driver.find_element(By.NAME, "operator").send_keys("ops-ann")
    driver.find_element(By.NAME, "token").send_keys(token)
    driver.find_element(By.ID, "login").click()


def _switch(driver: WebDriver, consumer: str) -> None:
    def click(d: WebDriver) -> bool:
        row = d.find_element(By.CSS_SELECTOR, f'tr[data-name="{consumer}"]')
        row.find_element(By.CSS_SELECTOR, "button.switch").click()
        return True

    _until(driver, click)


def _paused_for(driver: WebDriver, consumer: str) -> str:
    row = driver.find_element(By.CSS_SELECTOR, f'tr[data-name="{consumer}"]')
    return str(row.find_element(By.CSS_SELECTOR, ".paused-for").text)
