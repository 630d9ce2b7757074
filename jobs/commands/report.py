"""`refinery report RUN_DIR [--out FILE]`: one self-contained HTML page about a finished run (per-source
funnel, drop reasons, languages, perplexity, quality, duplicate clusters, throughput)."""

from __future__ import annotations

import sys


def register(subparsers) -> None:
    report = subparsers.add_parser("report", help="write an HTML report (with charts) of a run folder")
    report.add_argument("run_dir", help="<output>/<job name> of a finished `refinery build`")
    report.add_argument("--out", default=None, help="HTML file to write (default: RUN_DIR/report.html)")
    report.set_defaults(handler=_report)


def _report(args) -> int:
    from corpus.report import ReportError, write_report

    try:
        out = write_report(args.run_dir, args.out)
    except (ReportError, FileNotFoundError, ImportError) as exc:
        print(f"refinery: {exc}", file=sys.stderr)
        return 2
    print(f"report: {out}")
    return 0
