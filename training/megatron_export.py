"""Corpus Parquet -> Megatron indexed datasets (`.bin` + `.idx`), written by megatron-core's own builder.

One Parquet part file becomes one shard dataset: each document is one sequence of its token ids
followed by exactly one EOD, and one Megatron document. Documents keep file order, so a rerun gives
the same bytes. Shards of a domain are then concatenated, in sorted shard order, into
`<domain>_text_document.{bin,idx}` with `IndexedDatasetBuilder.add_index`.

The token dtype is megatron-core's `DType.optimal_dtype(vocab_size)`: uint16 below 65500 ids, else int32
(megatron-core's choice for large vocabularies; ids up to 2**31 - 1).
Files are written under temporary names, fsynced and renamed, so a reader never sees half a dataset.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
import uuid
from typing import Any, Iterator

import numpy as np

from training.atomic_files import publish


def _megatron():
    try:
        from megatron.core.datasets import indexed_dataset
    except ImportError as exc:
        raise ImportError("the Megatron export needs megatron-core and torch: "
                          "pip install -c constraints.txt megatron-core==0.16.1 torch") from exc
    return indexed_dataset


def token_dtype(vocab_size: int) -> type[np.number]:
    """megatron-core's own choice: numpy.uint16 when every id fits below 65500, else numpy.int32."""
    return _megatron().DType.optimal_dtype(vocab_size)


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class ExportConfig:
    batch_rows: int = 10_000
    """Documents tokenized per `encode_batch` call (the tokenizer parallelizes within a call)."""


def _iter_texts(parquet_path: str, batch_rows: int) -> Iterator[Any]:
    """The `text` column of a Parquet file in Arrow arrays of at most `batch_rows` rows, in file order."""
    import fsspec
    import pyarrow.parquet as pq

    with fsspec.open(parquet_path, "rb") as f:
        for batch in pq.ParquetFile(f).iter_batches(batch_size=batch_rows, columns=["text"]):
            yield batch.column(0)


def export_part(parquet_path: str, tokenizer: Any, eod_id: int, vocab_size: int, out_prefix: str,
                cfg: ExportConfig = ExportConfig()) -> dict[str, Any]:
    """Tokenize one Parquet file into `<out_prefix>.{bin,idx}`; returns its counts.

    A null text is exported as an empty document (just EOD) and counted in `null_texts`, so document
    counts always equal Parquet row counts.
    """
    import pyarrow.compute as pc
    import torch

    dtype = token_dtype(vocab_size)
    os.makedirs(os.path.dirname(out_prefix) or ".", exist_ok=True)
    counts = {"documents": 0, "tokens": 0, "text_bytes": 0, "null_texts": 0, "empty_texts": 0}
    started = time.perf_counter()
    with _dataset_builder(out_prefix, dtype) as builder:
        for column in _iter_texts(parquet_path, cfg.batch_rows):
            nulls = column.null_count
            counts["null_texts"] += nulls
            counts["empty_texts"] += int(pc.sum(pc.equal(pc.binary_length(column), 0)).as_py() or 0) + nulls
            counts["text_bytes"] += int(pc.sum(pc.binary_length(column)).as_py() or 0)
            texts = column.fill_null("").to_pylist() if nulls else column.to_pylist()
            for enc in tokenizer.encode_batch(texts, add_special_tokens=False):
                ids = enc.ids  # a fresh list per access: appending EOD to it is safe
                ids.append(eod_id)
                builder.add_item(torch.from_numpy(np.array(ids, dtype=dtype)))
                builder.end_document()
                counts["documents"] += 1
                counts["tokens"] += len(ids)
    counts["seconds"] = round(time.perf_counter() - started, 6)
    return counts


def merge_shards(shard_prefixes: list[str], out_prefix: str, vocab_size: int) -> None:
    """Concatenate shard datasets, in the given order, into `<out_prefix>.{bin,idx}`."""
    with _dataset_builder(out_prefix, token_dtype(vocab_size)) as builder:
        for prefix in shard_prefixes:
            builder.add_index(prefix)


def read_counts(prefix: str) -> dict[str, int]:
    """Documents and tokens of a dataset as megatron-core's IndexedDataset reads them back."""
    dataset = _megatron().IndexedDataset(prefix)
    return {"documents": int(len(dataset.document_indices) - 1),
            "tokens": int(np.sum(dataset.sequence_lengths, dtype=np.int64)),
            "sequences": int(len(dataset))}


@contextlib.contextmanager
def _dataset_builder(out_prefix: str, dtype) -> Iterator[Any]:
    """An IndexedDatasetBuilder on temp files; on a clean exit it is finalized and `<out_prefix>.{bin,idx}`
    are published, on an error the temp files are removed."""
    tag = uuid.uuid4().hex
    tmp_bin, tmp_idx = f"{out_prefix}.bin.tmp-{tag}", f"{out_prefix}.idx.tmp-{tag}"
    builder = _megatron().IndexedDatasetBuilder(tmp_bin, dtype=dtype)
    try:
        yield builder
        builder.finalize(tmp_idx)
    except BaseException:
        builder.data_file.close()
        for p in (tmp_bin, tmp_idx):
            if os.path.exists(p):
                os.remove(p)
        raise
    publish(tmp_bin, f"{out_prefix}.bin")
    publish(tmp_idx, f"{out_prefix}.idx")
