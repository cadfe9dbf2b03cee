"""A real Chromium for the console's tests: Debian's ``chromium`` driven through its ``chromedriver``
by Selenium (installed by scripts/setup; nothing is downloaded at run time: Selenium Manager is never
asked, because the driver's path is given)."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "docs" / "console"
CHROMIUM = os.environ.get("AUTOMILL_CHROMIUM", "") or shutil.which("chromium") or shutil.which("chromium-browser") or ""
CHROMEDRIVER = os.environ.get("AUTOMILL_CHROMEDRIVER", "") or shutil.which("chromedriver") or ""


@contextmanager
def chromium(width: int = 1280, height: int = 900, downloads: Path | None = None) -> Iterator[Any]:
    """A headless Chromium session; skips the test when the machine has no Chromium (scripts/setup installs it).
    ``downloads``: the folder the browser saves downloads into, without asking."""
    if not CHROMIUM or not CHROMEDRIVER:
        why = "Chromium and chromedriver are not installed (scripts/setup installs Debian's chromium-driver)"
        if os.environ.get("CI"):
            pytest.fail(why)  # CI must run the browser tests, never skip them
        pytest.skip(why)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--window-size={width},{height}",
    ):
        opts.add_argument(arg)
    opts.add_argument("--no-first-run")
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    if downloads is not None:
        opts.add_experimental_option(
            "prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False}
        )
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    if downloads is not None:
        driver.execute_cdp_cmd(
            "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads), "eventsEnabled": True}
        )
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver: Any, check: Callable[[], Any], timeout: float = 20, what: str = "") -> Any:
    """Poll ``check`` until it returns something truthy (exceptions count as not yet)."""
    end = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < end:
        try:
            value = check()
            if value:
                return value
        except Exception as exc:  # not there yet: the page is still drawing
            last = exc
        time.sleep(0.1)
    logs = browser_log(driver)
    raise AssertionError(f"timed out waiting for {what or check}: {last!r}\nbrowser log:\n{logs}")


def css(driver: Any, selector: str, timeout: float = 20) -> Any:
    """The first element matching ``selector`` once it is there and shown."""
    from selenium.webdriver.common.by import By

    def find() -> Any:
        el = driver.find_element(By.CSS_SELECTOR, selector)
        return el if el.is_displayed() else None

    return wait_for(driver, find, timeout, selector)


def all_css(driver: Any, selector: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return list(driver.find_elements(By.CSS_SELECTOR, selector))


def ready(driver: Any, page: str, timeout: float = 30) -> None:
    """Wait until the console has drawn ``page`` (app.js sets main[data-ready])."""
    wait_for(
        driver,
        lambda: driver.execute_script("return document.getElementById('main').dataset.ready") == page,
        timeout,
        f"page {page}",
    )


def browser_log(driver: Any) -> str:
    try:
        return "\n".join(f"{e['level']} {e['message']}" for e in driver.get_log("browser"))
    except Exception:
        return "(no log)"


def severe_errors(driver: Any) -> list[str]:
    """The page's script errors (uncaught exceptions, failed module loads), not API answers it handled."""
    try:
        entries = driver.get_log("browser")
    except Exception:
        return []
    return [
        e["message"]
        for e in entries
        if e["level"] == "SEVERE" and "the server responded with a status" not in e["message"]
    ]


def screenshot(driver: Any, name: str) -> None:
    """Save docs/console/<name>.png when AUTOMILL_CONSOLE_SCREENSHOTS=1 (the docs' pictures)."""
    if os.environ.get("AUTOMILL_CONSOLE_SCREENSHOTS") == "1":
        SHOTS.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(SHOTS / f"{name}.png"))


def downloaded(folder: Path, suffix: str, timeout: float = 60) -> Path:
    """The file the browser saved into ``folder`` (ending in ``suffix``) once it is complete."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        done = [p for p in folder.glob(f"*{suffix}") if p.is_file()]
        partial = list(folder.glob("*.crdownload"))
        if done and not partial:
            return done[0]
        time.sleep(0.2)
    raise AssertionError(f"no {suffix} file was downloaded into {folder}: {sorted(p.name for p in folder.iterdir())}")
