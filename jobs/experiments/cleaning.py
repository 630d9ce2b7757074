"""Does cleaning help? Tiny GPTs with the same token budget trained on (a) the documents as the readers
emit them, before any cleaning stage ("raw"), and (b) the cleaned and deduplicated corpus ("clean"),
several seeds each, all evaluated on the same held-out clean documents per domain.

    refinery experiment cleaning [--job jobs/demo.yaml] [--clean-run runs/demo] [--seeds 3] [--steps 200]

The design, and why:
- Held out: the clean export's validation split (the training config's data.split, cut per domain as
  megatron-core cuts it): the last documents of each domain. The clean arm never trains on them by
  construction. The raw corpus is the same job's inputs read again with one phase whose only stage is
  a select that sets those documents aside (by their deterministic id), with every exact or near
  duplicate of them the clean run's dedup clustered with them (counted under their own reason; every
  held-out id must be found there, which proves the ids line up).
- The raw arm is exported from a view of that run (`raw-train/`): its data parts, then per domain one
  last part holding the documents set aside, so that they, and not their neighbours, form the end of
  the domain, which is where the validation range is cut. Its split is the clean one when that range
  covers the whole last part in every domain (else the nearest smaller train share that does): the
  raw arm never trains on a held-out document, and both arms train on everything else. (Setting the
  documents aside without the last part would make the raw arm's validation range take the documents
  just before them, often from the same repository or book, and lose them from its training.)
- One tokenizer (trained on the clean corpus) exports both corpora, so the losses share a unit.
- Same token budget (steps x global batch x sequence length) for both arms. Mixture `natural` (the
  default): each arm samples its own corpus by its domains' token shares, as one trains on a corpus,
  so the raw arm also spends tokens where cleaning removed the most text (web pages). Mixture `same`:
  both arms use the clean corpus's token shares, so a difference within a domain comes from its
  documents alone. Both arms draw less than one epoch of every domain (recorded as `epochs`).
- Evaluation: `evaluate_checkpoint` (`refinery eval ppl --data CLEAN_EXPORT`) with the clean split for
  every run. Seed s of both arms draws the same held-out samples, so raw - clean is paired by seed.

It lives in jobs/ because it runs a corpus job and trains models (corpus/ and training/ do not import
each other). Every step resumes: the raw job skips committed shards, the export its ledger, a finished
training run is not started again.
"""

from __future__ import annotations

import glob
import json
import math
import os
import statistics
from typing import Any, Mapping

import yaml

ARMS = ("raw", "clean")
HELD_OUT_REASON = "held_out_for_eval"
CLUSTER_COLUMNS = ("exact_cluster_v1", "minhash_cluster_v2")
RESULT_STEM = "cleaning"
"""OUT/cleaning.json and .png (mixture natural), OUT/cleaning-same.json and .png (mixture same)."""
MIXTURES = ("natural", "same")
"""natural: each arm by its own corpus's token shares; same: both by the clean corpus's."""


# --------------------------------------------------------------------------------------- held-out documents

def export_document_ids(manifest: Mapping[str, Any], domain: str) -> list[str]:
    """`id` of each document of an exported domain, in export order: the manifest's shards in order (empty
    ones are left out of the merge), each Parquet file's rows in order (one document per row)."""
    import pyarrow.parquet as pq

    ids: list[str] = []
    for shard in manifest["domains"][domain]["shards"]:
        if shard["documents"] == 0:
            continue
        col = pq.read_table(shard["source"], columns=["id"]).column("id").to_pylist()
        if len(col) != shard["documents"]:
            raise ValueError(f"{shard['source']} has {len(col)} rows, the export counted {shard['documents']}: "
                             f"the corpus changed after the export. Fix: export it again")
        ids += col
    if len(ids) != manifest["domains"][domain]["documents"]:
        raise ValueError(f"domain {domain}: {len(ids)} ids for {manifest['domains'][domain]['documents']} documents")
    return ids


def held_out_ids(manifest: Mapping[str, Any], split: str) -> dict[str, list[str]]:
    """domain -> ids of the documents in the export's validation range under `split`."""
    from training.data.blend import split_documents

    out = {}
    for d in sorted(manifest["domains"]):
        if not manifest["domains"][d].get("prefix"):
            continue
        ids = export_document_ids(manifest, d)
        first, last = split_documents(len(ids), split)[1]
        out[d] = ids[first:last]
    return out


def run_phase_files(run_dir: str) -> list[str]:
    """Every data and rejected Parquet file of the phases a corpus run's stats.json lists."""
    from corpus.runtime import layout

    files = []
    for _, folder in layout.phase_dirs(run_dir):
        for kind in (layout.DATA, layout.REJECTED):
            files += sorted(glob.glob(os.path.join(folder, kind, layout.PARQUET_GLOB)))
    return files


def with_duplicates(ids: set[str], files: list[str]) -> set[str]:
    """`ids` plus the ids of every document that shares an exact or near-duplicate cluster with one of them
    (the dedup phases' cluster columns, wherever a file has them)."""
    import pyarrow.parquet as pq

    tables = []
    for path in files:
        columns = [c for c in CLUSTER_COLUMNS if c in pq.read_schema(path).names]
        if columns:
            tables.append((columns, pq.read_table(path, columns=["id", *columns]).to_pydict()))
    clusters = {c: set() for c in CLUSTER_COLUMNS}
    for columns, t in tables:
        for c in columns:
            clusters[c].update(v for i, v in zip(t["id"], t[c]) if i in ids and v is not None)
    out = set(ids)
    for columns, t in tables:
        for c in columns:
            out.update(i for i, v in zip(t["id"], t[c]) if v in clusters[c])
    return out


def raw_job(job_path: str, excluded: set[str], output: str):
    """The job's inputs, read again into `<output>/raw` with no cleaning stage: one select drops `excluded`."""
    from corpus.runtime.spec import parse_job

    with open(job_path, encoding="utf-8") as f:
        job = yaml.safe_load(f)
    select = {"select": {"rules": [{"column": "id", "op": "in", "value": sorted(excluded), "reason": HELD_OUT_REASON}]}}
    spec = {"name": "raw", "output": output, "inputs": job["inputs"], "runtime": job.get("runtime", {}),
            "phases": [{"name": "read", "stages": [select]}]}
    # the job file's folder: its relative input paths, and so the documents' ids, are the clean run's
    return parse_job(spec, base_dir=os.path.dirname(os.path.abspath(job_path)), output_override=True)


def dropped_as_held_out(raw_run: str) -> int:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    n = 0
    for path in run_phase_files(raw_run):
        if f"{os.sep}rejected{os.sep}" in path:
            n += int(pc.sum(pc.equal(pq.read_table(path, columns=["drop_reason"]).column("drop_reason"),
                                     HELD_OUT_REASON)).as_py() or 0)
    return n


# --------------------------------------------------------------------------------------- the two arms

def token_budget(cfg) -> int:
    s = cfg.schedule
    return s.train_steps * s.global_batch_size * cfg.model.seq_length


def arm_configs(base, *, exports: Mapping[str, tuple[str, str]], mixtures: Mapping[str, str], steps: int,
                seeds: list[int], out: str, names: Mapping[str, str] | None = None) -> list[tuple[str, int, Any]]:
    """(arm, seed, PretrainConfig) of every run: the base config with only the data (export folder, split,
    mixture file), the seed and the output folder (OUT/runs/<name of the arm>-seed<seed>) changed per run;
    steps as given for all."""
    from training.loop.config import config_to_dict, parse_pretrain_config

    runs = []
    for arm in ARMS:
        export_dir, split = exports[arm]
        for seed in seeds:
            d = config_to_dict(base)
            d["data"].update(export_dir=os.path.abspath(export_dir), split=split,
                             mixture=os.path.abspath(mixtures[arm]))
            d["schedule"].update(train_steps=steps, seed=seed, eval_interval=steps, save_interval=steps,
                                 keep_checkpoints=1, decay_steps=None)
            d["output"]["dir"] = os.path.abspath(os.path.join(out, "runs", f"{(names or {}).get(arm, arm)}-seed{seed}"))
            runs.append((arm, seed, parse_pretrain_config(d, where=f"{arm} seed {seed}")))
    budgets = {token_budget(cfg) for _, _, cfg in runs}
    assert len(budgets) == 1, budgets  # only data, seed and output differ between runs
    return runs


def widest_split(export_dir: str, manifest: Mapping[str, Any], seq_length: int, start: str,
                 held_out_last: Mapping[str, int]) -> str:
    """`start` if, in every domain, the validation range holds at least the last `held_out_last[domain]`
    documents and one sample of `seq_length` + 1 tokens, and the train range one sample; else the split with
    the largest smaller train share (whole percent, test 0) that does."""
    from training.data.blend import split_documents, split_tokens

    domains = {d: v for d, v in manifest["domains"].items() if v.get("prefix")}
    train = [float(x) for x in start.split(",")]
    first = int(math.floor(100 * train[0] / sum(train)))
    for split in [start] + [f"{t},{100 - t},0" for t in range(first - 1, 49, -1)]:
        if all(split_documents(v["documents"], split)[1][0] <= v["documents"] - held_out_last.get(d, 0)
               and min(split_tokens(os.path.join(export_dir, v["prefix"]), split)[:2]) >= seq_length + 1
               for d, v in domains.items()):
            return split
    raise ValueError(f"{export_dir}: no split from {start} down to 50,50,0 keeps the held-out documents out of "
                     f"every domain's train range with one sample of {seq_length} tokens on each side. Fix: a "
                     f"shorter model.seq_length or more data")


def training_view(raw_run: str, view: str) -> dict[str, int]:
    """Write `view`, a run folder for `refinery export megatron`: links to the raw run's data parts and, per
    domain, a last part (`part-99999-held-out`, after every `part-NNNNN` in the export's order) with the
    documents the raw read set aside. Returns domain -> documents in that last part."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from corpus.io.parquet import domain_of
    from corpus.runtime import layout
    from training.atomic_files import write_json_atomic

    data = os.path.join(view, "data")
    parts: dict[str, list[str]] = {}
    held: dict[str, list[Any]] = {}
    for path in run_phase_files(raw_run):
        domain = domain_of(path)
        if f"{os.sep}data{os.sep}" in path:
            parts.setdefault(domain, []).append(path)
        else:
            t = pq.read_table(path)
            held.setdefault(domain, []).append(t.filter(pc.equal(t.column("drop_reason"), HELD_OUT_REASON)))
    counts = {}
    for domain in sorted(set(parts) | set(held)):
        folder = os.path.join(data, f"domain={domain}")
        os.makedirs(folder, exist_ok=True)
        for path in parts.get(domain, []):
            link = os.path.join(folder, os.path.basename(path))
            if not os.path.lexists(link):
                os.symlink(os.path.abspath(path), link)
        names = pq.read_schema(parts[domain][0]).names if parts.get(domain) else ["id", "text"]
        table = pa.concat_tables([t.select(names) for t in held.get(domain, [])]) if held.get(domain) else None
        counts[domain] = table.num_rows if table is not None else 0
        if counts[domain]:
            pq.write_table(table, os.path.join(folder, "part-99999-held-out.parquet"))
    write_json_atomic(os.path.join(view, layout.STATS), {
        "job": "raw-train", "exit_code": 0, "final_data": layout.record_path(view, data), "phases": [],
        "made_from": os.path.abspath(raw_run),
        "note": "the raw run's data parts, then per domain the documents held out for evaluation, last"})
    return counts


def epochs(export_dir: str, manifest: Mapping[str, Any], split: str, weights: Mapping[str, float],
           budget: int) -> dict[str, float]:
    """domain -> how many times the run reads its train range: weight x token budget / train tokens."""
    from training.data.blend import split_tokens

    return {d: weights[d] * budget / max(1, split_tokens(os.path.join(export_dir, manifest["domains"][d]["prefix"]),
                                                         split)[0])
            for d in sorted(weights) if weights[d] > 0}


# --------------------------------------------------------------------------------------- the table

def aggregate(losses: Mapping[str, Mapping[int, Mapping[str, float]]]) -> dict[str, dict[str, Any]]:
    """losses[arm][seed][domain] (nats/token) -> per domain: each arm's mean and sample sd over its seeds,
    and the difference raw - clean paired by seed (seed s of both arms saw the same held-out samples)."""
    domains = _row_order(set.intersection(*(set(v) for runs in losses.values() for v in runs.values())))
    table = {}
    for d in domains:
        row: dict[str, Any] = {}
        for arm, runs in losses.items():
            xs = [runs[s][d] for s in sorted(runs)]
            row[arm] = {"mean": statistics.fmean(xs), "sd": statistics.stdev(xs) if len(xs) > 1 else math.nan,
                        "n": len(xs), "losses": xs, "perplexity": math.exp(statistics.fmean(xs))}
        if set(ARMS) <= set(losses):
            paired = sorted(set(losses["raw"]) & set(losses["clean"]))
            diff = [losses["raw"][s][d] - losses["clean"][s][d] for s in paired]
            row["raw_minus_clean"] = {"mean": statistics.fmean(diff),
                                      "sd": statistics.stdev(diff) if len(diff) > 1 else math.nan, "n": len(diff)}
        table[d] = row
    return table


def format_table(result: Mapping[str, Any]) -> str:
    """The table as Markdown (benchmarks/README.md): loss in nats/token, mean +- sd over seeds."""
    design, table = result["design"], result["table"]
    n = len(design["seeds"])
    lines = [f"| domain | held-out docs | held-out tokens | raw loss | clean loss | raw - clean (paired) | "
             f"raw ppl | clean ppl |", "|---|--:|--:|--:|--:|--:|--:|--:|"]
    for d in _row_order(table):
        row = table[d]
        docs = design["held_out_documents"].get(d, sum(design["held_out_documents"].values()))
        tokens = design["held_out_tokens"].get(d, sum(design["held_out_tokens"].values()))
        lines.append(f"| {d} | {docs} | {tokens:,} | {_pm(row['raw'])} | {_pm(row['clean'])} | "
                     f"{_pm(row['raw_minus_clean'], sign=True)} | {row['raw']['perplexity']:.1f} | "
                     f"{row['clean']['perplexity']:.1f} |")
    lines.append(f"\nLoss: mean token NLL (nats) on the held-out clean documents, mean ± sd over {n} seeds; "
                 f"perplexity = exp(mean loss). Mixture: {design['mixture']}; {design['token_budget']:,} training "
                 f"tokens per run.")
    return "\n".join(lines)


def _row_order(table: Mapping[str, Any]) -> list[str]:
    """Domains by name, the overall row ("all") last (a JSON file written with sorted keys puts it first)."""
    return sorted(table, key=lambda d: (d == "all", d))


def _pm(v: Mapping[str, float], sign: bool = False) -> str:
    return f"{v['mean']:{'+' if sign else ''}.3f} ± {v['sd']:.3f}"


def plot_result(result: Mapping[str, Any], path: str) -> None:
    """Left: mean held-out loss per domain and arm (bars: ± sd over seeds, dots: the seeds). Right: raw - clean
    per seed (paired: seed s of both arms saw the same held-out samples), its mean as a bar."""
    import numpy as np

    from corpus.report.plots import pyplot

    plt = pyplot()
    table = result["table"]
    domains = _row_order(table)
    x = np.arange(len(domains))
    fig, (ax, dx) = plt.subplots(1, 2, figsize=(max(10.0, 2.0 * len(domains) + 3), 3.8),
                                 gridspec_kw={"width_ratios": [3, 2]})
    for i, (arm, color) in enumerate(zip(ARMS, ("#d8583b", "#3b7dd8"))):
        offset = (i - 0.5) * 0.38
        ax.bar(x + offset, [table[d][arm]["mean"] for d in domains], 0.36, yerr=[table[d][arm]["sd"] for d in domains],
               capsize=3, color=color, alpha=0.8, label=f"{arm} ({table[domains[0]][arm]['n']} seeds)")
        for j, d in enumerate(domains):
            ax.scatter([x[j] + offset] * table[d][arm]["n"], table[d][arm]["losses"], s=8, color="black", zorder=3)
    losses = [v for d in domains for a in ARMS for v in table[d][a]["losses"]]
    low, high = min(losses), max(losses)
    ax.set_ylim(max(0.0, low - 0.3 * (high - low) - 0.2), high + 0.1 * (high - low) + 0.1)
    ax.set_xticks(x, domains, rotation=15)
    ax.set_ylabel("held-out loss (nats/token)")
    d = result["design"]
    ax.set_title(f"{d['token_budget']:,} training tokens per run, mixture {d['mixture']}", fontsize=10)
    ax.legend(fontsize=8)
    diffs = [[r - c for r, c in zip(table[d]["raw"]["losses"], table[d]["clean"]["losses"])] for d in domains]
    dx.bar(x, [table[d]["raw_minus_clean"]["mean"] for d in domains], 0.5, color="#888888", alpha=0.6)
    for j, values in enumerate(diffs):
        dx.scatter([x[j]] * len(values), values, s=10, color="black", zorder=3)
    dx.axhline(0.0, color="black", linewidth=0.8)
    dx.set_xticks(x, domains, rotation=15)
    dx.set_ylabel("raw - clean (nats/token)")
    dx.set_title("paired by seed: above 0, cleaning helped", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)


# --------------------------------------------------------------------------------------- the driver

def run_cleaning_experiment(*, job: str, clean_run: str, tokenizer: str, clean_export: str, config: str,
                            out: str, seeds: int = 3, steps: int = 200, eval_samples: int = 64,
                            mixture: str = "natural", log=print) -> dict[str, Any]:
    if mixture not in MIXTURES:
        raise ValueError(f"mixture {mixture!r}: expected one of {', '.join(MIXTURES)}")
    import ray

    from corpus.runtime.executor import run_job
    from jobs.export_megatron import export_megatron
    from schemas.mixture import load_mixture_weights, write_mixture_weights
    from training.atomic_files import write_json_atomic
    from training.data.blend import split_tokens
    from training.eval.loaded import read_manifest
    from training.eval.perplexity import evaluate_checkpoint
    from training.loop.config import load_pretrain_config
    from training.loop.launch import launch_pretrain
    from training.mixture_weights import natural_weights
    from training.tokenizer import load_tokenizer

    out = os.path.abspath(out)
    os.makedirs(out, exist_ok=True)
    base = load_pretrain_config(config)
    split, seq = base.data.split, base.model.seq_length
    tok = load_tokenizer(tokenizer)
    clean_manifest = read_manifest(clean_export)
    if clean_manifest["tokenizer"]["tokenizer_sha256"] != tok.sha256:
        raise ValueError(f"{clean_export} was exported with tokenizer "
                         f"{clean_manifest['tokenizer']['tokenizer_sha256'][:12]}, --tokenizer is {tok.sha256[:12]}. "
                         f"Fix: both arms need the same tokenizer; export again")

    held = held_out_ids(clean_manifest, split)
    excluded = with_duplicates({i for ids in held.values() for i in ids}, run_phase_files(clean_run))
    log(f"held out: {sum(map(len, held.values()))} clean documents ({split} split), {len(excluded)} ids excluded "
        f"from the raw corpus with their duplicates")
    raw = run_job(raw_job(job, excluded, out), progress=False)
    found = dropped_as_held_out(raw.job_dir)
    if found != len(excluded):
        raise ValueError(f"the raw read of {job} dropped {found} of the {len(excluded)} held-out ids: the documents' "
                         f"ids differ from {clean_run}'s. Fix: --job the job file that built --clean-run")
    view = os.path.join(out, "raw-train")
    held_last = training_view(raw.job_dir, view)
    raw_export = os.path.join(view, "export-megatron")
    raw_manifest = export_megatron(view, tokenizer, out=raw_export, progress=False)
    ray.shutdown()  # training starts its own embedded cluster, set up for Ray Train
    raw_split = widest_split(raw_export, raw_manifest, seq, split, held_last)

    # The clean arm is the same under either mixture, so its runs are shared; the raw arm's are named by it.
    suffix = "" if mixture == "natural" else f"-{mixture}"
    names = {"raw": f"raw{suffix}", "clean": "clean"}
    manifests = {"raw": (raw_export, raw_manifest), "clean": (clean_export, clean_manifest)}
    weights, mixtures = {}, {}
    for arm in ARMS:
        source_dir, source = manifests["clean" if mixture == "same" else arm]
        chosen = natural_weights(source, os.path.join(os.path.abspath(source_dir), "manifest.json"))
        weights[arm], mixtures[arm] = chosen.weights, os.path.join(out, f"mixture-{names[arm]}.json")
        if not (os.path.exists(mixtures[arm]) and load_mixture_weights(mixtures[arm]).weights == chosen.weights):
            write_mixture_weights(mixtures[arm], chosen)  # (kept as it is when unchanged: finished runs read it)
    seed_list = list(range(1, seeds + 1))
    runs = arm_configs(base, exports={"raw": (raw_export, raw_split), "clean": (clean_export, split)},
                       mixtures=mixtures, steps=steps, seeds=seed_list, out=out, names=names)
    budget = token_budget(runs[0][2])
    losses: dict[str, dict[int, dict[str, float]]] = {arm: {} for arm in ARMS}
    records = []
    for arm, seed, cfg in runs:
        summary = _read_summary(cfg.output.dir)
        if summary is None or summary["steps"] != steps:  # a finished run is not started again
            log(f"training {arm} seed {seed}: {steps} steps, {budget:,} tokens -> {cfg.output.dir}")
            launch_pretrain(cfg, progress=False)
            summary = _read_summary(cfg.output.dir)
        if summary["tokens"] != budget:
            raise ValueError(f"{cfg.output.dir} trained on {summary['tokens']} tokens, not the budget {budget}")
        report = evaluate_checkpoint(cfg.output.dir, export_dir=clean_export, samples=eval_samples, split=split)
        os.makedirs(os.path.join(cfg.output.dir, "eval"), exist_ok=True)
        write_json_atomic(os.path.join(cfg.output.dir, "eval", f"ppl-step-{report['step']:08d}-heldout-clean.json"),
                          report)
        losses[arm][seed] = {**{d: v["loss"] for d, v in report["domains"].items()}, "all": report["overall"]["loss"]}
        records.append({"arm": arm, "seed": seed, "run": cfg.output.dir, "tokens": summary["tokens"],
                        "held_out_loss": losses[arm][seed], "own_valid_loss": summary["valid_loss"]})
        log(f"{arm} seed {seed}: held-out loss {report['overall']['loss']:.4f}")

    result = {
        "design": {
            "job": os.path.abspath(job), "clean_run": os.path.abspath(clean_run), "tokenizer_sha256": tok.sha256,
            "clean_export": os.path.abspath(clean_export), "raw_run": raw.job_dir, "raw_export": raw_export,
            "clean_split": split, "raw_split": raw_split, "steps": steps,
            "global_batch_size": base.schedule.global_batch_size, "seq_length": seq, "token_budget": budget,
            "seeds": seed_list, "eval_samples_per_domain": eval_samples, "mixture": mixture,
            "weights": weights,
            "model": {"num_layers": base.model.num_layers, "hidden_size": base.model.hidden_size,
                      "num_attention_heads": base.model.num_attention_heads, "position": base.model.position},
            "held_out_documents": {d: len(v) for d, v in held.items()},
            "held_out_tokens": {d: split_tokens(os.path.join(clean_export, clean_manifest["domains"][d]["prefix"]),
                                                split)[1] for d in held},
            "excluded_from_raw": len(excluded), "raw_held_out_last": held_last,
            "documents": {"raw": {d: v["documents"] for d, v in raw_manifest["domains"].items()},
                          "clean": {d: v["documents"] for d, v in clean_manifest["domains"].items()}},
            "tokens": {"raw": {d: v["tokens"] for d, v in raw_manifest["domains"].items()},
                       "clean": {d: v["tokens"] for d, v in clean_manifest["domains"].items()}},
            "epochs": {"raw": epochs(raw_export, raw_manifest, raw_split, weights["raw"], budget),
                       "clean": epochs(clean_export, clean_manifest, split, weights["clean"], budget)}},
        "runs": records,
        "table": aggregate(losses),
    }
    write_json_atomic(os.path.join(out, f"{RESULT_STEM}{suffix}.json"), result)
    plot_result(result, os.path.join(out, f"{RESULT_STEM}{suffix}.png"))
    return result


def _read_summary(run_dir: str) -> dict[str, Any] | None:
    path = os.path.join(run_dir, "summary.json")
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)
