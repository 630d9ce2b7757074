"""Open a report page in Debian's headless Chromium as a person would, for the report tests (corpus and
training). Chromium comes from corpus/report/install_chromium.sh (run by `make setup`); without it the
tests that call these helpers skip and say so.

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


def dump_dom(page: str, profile) -> tuple[str, list[str]]:
    """(the DOM after load, the browser's log lines about console messages, script errors and failed loads)."""
    proc = subprocess.run([chromium(), *FLAGS, f"--user-data-dir={profile}", "--enable-logging=stderr",
                           "--v=0", "--dump-dom", f"file://{page}"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    console = [line for line in proc.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line
               or "Failed to load resource" in line or "net::ERR" in line]
    return proc.stdout, console


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


def open_in_webdriver(page: str, profile) -> tuple[dict, list[dict], bytes]:
    """Load `page` through chromedriver: (title, h2 sections, images as [alt, complete, naturalWidth] and
    the URLs of resources the page fetched), the browser log entries, a PNG screenshot."""
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
                                       "args": FLAGS + [f"--user-data-dir={profile}", "--window-size=1200,900"]}}
        session = _call(base, "POST", "/session", {"capabilities": {"alwaysMatch": caps}})["sessionId"]
        s = f"/session/{session}"
        try:
            _call(base, "POST", s + "/url", {"url": f"file://{page}"})
            seen = _call(base, "POST", s + "/execute/sync", {"args": [], "script": """
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
    return seen, logs, shot
