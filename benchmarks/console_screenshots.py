"""Screenshots of the console for the docs: a school on the in-process emulator (the example
export; three people without accounts), a first sync, then a sync refused by a safety limit and
held; an admin changes a setting; the dashboard, the first run's page and the settings page (with
its audit trail), taken by headless Chromium.

    python benchmarks/console_screenshots.py [--out docs]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from selenium.webdriver.common.by import By  # noqa: E402

from tests.console_browser import chromium, served, sign_in  # noqa: E402
from tests.console_support import PASSWORD, drop_classes, make_setup  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=ROOT / "docs")
    ap.add_argument("--extra", type=Path, help="also the held plan, settings and history pages, here")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        setup = make_setup(Path(tmp) / "site", missing=3)
        setup.user("ada", {"oak": "admin"})
        t = setup.store.tenant("oak")
        assert t is not None
        setup.jobs.run_now(t, "ada", dry_run=False)
        setup.jobs.wait()
        drop_classes(t.config_path, 30)
        setup.jobs.run_now(t, "ada", dry_run=False)
        setup.jobs.wait()
        with served(setup) as base, chromium(Path(tmp), width=1280, height=900) as browser:
            sign_in(browser, base, "ada", PASSWORD)
            browser.get(base + "/t/oak")
            browser.save_screenshot(str(args.out / "console-dashboard.png"))
            browser.set_window_size(1280, 1500)
            browser.get(base + "/t/oak/runs/1")
            browser.save_screenshot(str(args.out / "console-run.png"))
            browser.get(base + "/t/oak/settings")  # a change, made as a person would, for the trail
            times = browser.find_element(By.ID, "times")
            times.clear()
            times.send_keys("05:30, 12:00")
            browser.find_element(By.ID, "save").click()
            browser.set_window_size(1280, 1700)
            browser.get(base + "/t/oak/settings")
            browser.save_screenshot(str(args.out / "console-settings.png"))
            if args.extra is not None:  # the pages the docs do not show, to look at
                for name, path in (("held", "/t/oak/held/1"),
                                   ("history", "/t/oak/history?key=class:8804012:2026-27:cls-oak-7a-ma1")):
                    browser.get(base + path)
                    browser.save_screenshot(str(args.extra / f"console-{name}.png"))
    print(f"wrote console-dashboard.png, console-run.png and console-settings.png in {args.out}")


if __name__ == "__main__":
    main()
