"""The report of a real run, opened in Debian's headless Chromium as a person would open it: every
section shows, every chart decodes, and the browser logs no error (tests/browser.py; without Chromium
these tests skip and say so)."""

import pytest

pytest.importorskip("matplotlib", reason="`refinery report` needs matplotlib")
pytestmark = pytest.mark.slow  # a real Ray run with two dedup phases (shared by the module)

from browser import dump_dom, open_in_webdriver  # noqa: E402  (tests/browser.py)

from corpus.report import write_report  # noqa: E402

SECTIONS = ["Phases", "Per-source funnel", "Language distribution", "Perplexity", "Quality score",
            "Duplicate clusters", "Throughput per phase"]


@pytest.fixture(scope="module")
def report(real_run, tmp_path_factory):
    run_dir, _ = real_run
    return write_report(run_dir, str(tmp_path_factory.mktemp("html") / "report.html"))


def test_dump_dom_shows_every_section_without_console_errors(report, tmp_path):
    dom, console = dump_dom(report, tmp_path / "profile")
    for section in SECTIONS:
        assert f">{section}</h2>" in dom
    assert dom.count("<img") >= 6
    assert console == []


def test_webdriver_sees_every_chart_decoded_and_no_browser_errors(report, tmp_path):
    page, logs, shot = open_in_webdriver(report, tmp_path / "profile")
    assert page["title"] == "refinery report: report"
    assert page["sections"] == SECTIONS
    assert len(page["images"]) >= 6
    broken = [alt for alt, complete, width in page["images"] if not (complete and width > 0)]
    assert broken == []
    assert page["external"] == []  # the page fetched nothing: data: images are not resource loads
    assert [entry["message"] for entry in logs if entry["level"] in ("SEVERE", "WARNING")] == []
    assert shot.startswith(b"\x89PNG") and len(shot) > 10_000
    (tmp_path / "report.png").write_bytes(shot)  # left for a person to look at
