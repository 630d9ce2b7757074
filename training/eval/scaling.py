"""A compute scaling law fitted to small runs: L(C) = a * C^b + c, with C = 6 * N * D.

N is the parameter count (non-embedding by default, as Kaplan et al. 2020, arXiv:2001.08361, found
the cleaner law; `total` on request), D the tokens trained on, and 6 N D the usual training-compute
estimate (forward + backward). L is the run's final validation loss (summary.json, `valid_loss.all`).
c is the irreducible loss; b < 0. The fit is least squares in L (scipy's curve_fit, bounded: a > 0,
b in (-5, 0), 0 <= c < the smallest loss) on C scaled by its geometric mean, so that a stays of order
one whatever the units.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Sequence


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class RunPoint:
    run: str
    params: float
    tokens: float
    loss: float

    @property
    def compute(self) -> float:
        return 6.0 * self.params * self.tokens


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class PowerLaw:
    a: float
    b: float
    c: float

    def loss(self, compute: float) -> float:
        return self.a * compute ** self.b + self.c


def read_point(run_dir: str, *, params: str = "non_embedding") -> RunPoint:
    path = os.path.join(run_dir, "summary.json")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} does not exist: is {run_dir} a finished `refinery train pretrain` run?")
    with open(path, encoding="utf-8") as f:
        summary = json.load(f)
    loss = (summary.get("valid_loss") or {}).get("all")
    if loss is None:
        raise ValueError(f"{path}: no final validation loss (valid_loss.all)")
    return RunPoint(run=run_dir, params=float(summary["parameters"][params]), tokens=float(summary["tokens"]),
                    loss=float(loss))


def fit_power_law(compute: Sequence[float], loss: Sequence[float]) -> PowerLaw:
    """Least-squares a, b, c of loss = a * compute^b + c; needs at least four points (three unknowns + one)."""
    import numpy as np
    from scipy.optimize import curve_fit

    x, y = np.asarray(compute, dtype=np.float64), np.asarray(loss, dtype=np.float64)
    if len(x) < 4:
        raise ValueError(f"a scaling fit needs at least 4 runs, got {len(x)}")
    scale = float(np.exp(np.mean(np.log(x))))  # geometric mean: x / scale is of order one

    def model(u, a, b, c):
        return a * u ** b + c

    # start: c below the smallest loss, b from the slope of log(L - c) against log C
    c0 = float(y.min()) * 0.9
    slope = np.polyfit(np.log(x / scale), np.log(np.maximum(y - c0, 1e-12)), 1)[0]
    a0 = float(np.exp(np.mean(np.log(np.maximum(y - c0, 1e-12)) - slope * np.log(x / scale))))
    # a > 0, b < 0 (loss falls with compute), 0 <= c < min(L) (an irreducible loss, below every run)
    bounds = ([0.0, -5.0, 0.0], [np.inf, 0.0, float(y.min())])
    p0 = (max(a0, 1e-9), min(max(slope, -4.9), -1e-3), min(max(c0, 0.0), float(y.min()) * 0.999))
    (a, b, c), _ = curve_fit(model, x / scale, y, p0=p0, bounds=bounds, maxfev=20000)
    return PowerLaw(a=float(a * scale ** (-b)), b=float(b), c=float(c))


def fit_runs(points: Sequence[RunPoint], holdout: RunPoint | None = None) -> dict:
    law = fit_power_law([p.compute for p in points], [p.loss for p in points])
    report = {"law": dataclasses.asdict(law), "formula": "L(C) = a * C^b + c, C = 6 * params * tokens",
              "points": [{**dataclasses.asdict(p), "compute": p.compute, "fitted": law.loss(p.compute)} for p in points]}
    if holdout is not None:
        predicted = law.loss(holdout.compute)
        report["holdout"] = {**dataclasses.asdict(holdout), "compute": holdout.compute, "predicted": predicted,
                             "error": predicted - holdout.loss,
                             "relative_error": (predicted - holdout.loss) / holdout.loss}
    return report


def plot_fit(report: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    law = PowerLaw(**report["law"])
    xs = [p["compute"] for p in report["points"]]
    hold = report.get("holdout")
    lo, hi = min(xs + ([hold["compute"]] if hold else [])), max(xs + ([hold["compute"]] if hold else []))
    grid = [lo * (hi / lo) ** (i / 99) for i in range(100)] if hi > lo else [lo]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(grid, [law.loss(c) for c in grid], label=f"fit: {law.a:.3g} C^{law.b:.3f} + {law.c:.3f}")
    ax.scatter(xs, [p["loss"] for p in report["points"]], label="runs (fitted)", zorder=3)
    if hold:
        ax.scatter([hold["compute"]], [hold["loss"]], marker="*", s=120, label="held-out run", zorder=3)
    ax.set_xscale("log")
    ax.set_xlabel("training compute C = 6 N D (FLOPs)")
    ax.set_ylabel("validation loss")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def format_fit(report: dict) -> str:
    law = report["law"]
    lines = [f"L(C) = {law['a']:.6g} * C^{law['b']:.5f} + {law['c']:.5f}   (C = 6 * params * tokens)",
             f"{'run':<40}{'compute':>12}{'loss':>9}{'fitted':>9}"]
    for p in report["points"]:
        lines.append(f"{os.path.basename(p['run'].rstrip('/')):<40}{p['compute']:>12.4g}{p['loss']:>9.4f}"
                     f"{p['fitted']:>9.4f}")
    if "holdout" in report:
        h = report["holdout"]
        lines.append(f"held out {os.path.basename(h['run'].rstrip('/'))}: C {h['compute']:.4g}, loss {h['loss']:.4f}, "
                     f"predicted {h['predicted']:.4f} (error {h['error']:+.4f}, {100 * h['relative_error']:+.2f}%)")
    if not all(math.isfinite(v) for v in law.values()):
        lines.append("the fit did not converge")
    return "\n".join(lines)
