"""`refinery report` on a training run folder: the tiny session run, with the evaluations the CLI writes
(eval ppl, eval generate, eval mc), an evaluation JSON whose shape the report does not know, and a scaling fit;
the page holds the loss curves and tables from the run's own files, and renders in headless Chromium
without errors. A folder that is neither kind of run is refused with a message."""

import json
import os
import shutil
import subprocess
import sys

import pytest

pytest.importorskip("megatron.core")
pytest.importorskip("matplotlib", reason="`refinery report` needs matplotlib")

from browser import dump_dom, open_in_webdriver  # noqa: E402  (tests/browser.py)

from jobs.training_report import _domain_running_mean, render_generic  # noqa: E402
from training.loop.metrics import read_metrics  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SECTIONS = ["Run", "Loss", "Loss per domain", "Learning rate and gradient norm", "Throughput", "Mixture",
            "Evaluations", "Scaling fit"]
MC_TASKS = os.path.join(REPO, "tests", "training", "mc_fixture", "mmlu")  # `refinery eval mc` on real questions
# An evaluation result in a shape the report has no table for: shown generically.
MC = {"task": "tiny-cloze", "accuracy": 0.375, "by_domain": {"books": {"accuracy": 0.5, "items": 4}},
      "items": [{"question": "To be, or not to", "choices": ["be", "go"], "answer": 0, "predicted": 1}]}


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "jobs.cli", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def report(tiny_pretrain_run, tiny_tokenizer, tmp_path_factory):
    """A copy of the session run (so the shared folder is left as it was), its evaluations written by the
    CLI, then `refinery report` on it. Returns (run folder, HTML path, HTML text)."""
    from training.eval.scaling import RunPoint, fit_runs

    _, trained = tiny_pretrain_run
    run = tmp_path_factory.mktemp("report") / "run"
    shutil.copytree(trained, run, ignore=shutil.ignore_patterns("eval", "index-cache"))
    done = _cli("eval", "ppl", str(run))
    assert done.returncode == 0, done.stderr[-2000:]
    prompts = run.parent / "prompts.txt"
    prompts.write_text("ROMEO. O, she doth\nTo be, or not to be\n")
    done = _cli("eval", "generate", str(run), "--prompts", str(prompts), "--tokenizer", tiny_tokenizer,
                "--max-tokens", "6")
    assert done.returncode == 0, done.stderr[-2000:]
    done = _cli("eval", "mc", str(run), "--tokenizer", tiny_tokenizer, "--tasks", MC_TASKS, "--shots", "0",
                "--seq-length", "1024")
    assert done.returncode == 0, done.stderr[-2000:]
    (run / "eval" / "mc-unknown-shape.json").write_text(json.dumps(MC))
    # a fit over four points on L = 2 C^-0.1 + 1 (compute ~ 1e12..1e15), saved as `scaling fit --json` prints it
    points = [RunPoint(run=f"runs/s{i}", params=1e5 * 2 ** i, tokens=1e6 * 2 ** i, loss=0.0) for i in range(4)]
    points = [RunPoint(run=p.run, params=p.params, tokens=p.tokens, loss=2 * p.compute ** -0.1 + 1) for p in points]
    (run / "eval" / "scaling-fit.json").write_text(json.dumps(fit_runs(points)))
    out = run.parent / "report.html"
    done = _cli("report", str(run), "--out", str(out))
    assert done.returncode == 0, done.stderr[-2000:]
    assert str(out) in done.stdout
    return run, out, out.read_text()


def test_the_page_holds_the_curves_and_the_runs_numbers(report):
    run, _, html = report
    for section in SECTIONS:
        assert f">{section}</h2>" in html
    for alt in ("loss curve", "train loss per domain", "validation loss per domain", "learning rate and gradient norm",
                "throughput", "perplexity per domain", "scaling fit scaling-fit.json"):
        assert f'<img alt="{alt}" src="data:image/png;base64,' in html, alt
    metrics = read_metrics(os.path.join(run, "metrics.jsonl"))
    assert [m["step"] for m in metrics] == [1, 2, 3]
    final = metrics[-1]["valid_loss"]
    for domain in ("arxiv", "books", "wikipedia"):  # the validation table: the run's own numbers
        assert f"<td>{final[domain]:.4f}</td>" in html
    ppl = json.loads((run / "eval" / "ppl-step-00000003.json").read_text())
    assert f"<td>{ppl['overall']['perplexity']:.2f}</td>" in html
    assert "ROMEO. O, she doth" in html  # the generations
    assert "by_domain.books.accuracy" in html and "To be, or not to" in html  # the unknown shape, generically
    mc = json.loads((run / "eval" / "mc-step-00000003-mmlu-0shot.json").read_text())  # eval mc's own file
    assert "<h3>mc-step-00000003-mmlu-0shot.json</h3>" in html
    assert f'<td class="l">acc.macro</td><td class="l">{mc["acc"]["macro"]:.4f}</td>' in html
    assert "C<sup>-0.1000</sup> + 1.0000" in html  # the scaling law recovered from its four points
    assert "MFU (GPU runs only): not computed in this run." in html


def test_the_page_renders_in_chromium_without_errors(report, tmp_path):
    _, path, _ = report
    dom, console = dump_dom(path, tmp_path / "profile")
    assert dom.count("<img") >= 7 and console == []
    page, logs, shot = open_in_webdriver(path, tmp_path / "profile-wd")
    assert page["title"] == "refinery training report: run"
    assert page["sections"] == SECTIONS
    broken = [alt for alt, complete, width in page["images"] if not (complete and width > 0)]
    assert len(page["images"]) >= 7 and broken == []
    assert page["external"] == []
    assert [entry["message"] for entry in logs if entry["level"] in ("SEVERE", "WARNING")] == []
    assert shot.startswith(b"\x89PNG")
    (tmp_path / "report.png").write_bytes(shot)  # left for a person to look at


def test_a_folder_that_is_neither_kind_of_run_is_refused(tmp_path):
    (tmp_path / "config.resolved.yaml").write_text("config: {}\n")  # half a training run: no metrics.jsonl
    done = _cli("report", str(tmp_path))
    assert done.returncode == 2
    assert "is neither a corpus run (stats.json" in done.stderr and "nor a training run" in done.stderr
    assert not (tmp_path / "report.html").exists()
    done = _cli("report", str(tmp_path / "missing"))
    assert done.returncode == 2 and "is not a folder" in done.stderr


def test_domain_curve_is_a_token_weighted_running_mean_over_the_steps_a_domain_appeared_in():
    metrics = [{"step": 1, "domain_loss": {"a": 4.0}, "domain_tokens": {"a": 1}},
               {"step": 2, "domain_loss": {"b": 9.0}, "domain_tokens": {"b": 5}},
               {"step": 3, "domain_loss": {"a": 1.0}, "domain_tokens": {"a": 3}},
               {"step": 4, "domain_loss": {"a": 2.0}, "domain_tokens": {"a": 1}}]
    assert _domain_running_mean(metrics, "a", 2) == ([1, 3, 4], [4.0, (4 * 1 + 1 * 3) / 4, (1 * 3 + 2 * 1) / 4])


def test_an_unknown_evaluation_shape_shows_its_scalars_and_records():
    html = render_generic(MC)
    assert "<td class=\"l\">accuracy</td><td class=\"l\">0.3750</td>" in html
    assert "items: 1 record(s)" in html and "<th class=\"l\">predicted</th>" in html
    assert "[&quot;be&quot;, &quot;go&quot;]" in html  # nested values as JSON, escaped
