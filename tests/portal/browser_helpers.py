"""Helpers of the browser tests (Selenium on Debian's headless Chromium): logging in, waiting,
full-page screenshots. The ``browser`` fixture is in conftest.py."""

from __future__ import annotations

import time
from pathlib import Path

from portal_fixtures import PASSWORD

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
SCREENSHOTS = Path(__file__).resolve().parents[1] / "screenshots"


def log_in(driver, server: str, username: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(server + "/login")
    driver.find_element(By.ID, "username").send_keys(username)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "login-submit").click()
    wait_for(lambda: driver.find_elements(By.ID, "whoami"), "the logged-in header")


def full_screenshot(driver, name: str) -> None:
    """The whole page, not just the window: grow the window to the document's height."""
    SCREENSHOTS.mkdir(exist_ok=True)
    size = driver.get_window_size()
    width, height = size["width"], size["height"]
    page_height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, page_height + 140)
    driver.save_screenshot(str(SCREENSHOTS / name))
    driver.set_window_size(width, height)


def wait_for(condition, what: str, timeout: float = 20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")
