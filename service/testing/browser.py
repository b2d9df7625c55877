"""A headless Chromium for the console's browser tests and ``make screenshots``: Debian's
``chromium`` and ``chromium-driver`` (``scripts/ensure-browser.sh`` installs them), driven by
Selenium with the system driver (nothing downloaded)."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service


def _binary() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise RuntimeError("no chromium here: run scripts/ensure-browser.sh (apt: chromium)")


@contextlib.contextmanager
def headless_chromium(width: int = 1280, height: int = 900) -> Iterator[webdriver.Chrome]:
    driver_path = shutil.which("chromedriver")
    if driver_path is None:
        raise RuntimeError("no chromedriver here: run scripts/ensure-browser.sh (chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = _binary()
    for argument in (
        "--headless=new",
        "--no-sandbox",  # root in a container has no user namespace for the sandbox
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        f"--window-size={width},{height}",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def screenshot(driver: webdriver.Chrome, directory: Path | None, name: str) -> None:
    """Save the page as ``<directory>/<name>.png`` when screenshots are asked for."""
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(directory / f"{name}.png"))
