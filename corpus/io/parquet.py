"""Parquet read and write for document batches: streaming, atomic, Hive-partitioned by domain.

Row groups are cut by size (default 64 MiB of Arrow data) so that DuckDB, Spark and pandas can
parallelize and skip on them, and files are zstd-compressed. Each part file is written under a temp
name and published by rename (corpus.io.files.publish).
"""

from __future__ import annotations

from typing import Iterator

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from corpus.io.files import filesystem, join, make_dirs, publish, temp_name

PARTITION_KEY = "domain"


def partition_path(root: str, domain: str, part: str) -> str:
    return join(root, f"{PARTITION_KEY}={domain}", f"part-{part}.parquet")


def domain_of(path: str) -> str | None:
    for piece in path.split("/"):
        if piece.startswith(f"{PARTITION_KEY}="):
            return piece.split("=", 1)[1]
    return None


class PartWriter:
    """Streams batches of one (domain, part) into a temp file; `commit` publishes it."""

    def __init__(self, final_path: str, schema: pa.Schema, row_group_bytes: int):
        self.final_path = final_path
        self.tmp_path = temp_name(final_path)
        self.schema = schema
        self.row_group_bytes = row_group_bytes
        self.pending: list[pa.Table] = []
        self.pending_bytes = 0
        self.rows = 0
        self.bytes_written = 0
        make_dirs(final_path.rsplit("/", 1)[0])  # a new partition folder is fsynced into its parent
        self._file = fsspec.open(self.tmp_path, "wb").open()
        self._writer = pq.ParquetWriter(self._file, schema, compression="zstd")

    def write(self, table: pa.Table) -> None:
        table = table.select(self.schema.names).cast(self.schema)
        self.pending.append(table)
        self.pending_bytes += table.nbytes
        self.rows += table.num_rows
        if self.pending_bytes >= self.row_group_bytes:
            self._flush()

    def _flush(self) -> None:
        if self.pending:
            table = pa.concat_tables(self.pending).combine_chunks()
            self._writer.write_table(table, row_group_size=max(1, table.num_rows))
        self.pending, self.pending_bytes = [], 0

    def commit(self) -> None:
        self._flush()
        self._writer.close()
        self._file.close()
        fs, p = filesystem(self.tmp_path)
        self.bytes_written = fs.size(p)
        publish(self.tmp_path, self.final_path)

    def abort(self) -> None:
        try:
            self._writer.close()
            self._file.close()
        finally:
            fs, p = filesystem(self.tmp_path)
            if fs.exists(p):
                fs.rm(p)


def read_batches(path: str, batch_rows: int, row_groups: list[int] | None = None,
                 columns: list[str] | None = None) -> Iterator[pa.Table]:
    """Stream a Parquet file (or some of its row groups) in tables of at most `batch_rows` rows."""
    with fsspec.open(path, "rb") as f:
        pf = pq.ParquetFile(f)
        for batch in pf.iter_batches(batch_size=batch_rows, row_groups=row_groups, columns=columns):
            yield pa.Table.from_batches([batch])


def count_rows(path: str) -> int:
    """Rows in a Parquet file, from its footer only."""
    with fsspec.open(path, "rb") as f:
        return pq.ParquetFile(f).metadata.num_rows


def read_documents(root: str) -> pa.Table:
    """A whole Hive-partitioned output folder as one table, `domain` restored from the folder names."""
    import pyarrow.dataset as ds

    fs, p = filesystem(root)
    dataset = ds.dataset(p, filesystem=fs, format="parquet",
                         partitioning=ds.partitioning(pa.schema([(PARTITION_KEY, pa.string())]), flavor="hive"))
    return dataset.to_table()
