"""Line dedup (CCNet) and exact dedup phase kinds, run in process, with their removal stages; and
dedup of a new corpus against an existing corpus's MinHash index."""

import json
import os

import pyarrow as pa
import pytest

from corpus.dedup import exact, fuzzy, lines
from corpus.dedup.layout import read_table
from corpus.dedup.local import run_kind, write_shards
from corpus.sources.base import Shard
from corpus.stages.base import BuildContext, StartsShards
from corpus.stages.line_dedup import LineDedupStageConfig, LineRemover
from corpus.stages.minhash_dedup import ResultsMarker

DOCS = [  # 3 shards of 2 documents
    ("d0", "Intro line one.\nShared Footer 2023!\nunique zero"),
    ("d1", "unique one\n\nshared footer 1999"),  # same line as d0's after normalization (digits -> 0)
    ("d2", "only Shared footer 2024\nShared footer 2024"),
    ("d3", "Nothing shared here."),
    ("d4", "shared footer 0000"),  # every line repeated elsewhere: left empty
    ("d5", "Nothing shared here"),
]


def upstream(key, paths):
    """The shard the runtime hands a removal stage: a later phase's shard over the upstream part files."""
    return Shard.of_phase(os.path.dirname(os.path.dirname(paths[0])), key, tuple(paths))


def corpus(tmp_path, docs=DOCS, shards=3):
    table = pa.table({"id": [d for d, _ in docs], "text": [t for _, t in docs]})
    return write_shards(table, str(tmp_path / "up"), shards)


def apply_lines(phase_dir, parts):
    ctx = BuildContext(phase="apply", stage="line_dedup", column_origin={}, work_dir="", phase_dirs={"lines": phase_dir})
    remover = LineRemover(LineDedupStageConfig(index_phase="lines"), ctx)
    out = {}
    for key, paths in parts.items():
        remover.start_shard(upstream(key, paths))
        batch = remover(read_table(paths[0]))
        for row in batch.to_pylist():
            out[row["id"]] = (row["text"], row["line_dedup_removed_v1"], row["line_dedup_empty_v1"])
    return out


def test_ccnet_line_dedup_removes_every_occurrence_and_flags_empty_docs(tmp_path):
    parts = corpus(tmp_path)
    summary = run_kind(lines.KIND, lines.LineDedupConfig(), str(tmp_path / "lines"), parts)
    out = apply_lines(str(tmp_path / "lines"), parts)
    assert out["d0"] == ("Intro line one.\nunique zero", 1, False)
    assert out["d1"] == ("unique one\n", 1, False)  # blank lines are never counted or removed
    assert out["d2"] == ("only Shared footer 2024", 1, False)  # repeated inside one document: removed
    assert out["d3"] == ("", 1, True) and out["d5"] == ("", 1, True)  # punctuation is normalized away
    assert out["d4"] == ("", 1, True)
    assert summary["lines_removed"] == 6


def test_keep_first_keeps_the_first_occurrence(tmp_path):
    parts = corpus(tmp_path)
    run_kind(lines.KIND, lines.LineDedupConfig(keep_first=True), str(tmp_path / "lines"), parts)
    out = apply_lines(str(tmp_path / "lines"), parts)
    assert out["d0"][0] == "Intro line one.\nShared Footer 2023!\nunique zero"  # first footer, kept
    assert out["d2"] == ("only Shared footer 2024", 1, False)
    assert out["d3"] == ("Nothing shared here.", 0, False) and out["d5"] == ("", 1, True)


def test_groups_count_lines_within_groups_of_shards(tmp_path):
    parts = corpus(tmp_path)
    run_kind(lines.KIND, lines.LineDedupConfig(group_shards=1), str(tmp_path / "lines"), parts)
    out = apply_lines(str(tmp_path / "lines"), parts)
    assert {k: v[1] for k, v in out.items()} == {"d0": 1, "d1": 1, "d2": 0, "d3": 0, "d4": 0, "d5": 0}
    run_kind(lines.KIND, lines.LineDedupConfig(group_shards=2), str(tmp_path / "lines2"), parts)
    out = apply_lines(str(tmp_path / "lines2"), parts)  # groups: shards {0, 1} and {2}
    assert {k: v[1] for k, v in out.items()} == {"d0": 1, "d1": 1, "d2": 1, "d3": 0, "d4": 0, "d5": 0}


def test_domains_limits_line_dedup_to_those_documents(tmp_path):
    """The same documents in a web domain and in books: with domains [web] the web copies lose exactly the lines
    they lose alone (the books' copies are not counted), and the books keep every line."""
    table = pa.table({"id": [d for d, _ in DOCS], "text": [t for _, t in DOCS]})
    web = write_shards(table, str(tmp_path / "up"), 3, domain="web")
    books = write_shards(table.set_column(0, "id", pa.array(["b" + d for d, _ in DOCS])), str(tmp_path / "up"), 3,
                         domain="books")
    parts = {k: web[k] + books[k] for k in web}
    summary = run_kind(lines.KIND, lines.LineDedupConfig(domains=("web",)), str(tmp_path / "lines"), parts)
    assert summary["lines_removed"] == 6  # as in the web documents alone
    out = apply_lines(str(tmp_path / "lines"), web)
    assert out["d0"] == ("Intro line one.\nunique zero", 1, False) and out["d4"] == ("", 1, True)
    out = apply_lines(str(tmp_path / "lines"), books)
    assert {k: (v[0], v[1]) for k, v in out.items()} == {"b" + d: (t, 0) for d, t in DOCS}
    # Without the setting the books' copies count too: every line of d3 / d0's intro is now repeated.
    run_kind(lines.KIND, lines.LineDedupConfig(), str(tmp_path / "all"), parts)
    assert apply_lines(str(tmp_path / "all"), books)["bd0"] == ("", 3, True)


def test_exact_dedup_keeps_the_first_copy_and_uses_url(tmp_path):
    docs = [("a", "same text"), ("b", "other"), ("c", "same text"), ("d", "same text"), ("e", "Same text")]
    table = pa.table({"id": [d for d, _ in docs], "text": [t for _, t in docs],
                      "url": ["u1", "u2", "u1", "u9", "u1"]})
    parts = write_shards(table, str(tmp_path / "up"), 3)
    s = run_kind(exact.KIND, exact.ExactDedupConfig(), str(tmp_path / "ex"), parts)
    res = {r["id"]: r for k in parts for r in read_table(os.path.join(tmp_path, "ex", "results", f"{k}.parquet")).to_pylist()}
    assert [i for i, r in sorted(res.items()) if r["duplicate"]] == ["c", "d"] and s["duplicates"] == 2
    assert res["c"]["cluster"] == res["d"]["cluster"] == res["a"]["cluster"]
    s = run_kind(exact.KIND, exact.ExactDedupConfig(key="url_text"), str(tmp_path / "ex2"), parts)
    res = {r["id"]: r for k in parts for r in read_table(os.path.join(tmp_path, "ex2", "results", f"{k}.parquet")).to_pylist()}
    assert [i for i, r in sorted(res.items()) if r["duplicate"]] == ["c"]
    s = run_kind(exact.KIND, exact.ExactDedupConfig(normalize=True), str(tmp_path / "ex3"), parts)
    assert s["duplicates"] == 3


def test_new_corpus_against_an_existing_index(tmp_path):
    # 60 distinct words, so "one" and "two" endings leave a true Jaccard of 56/58 (LSH finds it surely);
    # a repeated sentence would have few distinct shingles and a Jaccard near 0.7 (found by chance).
    base = " ".join(a + b for a in ("al", "be", "co", "du", "ex", "fi") for b in "abcdefghij") + " "
    old = pa.table({"id": ["old0", "old1"], "text": [base + "one", "completely different words for a text " * 5]})
    new = pa.table({"id": ["new0", "new1", "new2"], "text": [base + "two", "fresh unrelated sentence here " * 5,
                                                              "fresh unrelated sentence here " * 5]})
    old_parts = write_shards(old, str(tmp_path / "old"), 1)
    run_kind(fuzzy.KIND, fuzzy.MinhashDedupConfig(), str(tmp_path / "old-fuzzy"), old_parts)
    new_parts = write_shards(new, str(tmp_path / "new"), 2)
    cfg = fuzzy.MinhashDedupConfig(reference=str(tmp_path / "old-fuzzy"))
    run_kind(fuzzy.KIND, cfg, str(tmp_path / "new-fuzzy"), new_parts)
    ctx = BuildContext(phase="r", stage="minhash_dedup", column_origin={}, work_dir="",
                       phase_dirs={"fuzzy": str(tmp_path / "new-fuzzy")})
    marker = ResultsMarker("fuzzy", ctx, "minhash_cluster_v2", "minhash_duplicate_v2")
    dup = {}
    for key, paths in new_parts.items():
        marker.start_shard(upstream(key, paths))
        b = marker(read_table(paths[0]))
        dup.update(zip(b.column("id").to_pylist(), b.column("minhash_duplicate_v2").to_pylist()))
    assert dup == {"new0": True, "new1": False, "new2": True}  # new0 duplicates the old corpus's old0
    with pytest.raises(Exception, match="same num_perm"):
        run_kind(fuzzy.KIND, fuzzy.MinhashDedupConfig(reference=str(tmp_path / "old-fuzzy"), num_perm=64),
                 str(tmp_path / "bad"), new_parts)
    # An index written before hash families were recorded (family 1) is refused, not silently unmatched.
    params_path = tmp_path / "old-fuzzy" / "params.json"
    params = json.loads(params_path.read_text())
    del params["hash_family"]
    params_path.write_text(json.dumps(params))
    with pytest.raises(Exception, match="hash family 1.*rebuild"):
        run_kind(fuzzy.KIND, cfg, str(tmp_path / "bad2"), new_parts)
    # Resuming a phase folder started by family 1 is refused too (its finished steps would not match).
    with pytest.raises(Exception, match="started with.*delete that folder"):
        run_kind(fuzzy.KIND, fuzzy.MinhashDedupConfig(), str(tmp_path / "old-fuzzy"), old_parts)


def test_marking_stages_accept_an_empty_batch(tmp_path):
    parts = corpus(tmp_path)
    run_kind(fuzzy.KIND, fuzzy.MinhashDedupConfig(), str(tmp_path / "fz"), parts)
    ctx = BuildContext(phase="r", stage="minhash_dedup", column_origin={}, work_dir="", phase_dirs={"fz": str(tmp_path / "fz")})
    empty = pa.table({"id": pa.array([], pa.string()), "text": pa.array([], pa.string())})
    out = ResultsMarker("fz", ctx, "minhash_cluster_v2", "minhash_duplicate_v2")(empty)
    assert out.schema.field("minhash_cluster_v2").type == pa.int64()
    run_kind(lines.KIND, lines.LineDedupConfig(), str(tmp_path / "lines"), parts)
    lctx = BuildContext(phase="a", stage="line_dedup", column_origin={}, work_dir="", phase_dirs={"lines": str(tmp_path / "lines")})
    out = LineRemover(LineDedupStageConfig(index_phase="lines"), lctx)(empty)
    assert out.schema.field("line_dedup_empty_v1").type == pa.bool_() and out.num_rows == 0


def test_verify_links_only_pairs_whose_true_jaccard_reaches_the_threshold(tmp_path):
    base = " ".join(f"word{chr(97 + i % 26)}{chr(97 + i // 26)}" for i in range(120))
    edited = base.replace("wordcb", "changed", 1)  # one word: 5 of 116 shingles differ, J = 111/121
    table = pa.table({"id": ["a", "b", "c"], "text": [base, base, edited]})
    parts = write_shards(table, str(tmp_path / "up"), 2)

    def dups(**kw):
        d = str(tmp_path / f"fz-{len(kw)}-{kw.get('threshold', 0)}")
        run_kind(fuzzy.KIND, fuzzy.MinhashDedupConfig(bands=32, rows=2, num_perm=64, **kw), d, parts)
        return {r["id"]: r["duplicate"] for k in parts for r in read_table(os.path.join(d, "results", f"{k}.parquet")).to_pylist()}

    assert dups() == {"a": False, "b": True, "c": True}
    assert dups(verify=True, threshold=0.9) == {"a": False, "b": True, "c": True}
    assert dups(verify=True, threshold=0.95) == {"a": False, "b": True, "c": False}


def test_removal_stages_take_the_shard_and_refuse_a_first_phase_shard(tmp_path):
    parts = corpus(tmp_path)
    run_kind(exact.KIND, exact.ExactDedupConfig(), str(tmp_path / "exact"), parts)
    ctx = BuildContext(phase="r", stage="exact_dedup", column_origin={}, work_dir="",
                       phase_dirs={"exact": str(tmp_path / "exact")})
    marker = ResultsMarker("exact", ctx, "exact_cluster_v1", "exact_duplicate_v1")
    assert isinstance(marker, StartsShards)  # the runtime calls it through the typed hook
    key, paths = sorted(parts.items())[1]
    # A part file's name is no longer parsed: the key comes from the shard, whatever the files are called.
    renamed = [p.replace(f"part-{key}", "part-renamed") for p in paths]
    for old, new in zip(paths, renamed):
        os.rename(old, new)
    marker.start_shard(upstream(key, renamed))
    assert marker(read_table(renamed[0])).num_rows == 2
    first = Shard(key="00000", source="jsonl", path="in/part-00000.parquet", relpath="x", domain="c4", size=1)
    with pytest.raises(ValueError, match="reads the dedup phase's upstream output"):
        marker.start_shard(first)  # a part-like input name used to pass for an upstream part file
