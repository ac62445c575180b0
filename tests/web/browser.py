"""Headless Debian chromium driven by selenium, for the dashboard's tests and screenshots."""

from __future__ import annotations

from typing import TYPE_CHECKING

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.wait import WebDriverWait

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver


def open_browser(browser: str, driver: str, *, width: int = 1280, height: int = 900) -> WebDriver:
    """A headless chromium window of ``width`` x ``height`` whose console is recorded."""
    options = Options()
    options.binary_location = browser
    for argument in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     f"--window-size={width},{height}", "--no-first-run"]:  # fmt: skip
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    opened = webdriver.Chrome(service=Service(executable_path=driver), options=options)
    opened.set_page_load_timeout(20)
    return opened


def sign_in(browser: WebDriver, url: str, token: str) -> None:
    """Sign in on the dashboard's page with ``token``."""
    browser.get(f"{url}/login")
    browser.find_element(By.NAME, "token").send_keys(token)
    browser.find_element(By.CSS_SELECTOR, "form[action='/login'] button").click()


def console_errors(browser: WebDriver) -> list[str]:
    """The console's error lines since the last call."""
    return [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]


def click(browser: WebDriver, selector: str, timeout: float = 20) -> None:
    """Click the element ``selector`` finds, again if a live refresh replaced it meanwhile."""

    def clicked(driver: WebDriver) -> bool:
        try:
            found = driver.find_elements(By.CSS_SELECTOR, selector)
            if not found or not found[0].is_enabled():
                return False
            found[0].click()
        except StaleElementReferenceException:
            return False
        return True

    WebDriverWait(browser, timeout).until(clicked)
