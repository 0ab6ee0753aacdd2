"""The console in a real headless Chromium (Selenium) against uvicorn on 127.0.0.1: sign in, the
dashboard, filter a run, download the unresolved people's CSV, approve a held plan and see it
applied on the emulator, change a setting and see it in the configuration file."""

from __future__ import annotations

import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from providers.emulator import Tenant
from tests.console_browser import chromium, served, sign_in
from tests.console_support import PASSWORD, Setup, drop_classes, make_setup

pytestmark = pytest.mark.usefixtures("clean_env")


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    s = make_setup(tmp_path / "site", missing=3)
    s.user("ada", {"oak": "admin"})
    s.user("bob", {"oak": "approver"})
    yield s
    s.jobs.wait()
    s.store.close()


def _wait_for(check: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(check) and check():
            return
        time.sleep(0.1)
    raise AssertionError("timed out waiting")


def test_sign_in_dashboard_filter_a_run_and_download_the_unresolved_csv(setup: Setup, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    t = setup.store.tenant("oak")
    assert t is not None
    setup.jobs.run_now(t, "ada", dry_run=False)
    setup.jobs.wait()
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    with served(setup) as base, chromium(downloads) as browser:
        sign_in(browser, base, "ada", PASSWORD)
        assert "Your tenants" in browser.page_source
        browser.find_element(By.LINK_TEXT, "Oak Academy").click()
        needs = browser.find_element(By.ID, "needs-you").text
        assert "3 people not in Entra" in needs
        browser.find_element(By.CSS_SELECTOR, "#runs a").click()
        _wait_for(lambda: "/runs/" in browser.current_url)
        count = browser.find_element(By.ID, "match-count").text
        all_changes = int(count.split()[0].replace(",", ""))
        Select(browser.find_element(By.NAME, "kind")).select_by_visible_text("group")
        Select(browser.find_element(By.NAME, "action")).select_by_visible_text("create")
        browser.find_element(By.ID, "apply-filters").click()
        _wait_for(lambda: "kind=group" in browser.current_url)
        groups = int(browser.find_element(By.ID, "match-count").text.split()[0].replace(",", ""))
        assert 0 < groups < all_changes
        assert "kind=group" in browser.current_url
        rows = browser.find_elements(By.CSS_SELECTOR, "#changes tr")[1:]
        assert rows and all(" group " in f" {r.text} " for r in rows)
        browser.find_element(By.ID, "unresolved-csv").click()
        _wait_for(lambda: any(p.suffix == ".csv" for p in downloads.iterdir()))
        csv_file = next(p for p in downloads.iterdir() if p.suffix == ".csv")
        _wait_for(lambda: len(csv_file.read_text().splitlines()) == 4)
        text = csv_file.read_text()
        assert text.splitlines()[0] == "school,person,wanted by"
        assert all(p in text for p in setup.missing["oak"])


def test_approve_a_held_plan_and_change_a_setting(setup: Setup, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    t = setup.store.tenant("oak")
    assert t is not None
    tenant_file = t.config_path.parent / "tenant.json"
    setup.jobs.run_now(t, "ada", dry_run=False)
    setup.jobs.wait()
    before = len(Tenant.load(tenant_file).groups)
    drop_classes(t.config_path, 10)
    with served(setup) as base, chromium(tmp_path) as browser:
        sign_in(browser, base, "ada", PASSWORD)
        browser.get(base + "/t/oak")
        browser.find_element(By.ID, "run-now").click()
        _wait_for(lambda: len(setup.store.held_plans("oak")) == 1)
        setup.jobs.wait()
        browser.get(base + "/t/oak")
        assert "held as plan" in browser.find_element(By.ID, "job-message").text
        browser.find_element(By.PARTIAL_LINK_TEXT, "Held plan").click()
        _wait_for(lambda: "/held/" in browser.current_url)
        assert "Refused by a safety limit" in browser.page_source
        browser.find_element(By.ID, "approve").click()
        _wait_for(lambda: setup.store.held_plans("oak")[0].status not in ("held", "applying"))
        setup.jobs.wait()
        assert len(Tenant.load(tenant_file).groups) < before  # applied on the emulator
        browser.refresh()
        assert browser.find_element(By.ID, "held-status").text == "applied"
        assert "Approved by ada" in browser.page_source.replace("<strong>", "").replace("</strong>", "")
        # a setting, changed in the page, is in the configuration file
        browser.get(base + "/t/oak/settings")
        times = browser.find_element(By.ID, "times")
        times.clear()
        times.send_keys("05:15, 13:45")
        browser.find_element(By.ID, "save").click()
        _wait_for(lambda: "saved=1" in browser.current_url)
        assert browser.find_element(By.ID, "saved").text == "Saved."
        doc = tomllib.loads(t.config_path.read_text())
        assert doc["schedule"]["times"] == ["05:15", "13:45"]
        # and a bad one is refused with the configuration's own message, the file untouched
        times = browser.find_element(By.ID, "times")
        times.clear()
        times.send_keys("7pm")
        browser.find_element(By.ID, "save").click()
        assert "schedule.times[0]: must be a 24-hour local time" in browser.find_element(By.ID, "errors").text
        assert tomllib.loads(t.config_path.read_text())["schedule"]["times"] == ["05:15", "13:45"]
