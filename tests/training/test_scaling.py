"""Scaling fit: known a, b, c recovered from synthetic points; the CLI on run folders; the held-out error."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from training.eval.scaling import PowerLaw, fit_power_law

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize("a,b,c", [(2.0e3, -0.25, 1.7), (406.4, -0.155, 2.1), (30.0, -0.08, 0.5)])
def test_known_law_is_recovered_within_5_percent(a, b, c):
    law = PowerLaw(a=a, b=b, c=c)
    compute = np.logspace(15, 19, 6)
    rng = np.random.default_rng(0)
    loss = [law.loss(x) * (1 + rng.normal(0, 2e-4)) for x in compute]  # 0.02% noise
    fitted = fit_power_law(compute, loss)
    assert fitted.a == pytest.approx(a, rel=0.05)
    assert fitted.b == pytest.approx(b, rel=0.05)
    assert fitted.c == pytest.approx(c, rel=0.05)


def test_fewer_than_four_runs_are_refused():
    with pytest.raises(ValueError, match="at least 4"):
        fit_power_law([1e15, 1e16, 1e17], [3.0, 2.8, 2.7])


def _run(root, name, params, tokens, loss):
    run = root / name
    run.mkdir()
    (run / "summary.json").write_text(json.dumps({"parameters": {"non_embedding": params, "total": params * 2},
                                                  "tokens": tokens, "valid_loss": {"all": loss}}))
    return str(run)


def test_cli_fits_runs_predicts_the_holdout_and_plots(tmp_path):
    law = PowerLaw(a=1.5e3, b=-0.2, c=1.9)
    runs = [_run(tmp_path, f"r{i}", n, 20 * n, law.loss(6 * n * 20 * n)) for i, n in enumerate([1e5, 3e5, 1e6, 3e6, 1e7])]
    big = 1e8
    holdout = _run(tmp_path, "big", big, 20 * big, law.loss(6 * big * 20 * big) + 0.01)
    plot = tmp_path / "fit.png"
    done = subprocess.run([sys.executable, "-m", "jobs.cli", "scaling", "fit", *runs, "--holdout", holdout,
                           "--plot", str(plot), "--json"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["law"]["b"] == pytest.approx(-0.2, rel=0.05)
    assert report["holdout"]["error"] == pytest.approx(-0.01, abs=2e-3)
    assert plot.stat().st_size > 1000
