"""The demo page end to end in headless Debian Chromium (Selenium + the system chromedriver, no
browser downloads): upload an image, ask, watch the answer stream in, ask a follow-up.

Set OMNIBIND_SCREENSHOT=docs/img/web-demo.png to refresh the screenshot in the docs.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration

if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
    pytest.skip(
        "Debian chromium + chromium-driver are not installed (apt-get install chromium chromium-driver)",
        allow_module_level=True,
    )
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")


@pytest.fixture(scope="module")
def server():
    import omnibind
    from omnibind.serve.http import BackgroundServer, create_app
    from omnibind.serve.settings import ServeSettings

    model = omnibind.load()
    with BackgroundServer(create_app(model, ServeSettings(web=True, max_tokens_limit=64))) as srv:
        yield srv


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    os.environ["SE_OFFLINE"] = "true"  # never let Selenium Manager look for downloads
    opts = Options()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,860"):
        opts.add_argument(arg)
    opts.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def _wait(fn, timeout: float, what: str):
    end = time.time() + timeout
    while time.time() < end:
        value = fn()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _ask(browser, text: str, n_before: int) -> tuple[str, set[int]]:
    """Send ``text``; returns the final answer and the partial lengths seen while it streamed."""
    from selenium.webdriver.common.by import By

    prompt = browser.find_element(By.ID, "prompt")
    prompt.clear()
    prompt.send_keys(text)
    browser.find_element(By.ID, "send").click()
    seen: set[int] = set()

    def finished():
        errors = browser.find_elements(By.CSS_SELECTOR, ".msg.error")
        assert not errors, errors[0].text
        bubbles = browser.find_elements(By.CSS_SELECTOR, ".msg.assistant")
        if len(bubbles) <= n_before:
            return None
        seen.add(len(bubbles[-1].text))
        return bubbles[-1].text if "done" in bubbles[-1].get_attribute("class") else None

    return _wait(finished, 180, "the streamed answer"), seen


def test_upload_image_ask_and_stream(server, browser):
    from selenium.webdriver.common.by import By

    browser.get(server.url + "/")
    _wait(lambda: "encoder" in browser.find_element(By.ID, "info").text, 30, "the model info panel")
    assert "efficientnet" in browser.find_element(By.ID, "info").text.lower()
    browser.find_element(By.ID, "file-input").send_keys(str(ROOT / "examples" / "image_cat.jpg"))
    _wait(lambda: browser.find_elements(By.CSS_SELECTOR, "#attachments .att"), 10, "the attachment row")
    modality = browser.find_element(By.CSS_SELECTOR, "#attachments .att select")
    assert modality.get_attribute("value") == "image"
    tokens = browser.find_element(By.ID, "max-tokens")
    tokens.clear()
    tokens.send_keys("32")

    answer, seen = _ask(browser, "What is in this picture?", 0)
    assert answer.strip(), "empty answer"
    partial = {n for n in seen if 0 < n < len(answer)}
    assert partial, f"the answer appeared all at once (lengths seen: {sorted(seen)}); expected streaming"
    assert browser.find_elements(By.CSS_SELECTOR, ".msg.user img"), "the uploaded image is shown in the chat"
    assert "tokens in" in browser.find_element(By.ID, "status").text

    follow, _ = _ask(browser, "Describe it in three words.", 1)
    assert follow.strip()
    assert len(browser.find_elements(By.CSS_SELECTOR, ".msg.assistant")) == 2

    shot = os.environ.get("OMNIBIND_SCREENSHOT")
    target = Path(shot) if shot else Path(os.environ.get("TMPDIR", "/tmp")) / "omnibind-web-demo.png"
    browser.save_screenshot(str(target))
    assert target.stat().st_size > 10_000
