"""`refinery export megatron`: a run's final Parquet -> Megatron indexed datasets per domain, on Ray.

Phase folder `<out>/`:
  export.json                 what this folder was made from (tokenizer sha256, source data relative to
                              this folder, dtype); a rerun with another tokenizer or source is refused
                              instead of mixed
  shards/<domain>/<part>.{bin,idx}   one dataset per Parquet part file (the unit of retry and commit)
  ledger/<key>.json           one per committed shard (written by corpus.runtime.pool after publish)
  <domain>_text_document.{bin,idx}   the shards of a domain concatenated in sorted shard order
  manifest.json               documents and tokens per domain and per shard, read back from the .idx files
and `<run_dir>/export_stats.json`: the tokens per domain, next to the run's stats.json. Every path these
files record is relative to the folder of the file (corpus.runtime.layout), so a run folder copied with
its export reads its own data.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Any

from corpus.io.files import expand_paths, join, read_json, remove_temp_files, write_json_atomic
from corpus.io.parquet import domain_of
from corpus.runtime import layout, ledger
from corpus.runtime.pool import run_on_actors
from schemas.local_ray import start_ray

MANIFEST_FORMAT = "refinery-megatron-manifest-v1"


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class ExportItem:
    key: str
    path: str
    parts: tuple[str, ...]
    domain: str
    prefix: str
    """Shard dataset path prefix (without .bin/.idx)."""
    out: str
    """The export folder: the ledger records paths relative to it."""


class ExportWorker:
    """Built once per actor: loads the tokenizer, then tokenizes one Parquet file per `run`."""

    def __init__(self, tokenizer_dir: str, batch_rows: int):
        from training.tokenizer import load_tokenizer

        self.tok = load_tokenizer(tokenizer_dir)
        self.batch_rows = batch_rows

    def run(self, item: ExportItem, attempt: int) -> dict[str, Any]:
        from training.megatron_export import ExportConfig, export_part

        counts = export_part(item.path, self.tok.tokenizer, self.tok.eod_id, self.tok.vocab_size, item.prefix,
                             ExportConfig(batch_rows=self.batch_rows))
        return {"key": item.key, "domain": item.domain, "source": layout.record_path(item.out, item.path),
                "prefix": layout.relative_to(item.out, item.prefix), "rows_in": counts["documents"], **counts}


def list_items(final_data: str, out: str) -> list[ExportItem]:
    items = []
    for path in expand_paths([join(final_data, layout.PARQUET_GLOB)]):
        domain = domain_of(path)
        if domain is None:
            continue
        stem = os.path.basename(path)[: -len(".parquet")]
        items.append(ExportItem(key=f"{domain}--{stem}", path=path, parts=(), domain=domain,
                                prefix=join(out, "shards", domain, stem), out=out))
    return items


def default_out(run_dir: str, tokenizer_sha: str) -> str:
    return layout.export_dir(run_dir, tokenizer_sha)


def export_megatron(run_dir: str, tokenizer_dir: str, *, out: str | None = None, workers: int = 2,
                    max_retries: int = 2, batch_rows: int = 10_000, progress: bool = True) -> dict[str, Any]:
    """Export (or resume exporting) a run; returns the manifest. Quarantined shards raise RuntimeError."""
    import ray

    from training.megatron_export import merge_shards, read_counts, token_dtype
    from training.tokenizer import load_tokenizer

    tok = load_tokenizer(tokenizer_dir)
    final_data = layout.final_data(run_dir)
    out = out or default_out(run_dir, tok.sha256)
    if "://" in out:
        raise ValueError(f"--out {out}: the Megatron builder writes local files; export to a local folder, then copy")
    # Actors need not share the driver's working folder (a joined cluster): they get absolute paths.
    out, tokenizer_dir = os.path.abspath(out), os.path.abspath(tokenizer_dir)
    final_data = final_data if "://" in final_data else os.path.abspath(final_data)
    os.makedirs(out, exist_ok=True)
    dtype = token_dtype(tok.vocab_size).__name__
    # The source relative to this folder: a run folder copied with its export still names its own data.
    identity = {"tokenizer_sha256": tok.sha256, "vocab_size": tok.vocab_size, "eod_id": tok.eod_id,
                "dtype": dtype, "source": layout.record_path(out, final_data)}
    identity_path = join(out, "export.json")
    if os.path.exists(identity_path):
        before = read_json(identity_path)
        if before != identity:
            raise ValueError(f"{out} was exported from {json.dumps(before, sort_keys=True)}, not "
                             f"{json.dumps(identity, sort_keys=True)}. Fix: use another --out, or delete it.")
    else:
        write_json_atomic(identity_path, identity)
    remove_temp_files(out)
    items = list_items(final_data, out)
    if not items:
        raise FileNotFoundError(f"{final_data}: no domain=*/ *.parquet files to export")
    done = ledger.committed(out)
    todo = [i for i in items if i.key not in done]
    if todo:
        if not ray.is_initialized():
            start_ray(None, num_cpus=max(workers, os.cpu_count() or 1))  # the embedded local cluster
        quarantined = run_on_actors(phase_dir=out, items=todo, factory=lambda: ExportWorker(tokenizer_dir, batch_rows),
                                    workers=workers, max_retries=max_retries, desc="export megatron",
                                    progress=progress, total=len(items))
        if quarantined:
            raise RuntimeError(f"export: {len(quarantined)} shards quarantined ({', '.join(quarantined[:5])}...): "
                               f"see {out}/quarantine/, fix, then rerun")
        done = ledger.committed(out)
    manifest = _merge(items, done, out, tok, identity, merge_shards, read_counts)
    write_json_atomic(join(run_dir, layout.EXPORT_STATS), {
        "export_dir": layout.record_path(run_dir, out), "tokenizer_sha256": tok.sha256, "finished_at": time.time(),
        "tokens": {d: v["tokens"] for d, v in manifest["domains"].items()},
        "documents": {d: v["documents"] for d, v in manifest["domains"].items()},
        "total_tokens": manifest["total_tokens"], "total_documents": manifest["total_documents"]})
    return manifest


def _merge(items, done, out, tok, identity, merge_shards, read_counts) -> dict[str, Any]:
    """Concatenate each domain's shards and write the manifest; skipped when the manifest is current."""
    by_domain: dict[str, list[ExportItem]] = {}
    for item in sorted(items, key=lambda i: i.key):
        by_domain.setdefault(item.domain, []).append(item)
    shards = {d: [{"key": i.key, "source": layout.record_path(out, i.path), "prefix": os.path.relpath(i.prefix, out),
                   "documents": done[i.key]["documents"], "tokens": done[i.key]["tokens"]} for i in its]
              for d, its in by_domain.items()}
    manifest_path = join(out, "manifest.json")
    if os.path.exists(manifest_path):
        old = read_json(manifest_path)
        if ({d: v["shards"] for d, v in old.get("domains", {}).items()} == shards
                and all(os.path.exists(join(out, v["prefix"] + ".idx")) for v in old["domains"].values() if v["prefix"])):
            return old
    domains = {}
    for d, its in by_domain.items():
        prefix = f"{d}_text_document"
        # An empty Parquet part gives an empty .bin, which numpy cannot memory-map: leave it out.
        nonempty = [s for s in shards[d] if s["documents"] > 0]
        if not nonempty:
            domains[d] = {"prefix": None, "documents": 0, "tokens": 0, "shards": shards[d]}
            continue
        for shard in nonempty:  # the ledger's counts must match what megatron-core reads back
            back = read_counts(join(out, shard["prefix"]))
            if (back["documents"], back["tokens"]) != (shard["documents"], shard["tokens"]):
                raise RuntimeError(f"export: shard {shard['key']}: ledger says {shard['documents']} docs / "
                                   f"{shard['tokens']} tokens, the .idx holds {back}. Delete its ledger entry, rerun.")
        merge_shards([join(out, s["prefix"]) for s in nonempty], join(out, prefix), tok.vocab_size)
        back = read_counts(join(out, prefix))
        domains[d] = {"prefix": prefix, "documents": back["documents"], "tokens": back["tokens"],
                      "shards": shards[d]}
        if back["documents"] != sum(s["documents"] for s in shards[d]):
            raise RuntimeError(f"export: merged {prefix} holds {back['documents']} documents, shards sum to "
                               f"{sum(s['documents'] for s in shards[d])}")
    manifest = {"format": MANIFEST_FORMAT, **identity, "tokenizer": tok.config,
                "total_documents": sum(v["documents"] for v in domains.values()),
                "total_tokens": sum(v["tokens"] for v in domains.values()),
                "tokens_include_eod": True, "domains": domains}
    write_json_atomic(manifest_path, manifest)
    return manifest
