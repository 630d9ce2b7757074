"""The report on a tiny hand-made run folder whose numbers are known: perplexity, buckets and cut-offs,
quality, duplicate clusters, tokens, per-source counters and throughput (columns that later stages add,
so they are checked here without those stages), the `refinery report` command and its errors."""

import base64
import json
import os
import re
from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

pytest.importorskip("matplotlib", reason="`refinery report` needs matplotlib")

from corpus.report import NOT_COMPUTED, ReportError, collect_run, render_html, write_report  # noqa: E402
from jobs.cli import main  # noqa: E402

PHASE = "00-score-0123456789"
# shard 00000 (domain c4): 4 kept, 2 rejected; shard 00001 (domain github): 2 kept, 1 rejected
DATA = {
    "00000": ("c4", {"id": ["a", "b", "c", "d"], "text": ["one two three", "four five", "six", "x y z w"],
                     "n_words_v1": [3, 2, 1, None], "ppl_v1": [50.0, 120.0, 130.0, 700.0],
                     "ppl_bucket_v1": ["head", "middle", "middle", "tail"], "quality_v1": [0.9, 0.5, 0.4, 0.1],
                     "minhash_cluster_v2": [1, 1, 3, 4], "minhash_duplicate_v2": [False, True, False, False]}),
    "00001": ("github", {"id": ["g", "h"], "text": ["def f(): pass", "x = 1"], "n_words_v1": [3, 3],
                         "ppl_v1": [80.0, 90.0], "ppl_bucket_v1": ["head", "head"], "quality_v1": [0.7, 0.8],
                         "minhash_cluster_v2": [1, 7], "minhash_duplicate_v2": [True, False]}),
}
REJECTED = {
    "00000": ("c4", {"id": ["e", "f"], "text": ["a b c d e", None], "n_words_v1": [5, None],
                     "ppl_v1": [900.0, None], "ppl_bucket_v1": ["tail", None], "quality_v1": [0.05, None],
                     "minhash_cluster_v2": [1, None], "minhash_duplicate_v2": [True, None],
                     "drop_stage": ["quality", "read"], "drop_reason": ["low_quality", "invalid_json"]}),
    "00001": ("github", {"id": ["i"], "text": ["dup dup"], "n_words_v1": [2], "ppl_v1": [85.0],
                         "ppl_bucket_v1": ["head"], "quality_v1": [0.6], "minhash_cluster_v2": [7],
                         "minhash_duplicate_v2": [True], "drop_stage": ["minhash"],
                         "drop_reason": ["near_duplicate"]}),
}
TYPES = {"id": pa.string(), "text": pa.string(), "n_words_v1": pa.int64(), "ppl_v1": pa.float64(),
         "ppl_bucket_v1": pa.string(), "quality_v1": pa.float64(), "minhash_cluster_v2": pa.int64(),
         "minhash_duplicate_v2": pa.bool_(), "drop_stage": pa.string(), "drop_reason": pa.string()}


def write_parquet(path, columns):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    pq.write_table(pa.table({k: pa.array(v, TYPES[k]) for k, v in columns.items()}), path)


def make_run(root) -> str:
    run = os.path.join(root, "hand")
    phase = os.path.join(run, PHASE)
    totals = {"rows_in": 9, "rows_kept": 6, "rows_rejected": 3}
    for key, start in (("00000", 1000.0), ("00001", 1001.0)):
        domain, data = DATA[key]
        _, rej = REJECTED[key]
        write_parquet(os.path.join(phase, "data", f"domain={domain}", f"part-{key}.parquet"), data)
        write_parquet(os.path.join(phase, "rejected", f"domain={domain}", f"part-{key}.parquet"), rej)
        n_in, n_kept = len(data["id"]) + len(rej["id"]), len(data["id"])
        read_out = n_in - (1 if key == "00000" else 0)
        entry = {"key": key, "phase": "score", "inputs": [f"/in/{key}.jsonl"], "rows_in": n_in, "rows_kept": n_kept,
                 "rows_rejected": len(rej["id"]), "attempt": 1, "seconds": 2.0, "committed_at": start + 2.0,
                 "dropped": {s: {r: 1} for s, r in zip(rej["drop_stage"], rej["drop_reason"])},
                 "counters": {"read": {"rows_in": n_in, "rows_out": read_out, "input_bytes": 1000, "bytes_out": 500,
                                       "seconds": 0.5},
                              "perplexity": {"rows_in": read_out, "rows_out": read_out, "bytes_in": 500,
                                             "bytes_out": 500, "seconds": 1.0},
                              "select": {"rows_in": read_out, "rows_out": n_kept, "bytes_in": 500, "bytes_out": 400,
                                         "seconds": 0.1}},
                 "files": {"data": [{"path": f"domain={domain}/part-{key}.parquet", "domain": domain, "rows": n_kept}],
                           "rejected": [{"path": f"domain={domain}/part-{key}.parquet", "domain": domain,
                                         "rows": len(rej["id"])}]}}
        os.makedirs(os.path.join(phase, "ledger"), exist_ok=True)
        with open(os.path.join(phase, "ledger", f"{key}.json"), "w") as f:
            json.dump(entry, f)
    with open(os.path.join(phase, "stats.json"), "w") as f:
        json.dump({"phase": "score", "quarantined": [], **totals}, f)
    # Paths relative to the run folder, as `refinery build` records them (corpus.runtime.layout).
    with open(os.path.join(run, "stats.json"), "w") as f:
        json.dump({"job": "hand", "exit_code": 0, "final_data": f"{PHASE}/data", "final_phase": "score",
                   "phases": [{"name": "score", "dir": PHASE, "shards": 2, "skipped": 0,
                               "quarantined": [], **totals}]}, f)
    with open(os.path.join(run, "job.resolved.yaml"), "w") as f:
        yaml.safe_dump({"name": "hand", "phases": [{"name": "score", "stages": [
            {"perplexity": {"model": "x.arpa", "cutoffs": [100.0, 500.0], "batch_rows": 64}},
            {"select": {"rules": [{"column": "quality_v1", "op": "<", "value": 0.3, "reason": "low_quality"}]}}]}]}, f)
    return run


@pytest.fixture
def hand_run(tmp_path):
    return make_run(str(tmp_path))


def test_counters_tokens_and_throughput(hand_run):
    run = collect_run(hand_run)
    assert [(s.source, s.stage, s.docs_in, s.docs_out) for s in run.stages] == [
        ("c4", "read", 6, 5), ("c4", "perplexity", 5, 5), ("c4", "select", 5, 4),
        ("github", "read", 3, 3), ("github", "perplexity", 3, 3), ("github", "select", 3, 2)]
    c4, gh = run.tokens
    # d has no n_words_v1: its text's 4 words count; f (a read reject) has no text: 0 words
    assert (c4.source, c4.tokens_kept, c4.dropped) == ("c4", 3 + 2 + 1 + 4, {("quality", "low_quality"): (1, 5),
                                                                             ("read", "invalid_json"): (1, 0)})
    assert c4.tokens_in == 15
    assert (gh.tokens_kept, gh.tokens_in, gh.dropped) == (6, 8, {("minhash", "near_duplicate"): (1, 2)})
    (phase,) = run.phases
    assert phase.folder == os.path.join(hand_run, PHASE)
    assert phase.wall_seconds == pytest.approx(1003.0 - 1000.0) and phase.worker_seconds == 4.0
    assert phase.text_bytes_in == 1000  # the reader's text output (500 per shard)


def test_perplexity_quality_and_clusters(hand_run):
    run = collect_run(hand_run)
    assert run.ppl_cutoffs == [("perplexity.cutoffs[0]", 100.0), ("perplexity.cutoffs[1]", 500.0)]
    assert run.ppl_buckets == {"head": (4, 50.0, 90.0), "middle": (2, 120.0, 130.0), "tail": (2, 700.0, 900.0)}
    ppl = run.scores["ppl_v1"]
    assert sorted(ppl.kept) == [50.0, 80.0, 90.0, 120.0, 130.0, 700.0] and sorted(ppl.dropped) == [85.0, 900.0]
    assert ppl.documents == 8 and ppl.phase == "score"
    q = run.scores["quality_v1"]
    assert sorted(q.dropped) == [0.05, 0.6] and len(q.kept) == 6
    # cluster 1: survivor a + duplicates b, g, e = 4 documents; cluster 7: h + i = 2; 3 and 4 are singletons
    assert run.clusters == {"minhash_cluster_v2": Counter({4: 1, 2: 1})}
    assert run.cluster_docs == {"minhash_cluster_v2": 8}
    assert run.languages is None


def test_html_is_self_contained_and_says_what_is_missing(hand_run):
    page = render_html(collect_run(hand_run))
    assert page.count(NOT_COMPUTED) == 2  # languages and exact clusters
    assert "language identification (lang_v1): " + NOT_COMPUTED in page
    assert "exact clusters (exact_cluster_v1): " + NOT_COMPUTED in page
    assert "perplexity.cutoffs[1]" in page and "low_quality" in page
    assert not re.search(r"(?:src|href)\s*=\s*[\"'](?!data:|#)", page), "a resource outside the page"
    assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/", page), "an external address in the page"
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    # funnel, drops, perplexity, quality, cluster sizes, throughput
    assert len(images) == 6
    for b64 in images:
        assert base64.b64decode(b64).startswith(b"\x89PNG\r\n\x1a\n")
    assert render_html(collect_run(hand_run)) == page  # same run, same bytes: reports can be diffed


def test_histogram_values_are_the_documents_values(hand_run):
    """The plotted values are exactly the stored ones (not a sample) on a small run."""
    run = collect_run(hand_run)
    stored = np.array(DATA["00000"][1]["ppl_v1"] + DATA["00001"][1]["ppl_v1"])
    assert np.array_equal(np.sort(run.scores["ppl_v1"].kept), np.sort(stored))


def test_cli_writes_the_report_and_rejects_a_folder_that_is_not_a_run(hand_run, tmp_path, capsys):
    out = tmp_path / "r.html"
    assert main(["report", hand_run, "--out", str(out)]) == 0
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert main(["report", hand_run]) == 0 and os.path.exists(os.path.join(hand_run, "report.html"))
    assert main(["report", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err  # neither kind of run (jobs/commands/report.py names both)
    assert "is not a folder; expected a corpus run (stats.json" in err and "or a training run" in err
    with pytest.raises(ReportError, match="no stats.json"):
        write_report(str(tmp_path))
    # An older stats.json that names the folder where the run was built is refused, not followed.
    stats = os.path.join(hand_run, "stats.json")
    with open(stats) as f:
        old = json.load(f)
    old["phases"][0]["dir"] = f"/old/place/hand/{PHASE}"
    with open(stats, "w") as f:
        json.dump(old, f)
    assert main(["report", hand_run]) == 2
    assert "outside the folder" in capsys.readouterr().err
