"""RunData -> one self-contained HTML page: inline CSS, charts as base64 PNG, no script, no external URL."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from corpus.report import plots
from corpus.report.collect import RunData
from corpus.report.page import NOT_COMPUTED, document
# The page's building blocks under the short names this module has always used.
from corpus.report.page import absent as _absent
from corpus.report.page import escape as _e
from corpus.report.page import img as _img
from corpus.report.page import number as _n
from corpus.report.page import table as _table


def render_html(run: RunData) -> str:
    body = [f"<h1>refinery run report: {_e(run.job)}</h1>",
            f"<p>run folder <code>{_e(run.run_dir)}</code> &middot; exit code {run.exit_code}</p>",
            _overview(run), _funnel(run), _languages(run), _perplexity(run), _quality(run), _clusters(run),
            _throughput(run)]
    return document(f"refinery report: {run.job}", body)


def _overview(run: RunData) -> str:
    rows = [[p.name, p.kind, p.shards, p.docs_in, p.docs_kept, p.docs_rejected] for p in run.phases]
    return "<h2 id=\"phases\">Phases</h2>" + _table(
        ["phase", "kind", "shards", "documents in", "kept", "rejected"], rows, left=2)


def _funnel(run: RunData) -> str:
    out = ["<h2 id=\"funnel\">Per-source funnel</h2>",
           f"<p class=\"note\">Sources are the documents' domains. Tokens are {_e(run.token_unit)}; a "
           "document rejected while being read (broken input) counts the words of whatever raw text the reader "
           "kept with it (none for an unreadable file).</p>"]
    by_phase = defaultdict(list)
    for s in run.stages:
        by_phase[s.phase].append(s)
    tokens_by_phase = defaultdict(list)
    for t in run.tokens:
        tokens_by_phase[t.phase].append(t)
    for phase in [p.name for p in run.phases if p.kind == "map"]:
        counts = by_phase[phase]
        out.append(f"<h3>phase {_e(phase)}: documents per stage</h3>")
        stage_names = list(dict.fromkeys(s.stage for s in counts))
        series = {}
        for source in dict.fromkeys(s.source for s in counts):
            own = {s.stage: s for s in counts if s.source == source}
            first = own[stage_names[0]] if stage_names[0] in own else next(iter(own.values()))
            series[source] = [first.docs_in] + [own[n].docs_out if n in own else 0 for n in stage_names]
        if counts:
            out.append(_img(plots.funnel(["in"] + stage_names, series, f"phase {phase}"), f"funnel {phase}"))
        out.append(_table(["source", "stage", "docs in", "docs out", "MB in", "MB out", "seconds"],
                          [[s.source, s.stage, s.docs_in, s.docs_out, s.bytes_in / 1e6, s.bytes_out / 1e6,
                            s.seconds] for s in counts], left=2))
        out.append("<p class=\"note\">The reader's MB in is the input file size (compressed where the file "
                   "is); every other MB is UTF-8 text.</p>")
        drops = [(t.source, stage, reason, d, tok) for t in tokens_by_phase[phase]
                 for (stage, reason), (d, tok) in t.dropped.items()]
        out.append(f"<h3>phase {_e(phase)}: tokens and drop reasons</h3>")
        out.append(_table(["source", "tokens in", "tokens kept", "tokens dropped", "kept share"],
                          [[t.source, t.tokens_in, t.tokens_kept, t.tokens_in - t.tokens_kept,
                            f"{t.tokens_kept / t.tokens_in:.1%}" if t.tokens_in else "-"]
                           for t in tokens_by_phase[phase]]))
        if drops:
            out.append(_table(["source", "stage", "reason", "documents", "tokens"],
                              [list(d) for d in drops], left=3))
            labels = [f"{s}: {st}/{r}" for s, st, r, _, _ in drops]
            out.append(_img(plots.hbars(labels, [0] * len(drops), [d for *_, d, _ in drops], "documents",
                                        f"phase {phase}: dropped documents by reason"), f"drops {phase}"))
        else:
            out.append("<p>No document was dropped in this phase.</p>")
    return "\n".join(out)


def _languages(run: RunData) -> str:
    out = ["<h2 id=\"languages\">Language distribution</h2>"]
    if run.languages is None:
        return out[0] + _absent("language identification (lang_v1)")
    top = list(run.languages.items())[:25]
    out.append(f"<p class=\"note\">lang_v1 over every document scored in phase {_e(run.language_phase)}, "
               "kept or dropped by that phase.</p>")
    out.append(_img(plots.hbars([k for k, _ in top], [v[0] for _, v in top], [v[1] for _, v in top],
                                "documents", "documents per language"), "languages"))
    total = sum(sum(v) for v in run.languages.values())
    out.append(_table(["language", "kept", "dropped", "share"],
                      [[k, v[0], v[1], f"{sum(v) / total:.1%}"] for k, v in run.languages.items()]))
    return "\n".join(out)


def _perplexity(run: RunData) -> str:
    head = "<h2 id=\"perplexity\">Perplexity</h2>"
    col = run.scores.get("ppl_v1")
    if col is None:
        return head + _absent("perplexity (ppl_v1)")
    out = [head, _sample_note(col)]
    inferred = []
    if run.ppl_buckets:
        ordered = list(run.ppl_buckets.items())
        # Between two adjacent buckets the cut-off lies between the lower's max and the higher's min.
        inferred = [(f"{a}|{b}", (ordered[i][1][2] + ordered[i + 1][1][1]) / 2)
                    for i, ((a, _), (b, _)) in enumerate(zip(ordered, ordered[1:]))]
    lines = [c for c in run.ppl_cutoffs if c[1] > 0]
    out.append(_img(plots.histogram(col.kept, col.dropped, "perplexity (log scale)", "ppl_v1", log_x=True,
                                    lines=lines, dashed=[] if lines else inferred), "perplexity"))
    if lines:
        out.append(_table(["cut-off (job.resolved.yaml)", "perplexity"], [list(c) for c in run.ppl_cutoffs]))
    else:
        out.append("<p class=\"note\">No cut-off found in the perplexity stage's configuration; dashed "
                   "lines are the boundaries between buckets as observed in the data.</p>")
    if run.ppl_buckets:
        out.append(_table(["ppl_bucket_v1", "documents", "min perplexity", "max perplexity"],
                          [[b, *v] for b, v in run.ppl_buckets.items()]))
    else:
        out.append(_absent("perplexity buckets (ppl_bucket_v1)"))
    return "\n".join(out)


def _quality(run: RunData) -> str:
    head = "<h2 id=\"quality\">Quality score</h2>"
    col = run.scores.get("quality_v1")
    if col is None:
        return head + _absent("quality score (quality_v1)")
    both = np.concatenate([col.kept, col.dropped])
    return "\n".join([head, _sample_note(col),
                      _img(plots.histogram(col.kept, col.dropped, "quality_v1", "quality score"), "quality"),
                      _table(["documents", "mean", "median", "kept", "dropped"],
                             [[len(both), float(both.mean()), float(np.median(both)), len(col.kept),
                               len(col.dropped)]], left=0)])


def _sample_note(col) -> str:
    shown = len(col.kept) + len(col.dropped)
    sampled = "" if shown == col.documents else f" (a systematic sample of {shown:,} of {col.documents:,})"
    return (f"<p class=\"note\">{_e(col.name)} of every document scored in phase {_e(col.phase)}{sampled}; "
            f"kept and dropped refer to that phase.</p>")


def _clusters(run: RunData) -> str:
    out = ["<h2 id=\"duplicates\">Duplicate clusters</h2>"]
    for column, label in (("minhash_cluster_v2", "near-duplicate (MinHash)"), ("exact_cluster_v1", "exact")):
        sizes = run.clusters.get(column)
        if sizes is None:
            out.append(_absent(f"{label} clusters ({column})"))
            continue
        dups = sum((size - 1) * n for size, n in sizes.items())
        out.append(f"<h3>{_e(label)} clusters ({_e(column)})</h3><p>{_n(run.cluster_docs[column])} documents; "
                   f"{_n(sum(sizes.values()))} clusters of two or more; {_n(dups)} duplicates beyond each "
                   "cluster's survivor.</p>")
        if sizes:
            out.append(_img(plots.cluster_sizes(sizes, f"{label} cluster sizes"), f"{column} sizes"))
            out.append(_table(["cluster size", "clusters"], [[s, sizes[s]] for s in sorted(sizes)], left=0))
    return "\n".join(out)


def _throughput(run: RunData) -> str:
    out = ["<h2 id=\"throughput\">Throughput per phase</h2>",
           "<p class=\"note\">Wall time runs from the first shard's start to the last shard's commit, as the "
           "ledger records them (a resumed run spans both runs). Worker time is the shards' run times summed "
           "over all actors. Cross-shard phases (dedup indexes) record their own summary instead.</p>"]
    rows, names, dps, mbps = [], [], [], []
    for p in run.phases:
        if p.kind != "map":
            rows.append([p.name, p.kind, p.docs_in, "-", "-", "-", "-", "-"])
            continue
        wall = p.wall_seconds or 0.0
        d = p.docs_in / wall if wall else 0.0
        m = p.text_bytes_in / 1e6 / wall if wall else 0.0
        worker = p.docs_in / p.worker_seconds if p.worker_seconds else 0.0
        rows.append([p.name, p.kind, p.docs_in, p.text_bytes_in / 1e6, wall, d, m, worker])
        names.append(p.name)
        dps.append(d)
        mbps.append(m)
    out.append(_table(["phase", "kind", "documents", "MB text", "wall s", "docs/s", "MB/s",
                       "docs/s per worker"], rows, left=2))
    if names:
        out.append(_img(plots.throughput(names, dps, mbps), "throughput"))
    for p in run.phases:
        if p.kind != "map" and p.summary:
            flat = [[k, v if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v)]
                    for k, v in sorted(p.summary.items()) if not isinstance(v, (dict, list))]
            out.append(f"<h3>{_e(p.name)} ({_e(p.kind)}) summary</h3>" + _table(["", "value"], flat))
    return "\n".join(out)
