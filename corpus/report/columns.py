"""Score columns that stages add, read from a run's Parquet files: language counts, perplexity and
quality values, perplexity buckets and their cut-offs, duplicate-cluster sizes.

Each column is read from the first map phase whose files carry it: that phase's kept and rejected
documents together are every document that was scored. Only the needed columns are read, file by file,
and memory stays bounded on a full-size run (counts are merged per file; histogram values are sampled
above MAX_SAMPLE; clusters count only duplicates).
"""

from __future__ import annotations

import dataclasses
from collections import Counter, defaultdict

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from corpus.io.files import filesystem, join

MAX_SAMPLE = 2_000_000
"""Values kept per score column for histograms; above it each file contributes a systematic sample."""
MapPhase = tuple[str, str, dict]
"""(phase name, phase folder, its ledger entries by shard key)."""


class ReportError(RuntimeError):
    """The folder is not a finished run, or its files contradict each other."""


@dataclasses.dataclass(kw_only=True)
class ScoreColumn:
    """Values of one score column over every document that got it, kept or dropped by its phase."""

    name: str
    phase: str
    kept: np.ndarray
    dropped: np.ndarray
    documents: int
    """All documents with a non-null value (may exceed len(kept) + len(dropped) when sampled)."""


def phase_files(folder: str, entries: dict, kind: str) -> list[tuple[str, str]]:
    """(path, domain) of every committed file of this kind (`data` or `rejected`)."""
    return [(join(folder, kind, f["path"]), f["domain"]) for k in sorted(entries) for f in entries[k]["files"][kind]]


def read_columns(path: str, columns: list[str]) -> pa.Table:
    fs, p = filesystem(path)
    with fs.open(p, "rb") as f:
        pf = pq.ParquetFile(f)
        present = [c for c in columns if c in pf.schema_arrow.names]
        return pf.read(columns=present)


def _has_column(path: str, column: str) -> bool:
    fs, p = filesystem(path)
    with fs.open(p, "rb") as f:
        return column in pq.ParquetFile(f).schema_arrow.names


def _first_phase_with(map_phases: list[MapPhase], column: str) -> MapPhase | None:
    for name, folder, entries in map_phases:
        files = phase_files(folder, entries, "data") + phase_files(folder, entries, "rejected")
        if files and _has_column(files[0][0], column):
            return name, folder, entries
    return None


def languages(map_phases: list[MapPhase], resolved: dict) -> tuple[dict[str, tuple[int, int]] | None, str | None]:
    """language -> (kept, dropped). A null lang_v1 means too short to judge, or, in a rejected row, maybe
    never scored (dropped before the language stage ran); so the too-short count is what the scoring
    stage took in (its rows_in in the ledger) minus what got a language."""
    found = _first_phase_with(map_phases, "lang_v1")
    if found is None:
        return None, None
    name, folder, entries = found
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    kept_nulls = 0
    for slot, kind in ((0, "data"), (1, "rejected")):
        for path, _ in phase_files(folder, entries, kind):
            t = read_columns(path, ["lang_v1"])
            if "lang_v1" not in t.column_names:
                continue
            for row in pc.value_counts(t.column("lang_v1")).to_pylist():
                if row["values"] is not None:
                    counts[row["values"]][slot] += row["counts"]
                elif slot == 0:
                    kept_nulls += row["counts"]
    scored = _writer_rows_in(resolved, name, entries, "lang_v1")
    named = sum(sum(v) for v in counts.values())
    if kept_nulls or (scored is not None and scored > named):
        counts["(too short)"] = [kept_nulls, max(0, (scored or 0) - named - kept_nulls)]
    return {k: (v[0], v[1]) for k, v in sorted(counts.items(), key=lambda kv: -sum(kv[1]))}, name


def _writer_rows_in(resolved: dict, phase: str, entries: dict, column: str) -> int | None:
    """Rows that went into the stage of `phase` that writes `column` (None if it cannot be told)."""
    from corpus.config import config_from_dict
    from corpus.stages import STAGES

    for ph in resolved.get("phases", []):
        if ph.get("name") != phase:
            continue
        for s in ph.get("stages", []):
            stage, cfg = (s, {}) if isinstance(s, str) else next(iter(s.items()))
            spec = STAGES.get(stage)
            if spec is None:
                continue
            try:
                writes = spec.writes(config_from_dict(spec.config, cfg or {}, stage))
            except Exception:  # a config of another version: the count is unknown, not wrong
                continue
            if column in writes:
                return int(sum(e["counters"].get(stage, {}).get("rows_in", 0) for e in entries.values()))
    return None


def _values(path: str, column: str) -> np.ndarray:
    t = read_columns(path, [column])
    if column not in t.column_names:
        return np.empty(0)
    return pc.drop_null(t.column(column)).to_numpy(zero_copy_only=False).astype(np.float64)


def score_values(map_phases: list[MapPhase], column: str) -> ScoreColumn | None:
    found = _first_phase_with(map_phases, column)
    if found is None:
        return None
    name, folder, entries = found
    data, rejected = phase_files(folder, entries, "data"), phase_files(folder, entries, "rejected")
    per_file = max(1, MAX_SAMPLE // max(1, len(data) + len(rejected)))
    parts: dict[str, list[np.ndarray]] = {"data": [], "rejected": []}
    total = 0
    for kind, files in (("data", data), ("rejected", rejected)):
        for path, _ in files:
            v = _values(path, column)
            total += len(v)
            # A systematic sample keeps memory bounded on a full-size run; small runs keep every value.
            parts[kind].append(v[:: int(np.ceil(len(v) / per_file))] if len(v) > per_file else v)
    cat = {k: np.concatenate(v) if v else np.empty(0) for k, v in parts.items()}
    return ScoreColumn(name=column, phase=name, kept=cat["data"], dropped=cat["rejected"], documents=total)


def ppl_buckets(map_phases: list[MapPhase]) -> dict[str, tuple[int, float, float]] | None:
    found = _first_phase_with(map_phases, "ppl_bucket_v1")
    if found is None:
        return None
    _, folder, entries = found
    acc: dict[str, list[float]] = {}
    for kind in ("data", "rejected"):
        for path, _ in phase_files(folder, entries, kind):
            t = read_columns(path, ["ppl_bucket_v1", "ppl_v1"])
            if "ppl_bucket_v1" not in t.column_names or "ppl_v1" not in t.column_names:
                continue
            g = t.group_by("ppl_bucket_v1").aggregate([("ppl_v1", "count"), ("ppl_v1", "min"), ("ppl_v1", "max")])
            for row in g.to_pylist():
                bucket = str(row["ppl_bucket_v1"])
                n, lo, hi = row["ppl_v1_count"], row["ppl_v1_min"], row["ppl_v1_max"]
                if lo is None:
                    continue
                a = acc.setdefault(bucket, [0, lo, hi])
                a[0] += n
                a[1], a[2] = min(a[1], lo), max(a[2], hi)
    return {b: (int(v[0]), float(v[1]), float(v[2])) for b, v in sorted(acc.items(), key=lambda kv: kv[1][1])}


def ppl_cutoffs(resolved: dict) -> list[tuple[str, float]]:
    """Numeric cut-offs in the configuration of a perplexity stage (a stage named like `perplexity`):
    settings whose key path says cut/bucket/threshold/bound, scalar or list, at any depth."""
    out = []
    for ph in resolved.get("phases", []):
        for s in ph.get("stages", []):
            if not isinstance(s, dict):
                continue
            stage, cfg = next(iter(s.items()))
            if any(w in stage for w in ("perplex", "ppl", "kenlm")) and isinstance(cfg, dict):
                out += [(f"{stage}.{path}", v) for path, v in _numeric_leaves(cfg, "")
                        if any(w in path for w in ("cut", "bucket", "threshold", "bound"))]
    return out


def _numeric_leaves(value, path: str) -> list[tuple[str, float]]:
    if isinstance(value, dict):
        return [leaf for k, v in value.items() for leaf in _numeric_leaves(v, f"{path}.{k}" if path else str(k))]
    if isinstance(value, list):
        return [leaf for i, v in enumerate(value) for leaf in _numeric_leaves(v, f"{path}[{i}]")]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return [(path, float(value))]
    return []


def cluster_sizes(map_phases: list[MapPhase], column: str) -> tuple[Counter, int] | None:
    """Sizes of clusters with two or more documents. A cluster is one survivor plus the documents
    flagged `<x>_duplicate_v1`, so its size is 1 + its duplicates: counting only duplicate rows keeps
    memory at the number of duplicates, not of documents."""
    found = _first_phase_with(map_phases, column)
    if found is None:
        return None
    _, folder, entries = found
    dup_column = column.replace("_cluster_", "_duplicate_")
    duplicates: Counter = Counter()
    documents = 0
    for kind in ("data", "rejected"):
        for path, _ in phase_files(folder, entries, kind):
            t = read_columns(path, [column, dup_column])
            if column not in t.column_names:
                continue
            if dup_column not in t.column_names:
                raise ReportError(f"{path}: has {column} but not {dup_column}; cannot tell survivors")
            t = t.filter(pc.is_valid(t.column(column)))
            documents += t.num_rows
            t = t.filter(pc.fill_null(t.column(dup_column), False))
            for row in pc.value_counts(t.column(column)).to_pylist():
                duplicates[row["values"]] += row["counts"]
    return Counter(n + 1 for n in duplicates.values()), documents
