"""A console served by uvicorn on 127.0.0.1 (a thread of the test process) and a headless
Chromium driven by Selenium (the system's chromium and chromium-driver). Under ``CI=true`` a
missing Chromium fails the test; elsewhere it skips it."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from entra_sync.console.app import create_app
from tests.console_support import Setup

CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
DRIVER = ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver")


def _find(candidates: tuple[str, ...], name: str) -> str | None:
    return next((p for p in candidates if os.path.exists(p)), None) or shutil.which(name)


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{reason} (CI must have it: .ci/run installs chromium and chromium-driver)")
    pytest.skip(reason)


@contextmanager
def served(setup: Setup) -> Iterator[str]:
    app = create_app(setup.store, setup.box, session_secret="b" * 32, jobs=setup.jobs)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(20)


@contextmanager
def chromium(downloads: Path, width: int = 1360, height: int = 1000) -> Iterator[Any]:
    binary, driver = _find(CHROMIUM, "chromium"), _find(DRIVER, "chromedriver")
    if binary is None or driver is None:
        _unavailable("no chromium / chromedriver on this machine")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _unavailable("selenium is not installed")
        raise
    options = webdriver.ChromeOptions()
    options.binary_location = str(binary)
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={width},{height}",
        "--no-first-run",
        "--disable-extensions",
    ):
        options.add_argument(arg)
    options.add_experimental_option(
        "prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False}
    )
    browser = webdriver.Chrome(service=Service(str(driver)), options=options)
    browser.implicitly_wait(10)
    try:
        browser.execute_cdp_cmd(
            "Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
        )
        yield browser
    finally:
        browser.quit()


def sign_in(browser: Any, base: str, name: str, password: str) -> None:
    from selenium.webdriver.common.by import By

    browser.get(base + "/login")
    browser.find_element(By.NAME, "username").send_keys(name)
    browser.find_element(By.NAME, "password").send_keys(password)
    browser.find_element(By.ID, "sign-in").click()
    # the next page must have loaded (and the session cookie be set) before the caller navigates:
    # a browser.get() racing the sign-in POST lands on the sign-in page again
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 60).until(
        lambda b: b.execute_script("return document.readyState") == "complete"
        and not b.current_url.split("?")[0].endswith("/login")
    )
