"""`refinery report RUN_DIR [--out FILE] [--scaling FILE ...]`: one self-contained HTML page about a run
folder. A pipeline run (`refinery run`: pipeline.json) gets one page linking every step (jobs/pipeline/report.py);
a corpus run (`refinery build`: stats.json) gets the corpus report (per-source funnel, drop
reasons, languages, perplexity, quality, duplicate clusters, throughput); a training run (`refinery
train pretrain`: config.resolved.yaml + metrics.jsonl) gets the training report (loss curves overall and
per domain, lr, throughput, mixture, evaluations in eval/, scaling fit)."""

from __future__ import annotations

import os
import sys


def register(subparsers) -> None:
    report = subparsers.add_parser("report", help="write an HTML report (with charts) of a corpus or training run")
    report.add_argument("run_dir", help="<output>/<job name> of `refinery build`, or the run folder of "
                                        "`refinery train pretrain`")
    report.add_argument("--out", default=None, help="HTML file to write (default: RUN_DIR/report.html)")
    report.add_argument("--scaling", action="append", default=[], metavar="FILE",
                        help="training runs: a scaling fit to show, the JSON of `refinery scaling fit --json` or "
                             "the PNG of its --plot (repeatable; eval/scaling*.json|png are shown anyway)")
    report.set_defaults(handler=_report)


def _report(args) -> int:
    from corpus.report import ReportError, write_report
    from corpus.runtime.layout import STATS
    from jobs.pipeline.report import is_pipeline_run, write_pipeline_report
    from jobs.training_report import TrainingReportError, is_training_run, write_training_report

    remote = "://" in args.run_dir  # a corpus run on object storage (fsspec); training runs are local folders
    try:
        if not remote and is_pipeline_run(args.run_dir):
            out = write_pipeline_report(args.run_dir, args.out)
        elif not remote and is_training_run(args.run_dir):
            out = write_training_report(args.run_dir, args.out, args.scaling)
        elif remote or os.path.exists(os.path.join(args.run_dir, STATS)):
            if args.scaling:
                print("refinery: --scaling is for training runs; this is a corpus run", file=sys.stderr)
                return 2
            out = write_report(args.run_dir, args.out)
        else:
            kinds = ("a corpus run (stats.json, written by `refinery build`) {} a training run "
                     "(config.resolved.yaml + metrics.jsonl, written by `refinery train pretrain`)")
            problem = (f"is neither {kinds.format('nor')}" if os.path.isdir(args.run_dir)
                       else f"is not a folder; expected {kinds.format('or')}")
            print(f"refinery: {args.run_dir} {problem}", file=sys.stderr)
            return 2
    except (ReportError, TrainingReportError, FileNotFoundError, ImportError) as exc:
        print(f"refinery: {exc}", file=sys.stderr)
        return 2
    print(f"report: {out}")
    return 0
