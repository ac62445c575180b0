"""The dashboard in headless chromium against a real ``tierd run``, as a person uses it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

from tests.web.browser import click, console_errors, open_browser, sign_in
from tests.web.conftest import OPERATE_TOKEN, SEND_TOKEN
from tests.web.topology import write_config

if TYPE_CHECKING:
    from collections.abc import Iterator

    from selenium.webdriver.remote.webdriver import WebDriver

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


@pytest.fixture
def dashboard(tierd_cli, tmp_path, chromium) -> Iterator[tuple[str, WebDriver]]:
    """A ``tierd run`` with a send and an operate token, and a browser; both ended after."""
    config = write_config(tmp_path, tokens=((SEND_TOKEN, "send"), (OPERATE_TOKEN, "operate")))
    run = tierd_cli("run", str(config))
    address = run.wait_for_line(r"dashboard and API:\s+http://(\S+)/").group(1)
    browser = open_browser(*chromium)
    try:
        yield f"http://{address}", browser
    finally:
        browser.quit()


def _submit(url: str, params: dict[str, Any]) -> str:
    response = httpx.post(
        f"{url}/api/processes", json={"kind": "paced", "params": params}, timeout=10,
        headers={"Authorization": f"Bearer {OPERATE_TOKEN}"},
    )  # fmt: skip
    assert response.status_code == 201, response.text
    return str(response.json()["process_id"])


def _status(url: str, process_id: str) -> str:
    headers = {"Authorization": f"Bearer {SEND_TOKEN}"}
    response = httpx.get(f"{url}/api/processes/{process_id}", headers=headers, timeout=10)
    return str(response.json()["status"])


def test_a_submitted_process_appears_its_bar_moves_live_and_cancel_cancels_it(dashboard):
    """With no reload the new process shows and its bar moves; its page's Cancel cancels it."""
    url, browser = dashboard
    sign_in(browser, url, OPERATE_TOKEN)
    wait = WebDriverWait(browser, 20)
    wait.until(expected_conditions.presence_of_element_located((By.ID, "levels")))
    assert "echo@1" in browser.find_element(By.ID, "levels").text
    browser.execute_script("window.sameDocument = 'yes'")  # gone if the page were reloaded
    process_id = _submit(url, {"parts": 400, "pause": 0.1})
    bar = f"tr[data-process-id='{process_id}'] progress"
    wait.until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, bar)))

    def progress(_: object) -> float:
        return float(browser.execute_script(f'return document.querySelector("{bar}").value'))

    first = wait.until(lambda b: progress(b) > 0 and progress(b))
    wait.until(lambda b: progress(b) > first)
    assert browser.execute_script("return window.sameDocument") == "yes"
    click(browser, f"a[href='/processes/{process_id}']")
    click(browser, "button[data-name='cancel']")
    wait.until(expected_conditions.alert_is_present()).accept()
    wait.until(expected_conditions.text_to_be_present_in_element(
        (By.CSS_SELECTOR, "article.process h2 .status"), "cancelled"))  # fmt: skip
    assert _status(url, process_id) == "cancelled"
    assert console_errors(browser) == []


def test_an_operate_button_is_refused_with_a_send_token(dashboard):
    """Signed in with a send token, Cancel is refused with the reason; the process runs on."""
    url, browser = dashboard
    sign_in(browser, url, SEND_TOKEN)
    process_id = _submit(url, {"parts": 400, "pause": 0.1})
    browser.get(f"{url}/processes/{process_id}")
    wait = WebDriverWait(browser, 20)
    assert "need a token with the operate role" in browser.find_element(By.TAG_NAME, "main").text
    click(browser, "button[data-name='cancel']")
    wait.until(expected_conditions.alert_is_present()).accept()
    wait.until(expected_conditions.text_to_be_present_in_element((By.ID, "notice"), "Forbidden"))
    assert "the 'operate' role" in browser.find_element(By.ID, "notice").text
    assert _status(url, process_id) == "running"
    console = console_errors(browser)  # the refused call is the one error the console shows
    assert len(console) == 1, console
    assert "403" in console[0]
