"""The report of a real run, opened in Debian's headless Chromium as a person would open it: every
section shows, every chart decodes, and the browser logs no error. Chromium comes from
corpus/report/install_chromium.sh (run by `make setup`); without it these tests skip and say so.

Two ways in: chromium's own `--dump-dom` with its log on stderr, and chromedriver's WebDriver protocol
(plain HTTP on loopback, so no client library is needed) to ask the page about its images and to read
the browser console."""

import base64
import json
import shutil
import socket
import subprocess
import time
import urllib.request

import pytest

pytest.importorskip("matplotlib", reason="`refinery report` needs matplotlib")
pytestmark = pytest.mark.slow  # a real Ray run with two dedup phases (shared by the module)

from corpus.report import write_report  # noqa: E402

SECTIONS = ["Phases", "Per-source funnel", "Language distribution", "Perplexity", "Quality score",
            "Duplicate clusters", "Throughput per phase"]
# As documented for headless use in containers: no sandbox (root), no GPU, nothing fetched in the background.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage"]
INSTALL = "run corpus/report/install_chromium.sh (make setup does)"


def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.skip(f"Debian's chromium is not installed: {INSTALL}")
    return path


@pytest.fixture(scope="module")
def report(real_run, tmp_path_factory):
    run_dir, _ = real_run
    return write_report(run_dir, str(tmp_path_factory.mktemp("html") / "report.html"))


def test_dump_dom_shows_every_section_without_console_errors(report, tmp_path):
    proc = subprocess.run([chromium(), *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr",
                           "--v=0", "--dump-dom", f"file://{report}"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    dom = proc.stdout
    for section in SECTIONS:
        assert f">{section}</h2>" in dom
    assert dom.count("<img") >= 6
    console = [line for line in proc.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line
               or "Failed to load resource" in line or "net::ERR" in line]
    assert console == []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _call(base: str, method: str, path: str, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())["value"]


def test_webdriver_sees_every_chart_decoded_and_no_browser_errors(report, tmp_path):
    binary = chromium()
    driver = shutil.which("chromedriver")
    if driver is None:
        pytest.skip(f"Debian's chromium-driver is not installed: {INSTALL}")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([driver, f"--port={port}", "--allowed-ips=127.0.0.1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if _call(base, "GET", "/status")["ready"]:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "chromedriver did not start"
            time.sleep(0.2)
        caps = {"browserName": "chrome", "goog:loggingPrefs": {"browser": "ALL"},
                "goog:chromeOptions": {"binary": binary,
                                       "args": FLAGS + [f"--user-data-dir={tmp_path / 'profile'}",
                                                        "--window-size=1200,900"]}}
        session = _call(base, "POST", "/session", {"capabilities": {"alwaysMatch": caps}})["sessionId"]
        s = f"/session/{session}"
        try:
            _call(base, "POST", s + "/url", {"url": f"file://{report}"})
            page = _call(base, "POST", s + "/execute/sync", {"args": [], "script": """
                return {title: document.title,
                        sections: Array.from(document.querySelectorAll('h2')).map(h => h.textContent),
                        images: Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth]),
                        external: performance.getEntriesByType('resource').map(r => r.name)};"""})
            logs = _call(base, "POST", s + "/se/log", {"type": "browser"})
            shot = base64.b64decode(_call(base, "GET", s + "/screenshot"))
        finally:
            _call(base, "DELETE", s)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert page["title"] == "refinery report: report"
    assert page["sections"] == SECTIONS
    assert len(page["images"]) >= 6
    broken = [alt for alt, complete, width in page["images"] if not (complete and width > 0)]
    assert broken == []
    assert page["external"] == []  # the page fetched nothing: data: images are not resource loads
    assert [entry["message"] for entry in logs if entry["level"] in ("SEVERE", "WARNING")] == []
    assert shot.startswith(b"\x89PNG") and len(shot) > 10_000
    (tmp_path / "report.png").write_bytes(shot)  # left for a person to look at
