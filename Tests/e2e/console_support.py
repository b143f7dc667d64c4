"""What the web console's browser tests share: a chatrelay of their own (with the default
CHAT_ON_DISCONNECT=continue: Stop stores a turn as cancelled through the request's own
`on_disconnect: cancel`), one
headless Chromium for the module (Debian's chromium and chromedriver through Selenium; nothing is
downloaded), the folder screenshots go to, and helpers to sign in, wait and read the browser's
console log."""

import os
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from conftest import KEYS, start_relay

from browser import NEEDS_BROWSER, chromium  # noqa: F401  (NEEDS_BROWSER is re-exported to the console tests)
KEY = KEYS[0]
AUTH = {"Authorization": f"Bearer {KEY}"}
# A model the mock upstream serves with the pace a prompt asks for ([mock tokens=N delay=MS]).
SLOW_MODEL = "gpt-5.4-mini"


@pytest.fixture(scope="session")
def screenshots(request):
    """CONSOLE_SCREENSHOTS, or a fresh folder under /tmp that outlives the run; named at the end."""
    folder = Path(os.environ.get("CONSOLE_SCREENSHOTS") or tempfile.mkdtemp(prefix="chatrelay-console-shots-"))
    folder.mkdir(parents=True, exist_ok=True)
    yield folder
    capture = request.config.pluginmanager.getplugin("capturemanager")
    shots = sorted(p.name for p in folder.glob("*.png"))
    with capture.global_and_fixture_disabled():
        print(f"\nconsole screenshots ({len(shots)}): {folder}")


# Priced models, so usage and compare show real costs: the built-in mocks and three providers'
# models served by the mock upstream at the pace their prompts ask for.
CATALOG = """
default_model: mock-echo
models:
  - name: mock-echo
    deployments:
      - {id: mock-echo, provider: mock, price: {input_per_mtok: 1.0, output_per_mtok: 2.0}}
  - name: mock-tokens-7
    deployments:
      - {id: mock-tokens, provider: mock, model: mock-tokens-7, price: {input_per_mtok: 1.0, output_per_mtok: 2.0}}
  - name: gpt-5.4-mini
    deployments:
      - {id: openai-mock, provider: openai, base_url: "BASE/v1", api_key_env: OPENAI_API_KEY, price: {input_per_mtok: 0.25, output_per_mtok: 2.0}}
  - name: claude-haiku-4-5
    deployments:
      - {id: anthropic-mock, provider: anthropic, base_url: "BASE", api_key_env: ANTHROPIC_API_KEY, price: {input_per_mtok: 1.0, output_per_mtok: 5.0}}
  - name: gemini-2.5-flash
    deployments:
      - {id: gemini-mock, provider: gemini, base_url: "BASE/v1beta", api_key_env: GOOGLE_API_KEY, price: {input_per_mtok: 0.3, output_per_mtok: 2.5}}
"""


@pytest.fixture(scope="module")
def console_relay(workdir, mock_port, request):
    # CONSOLE_TEST_URL: test the console of a server already running there instead (it must serve
    # the models above through the mock upstream, and key k1).
    if os.environ.get("CONSOLE_TEST_URL"):
        yield os.environ["CONSOLE_TEST_URL"].rstrip("/")
        return
    name = f"console-relay-{request.module.__name__}"
    catalog = workdir / f"{name}-models.yaml"
    catalog.write_text(CATALOG.replace("BASE", f"http://127.0.0.1:{mock_port}"))
    proc, url = start_relay(workdir, mock_port, name, {"CHAT_MODELS_FILE": str(catalog)})
    yield url
    proc.stop()


@pytest.fixture()
def api(console_relay):
    with httpx.Client(base_url=console_relay, headers=AUTH, timeout=30) as c:
        yield c


@pytest.fixture(scope="module")
def browser(workdir):
    with chromium(workdir / "chromedriver-console.log", "1280,900", ("--force-device-scale-factor=1",)) as d:
        yield d


def wait_for(driver, condition, timeout=20, message=""):
    from selenium.webdriver.support.ui import WebDriverWait
    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(condition, message)


def js(driver, script, *args):
    return driver.execute_script(script, *args)


def console_errors(driver, allowed=()):
    """The browser's console entries of level SEVERE since the last call, minus those containing
    one of `allowed` (a test that provokes an error names the one it expects)."""
    entries = driver.get_log("browser")
    return [e for e in entries if e["level"] == "SEVERE" and not any(a in e["message"] for a in allowed)]


def open_console(driver, base, view="playground", key=KEY):
    """Loads the console at #/view, signed in with `key` (typed into the sign-in form)."""
    from selenium.webdriver.common.by import By
    driver.get(f"{base}/#/{view}")
    if js(driver, "return sessionStorage.getItem('chatrelay.apiKey')") != key:
        js(driver, "sessionStorage.clear()")
        driver.get(f"{base}/#/{view}")
        wait_for(driver, lambda d: d.find_element(By.ID, "api-key").is_displayed(), message="no sign-in form")
        box = driver.find_element(By.ID, "api-key")
        box.clear()
        box.send_keys(key)
        driver.find_element(By.CSS_SELECTOR, "#sign-in-form button[type=submit]").click()
    try:
        wait_for(driver, lambda d: d.find_element(By.ID, f"view-{view}").is_displayed())
    except Exception as e:
        raise AssertionError(f"view {view} not shown; browser console: {driver.get_log('browser')}") from e


def shot(driver, folder: Path, name: str):
    path = folder / f"{name}.png"
    driver.save_screenshot(str(path))
    assert path.stat().st_size > 1000, path


def stored_messages(api, conversation_id):
    r = api.get(f"/api/v1/conversations/{conversation_id}")
    assert r.status_code == 200, r.text
    return r.json()["messages"]


def wait_until(predicate, timeout=15.0, interval=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


def sample_growth(read, finished, interval=0.04, timeout=30.0):
    """Reads `read()` every `interval` until `finished()`; returns the distinct values seen while
    not finished, in order."""
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = finished()
        value = read()
        if done:
            return seen, value
        if not seen or seen[-1] != value:
            seen.append(value)
        time.sleep(interval)
    raise AssertionError(f"did not finish within {timeout} s; seen {seen[-3:]}")
