"""What a run report shows, read from a run folder (`<output>/<job name>`): no plotting here.

Sources of truth, in order: the run's `stats.json` (which phase folders belong to the run), each map
phase's ledger (per-shard counters and drops, grouped by the shard's domain), and the phase's data and
rejected Parquet files (tokens here; the score columns that stages add in corpus.report.columns).
"""

from __future__ import annotations

import dataclasses
from collections import Counter, defaultdict
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import yaml

from corpus.io.files import filesystem, join, read_json
from corpus.report import columns
from corpus.report.columns import ReportError, ScoreColumn, phase_files, read_columns
from corpus.runtime import layout, ledger

READ_STAGE = "read"


@dataclasses.dataclass(kw_only=True)
class StageCount:
    """Counters of one stage of one map phase, summed over the shards of one source (domain)."""

    phase: str
    source: str
    stage: str
    docs_in: int
    docs_out: int
    bytes_in: int
    bytes_out: int
    seconds: float


@dataclasses.dataclass(kw_only=True)
class TokenFunnel:
    """Tokens of one map phase and source: read, dropped per (stage, reason), kept."""

    phase: str
    source: str
    tokens_in: int
    tokens_kept: int
    dropped: dict[tuple[str, str], tuple[int, int]]
    """(stage, reason) -> (documents, tokens)."""


@dataclasses.dataclass(kw_only=True)
class PhaseSummary:
    name: str
    kind: str
    folder: str
    shards: int
    docs_in: int
    docs_kept: int
    docs_rejected: int
    text_bytes_in: int
    worker_seconds: float
    """Sum of the shards' run times (what the actors spent)."""
    wall_seconds: float | None
    """First shard start to last commit, from the ledger (spans several runs when a rerun resumed)."""
    summary: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(kw_only=True)
class RunData:
    job: str
    run_dir: str
    exit_code: int
    phases: list[PhaseSummary]
    stages: list[StageCount]
    tokens: list[TokenFunnel]
    token_unit: str
    languages: dict[str, tuple[int, int]] | None
    """language -> (kept, dropped) documents; None when no phase computed lang_v1."""
    language_phase: str | None
    scores: dict[str, ScoreColumn]
    """Numeric score columns present in the run: ppl_v1, quality_v1."""
    ppl_buckets: dict[str, tuple[int, float, float]] | None
    """bucket -> (documents, min ppl, max ppl)."""
    ppl_cutoffs: list[tuple[str, float]]
    """(label, cut-off) from the perplexity stage's configuration in job.resolved.yaml."""
    clusters: dict[str, Counter]
    """cluster column -> Counter(cluster size -> number of clusters), sizes >= 2 only."""
    cluster_docs: dict[str, int]
    """cluster column -> documents that carry it."""


def collect_run(run_dir: str) -> RunData:
    run_dir = run_dir.rstrip("/")
    try:
        stats = layout.read_stats(run_dir)
        folders = dict(layout.phase_dirs(run_dir))  # recorded relative to the run: a copy reads itself
    except layout.RunFolderError as exc:
        raise ReportError(str(exc)) from exc
    resolved = _resolved_job(run_dir)
    phases, stages, tokens, map_phases = [], [], [], []
    for p in stats["phases"]:
        folder = folders[p["name"]]
        phase_stats = read_json(join(folder, layout.PHASE_STATS))
        kind = phase_stats.get("kind", "map")
        if kind != "map":
            phases.append(PhaseSummary(name=p["name"], kind=kind, folder=folder, shards=p["shards"],
                                       docs_in=p["rows_in"], docs_kept=p["rows_kept"], docs_rejected=0,
                                       text_bytes_in=0, worker_seconds=0.0, wall_seconds=None,
                                       summary=phase_stats.get("summary") or {}))
            continue
        entries = ledger.committed(folder)
        order = _stage_order(resolved, p["name"], entries)
        stages += _stage_counts(p["name"], entries, order, first=not map_phases)
        tokens += _token_funnel(p["name"], folder, entries)
        phases.append(_phase_summary(p, kind, folder, entries))
        map_phases.append((p["name"], folder, entries))

    languages, language_phase = columns.languages(map_phases, resolved)
    scores = {c: s for c in ("ppl_v1", "quality_v1") if (s := columns.score_values(map_phases, c)) is not None}
    clusters, cluster_docs = {}, {}
    for column in ("minhash_cluster_v2", "exact_cluster_v1"):
        found = columns.cluster_sizes(map_phases, column)
        if found is not None:
            clusters[column], cluster_docs[column] = found
    return RunData(job=stats["job"], run_dir=run_dir, exit_code=stats["exit_code"], phases=phases, stages=stages,
                   tokens=tokens, token_unit="whitespace-separated words (no tokenizer is applied in corpus phases)",
                   languages=languages, language_phase=language_phase, scores=scores,
                   ppl_buckets=columns.ppl_buckets(map_phases), ppl_cutoffs=columns.ppl_cutoffs(resolved), clusters=clusters,
                   cluster_docs=cluster_docs)


# -- counters from the ledger ------------------------------------------------------------------------

def _resolved_job(run_dir: str) -> dict[str, Any]:
    fs, p = filesystem(join(run_dir, layout.RESOLVED_JOB))
    if not fs.exists(p):
        return {}
    with fs.open(p, "r", encoding="utf-8") as f:
        return yaml.safe_load(f) or {}


def _stage_order(resolved: dict, phase: str, entries: dict) -> list[str]:
    """Stages in run order: the job spec's order; stages only the ledger knows go last, sorted."""
    names = [READ_STAGE]  # later phases read the previous phase's parts: also a `read` stage
    for ph in resolved.get("phases", []):
        if ph.get("name") == phase:
            names += [s if isinstance(s, str) else next(iter(s)) for s in ph.get("stages", [])]
    seen = {s for e in entries.values() for s in e["counters"]}
    return [s for s in names if s in seen] + sorted(seen - set(names))


def shard_source(entry: dict[str, Any]) -> str:
    """A shard's source: the domain its files are partitioned under (a shard reads one input)."""
    domains = sorted({f["domain"] for kind in ("data", "rejected") for f in entry["files"][kind]})
    return "+".join(domains) if domains else "(no rows)"


def _stage_counts(phase: str, entries: dict, order: list[str], first: bool) -> list[StageCount]:
    sums: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for e in entries.values():
        for stage, c in e["counters"].items():
            for k, v in c.items():
                sums[(shard_source(e), stage)][k] += v
    out = []
    for source in sorted({s for s, _ in sums}):
        for stage in order:
            c = sums.get((source, stage))
            if c is not None:
                out.append(StageCount(phase=phase, source=source, stage=stage, docs_in=int(c["rows_in"]),
                                      docs_out=int(c["rows_out"]),
                                      bytes_in=int(c.get("bytes_in", _read_bytes_in(c, first))),
                                      bytes_out=int(c.get("bytes_out", 0)), seconds=float(c.get("seconds", 0.0))))
    return out


def _read_bytes_in(c: dict[str, float], first: bool) -> float:
    """The first phase reads files (input_bytes: their size on disk, compressed or not); a later phase
    reads the previous phase's text, where the runtime's input_bytes counts rows, not bytes."""
    return c.get("input_bytes", 0) if first else c.get("bytes_out", 0)


def _phase_summary(p: dict, kind: str, folder: str, entries: dict) -> PhaseSummary:
    # the text the phase read: what its reader handed to the first stage
    text_in = sum(int(e["counters"].get(READ_STAGE, {}).get("bytes_out", 0)) for e in entries.values())
    starts = [e["committed_at"] - e["seconds"] for e in entries.values() if "committed_at" in e]
    ends = [e["committed_at"] for e in entries.values() if "committed_at" in e]
    return PhaseSummary(name=p["name"], kind=kind, folder=folder, shards=p["shards"], docs_in=p["rows_in"],
                        docs_kept=p["rows_kept"], docs_rejected=p["rows_rejected"], text_bytes_in=text_in,
                        worker_seconds=sum(e.get("seconds", 0.0) for e in entries.values()),
                        wall_seconds=(max(ends) - min(starts)) if ends else None)


# -- tokens from the Parquet files -------------------------------------------------------------------

def _words(table: pa.Table) -> int:
    """Whitespace words, as the length stage counts them; its n_words_v1 where present."""
    from corpus.stages.length import LengthConfig, score_length

    if table.num_rows == 0:
        return 0
    if "n_words_v1" in table.column_names and table.column("n_words_v1").null_count == 0:
        return int(pc.sum(table.column("n_words_v1")).as_py())
    text = table.column("text") if "text" in table.column_names else pa.nulls(table.num_rows, pa.string())
    counted = score_length(pa.table({"text": pc.fill_null(text, "")}), LengthConfig()).column("n_words_v1")
    if "n_words_v1" in table.column_names:
        counted = pc.coalesce(table.column("n_words_v1"), counted)
    return int(pc.sum(counted).as_py() or 0)


def _word_columns(path: str, extra: list[str]) -> pa.Table:
    """n_words_v1 (+ extra); the text too only where the length stage did not count (text is the bulk)."""
    t = read_columns(path, ["n_words_v1"] + extra)
    if "n_words_v1" not in t.column_names or t.column("n_words_v1").null_count:
        t = read_columns(path, ["text", "n_words_v1"] + extra)
    return t


def _token_funnel(phase: str, folder: str, entries: dict) -> list[TokenFunnel]:
    kept: dict[str, int] = defaultdict(int)
    dropped: dict[str, dict[tuple[str, str], list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for path, domain in phase_files(folder, entries, "data"):
        kept[domain] += _words(_word_columns(path, []))
    for path, domain in phase_files(folder, entries, "rejected"):
        t = _word_columns(path, ["drop_stage", "drop_reason"])
        for (stage, reason), part in _group(t, ["drop_stage", "drop_reason"]):
            d = dropped[domain][(stage, reason)]
            d[0] += part.num_rows
            d[1] += _words(part)
    out = []
    for domain in sorted(set(kept) | set(dropped)):
        drops = {k: (v[0], v[1]) for k, v in sorted(dropped[domain].items())}
        out.append(TokenFunnel(phase=phase, source=domain, tokens_kept=kept[domain], dropped=drops,
                               tokens_in=kept[domain] + sum(t for _, t in drops.values())))
    return out


def _group(table: pa.Table, keys: list[str]):
    if table.num_rows == 0:
        return
    combos = table.select(keys).group_by(keys).aggregate([]).to_pylist()
    for combo in combos:
        mask = None
        for k in keys:
            m = pc.equal(table.column(k), combo[k]) if combo[k] is not None else pc.is_null(table.column(k))
            mask = m if mask is None else pc.and_(mask, m)
        yield tuple(combo[k] for k in keys), table.filter(mask)

