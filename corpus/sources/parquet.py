"""Parquet inputs: C4-layout files (text, url, timestamp) or documents written by another refinery job.

A big file is split into shards of `row_groups_per_shard` row groups, so one 10 GB file still spreads
over the actor pool. A file that is not valid Parquet becomes one rejected row with the error; one
whose decoded columns grow past the limit every reader shares (open_input.py) ends with one
`decompression_limit` row after the rows read before.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Iterator

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from corpus.config import setting
from corpus.sources.base import DocumentBuffer, ReadBatch, Shard, SourceSpec
from corpus.sources.open_input import DECOMPRESSION_LIMIT, DecompressionBudget, DecompressionLimitExceeded


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class ParquetConfig:
    text_field: str = setting("text", doc="column holding the document text")
    url_field: str = setting("url", doc="column holding the URL (may be absent)")
    meta_fields: tuple[str, ...] = setting(("timestamp",), doc="columns copied into meta when present")
    row_groups_per_shard: int = setting(8, doc="row groups per shard when a file is split", unit="row groups",
                                        ge=1)


def split_parquet(shard: Shard, cfg: ParquetConfig) -> list[Shard]:
    try:
        with fsspec.open(shard.path, "rb") as f:
            n = pq.ParquetFile(f).metadata.num_row_groups
    except (pa.ArrowException, OSError):
        return [shard]  # unreadable: the reader turns it into a reject row
    if n <= cfg.row_groups_per_shard:
        return [shard]
    step = cfg.row_groups_per_shard
    return [dataclasses.replace(shard, key=f"{shard.key}-rg{start:05d}",
                                row_groups=tuple(range(start, min(n, start + step))))
            for start in range(0, n, step)]


def read_parquet(shard: Shard, cfg: ParquetConfig, batch_rows: int) -> Iterator[ReadBatch]:
    buf = DocumentBuffer(shard, batch_rows)
    try:
        with fsspec.open(shard.path, "rb") as f:
            pf = pq.ParquetFile(f)
            names = pf.schema_arrow.names
            if cfg.text_field not in names:
                buf.reject("file", "missing_text_column", f"columns: {names}")
                yield buf.take()
                return
            groups = list(shard.row_groups) if shard.row_groups is not None else list(range(pf.num_row_groups))
            wanted = [c for c in [cfg.text_field, cfg.url_field, *cfg.meta_fields] if c in names]
            budget = DecompressionBudget.for_file(shard.path)
            for group in groups:
                i = 0
                for batch in pf.iter_batches(batch_size=batch_rows, row_groups=[group], columns=wanted):
                    # Pages are compressed, and dictionary encoding repeats one value any number of times:
                    # the decoded batches count against the limit every reader shares.
                    budget.spend(batch.nbytes)
                    for row in batch.to_pylist():
                        offset = f"rg{group}.{i}"
                        i += 1
                        text = row.get(cfg.text_field)
                        if not isinstance(text, str) or not text.strip():
                            buf.reject(offset, "missing_text", json.dumps(row, default=str)[:4096])
                        else:
                            meta = {k: row[k] for k in cfg.meta_fields if row.get(k) is not None}
                            buf.add(offset, text, url=row.get(cfg.url_field), meta=meta or None)
                        if buf.full():
                            yield buf.take()
    except DecompressionLimitExceeded as exc:
        buf.reject("file", DECOMPRESSION_LIMIT, f"{type(exc).__name__}: {exc}")
    except (pa.ArrowException, OSError) as exc:
        buf.reject("file", "invalid_parquet", f"{type(exc).__name__}: {exc}")
    yield buf.take()


SPEC = SourceSpec(name="parquet", config=ParquetConfig, read=read_parquet, split=split_parquet)
