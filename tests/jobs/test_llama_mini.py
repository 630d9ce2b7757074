"""The whole chain end to end: `refinery run jobs/llama_mini.yaml`, killed during pretraining, run again.

jobs/llama_mini.yaml as committed, with fewer training steps (`--set` on its steps) so that it fits CI: models,
corpus, tokenizer, export, natural + DoReMi weights, pretraining, align data, SFT, RM, PPO-ptx, evaluation and
the report, on the real samples. The first run is SIGKILLed (the whole process group, as an OOM killer or a
pre-empted node would) once pretraining has saved a checkpoint; the second run skips every finished step,
resumes pretraining in its folder and finishes the chain; a third run finds nothing to do.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from tests.conftest import REPO
from tests.run_helpers import sample_unavailable

pytest.importorskip("megatron.core")
pytest.importorskip("ray.train")

PIPELINE = os.path.join(REPO, "jobs", "llama_mini.yaml")
FILES = ("llama_mini.yaml", "demo.yaml", "doremi_tiny.yaml", "pretrain_tiny.yaml", "sft_tiny.yaml", "rm_tiny.yaml",
         "ppo_tiny.yaml", "llama_mini_prompts.txt", "demo_corpus")
SHORTER = {"doremi": {"schedule.train_steps": 12, "schedule.warmup_steps": 2, "schedule.eval_interval": 6,
                      "schedule.save_interval": 6},
           "pretrain": {"schedule.train_steps": 30, "schedule.warmup_steps": 3, "schedule.eval_interval": 10,
                        "schedule.save_interval": 10},
           "sft": {"schedule.train_steps": 6, "schedule.warmup_steps": 1, "schedule.eval_interval": 6,
                   "schedule.save_interval": 6},
           "rm": {"schedule.train_steps": 6, "schedule.warmup_steps": 1, "schedule.eval_interval": 6,
                  "schedule.save_interval": 6},
           "ppo": {"ppo.iterations": 2, "run.eval_interval": 2, "run.save_interval": 2}}


def overrides() -> list[str]:
    """--set steps.N.set={...}: each shortened step's `set:` mapping with the shorter schedule added."""
    with open(PIPELINE, encoding="utf-8") as f:
        steps = yaml.safe_load(f)["steps"]
    out = []
    for i, step in enumerate(steps):
        if step["name"] in SHORTER:
            merged = {**step.get("set", {}), **SHORTER[step["name"]]}
            out += ["--set", f"steps.{i}.set=" + json.dumps(merged)]
    return out


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    """A copy of the repository's layout: jobs/ (links to the pipeline and the files it names) and samples/."""
    from jobs.cli import main

    root = tmp_path_factory.mktemp("llama")
    os.makedirs(root / "jobs")
    for name in FILES:
        os.symlink(os.path.join(REPO, "jobs", name), root / "jobs" / name)
    try:
        assert main(["samples", "fetch", "--dest", str(root / "samples")]) == 0
    except Exception as exc:  # a registry that cannot be reached
        sample_unavailable(exc)
    return root


def refinery_run(root, *extra, **popen):
    cmd = [sys.executable, "-m", "jobs.cli", "run", str(root / "jobs" / "llama_mini.yaml"), *overrides(),
           "--set", f"output={root / 'runs'}", *extra]
    return subprocess.Popen(cmd, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, **popen)


@pytest.mark.slow
def test_the_tiny_pipeline_runs_end_to_end_and_resumes_after_a_kill(layout):
    root = layout
    run = root / "runs" / "llama-mini"
    first = refinery_run(root)
    checkpoint = run / "pretrain" / "checkpoints" / "latest"
    deadline = time.monotonic() + 1500
    while not checkpoint.exists() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(1)
    assert checkpoint.exists(), first.communicate()[0][-3000:]
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    state = json.loads((run / "steps" / "pretrain.json").read_text())
    assert state["status"] == "running"

    second = refinery_run(root)
    out = second.communicate(timeout=1800)[0]
    assert second.returncode == 0, out[-4000:]
    for step in ("lm", "quality-model", "corpus", "tokenizer", "export", "mixture", "doremi"):
        assert f"[{step}] unchanged: skipped" in out, step
    assert "[pretrain] was interrupted: resuming" in out
    assert f"report: {os.path.join('runs', 'llama-mini', 'report.html')}" in out or "report.html" in out

    # Every step finished and left its files: the chain on disk.
    names = json.loads((run / "pipeline.json").read_text())["steps"]
    assert all(json.loads((run / "steps" / f"{n}.json").read_text())["status"] == "done" for n in names)
    stats = json.loads((run / "corpus" / "demo" / "stats.json").read_text())
    phases = {p["name"]: p for p in stats["phases"]}
    assert {"lines", "apply-lines", "clean", "filter", "remove"} <= set(phases)
    dropped = {r for p in stats["phases"] for reasons in p["dropped"].values() for r in reasons}
    assert "near_duplicate" in dropped or "exact_duplicate" in dropped
    weights = json.loads((run / "doremi" / "weights.json").read_text())
    assert weights["format"] == "refinery-mixture-weights-v1" and abs(sum(weights["weights"].values()) - 1) < 1e-6
    pretrain = json.loads((run / "pretrain" / "summary.json").read_text())
    assert pretrain["steps"] == 30 and pretrain["weights"] == pytest.approx(weights["weights"])
    assert json.loads((run / "rm" / "summary.json").read_text())["steps"] == 6
    ppo = [json.loads(line) for line in (run / "ppo" / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in ppo if "reward" in m] == [1, 2] and all("ptx_loss" in m for m in ppo if "reward" in m)
    for model in ("pretrain", "sft", "ppo"):
        evals = os.listdir(run / model / "eval")
        assert any(e.startswith("ppl-step-") for e in evals) and any(e.startswith("generate-step-") for e in evals)
    assert any(e.startswith("mc-step-") for e in os.listdir(run / "pretrain" / "eval"))

    page = (run / "report.html").read_text()
    for section in ("<h2>Corpus</h2>", "<h2>Mixture weights</h2>", "<h2>Loss curves</h2>", "<h2>Reward model</h2>",
                    "<h2>PPO</h2>", "<h2>Evaluation</h2>", "doremi", "natural", "near_duplicate"):
        assert section in page, section
    assert "not computed" not in page
    assert (run / "corpus" / "demo" / "report.html").exists() and (run / "pretrain" / "report.html").exists()

    third = refinery_run(root)
    out = third.communicate(timeout=600)[0]
    assert third.returncode == 0 and f"0 step(s) ran, {len(names)} unchanged" in out, out[-2000:]
