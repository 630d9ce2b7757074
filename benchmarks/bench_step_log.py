"""What `refinery run`'s step log costs: a command's output written straight to a file, against the same
command run through jobs/pipeline/child.py (output copied to the same file and appended to the step's log).

The command is `cat` of real text (the sample corpus's files, repeated up to --mb MB), so all the time is
output handling. Both ways run in this process tree, alternating, after one untimed round each; printed:
median wall and CPU seconds (this process + its children), MB/s per CPU second, and the ratio.

    .venv/bin/python benchmarks/bench_step_log.py [--mb 200] [--rounds 5]
"""

from __future__ import annotations

import argparse
import glob
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from jobs.pipeline.child import run_logged  # noqa: E402

SAMPLES = os.path.expanduser("~/.cache/refinery/samples")


def text_files(megabytes: float) -> list[str]:
    files = sorted(p for p in glob.glob(os.path.join(SAMPLES, "**", "*"), recursive=True)
                   if os.path.isfile(p) and os.path.getsize(p) > 10_000)
    if not files:
        sys.exit(f"no sample files under {SAMPLES}: run `refinery samples fetch` first")
    out, size = [], 0
    while size < megabytes * 1e6:  # repeat the list until the output is as large as asked
        for p in files:
            out.append(p)
            size += os.path.getsize(p)
            if size >= megabytes * 1e6:
                break
    return out


def cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def direct(argv: list[str], out: str) -> tuple[float, float]:
    wall, c = time.perf_counter(), cpu()
    with open(out, "wb") as f:
        subprocess.run(argv, stdout=f, check=True)
    return time.perf_counter() - wall, cpu() - c


def through_step_log(argv: list[str], out: str, log: str) -> tuple[float, float]:
    wall, c = time.perf_counter(), cpu()
    saved = sys.stdout
    with open(out, "w") as f:
        sys.stdout = f  # what the terminal is for `refinery run`
        try:
            result = run_logged(argv, log_path=log, header="bench")
        finally:
            sys.stdout = saved
    assert result.code == 0
    return time.perf_counter() - wall, cpu() - c


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=float, default=200.0, help="output size")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    argv = ["cat", *text_files(args.mb)]
    with tempfile.TemporaryDirectory() as tmp:
        out, log = os.path.join(tmp, "out"), os.path.join(tmp, "step.log")
        times = {"direct": [], "step log": []}
        for r in range(args.rounds + 1):
            for name in (("direct", "step log") if r % 2 else ("step log", "direct")):
                if os.path.exists(log):
                    os.remove(log)
                took = direct(argv, out) if name == "direct" else through_step_log(argv, out, log)
                if r:  # round 0 warms the page cache and both code paths
                    times[name].append(took)
        mb = os.path.getsize(out) / 1e6
        assert os.path.getsize(log) > os.path.getsize(out)  # the log holds the output and its two lines
    print(f"output {mb:.0f} MB of sample text, {args.rounds} rounds (median)")
    print(f"{'':<10}{'wall s':>9}{'CPU s':>9}{'MB per CPU s':>14}")
    med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for k, v in times.items()}
    for name, (w, c) in med.items():
        print(f"{name:<10}{w:>9.2f}{c:>9.2f}{mb / c:>14.0f}")
    (dw, dc), (lw, lc) = med["direct"], med["step log"]
    print(f"step log / direct: wall {lw / dw:.2f}x, CPU {lc / dc:.2f}x; added CPU per GB of output: "
          f"{(lc - dc) / mb * 1000:.1f} s")


if __name__ == "__main__":
    main()
