"""C4 layout (allenai/c4: one object per line with text, url, timestamp; its Parquet conversions with the same
columns) through the jsonl and parquet readers. The fixture rows are written here (text by the test author,
public domain); the layout follows the published c4 files: `c4-train.00000-of-01024.json.gz`."""

import datetime
import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq

from corpus.sources.base import Shard
from corpus.sources.jsonl import JsonlConfig, read_jsonl
from corpus.sources.parquet import ParquetConfig, read_parquet, split_parquet

ROWS = [
    {"text": f"Paragraph {i} of a small C4-style page.\nIt has two lines of plain text.",
     "url": f"https://example.org/page-{i}", "timestamp": f"2019-04-{10 + i:02d}T08:15:0{i}Z"}
    for i in range(9)
]


def shard(path, source, **kw):
    return Shard(key="00000", source=source, path=str(path), relpath=path.name, domain="c4",
                 size=path.stat().st_size, **kw)


def collect(batches):
    docs, rejects = [], []
    for b in batches:
        docs += b.documents.to_pylist()
        rejects += b.rejected
    return docs, rejects


def test_c4_json_gz_keeps_text_url_timestamp(tmp_path):
    path = tmp_path / "c4-train.00000-of-01024.json.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in ROWS)
    docs, rejects = collect(read_jsonl(shard(path, "jsonl"), JsonlConfig(), batch_rows=4))
    assert not rejects
    assert [(d["text"], d["url"], json.loads(d["meta"])["timestamp"]) for d in docs] == \
        [(r["text"], r["url"], r["timestamp"]) for r in ROWS]
    assert all(d["domain"] == "c4" for d in docs)


def test_c4_parquet_with_string_or_timestamp_column_and_row_group_split(tmp_path):
    for kind in ("string", "timestamp"):
        table = pa.table({"text": [r["text"] for r in ROWS], "url": [r["url"] for r in ROWS],
                          "timestamp": [r["timestamp"] for r in ROWS]})
        if kind == "timestamp":
            stamps = [datetime.datetime.fromisoformat(r["timestamp"].replace("Z", "+00:00")) for r in ROWS]
            table = table.set_column(2, "timestamp", pa.array(stamps, pa.timestamp("s", tz="UTC")))
        path = tmp_path / f"c4-{kind}.parquet"
        pq.write_table(table, path, row_group_size=2)  # 5 row groups
        cfg = ParquetConfig(row_groups_per_shard=2)
        parts = split_parquet(shard(path, "parquet"), cfg)
        assert [p.row_groups for p in parts] == [(0, 1), (2, 3), (4,)]
        docs = []
        for part in parts:
            got, rejects = collect(read_parquet(part, cfg, batch_rows=3))
            assert not rejects
            docs += got
        assert [d["text"] for d in docs] == [r["text"] for r in ROWS]
        assert [d["url"] for d in docs] == [r["url"] for r in ROWS]
        stamps = [json.loads(d["meta"])["timestamp"] for d in docs]
        if kind == "string":
            assert stamps == [r["timestamp"] for r in ROWS]
        else:  # a timestamp column is kept as its ISO form
            assert stamps[0].startswith("2019-04-10 08:15:00")
        assert len({d["id"] for d in docs}) == len(ROWS)


def test_c4_rows_without_text_are_rejected(tmp_path):
    path = tmp_path / "c4-bad.json"
    path.write_text(json.dumps(ROWS[0]) + "\n" + json.dumps({"url": "https://example.org/x", "timestamp": "t"})
                    + "\n" + json.dumps({**ROWS[1], "text": "  "}) + "\n")
    docs, rejects = collect(read_jsonl(shard(path, "jsonl"), JsonlConfig(), batch_rows=10))
    assert len(docs) == 1 and [r for _, r in rejects] == ["missing_text", "missing_text"]
    pq.write_table(pa.table({"url": ["u"], "timestamp": ["t"]}), tmp_path / "notext.parquet")
    docs, rejects = collect(read_parquet(shard(tmp_path / "notext.parquet", "parquet"), ParquetConfig(), 10))
    assert docs == [] and [r for _, r in rejects] == ["missing_text_column"]
