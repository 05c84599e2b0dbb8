"""End to end in a real browser: `fakelens serve` started as a user starts it, on a free loopback
port, and Debian's chromium driven by Playwright (the system browser: nothing is downloaded)
dropping a wrong file (the error is shown) and then uploading a synthetic fake through the file
picker, waiting for the verdict and the timeline image, and saving a screenshot.

FAKELENS_UPDATE_SCREENSHOT=1 also writes the screenshot to docs/report-page.png (the README's)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DOCS_SCREENSHOT = Path(__file__).resolve().parents[1] / "docs" / "report-page.png"


def _need_browser():
    if not Path(CHROMIUM).exists():
        msg = "Debian's chromium is not installed (apt-get install -y chromium; .ci/run does it)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    pytest.importorskip("playwright")
    pytest.importorskip("fastapi")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_up(url: str, proc: subprocess.Popen, log: Path, timeout: float = 180.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"fakelens serve exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url + "/api/info", timeout=2) as r:
                return json.loads(r.read())
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"fakelens serve did not answer in {timeout} s:\n{log.read_text()}")


def _small_png(src: Path, dst: Path) -> None:
    """A palette PNG of the screenshot (small enough to commit)."""
    from PIL import Image

    with Image.open(src) as im:
        im.convert("RGB").quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(dst, optimize=True)


def test_upload_through_the_page_shows_the_report(detect_run, tmp_path):
    _need_browser()
    from playwright.sync_api import sync_playwright

    meta = json.loads((detect_run["data"] / "test_metadata.json").read_text())
    fake = detect_run["data"] / next(m for m in meta if m["fake_segments"])["file"]
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "fakelens.cli.main", "serve", "--model", str(detect_run["run"]),
                                 "--port", str(port), "--device", "cpu"], stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        info = _wait_up(url, proc, log)
        assert info["model"]["name"] == "av_tiny"
        requests: list[str] = []
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                        args=["--no-sandbox", "--disable-background-networking"])
            try:
                page = browser.new_page(viewport={"width": 1100, "height": 900})
                page.on("request", lambda req: requests.append(req.url))
                page.goto(url)
                page.wait_for_function("document.getElementById('limits').textContent.includes('av_tiny')")
                # drag and drop a file that is not a video: refused, and the page says why
                page.evaluate("""() => {
                    const dt = new DataTransfer();
                    dt.items.add(new File(['just text'], 'notes.mp4', {type: 'video/mp4'}));
                    document.getElementById('drop').dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true}));
                }""")
                page.wait_for_selector("[data-testid=error]", state="visible", timeout=60_000)
                assert "not a video file" in page.inner_text("[data-testid=error]")
                # the file picker with a synthetic fake: progress, then the report in the page
                page.set_input_files("#file", str(fake))
                page.wait_for_selector("[data-testid=verdict]", state="visible", timeout=180_000)
                page.wait_for_function("() => { const i = document.getElementById('timeline');"
                                       " return i.complete && i.naturalWidth > 0; }")
                page.wait_for_function("() => { const i = document.getElementById('crops');"
                                       " return i.complete && i.naturalWidth > 0; }")
                assert page.is_hidden("[data-testid=error]") and page.is_hidden("[data-testid=status]")
                assert page.inner_text("#badge") == "LIKELY FAKE"
                p_fake = float(page.inner_text("#pfake").split("=")[1])
                assert 0.5 <= p_fake <= 1.0
                assert "start (s)" in page.inner_text("#segments")  # a segments table, not "no segment"
                assert page.get_attribute("#dl-html", "href").startswith("blob:")
                shot = tmp_path / "page.png"
                page.screenshot(path=str(shot), full_page=True)
            finally:
                browser.close()
        assert all(u.startswith((url, "data:", "blob:")) for u in requests), requests  # nothing leaves the machine
        small = tmp_path / "report-page.png"
        _small_png(shot, small)
        assert small.stat().st_size < 200_000
        if os.environ.get("FAKELENS_UPDATE_SCREENSHOT"):
            DOCS_SCREENSHOT.parent.mkdir(exist_ok=True)
            shutil.copyfile(small, DOCS_SCREENSHOT)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    assert "Traceback" not in log.read_text()
