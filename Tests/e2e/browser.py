"""The headless Chromium the browser tests drive: Debian's chromium and chromedriver through
Selenium, with nothing downloaded (Selenium Manager is kept offline), and the browser's console
log kept so a test can require it to be empty."""

import contextlib
import os
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
HAVE_BROWSER = os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)
NEEDS_BROWSER = pytest.mark.skipif(
    not HAVE_BROWSER,
    reason=f"needs {CHROMIUM} and {CHROMEDRIVER} (Debian's chromium, chromium-driver): run scripts/install-deps.sh --test",
)


@contextlib.contextmanager
def chromium(log: Path, window: str, extra_args: tuple[str, ...] = ()):
    """A headless Chromium driver of `window` size ("W,H"), chromedriver logging to `log`."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    old = os.environ.get("SE_OFFLINE")
    os.environ["SE_OFFLINE"] = "true"
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--no-proxy-server",
                f"--window-size={window}", "--no-first-run", "--disable-extensions", *extra_args):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    d = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER), log_output=str(log)), options=options)
    try:
        yield d
    finally:
        d.quit()
        if old is None:
            os.environ.pop("SE_OFFLINE", None)
        else:
            os.environ["SE_OFFLINE"] = old
