import gzip
import json

from corpus.sources.base import Shard
from corpus.sources.jsonl import JsonlConfig, read_jsonl


def shard(path):
    return Shard(key="00000", source="jsonl", path=str(path), relpath=path.name, domain="c4", size=path.stat().st_size)


def read_all(path, **cfg):
    docs, rejects = [], []
    for b in read_jsonl(shard(path), JsonlConfig(**cfg), batch_rows=2):
        docs += b.documents.to_pylist()
        rejects += b.rejected
    return docs, rejects


def test_c4_layout_fields_ids_and_batches(tmp_path):
    p = tmp_path / "c4.jsonl.gz"
    rows = [{"text": f"document {i}", "url": f"http://x/{i}", "timestamp": "2019-04-25T12:57:54Z"} for i in range(5)]
    with gzip.open(p, "wt") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    docs, rejects = read_all(p)
    assert [d["text"] for d in docs] == [r["text"] for r in rows] and not rejects
    assert docs[0]["url"] == "http://x/0" and json.loads(docs[0]["meta"]) == {"timestamp": "2019-04-25T12:57:54Z"}
    assert docs[0]["source"] == "c4.jsonl.gz#line0"
    again, _ = read_all(p)
    assert [d["id"] for d in docs] == [d["id"] for d in again] and len({d["id"] for d in docs}) == 5


def test_every_bad_line_is_rejected_with_its_reason(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_bytes(b'{"text": "good one"}\n{"text": "unterminated\n{"text": "caf\xe9"}\n'
                  b'{"url": "no text"}\n["not", "an object"]\n\n{"text": "' + b"x" * 5000 + b'"}\n{"text": "last"}\n')
    docs, rejects = read_all(p, max_line_bytes=1024)
    assert [d["text"] for d in docs] == ["good one", "last"]
    assert [r for _, r in rejects] == ["invalid_json", "invalid_utf8", "missing_text", "missing_text", "line_too_long"]
    too_long = rejects[-1][0]
    assert len(too_long["text"]) == 1024 and too_long["source"] == "bad.jsonl#line6"


def test_giant_line_is_not_held_in_memory(tmp_path):
    p = tmp_path / "giant.jsonl"
    with open(p, "wb") as f:
        f.write(b'{"text": "' + b"a" * (100 << 20) + b'"}\n{"text": "after"}\n')
    docs, rejects = read_all(p, max_line_bytes=1 << 20)
    assert [d["text"] for d in docs] == ["after"]
    assert rejects[0][1] == "line_too_long" and len(rejects[0][0]["text"]) == 1 << 20


def test_truncated_gzip_keeps_what_was_read_and_says_where(tmp_path):
    p = tmp_path / "cut.jsonl.gz"
    data = gzip.compress("".join(json.dumps({"text": f"doc {i} " * 50}) + "\n" for i in range(200)).encode())
    p.write_bytes(data[: len(data) // 2])
    docs, rejects = read_all(p)
    assert 0 < len(docs) < 200
    assert [r for _, r in rejects] == ["corrupt_compressed_stream"]
    assert "after" in rejects[0][0]["text"]


def test_empty_file_is_one_reject(tmp_path):
    p = tmp_path / "empty.jsonl"
    p.write_bytes(b"")
    docs, rejects = read_all(p)
    assert docs == [] and [r for _, r in rejects] == ["empty_file"]


def test_decompression_bomb_is_stopped_with_a_reason(tmp_path):
    p = tmp_path / "bomb.jsonl.gz"
    # 60 MB of one repeated record compresses about 1000x: past the 250x expansion limit.
    line = (json.dumps({"text": "spam " * 200}) + "\n").encode()
    with gzip.open(p, "wb", compresslevel=9) as f:
        for _ in range(60_000):
            f.write(line)
    docs, rejects = read_all(p)
    assert rejects[-1][1] == "decompression_limit"
    assert "expanded past" in rejects[-1][0]["text"]
    assert len(docs) < 60_000


def test_a_lone_surrogate_escape_is_rejected_and_a_pair_is_kept(tmp_path):
    # Valid JSON both: a surrogate pair decodes to one character (U+1F600), a lone one has no UTF-8 form.
    p = tmp_path / "surrogates.jsonl"
    p.write_text('{"text": "smile \\ud83d\\ude00"}\n{"text": "broken \\ud800 here"}\n'
                 '{"text": "ok", "url": "http://x/\\udfff"}\n{"text": "after"}\n')
    docs, rejects = read_all(p)
    assert [d["text"] for d in docs] == ["smile \U0001F600", "after"]
    assert [r for _, r in rejects] == ["lone_surrogate", "lone_surrogate"]
    assert "surrogate" in json.loads(rejects[0][0]["meta"])["error"]
