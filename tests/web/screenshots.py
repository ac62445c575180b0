"""Take the dashboard screenshots of docs/web.md: ``scripts/dashboard-screenshots``.

Starts ``tierd run`` on a free loopback port with the test topology, gives it
some work (processes finished, failed and running, a dead letter), and saves
what headless chromium shows at a laptop's and a phone's width as PNGs in
docs/images/.
"""

from __future__ import annotations

import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import httpx

from tests.processes import ROOT, Tierd
from tests.web.browser import open_browser
from tests.web.topology import write_config

IMAGES = ROOT / "docs" / "images"


def main() -> int:
    """Take the screenshots; 0 when they are written."""
    browser_path, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if browser_path is None or driver_path is None:
        print("run scripts/install-chromium first", file=sys.stderr)
        return 1
    IMAGES.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as data:
        run = Tierd("run", str(write_config(Path(data))))
        try:
            address = run.wait_for_line(r"dashboard and API:\s+http://(\S+)/").group(1)
            url = f"http://{address}"
            api = httpx.Client(base_url=url, timeout=10)
            for parts in (3, 4):
                quick = {"kind": "paced", "params": {"parts": parts, "pause": 0.05}}
                api.post("/api/processes", json=quick)
            api.post("/api/processes", json={"kind": "broken", "params": {"order": 17}})
            api.post("/api/processes", json={"kind": "items", "params": {"count": 40}})
            api.post("/api/messages", json={"target": "crasher@1", "payload": "boom"})
            time.sleep(1.5)  # let those finish, so the page shows each status
            running = api.post("/api/processes", json={
                "kind": "paced", "params": {"parts": 200, "pause": 0.1}, "key": "import-2026-12",
                "correlation": {"request_id": "req-81", "user_id": "ana"},
            }).json()["process_id"]  # fmt: skip
            api.post(
                "/api/processes", json={"kind": "paced", "params": {"parts": 400, "pause": 0.1}}
            )
            time.sleep(4.0)  # a visible share of progress
            for name, width, height, path in [
                ("dashboard-overview.png", 1280, 1500, "/"),
                ("dashboard-process.png", 1280, 1000, f"/processes/{running}"),
                ("dashboard-phone.png", 390, 844, "/"),
            ]:
                browser = open_browser(browser_path, driver_path, width=width, height=height)
                try:
                    browser.get(url + path)
                    time.sleep(0.5)
                    browser.save_screenshot(str(IMAGES / name))
                finally:
                    browser.quit()
                print(f"wrote docs/images/{name}")
            api.close()
        finally:
            run.finish(signal.SIGTERM)
    return 0


if __name__ == "__main__":
    sys.exit(main())
