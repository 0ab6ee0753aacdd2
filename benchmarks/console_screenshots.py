"""Screenshots of the console for the docs: a school on the in-process emulator (the example
export; three people without accounts), a first sync, then a sync refused by a safety limit and
held; the dashboard and the first run's page, taken by headless Chromium.

    python benchmarks/console_screenshots.py [--out docs]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.console_browser import chromium, served, sign_in  # noqa: E402
from tests.console_support import PASSWORD, drop_classes, make_setup  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=ROOT / "docs")
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
    print(f"wrote {args.out / 'console-dashboard.png'} and {args.out / 'console-run.png'}")


if __name__ == "__main__":
    main()
