"""The final corpus has one place, `<run>/final/`: what the README's DuckDB query reads, what
`refinery stats` prints, replaced whole by the next build, and absent when shards were quarantined."""

import os
import re

import duckdb

from corpus.runtime import layout
from corpus.runtime.executor import EXIT_QUARANTINED, run_job
from corpus.runtime.spec import parse_job
from jobs.cli import main

from run_helpers import SELECT

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
TWO_PHASES = [{"name": "score", "stages": ["normalize", "length"]}, {"name": "filter", "stages": [SELECT]}]


def demo_job(corpus, phases=TWO_PHASES):
    """Named and placed like the README's demo corpus (`runs/llama-mini/corpus/demo`, the corpus step of `make demo`,
    relative to the working folder)."""
    return parse_job({"name": "demo", "output": "runs/llama-mini/corpus",
                      "inputs": [{"source": "jsonl", "paths": ["corpus/*.jsonl*"], "domain": "books"}],
                      "runtime": {"workers": 2, "max_retries": 0, "batch_rows": 5}, "phases": phases},
                     base_dir=str(corpus.parent))


def readme_queries() -> list[str]:
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
        block = re.search(r"```python\nimport duckdb\n(.*?)```", f.read(), re.S).group(1)
    return re.findall(r'duckdb\.sql\("(.*?)"\)', block)


def test_the_readme_query_counts_the_final_corpus_once(ray_local, demo_copy, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    result = run_job(demo_job(demo_copy), progress=False)
    score, filt = result.phases
    assert score.totals["rows_kept"] == 63 and filt.totals["rows_kept"] == 62
    documents, rejected = readme_queries()
    rows = duckdb.sql(documents).fetchall()
    assert rows == [("books", 62)]  # each document once: not 63 + 62 from both phases' data/
    by_reason = duckdb.sql(rejected).fetchall()
    assert sum(n for *_, n in by_reason) == score.totals["rows_rejected"] + filt.totals["rows_rejected"] == 6
    assert main(["stats", "runs/llama-mini/corpus/demo"]) == 0
    printed = capsys.readouterr().out
    assert "final corpus: runs/llama-mini/corpus/demo/final/ (62 documents" in printed
    assert "read_parquet('runs/llama-mini/corpus/demo/final/*/*.parquet'" in printed
    stats = layout.read_stats("runs/llama-mini/corpus/demo")
    assert stats["final_data"] == "final" and [p["dir"] for p in stats["phases"]] == [
        os.path.basename(score.phase_dir), os.path.basename(filt.phase_dir)]


def test_final_is_replaced_by_the_next_build_and_removed_when_shards_are_quarantined(ray_local, demo_copy,
                                                                                      tmp_path, monkeypatch,
                                                                                      capsys):
    monkeypatch.chdir(tmp_path)
    run_job(demo_job(demo_copy), progress=False)
    stricter = [TWO_PHASES[0], {"name": "filter", "stages": [{"select": {"rules": [
        {"column": "n_words_v1", "op": "<", "value": 2000, "reason": "too_few_words"}]}}]}]
    second = run_job(demo_job(demo_copy, stricter), progress=False)
    kept = second.phases[1].totals["rows_kept"]
    assert 0 < kept < 62
    assert duckdb.sql("select count(*) from read_parquet('runs/llama-mini/corpus/demo/final/*/*.parquet')").fetchall()[0][0] == kept
    assert not [n for n in os.listdir("runs/llama-mini/corpus/demo") if ".tmp-" in n or ".old-" in n]  # no half-published leftovers
    broken = [{"name": "score", "stages": ["normalize", {"chaos": {
        "shard_source_contains": "shakespeare-00", "after_batches": 0, "action": "raise", "once": False}}]}]
    third = run_job(demo_job(demo_copy, broken), progress=False)
    assert third.exit_code == EXIT_QUARANTINED and third.final_data is None
    assert not os.path.exists("runs/llama-mini/corpus/demo/final")  # the previous build's corpus would pass for this one's
    assert layout.read_stats("runs/llama-mini/corpus/demo")["final_data"] is None
    assert main(["stats", "runs/llama-mini/corpus/demo"]) == 0
    assert "final corpus: none" in capsys.readouterr().out
