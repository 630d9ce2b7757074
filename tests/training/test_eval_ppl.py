"""`refinery eval ppl`: per-domain and overall perplexity equal exp(mean token NLL) computed by hand."""

import json
import math
import os
import tempfile

import pytest
import torch

pytest.importorskip("megatron.core")

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def trained(tiny_pretrain_run):
    """Three steps of a tiny GPT, trained in this process (no Ray), with its run folder (conftest.py)."""
    return tiny_pretrain_run


def _by_hand(cfg, seq_length, samples):
    """Logits of the loaded checkpoint, log-softmax, NLL of each label, summed per domain: no megatron loss."""
    from training.data.blend import collate, open_valid_sets
    from training.loop.checkpoint import latest_checkpoint, load_checkpoint
    from training.loop.optim import build_optimizer
    from training.loop.parallel import ensure_process_group, init_parallel, shutdown_parallel
    from training.model.gpt import build_gpt

    with open(os.path.join(cfg.data.export_dir, "manifest.json")) as f:
        manifest = json.load(f)
    ensure_process_group("gloo")
    init_parallel(tensor=1, pipeline=1, seed=0, on_gpu=False)
    try:
        model = build_gpt(cfg.model, vocab_size=1024)
        load_checkpoint(latest_checkpoint(os.path.join(cfg.output.dir, "checkpoints")), model,
                        build_optimizer(model, cfg.optimizer, on_gpu=False))
        model.eval()
        valid = open_valid_sets(cfg.data.export_dir, manifest, private_dir=tempfile.mkdtemp(), split=cfg.data.split,
                                seq_length=seq_length, seed=cfg.schedule.seed, samples=samples)
        nll, count = {}, {}
        with torch.no_grad():
            for d, ds in valid.items():
                batch = collate([ds[i] for i in range(samples)])
                logits = model(batch["tokens"], batch["position_ids"], None).float()          # [b, s, V]
                logp = torch.log_softmax(logits, dim=-1)
                token_nll = -logp.gather(-1, batch["labels"][..., None])[..., 0]              # [b, s]
                nll[d] = float((token_nll * batch["loss_mask"]).sum())
                count[d] = float(batch["loss_mask"].sum())
    finally:
        shutdown_parallel()
        torch.distributed.destroy_process_group()
    return nll, count


def test_perplexity_is_exp_of_the_mean_token_nll(trained):
    from training.eval.perplexity import evaluate_checkpoint

    cfg, out = trained
    report = evaluate_checkpoint(str(out))
    nll, count = _by_hand(cfg, 32, 5)
    assert sorted(report["domains"]) == sorted(nll) == ["arxiv", "books", "wikipedia"]
    for d, v in report["domains"].items():
        assert v["tokens"] == count[d] == 5 * 32
        assert v["perplexity"] == pytest.approx(math.exp(nll[d] / count[d]), rel=1e-6)
    overall = math.exp(sum(nll.values()) / sum(count.values()))
    assert report["overall"]["perplexity"] == pytest.approx(overall, rel=1e-6)
    assert report["step"] == 3
    # the run's own final validation loss is the same number
    with open(os.path.join(out, "summary.json")) as f:
        assert json.load(f)["valid_loss"]["all"] == pytest.approx(report["overall"]["loss"], abs=1e-6)


def test_cli_prints_a_table_writes_json_and_refuses_a_foreign_tokenizer(trained, tmp_path):
    import shutil
    import subprocess
    import sys

    cfg, out = trained
    done = subprocess.run([sys.executable, "-m", "jobs.cli", "eval", "ppl", str(out), "--seq-length", "16"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "overall" in done.stdout and "perplexity" in done.stdout
    assert json.load(open(os.path.join(out, "eval", "ppl-step-00000003-seq16.json")))["seq_length"] == 16
    foreign = tmp_path / "export"
    shutil.copytree(cfg.data.export_dir, foreign)
    manifest = json.load(open(foreign / "manifest.json"))
    manifest["tokenizer"]["tokenizer_sha256"] = "0" * 64
    json.dump(manifest, open(foreign / "manifest.json", "w"))
    done = subprocess.run([sys.executable, "-m", "jobs.cli", "eval", "ppl", str(out), "--data", str(foreign)],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "tokenizer" in done.stderr


def test_generate_cli_is_seeded_and_checks_the_tokenizer(trained, tiny_tokenizer, tmp_path):
    import subprocess
    import sys

    _, out = trained
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(json.dumps({"prompt": "ROMEO. O, she doth"}) + "\n" + json.dumps({"prompt": ""}) + "\n")
    cmd = [sys.executable, "-m", "jobs.cli", "eval", "generate", str(out), "--prompts", str(prompts),
           "--tokenizer", tiny_tokenizer, "--max-tokens", "8", "--top-p", "0.9", "--seed", "5"]
    first = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr[-2000:]
    rows = [json.loads(line) for line in first.stdout.splitlines()]
    assert [r["prompt"] for r in rows] == ["ROMEO. O, she doth", ""] and all(r["tokens"] <= 8 for r in rows)
    again = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert again.stdout == first.stdout
    other = tmp_path / "tok"
    import shutil

    shutil.copytree(tiny_tokenizer, other)
    cfg_path = other / "refinery_tokenizer.json"
    doc = json.loads(cfg_path.read_text())
    # another tokenizer file (one byte of whitespace more) with its own recorded sha256
    tok_file = other / doc["tokenizer_file"]
    changed = tok_file.read_text().replace('"dropout": null', '"dropout": null ', 1)
    assert changed != tok_file.read_text()
    tok_file.write_text(changed)
    import hashlib

    doc["tokenizer_sha256"] = hashlib.sha256(tok_file.read_bytes()).hexdigest()
    cfg_path.write_text(json.dumps(doc))
    done = subprocess.run(cmd[:6] + ["--prompts", str(prompts), "--tokenizer", str(other)], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "tokenizer" in done.stderr
