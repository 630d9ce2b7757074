"""The run report: `collect_run` reads a run folder into RunData, `render_html` turns it into one
self-contained HTML page (charts inline, no external URL), `write_report` does both."""

from __future__ import annotations

from corpus.io.files import join, write_atomic
from corpus.report.collect import ReportError, RunData, collect_run
from corpus.report.render import NOT_COMPUTED, render_html


def write_report(run_dir: str, out: str | None = None) -> str:
    """Render the report of `run_dir` to `out` (default `<run_dir>/report.html`); returns the path."""
    html = render_html(collect_run(run_dir))
    out = out or join(run_dir, "report.html")
    write_atomic(out, html)  # a reader (or a browser reload) never sees half a page
    return out


__all__ = ["collect_run", "render_html", "write_report", "RunData", "ReportError", "NOT_COMPUTED"]
