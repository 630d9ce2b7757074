"""The pipeline's page (`refinery report RUN_DIR` on a `refinery run` folder): one self-contained HTML page
that links every step and shows what each one made: the corpus funnel, the mixture weights (natural vs.
DoReMi), the loss curves, the reward model's accuracy, PPO's reward and KL, and the evaluation tables.

Everything is read from the step folders, the files a user would open themselves: the corpus run's
stats.json, mixture-weights files, each training run's metrics.jsonl / summary.json / eval/.
"""

from __future__ import annotations

import glob
import json
import os
from typing import Any

import yaml

from corpus.report import page, plots
from jobs.pipeline.runner import PIPELINE_FILE, log_path, state_path
from training.loop.metrics import read_metrics

MIXTURE_FORMAT = "refinery-mixture-weights-v1"


def is_pipeline_run(run_dir: str) -> bool:
    return os.path.isfile(os.path.join(run_dir, PIPELINE_FILE))


def write_pipeline_report(run_dir: str, out: str | None = None) -> str:
    from schemas.atomic_files import write_atomic

    out = out or os.path.join(run_dir, "report.html")
    write_atomic(out, render(run_dir, os.path.dirname(os.path.abspath(out))))
    return out


def _json(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _steps(run_dir: str) -> list[dict]:
    """Each step of pipeline.json with its state file (status, seconds, commands) and folder."""
    doc = _json(os.path.join(run_dir, PIPELINE_FILE)) or {}
    out = []
    for name in doc.get("steps", []):
        state = _json(state_path(run_dir, name)) or {}
        out.append({"name": name, "folder": os.path.join(run_dir, name), "run_dir": run_dir, **state})
    return out


def _training_runs(folder: str) -> list[tuple[str, str]]:
    """(kind, path) of every training run folder (config.resolved.yaml + metrics.jsonl) in a step's folder."""
    found = []
    for cfg in sorted(glob.glob(os.path.join(folder, "**", "config.resolved.yaml"), recursive=True)):
        run = os.path.dirname(cfg)
        if os.path.exists(os.path.join(run, "metrics.jsonl")):
            with open(cfg, encoding="utf-8") as f:
                kind = (yaml.safe_load(f) or {}).get("kind", "pretrain")
            found.append((kind, run))
    return found


def render(run_dir: str, page_dir: str) -> str:
    steps = _steps(run_dir)
    name = os.path.basename(os.path.abspath(run_dir))
    runs = {s["name"]: _training_runs(s["folder"]) for s in steps}
    body = [f"<h1>Pipeline {page.escape(name)}</h1>",
            "<p class=\"note\">Every step is a refinery command writing its own folder; "
            "<code>steps/&lt;step&gt;.json</code> holds its commands and fingerprint, "
            "<code>steps/&lt;step&gt;.log</code> everything its commands printed.</p>",
            _steps_table(steps, page_dir), _corpus(steps, page_dir), _mixture(steps, runs),
            _losses(steps, runs), _reward_model(runs), _ppo(runs), _evaluations(steps, runs)]
    return page.document(f"refinery pipeline {name}", body)


def _link(path: str, page_dir: str, text: str) -> str:
    rel = os.path.relpath(path, page_dir)
    return f'<a href="{page.escape(rel)}">{page.escape(text)}</a>'


def _steps_table(steps: list[dict], page_dir: str) -> str:
    rows = []
    for s in steps:
        reports = sorted(glob.glob(os.path.join(s["folder"], "**", "report.html"), recursive=True))
        links = " ".join(_link(r, page_dir, os.path.relpath(os.path.dirname(r), s["folder"]).replace(".", "report"))
                         for r in reports)
        commands = "<br>".join(page.escape(" ".join(c)) for c in s.get("commands", []))
        log = log_path(s["run_dir"], s["name"])
        log_link = _link(log, page_dir, "log") if os.path.isfile(log) else ""
        status = s.get("status", "not run")
        if status == "running" and any(c[1:] == ["report", s["run_dir"]] for c in s.get("commands", [])):
            status = "writing this page"
        rows.append(f"<tr><td class=\"l\">{_link(s['folder'], page_dir, s['name'])}</td>"
                    f"<td class=\"l\">{page.escape(status)}</td>"
                    f"<td>{page.escape(s.get('seconds', ''))}</td><td class=\"l\">{log_link}</td>"
                    f"<td class=\"l\">{links}</td>"
                    f"<td class=\"l\" style=\"font-size:.8em\">{commands}</td></tr>")
    head = "".join(f"<th class=\"l\">{h}</th>"
                   for h in ("step", "status", "seconds", "output", "reports", "commands"))
    return "<h2>Steps</h2><table><tr>" + head + "</tr>" + "".join(rows) + "</table>"


def _corpus(steps: list[dict], page_dir: str) -> str:
    from corpus.runtime.layout import STATS

    out = ["<h2>Corpus</h2>"]
    for s in steps:
        for stats_path in sorted(glob.glob(os.path.join(s["folder"], "*", STATS))):
            stats = _json(stats_path) or {}
            phases = stats.get("phases", [])
            if not phases:
                continue
            rows = [[p["name"], p["rows_in"], p["rows_kept"], p["rows_rejected"]] for p in phases]
            out.append(f"<p>{_link(os.path.dirname(stats_path), page_dir, os.path.relpath(os.path.dirname(stats_path), os.path.dirname(s['folder'])))}"
                       f": documents per phase (its own report has the drop reasons per source).</p>")
            out.append(page.table(["phase", "in", "kept", "rejected"], rows))
            drops = [[p["name"], stage, reason, n] for p in phases for stage, reasons in p.get("dropped", {}).items()
                     for reason, n in reasons.items()]
            if drops:
                out.append(page.table(["phase", "stage", "reason", "documents"], sorted(drops, key=lambda r: -r[3]), 3))
            out.append(page.img(plots.funnel([p["name"] for p in phases],
                                             {"kept": [p["rows_kept"] for p in phases]},
                                             "documents kept after each phase"), "corpus funnel"))
    return "\n".join(out) if len(out) > 1 else out[0] + page.absent("a corpus build")


def _mixture(steps: list[dict], runs: dict[str, list]) -> str:
    files = {}
    for s in steps:
        if os.path.exists(os.path.join(s["folder"], "config.resolved.yaml")):
            continue  # a training run's mixture.json repeats the file it was given; its realized share is below
        for path in sorted(glob.glob(os.path.join(s["folder"], "*.json"))):
            doc = _json(path)
            if isinstance(doc, dict) and doc.get("format") == MIXTURE_FORMAT:
                method = (doc.get("provenance") or {}).get("method", os.path.basename(path))
                files[f"{method} ({s['name']})"] = doc["weights"]
    for s in steps:
        for kind, run in runs[s["name"]]:
            summary = _json(os.path.join(run, "summary.json")) or {}
            # a step's own pretraining run, not DoReMi's reference and proxy runs inside its folder
            if kind == "pretrain" and os.path.abspath(run) == os.path.abspath(s["folder"]) \
                    and summary.get("realized_token_share"):
                files[f"realized share ({s['name']})"] = summary["realized_token_share"]
    if not files:
        return "<h2>Mixture weights</h2>" + page.absent("mixture weights")
    domains = sorted({d for w in files.values() for d in w})
    rows = [[d] + [files[k].get(d, 0.0) for k in files] for d in domains]
    plt = plots.pyplot()
    fig, ax = plt.subplots(figsize=(8, 3.2))
    width = 0.8 / len(files)
    for i, (label, w) in enumerate(files.items()):
        ax.bar([j + i * width for j in range(len(domains))], [w.get(d, 0.0) for d in domains], width, label=label)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(domains))], domains)
    ax.set_ylabel("share of training samples")
    ax.legend(fontsize=8)
    return ("<h2>Mixture weights</h2>" + _share_table(["domain"] + list(files), rows)
            + page.img(plots.png(fig), "mixture weights"))


def _share_table(header: list[str], rows: list[list]) -> str:
    return page.table(header, [[r[0]] + [f"{v:.4f}" for v in r[1:]] for r in rows])


def _losses(steps: list[dict], runs: dict[str, list]) -> str:
    series, valid = {}, {}
    for step, found in runs.items():
        for kind, run in found:
            if kind not in ("pretrain", "sft"):
                continue
            label = f"{step}: {os.path.relpath(run, os.path.dirname(os.path.dirname(run)))}" if len(found) > 1 else step
            metrics = read_metrics(os.path.join(run, "metrics.jsonl"))
            train = [(m["step"], m["loss"]) for m in metrics if "loss" in m and m.get("loss") is not None]
            held = [(m["step"], m["valid_loss"]["all"] if isinstance(m["valid_loss"], dict) else m["valid_loss"])
                    for m in metrics if m.get("valid_loss") is not None]
            if train:
                series[label] = tuple(zip(*train))
            if held:
                valid[label] = tuple(zip(*held))
    if not series:
        return "<h2>Loss curves</h2>" + page.absent("training runs")
    out = ["<h2>Loss curves</h2>", page.img(plots.lines(series, "training loss (nats/token)", "training loss"),
                                            "training loss")]
    if valid:
        out.append(page.img(plots.lines(valid, "held-out loss", "held-out loss", marker="o"), "held-out loss"))
    return "\n".join(out)


def _reward_model(runs: dict[str, list]) -> str:
    rows = []
    for step, found in runs.items():
        for kind, run in found:
            if kind == "rm":
                summary = _json(os.path.join(run, "summary.json")) or {}
                rows.append([step] + [summary.get(k) for k in ("valid_accuracy_start", "valid_accuracy",
                                                               "valid_pairs")])
    if not rows:
        return "<h2>Reward model</h2>" + page.absent("a reward model")
    return ("<h2>Reward model</h2><p>Held-out pairwise accuracy (better answer scored higher), before and after "
            "training (0.5 is chance).</p>"
            + page.table(["run", "accuracy at step 0", "accuracy at the end", "pairs"],
                         [[r[0]] + ["" if v is None else v for v in r[1:]] for r in rows]))


def _ppo(runs: dict[str, list]) -> str:
    out = []
    for step, found in runs.items():
        for kind, run in found:
            if kind != "ppo":
                continue
            metrics = [m for m in read_metrics(os.path.join(run, "metrics.jsonl")) if "reward" in m]
            if not metrics:
                continue
            xs = [m["step"] for m in metrics]
            out.append(page.img(plots.lines({"reward": (xs, [m["reward"] for m in metrics])}, "reward",
                                            f"{step}: mean reward per iteration", marker="o"), "PPO reward"))
            out.append(page.img(plots.lines({"KL to the SFT policy": (xs, [m["kl"] for m in metrics])},
                                            "nats per response", f"{step}: KL", marker="o"), "PPO KL"))
            if any("ptx_loss" in m for m in metrics):
                out.append(page.table(["iteration", "reward", "kl", "ptx loss"],
                                      [[str(m["step"]), m["reward"], m["kl"], m.get("ptx_loss", 0.0)]
                                       for m in metrics]))
    return "<h2>PPO</h2>" + ("\n".join(out) if out else page.absent("a PPO run"))


def _evaluations(steps: list[dict], runs: dict[str, list]) -> str:
    ppl, mc, gens = {}, [], []
    for step, found in runs.items():
        for kind, run in found:
            for path in sorted(glob.glob(os.path.join(run, "eval", "ppl-step-*.json"))):
                doc = _json(path) or {}
                ppl[step] = {d: v["perplexity"] for d, v in doc.get("domains", {}).items()}
                ppl[step]["overall"] = doc.get("overall", {}).get("perplexity")
            for path in sorted(glob.glob(os.path.join(run, "eval", "mc-step-*.json"))):
                doc = _json(path) or {}
                acc = doc.get("acc") or {}
                mc.append([step, os.path.basename(path), acc.get("micro"), acc.get("macro"),
                           sum(s["questions"] for s in acc.get("subjects", {}).values()), doc.get("random_baseline")])
            for path in sorted(glob.glob(os.path.join(run, "eval", "generate-step-*.jsonl"))):
                with open(path, encoding="utf-8") as f:
                    for line in f:
                        row = json.loads(line)
                        gens.append([step, row["prompt"], row["completion"]])
    out = ["<h2>Evaluation</h2>"]
    if ppl:
        domains = sorted({d for v in ppl.values() for d in v if d != "overall"}) + ["overall"]
        out.append("<h3>Held-out perplexity per domain</h3>")
        out.append(page.table(["model"] + domains, [[m] + [v.get(d) if v.get(d) is not None else "" for d in domains]
                                                    for m, v in ppl.items()]))
    if mc:
        out.append("<h3>Multiple choice</h3>")
        out.append(page.table(["model", "file", "micro accuracy", "macro accuracy", "questions", "chance"],
                              [[r[0], r[1]] + ["" if v is None else v for v in r[2:]] for r in mc], 2))
    if gens:
        out.append("<h3>Sample generations</h3>")
        out.append(page.table(["model", "prompt", "completion"], gens, 3))
    return "\n".join(out) if len(out) > 1 else out[0] + page.absent("evaluations")
