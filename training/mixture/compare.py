"""`refinery mix compare`: equal-token models trained on each mixture, several seeds each, judged on held-out
perplexity per domain, on average over domains and on the worst domain (the paper's Pile table reports the
same three: worst-case perplexity, average perplexity, domains that beat the baseline).

    <out>/<mixture>-seed<N>/     a pretraining run (the base config, data.mixture and schedule.seed replaced)
    <out>/report.json, report.md, compare.png

Every run has the base config's steps, batch and length, so every mixture trains on the same number of
tokens. Held-out = each domain's valid split (never trained on), scored by training/eval/perplexity.py on
every exported domain. Means are over seeds; "beats" compares means. The first mixture is judged against
each of the others; nothing assumes it wins.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
from typing import Any

from training.atomic_files import write_json_atomic, write_text_atomic


def parse_mixture(spec: str) -> tuple[str, str]:
    """"natural" -> ("natural", "natural"); "doremi=runs/x/weights.json" -> ("doremi", that path)."""
    from training.mixture_weights import BASELINES

    if "=" in spec:
        name, path = spec.split("=", 1)
        if not name or not path:
            raise ValueError(f"--mixture {spec!r}: expected NAME=FILE or one of {', '.join(BASELINES)}")
        if not os.path.exists(path):
            raise FileNotFoundError(f"--mixture {spec!r}: {path} does not exist")
        return name, os.path.abspath(path)
    if spec not in BASELINES:
        raise ValueError(f"--mixture {spec!r}: expected NAME=FILE or one of {', '.join(BASELINES)}")
    return spec, spec


def _stats(values: list[float]) -> dict[str, float]:
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values), "max": max(values), "values": values}


def summarize(perplexity: dict[str, list[dict[str, float]]]) -> dict[str, Any]:
    """mixture -> [domain -> held-out perplexity, one per seed] to the report: per-domain, average (the mean of
    the domains' perplexities) and worst-domain statistics over seeds, and per pair of mixtures the number of
    domains where the first has the lower mean perplexity."""
    names = list(perplexity)
    domains = sorted(perplexity[names[0]][0])
    mixtures = {}
    for m in names:
        runs = perplexity[m]
        mixtures[m] = {"domains": {d: _stats([r[d] for r in runs]) for d in domains},
                       "average": _stats([statistics.fmean(r[d] for d in domains) for r in runs]),
                       "worst": _stats([max(r[d] for d in domains) for r in runs])}
    beats = {a: {b: sum(mixtures[a]["domains"][d]["mean"] < mixtures[b]["domains"][d]["mean"] for d in domains)
                 for b in names if b != a} for a in names}
    return {"domains": domains, "seeds": len(perplexity[names[0]]), "judged": names[0], "mixtures": mixtures,
            "domains_beaten": beats}


def compare_mixtures(config: str, mixtures: list[str], *, seeds: int, out: str, overrides: list[str] = (),
                     address: str | None = None, progress: bool = True) -> dict[str, Any]:
    from training.eval.perplexity import evaluate_checkpoint
    from training.loop.config import load_pretrain_config
    from training.loop.launch import launch_pretrain
    from training.mixture.plots import plot_compare

    if seeds < 1:
        raise ValueError(f"--seeds {seeds}: at least one")
    parsed = [parse_mixture(m) for m in mixtures]
    if len({n for n, _ in parsed}) != len(parsed):
        raise ValueError(f"--mixture: names repeat in {[n for n, _ in parsed]}")
    base = load_pretrain_config(config, list(overrides))
    out = os.path.abspath(out)
    os.makedirs(out, exist_ok=True)
    perplexity: dict[str, list[dict[str, float]]] = {}
    runs: dict[str, list[dict[str, Any]]] = {}
    for name, mixture in parsed:
        for i in range(seeds):
            seed = base.schedule.seed + i
            run_dir = os.path.join(out, f"{name}-seed{seed}")
            cfg = dataclasses.replace(base, data=dataclasses.replace(base.data, mixture=mixture),
                                      schedule=dataclasses.replace(base.schedule, seed=seed),
                                      output=dataclasses.replace(base.output, dir=run_dir))
            summary = launch_pretrain(cfg, address=address, progress=progress)
            report = evaluate_checkpoint(run_dir)
            perplexity.setdefault(name, []).append({d: v["perplexity"] for d, v in report["domains"].items()})
            runs.setdefault(name, []).append({"run": run_dir, "seed": seed, "tokens": summary["tokens"],
                                              "weights": summary["weights"], "step": report["step"],
                                              "overall_loss": report["overall"]["loss"]})
    tokens = {r["tokens"] for rs in runs.values() for r in rs}
    if len(tokens) != 1:
        raise RuntimeError(f"the runs trained on different token counts {sorted(tokens)}: not a fair comparison")
    result = {"config": os.path.abspath(config), "overrides": list(overrides), "tokens_per_run": tokens.pop(),
              **summarize(perplexity), "runs": runs}
    write_json_atomic(os.path.join(out, "report.json"), result)
    write_text_atomic(os.path.join(out, "report.md"), format_compare(result) + "\n")
    plot_compare(result, os.path.join(out, "compare.png"))
    return result


def format_compare(report: dict[str, Any]) -> str:
    """A Markdown table: held-out perplexity per domain, average and worst (mean ± std over seeds), weights."""
    domains, mixtures = report["domains"], report["mixtures"]
    head = ["mixture"] + domains + ["average", "worst"]
    lines = [f"{report['seeds']} seeds per mixture, {report.get('tokens_per_run', 0):,} training tokens per run; "
             f"held-out perplexity, mean ± std over seeds", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m, row in mixtures.items():
        cells = [row["domains"][d] for d in domains] + [row["average"], row["worst"]]
        lines.append(f"| {m} | " + " | ".join(f"{c['mean']:.1f} ± {c['std']:.1f}" for c in cells) + " |")
    judged = report["judged"]
    lines.append("")
    for other, n in report["domains_beaten"][judged].items():
        back = report["domains_beaten"][other][judged]
        lines.append(f"{judged} has the lower perplexity than {other} on {n} of {len(domains)} domains "
                     f"({other} on {back}); average {mixtures[judged]['average']['mean']:.1f} vs "
                     f"{mixtures[other]['average']['mean']:.1f}, worst {mixtures[judged]['worst']['mean']:.1f} vs "
                     f"{mixtures[other]['worst']['mean']:.1f}")
    if "runs" in report:
        lines.append("")
        lines.append("weights: " + "; ".join(
            f"{m} " + ", ".join(f"{d} {w:.3f}" for d, w in sorted(rs[0]["weights"].items()))
            for m, rs in report["runs"].items()))
    return "\n".join(lines)
