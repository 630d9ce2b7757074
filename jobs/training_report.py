"""The report of a training run folder (`refinery train pretrain` output): one self-contained HTML page
with the loss curves (overall, per domain, validation), learning rate and gradient norm, throughput
(tokens/s, MFU on GPU), the mixture, every evaluation found in `<run>/eval/`, and a scaling fit.

It lives in jobs/ because it joins both halves: the page's building blocks and charts come from the
corpus report (corpus/report/page.py, plots.py), the files it reads from the training half
(metrics.jsonl through training.loop.metrics, a scaling fit through training.eval.scaling), and
DESIGN.md keeps corpus/ and training/ from importing each other.

Evaluation files: `ppl-*.json` (`refinery eval ppl`) and `generate-*.jsonl` (`refinery eval
generate`) get their own tables; any other JSON or JSONL there (e.g. a multiple-choice result) is
shown generically (scalars by key path, lists of records as tables), so a new evaluation shows up
before the report knows its shape.
"""

from __future__ import annotations

import base64
import dataclasses
import glob
import io
import json
import math
import os
from typing import Any

import yaml

from corpus.report import page, plots
from training.loop.metrics import read_metrics

CONFIG, METRICS, SUMMARY, MIXTURE = "config.resolved.yaml", "metrics.jsonl", "summary.json", "mixture.json"
GENERIC_ROWS = 50
"""Rows of a generically shown list (the rest are counted, not shown)."""


class TrainingReportError(ValueError):
    """The folder is not a training run, or one of its files cannot be read."""


def is_training_run(run_dir: str) -> bool:
    return all(os.path.isfile(os.path.join(run_dir, name)) for name in (CONFIG, METRICS))


@dataclasses.dataclass(kw_only=True)
class EvalFile:
    name: str
    kind: str
    """ppl | generate | json | jsonl (the last two: shape unknown to the report)."""
    content: Any
    """The parsed JSON document, or the list of JSONL records."""


@dataclasses.dataclass(kw_only=True)
class TrainingRun:
    run_dir: str
    config: dict[str, Any]
    metrics: list[dict[str, Any]]
    summary: dict[str, Any] | None
    mixture: dict[str, Any] | None
    evals: list[EvalFile]
    scaling: list[tuple[str, Any]]
    """(file name, fit report dict from `refinery scaling fit --json`, or base64 PNG from `--plot`)."""


def collect_training_run(run_dir: str, scaling: list[str] = ()) -> TrainingRun:
    """Read the run folder; `scaling`: extra scaling-fit files (JSON or PNG) besides `<run>/eval/scaling*`."""
    if not is_training_run(run_dir):
        raise TrainingReportError(f"{run_dir} is not a training run: no {CONFIG} and {METRICS}")
    with open(os.path.join(run_dir, CONFIG), encoding="utf-8") as f:
        resolved = yaml.safe_load(f) or {}
    metrics = [m for m in read_metrics(os.path.join(run_dir, METRICS)) if isinstance(m.get("step"), int)]
    evals, found_scaling = [], []
    for path in sorted(glob.glob(os.path.join(run_dir, "eval", "*"))):
        name = os.path.basename(path)
        if name.startswith("scaling") and name.endswith((".json", ".png")):
            found_scaling.append(path)
        elif name.endswith(".json"):
            doc = _read_json(path)
            # a file named like eval ppl's but of another shape is shown generically, not refused
            ppl = name.startswith("ppl-") and isinstance(doc, dict) and {"domains", "overall"} <= set(doc)
            evals.append(EvalFile(name=name, kind="ppl" if ppl else "json", content=doc))
        elif name.endswith(".jsonl"):
            rows = _read_jsonl(path)
            generate = name.startswith("generate-") and all(isinstance(r, dict) and "completion" in r for r in rows)
            evals.append(EvalFile(name=name, kind="generate" if generate else "jsonl", content=rows))
    fits = []
    for path in [*found_scaling, *scaling]:
        if path.endswith(".png"):
            with open(path, "rb") as f:
                data = f.read()
            if not data.startswith(b"\x89PNG"):
                raise TrainingReportError(f"{path} is not a PNG file")
            fits.append((os.path.basename(path), base64.b64encode(data).decode("ascii")))
        else:
            fit = _read_json(path)
            if not (isinstance(fit, dict) and "law" in fit and "points" in fit):
                raise TrainingReportError(f"{path} is not a scaling fit: expected the JSON of "
                                          f"`refinery scaling fit --json` (keys law, points)")
            fits.append((os.path.basename(path), fit))
    summary_path, mixture_path = os.path.join(run_dir, SUMMARY), os.path.join(run_dir, MIXTURE)
    return TrainingRun(run_dir=run_dir, config=resolved.get("config", resolved), metrics=metrics,
                       summary=_read_json(summary_path) if os.path.exists(summary_path) else None,
                       mixture=_read_json(mixture_path) if os.path.exists(mixture_path) else None,
                       evals=evals, scaling=fits)


def _read_json(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as exc:
        raise TrainingReportError(f"{path}: not JSON ({exc})") from exc


def _read_jsonl(path: str) -> list[Any]:
    with open(path, encoding="utf-8") as f:
        lines = [line for line in f if line.strip()]
    try:
        return [json.loads(line) for line in lines]
    except json.JSONDecodeError as exc:
        raise TrainingReportError(f"{path}: a line is not JSON ({exc})") from exc


def write_training_report(run_dir: str, out: str | None = None, scaling: list[str] = ()) -> str:
    """Render the report of `run_dir` to `out` (default `<run_dir>/report.html`); returns the path."""
    from training.atomic_files import write_text_atomic

    text = render_training_html(collect_training_run(run_dir, scaling))
    out = out or os.path.join(run_dir, "report.html")
    write_text_atomic(out, text)
    return out


# ---------------------------------------------------------------------------------------------- rendering

def render_training_html(run: TrainingRun) -> str:
    name = os.path.basename(os.path.abspath(run.run_dir))
    body = [f"<h1>refinery training report: {page.escape(name)}</h1>",
            f"<p>run folder <code>{page.escape(run.run_dir)}</code></p>",
            _overview(run), _loss(run), _domain_loss(run), _schedule(run), _throughput(run), _mixture(run),
            _evaluations(run), _scaling(run)]
    return page.document(f"refinery training report: {name}", body)


def _steps(run: TrainingRun, key: str) -> tuple[list[int], list[Any]]:
    rows = [(m["step"], m[key]) for m in run.metrics if m.get(key) is not None]
    return [s for s, _ in rows], [v for _, v in rows]


def _overview(run: TrainingRun) -> str:
    c, s = run.config, run.summary or {}
    model, sched, data = c.get("model", {}), c.get("schedule", {}), c.get("data", {})
    rows = [["model", f"{model.get('num_layers')} layers, hidden {model.get('hidden_size')}, "
                      f"{model.get('num_attention_heads')} heads, {model.get('position')} positions"],
            ["sequence length", str(model.get("seq_length"))],
            ["global batch (samples)", str(sched.get("global_batch_size"))],
            ["steps", f"{run.metrics[-1]['step'] if run.metrics else 0} logged of {sched.get('train_steps')}"],
            ["data", f"{data.get('export_dir')} (mixture {data.get('mixture')}, split {data.get('split')})"]]
    if s:
        params = s.get("parameters", {})
        rows += [["parameters", f"{params.get('total', 0):,} ({params.get('non_embedding', 0):,} non-embedding)"],
                 ["tokens trained on", f"{s.get('tokens', 0):,}"],
                 ["skipped (non-finite) steps", str(s.get("bad_steps"))],
                 ["final validation loss", _fmt(s.get("valid_loss", {}).get("all"))]]
    else:
        rows.append(["summary.json", "absent: the run has not finished"])
    return "<h2 id=\"overview\">Run</h2>" + page.table(["", "value"], rows, left=2)


def _fmt(v) -> str:
    return f"{v:.4f}" if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v)


def _loss(run: TrainingRun) -> str:
    head = "<h2 id=\"loss\">Loss</h2>"
    steps, loss = _steps(run, "loss")
    if not steps:
        return head + page.absent("training loss (metrics.jsonl)")
    vsteps, valid = _steps(run, "valid_loss")
    series = {"train (global batch)": (steps, loss)}
    if vsteps:
        series["validation (all domains)"] = (vsteps, [v.get("all", math.nan) for v in valid])
    return "\n".join([head, page.img(_lines(series, "loss (nats/token)", "loss"), "loss curve"),
                      "<p class=\"note\">Train loss: the token mean over each step's global batch. Validation: "
                      "each domain's fixed validation set at the eval steps, token-weighted.</p>"])


def _domain_loss(run: TrainingRun) -> str:
    head = "<h2 id=\"domain-loss\">Loss per domain</h2>"
    domains = sorted({d for m in run.metrics for d in (m.get("domain_loss") or {})})
    if not domains:
        return head + page.absent("per-domain loss (domain_loss)")
    window = max(1, len(run.metrics) // 20)
    series = {d: _domain_running_mean(run.metrics, d, window) for d in domains}
    out = [head, page.img(_lines(series, "train loss (nats/token)", f"train loss per domain "
                                 f"(running token mean over {window} steps)"), "train loss per domain"),
           f"<p class=\"note\">A domain has few tokens in one step's batch, so each point is the token-weighted "
           f"mean of that domain's loss over the last {window} steps it appeared in.</p>"]
    vsteps, valid = _steps(run, "valid_loss")
    if vsteps:
        vdomains = sorted({d for v in valid for d in v if d != "all"})
        out.append(page.img(_lines({d: (vsteps, [v.get(d, math.nan) for v in valid]) for d in vdomains},
                                   "validation loss (nats/token)", "validation loss per domain", marker="o"),
                            "validation loss per domain"))
        out.append(page.table(["step", *vdomains, "all"],
                              [[str(s), *[_fmt(v.get(d, math.nan)) for d in vdomains], _fmt(v.get("all", math.nan))]
                               for s, v in zip(vsteps, valid)]))
    else:
        out.append(page.absent("validation loss (valid_loss)"))
    return "\n".join(out)


def _domain_running_mean(metrics: list[dict], domain: str, window: int) -> tuple[list[int], list[float]]:
    seen: list[tuple[float, float]] = []  # (loss * tokens, tokens) of the steps the domain appeared in
    steps, values = [], []
    for m in metrics:
        loss, tokens = (m.get("domain_loss") or {}).get(domain), (m.get("domain_tokens") or {}).get(domain, 1)
        if loss is None or not math.isfinite(loss):
            continue
        seen.append((loss * tokens, tokens))
        recent = seen[-window:]
        steps.append(m["step"])
        values.append(sum(a for a, _ in recent) / sum(t for _, t in recent))
    return steps, values


def _schedule(run: TrainingRun) -> str:
    head = "<h2 id=\"schedule\">Learning rate and gradient norm</h2>"
    steps, lr = _steps(run, "lr")
    gsteps, grad = _steps(run, "grad_norm")
    if not steps:
        return head + page.absent("learning rate (lr)")
    plt = plots.pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.2))
    a.plot(steps, lr, color=plots.KEPT)
    a.set_xlabel("step")
    a.set_ylabel("learning rate")
    b.plot(gsteps, grad, color=plots.DROPPED, linewidth=0.8)
    b.set_xlabel("step")
    b.set_ylabel("gradient norm (before clipping)")
    skipped = sum(1 for m in run.metrics if m.get("skipped"))
    return "\n".join([head, page.img(plots.png(fig), "learning rate and gradient norm"),
                      f"<p>{skipped} step(s) skipped for a non-finite loss or gradient.</p>"])


def _throughput(run: TrainingRun) -> str:
    head = "<h2 id=\"throughput\">Throughput</h2>"
    steps, tps = _steps(run, "tokens_per_s")
    if not steps:
        return head + page.absent("throughput (tokens_per_s)")
    msteps, mfu = _steps(run, "mfu")
    series = {"tokens/s": (steps, tps)}
    out = [head, page.img(_lines(series, "tokens / s", "training throughput"), "throughput")]
    if msteps:
        out.append(page.img(_lines({"MFU": (msteps, mfu)}, "model FLOPs utilization", "MFU"), "MFU"))
    else:
        out.append(page.absent("MFU (GPU runs only)"))
    ordered = sorted(tps)
    seconds = sum(m.get("seconds", 0.0) for m in run.metrics)
    rows = [["median tokens/s", f"{ordered[len(ordered) // 2]:,.0f}"],
            ["mean tokens/s", f"{sum(tps) / len(tps):,.0f}"],
            ["step time, summed (s)", f"{seconds:,.1f}"]]
    if msteps:
        rows.append(["median MFU", f"{sorted(mfu)[len(mfu) // 2]:.1%}"])
    _, mem = _steps(run, "max_memory_gib")
    if mem:
        rows.append(["peak GPU memory (GiB)", f"{max(mem):.2f}"])
    out.append(page.table(["", "value"], rows, left=2))
    return "\n".join(out)


def _mixture(run: TrainingRun) -> str:
    head = "<h2 id=\"mixture\">Mixture</h2>"
    weights = (run.summary or {}).get("weights") or (run.mixture or {}).get("weights")
    if not weights:
        return head + page.absent("mixture weights (summary.json, mixture.json)")
    realized = (run.summary or {}).get("realized_token_share", {})
    method = ((run.mixture or {}).get("provenance") or {}).get("method", "?")
    return head + f"<p>method: {page.escape(method)}</p>" + page.table(
        ["domain", "weight", "realized token share"],
        [[d, f"{w:.4f}", f"{realized[d]:.4f}" if d in realized else "-"] for d, w in sorted(weights.items())])


def _evaluations(run: TrainingRun) -> str:
    out = ["<h2 id=\"evaluations\">Evaluations</h2>"]
    if not run.evals:
        return out[0] + page.absent("evaluations (eval/: refinery eval ppl | generate | mc)")
    ppl = [e for e in run.evals if e.kind == "ppl"]
    for e in ppl:
        r = e.content
        out.append(f"<h3>{page.escape(e.name)}</h3><p class=\"note\">step {page.escape(r.get('step'))}, "
                   f"sequence length {page.escape(r.get('seq_length'))}, {page.escape(r.get('samples_per_domain'))} "
                   f"samples per domain of {page.escape(r.get('export_dir'))}</p>")
        rows = [[d, v["tokens"], f"{v['loss']:.4f}", f"{v['perplexity']:.2f}"] for d, v in r["domains"].items()]
        o = r["overall"]
        rows.append(["overall", o["tokens"], f"{o['loss']:.4f}", f"{o['perplexity']:.2f}"])
        out.append(page.table(["domain", "tokens", "loss", "perplexity"], rows))
    if ppl:
        out.append(page.img(_ppl_bars(ppl), "perplexity per domain"))
    for e in run.evals:
        if e.kind == "generate":
            out.append(f"<h3>{page.escape(e.name)}</h3>")
            out.append(page.table(["prompt", "completion", "tokens"],
                                  [[str(g.get("prompt", "")), str(g.get("completion", "")), g.get("tokens", 0)]
                                   for g in e.content[:GENERIC_ROWS]], left=2))
        elif e.kind in ("json", "jsonl"):
            out.append(f"<h3>{page.escape(e.name)}</h3>" + render_generic(e.content))
    return "\n".join(out)


def _ppl_bars(evals: list[EvalFile]) -> str:
    import numpy as np

    plt = plots.pyplot()
    domains = sorted({d for e in evals for d in e.content["domains"]}) + ["overall"]
    fig, ax = plt.subplots(figsize=(max(5.0, 1.1 * len(domains) + 2), 3.2))
    width = 0.8 / len(evals)
    x = np.arange(len(domains))
    for i, e in enumerate(evals):
        values = {**{d: v["perplexity"] for d, v in e.content["domains"].items()},
                  "overall": e.content["overall"]["perplexity"]}
        ax.bar(x + i * width - 0.4 + width / 2, [values.get(d, 0.0) for d in domains], width,
               label=e.name.removesuffix(".json"))
    ax.set_xticks(x, domains, rotation=20, ha="right")
    ax.set_ylabel("perplexity")
    ax.set_title("held-out perplexity")
    ax.legend(fontsize=8)
    return plots.png(fig)


def _flatten(doc: Any, prefix: str = "") -> tuple[list[list[str]], list[tuple[str, list]]]:
    """Scalars as [key path, value] rows; lists of records kept apart (key path, records) for a table."""
    scalars, records = [], []
    if isinstance(doc, dict):
        for k, v in doc.items():
            s, r = _flatten(v, f"{prefix}.{k}" if prefix else str(k))
            scalars += s
            records += r
    elif isinstance(doc, list) and doc and all(isinstance(x, dict) for x in doc):
        records.append((prefix or "(records)", doc))
    elif isinstance(doc, list):
        scalars.append([prefix, json.dumps(doc, ensure_ascii=False)[:300]])
    else:
        scalars.append([prefix, _fmt(doc) if isinstance(doc, float) else str(doc)])
    return scalars, records


def render_generic(doc: Any) -> str:
    """Any JSON document (or JSONL records) as tables: its scalars by key path, each list of records as
    one table (columns: the union of their keys; nested values as JSON)."""
    scalars, records = _flatten(doc)
    out = [page.table(["key", "value"], scalars, left=2)] if scalars else []
    for path, rows in records:
        keys = list(dict.fromkeys(k for r in rows for k in r))
        shown = rows[:GENERIC_ROWS]
        cells = [[_cell(r.get(k, "")) for k in keys] for r in shown]
        out.append(f"<p class=\"note\">{page.escape(path)}: {len(rows)} record(s)"
                   + (f", the first {GENERIC_ROWS} shown" if len(rows) > GENERIC_ROWS else "") + "</p>")
        out.append(page.table(keys, cells, left=len(keys)))
    return "\n".join(out) or "<p>(empty)</p>"


def _cell(v: Any) -> str:
    if isinstance(v, (dict, list)):
        return json.dumps(v, ensure_ascii=False)[:300]
    return _fmt(v) if isinstance(v, float) else str(v)


def _scaling(run: TrainingRun) -> str:
    head = "<h2 id=\"scaling\">Scaling fit</h2>"
    if not run.scaling:
        return head + page.absent("scaling fit (eval/scaling*.json|png, or report --scaling FILE)")
    from training.eval.scaling import plot_fit

    out = [head]
    for name, fit in run.scaling:
        out.append(f"<h3>{page.escape(name)}</h3>")
        if isinstance(fit, str):  # a PNG of `refinery scaling fit --plot`
            out.append(page.img(fit, f"scaling fit {name}"))
            continue
        buf = io.BytesIO()
        plot_fit(fit, buf)
        out.append(page.img(base64.b64encode(buf.getvalue()).decode("ascii"), f"scaling fit {name}"))
        law = fit["law"]
        out.append(f"<p>L(C) = {law['a']:.4g} &middot; C<sup>{law['b']:.4f}</sup> + {law['c']:.4f} "
                   f"(C = 6 &middot; parameters &middot; tokens)</p>")
        rows = [[os.path.basename(str(p["run"]).rstrip("/")), f"{p['compute']:.4g}", f"{p['loss']:.4f}",
                 f"{p['fitted']:.4f}"] for p in fit["points"]]
        hold = fit.get("holdout")
        if hold:
            rows.append([f"held out: {os.path.basename(str(hold['run']).rstrip('/'))}", f"{hold['compute']:.4g}",
                         f"{hold['loss']:.4f}", f"{hold['predicted']:.4f}"])
        out.append(page.table(["run", "compute (FLOPs)", "loss", "fitted / predicted"], rows, left=1))
    return "\n".join(out)


def _lines(series: dict[str, tuple[list, list]], ylabel: str, title: str, marker: str | None = None) -> str:
    return plots.lines(series, ylabel, title, marker)
