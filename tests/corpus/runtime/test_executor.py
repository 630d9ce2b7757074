"""Contract tests of the Ray runtime on an embedded local cluster: part files, ledger, stats, idempotent
rerun, kill-and-resume, retries, quarantine, conservation, and the output read back by DuckDB and pandas."""

import json
import os

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from corpus.io.files import read_json
from corpus.runtime import ledger
from corpus.runtime.executor import EXIT_QUARANTINED, run_job
from corpus.runtime.spec import parse_job
from corpus.runtime.stats import ConservationError, check_conservation
from schemas.arrow import DOCUMENT_FILE_V1, REJECTED_FILE_V1, STATS_V1

from run_helpers import SELECT, tree


def job(corpus, out, stages=None, runtime=None, phases=None, name="t"):
    spec = {"name": name, "output": str(out),
            "inputs": [{"source": "jsonl", "paths": ["corpus/*.jsonl*"], "domain": "books"}],
            "runtime": {"workers": 2, "max_retries": 0, "batch_rows": 5, **(runtime or {})},
            "phases": phases or [{"name": "clean", "stages": stages or ["normalize", "length", SELECT]}]}
    return parse_job(spec, base_dir=str(corpus.parent), output_override=True)


def test_build_writes_parts_ledger_stats_and_balances(ray_local, demo_copy, tmp_path):
    result = run_job(job(demo_copy, tmp_path / "out"), progress=False)
    assert result.exit_code == 0
    phase = result.phases[0]
    entries = ledger.committed(phase.phase_dir)
    assert sorted(entries) == [f"{i:05d}" for i in range(6)]  # one shard per input file
    assert phase.totals["rows_in"] == 68 == phase.totals["rows_kept"] + phase.totals["rows_rejected"]
    assert phase.totals["rows_kept"] == 62
    assert phase.totals["dropped"] == {"length": {"too_few_words": 1},
                                       "read": {"corrupt_compressed_stream": 1, "empty_file": 1, "invalid_json": 1,
                                                "invalid_utf8": 1, "missing_text": 1}}
    for key, e in entries.items():
        for f in e["files"]["data"]:
            assert f["path"] == f"domain=books/part-{key}.parquet"
            assert os.path.exists(os.path.join(phase.phase_dir, "data", f["path"]))
    assert not os.path.exists(os.path.join(phase.phase_dir, "quarantine"))
    stats = read_json(os.path.join(result.job_dir, "stats.json"))
    assert stats["final_data"] == "final" and result.final_data == os.path.join(result.job_dir, "final")
    assert stats["phases"][0]["rows_kept"] == 62 and stats["phases"][0]["dir"] == os.path.basename(phase.phase_dir)
    final = sorted(os.listdir(os.path.join(result.final_data, "domain=books")))
    assert final == sorted(os.path.basename(f["path"]) for e in entries.values() for f in e["files"]["data"])
    assert pq.read_schema(os.path.join(phase.phase_dir, "stats.parquet")).equals(STATS_V1, check_metadata=False)
    counters = phase.totals["counters"]
    assert counters["select"]["rows_in"] - counters["select"]["rows_out"] == 1
    assert counters["read"]["rows_in"] == 68 and counters["normalize"]["rows_in"] == 63
    assert os.path.exists(os.path.join(result.job_dir, "job.resolved.yaml"))
    # no temp files left behind
    assert not [f for _, _, fs in os.walk(result.job_dir) for f in fs if ".tmp-" in f]


def test_rerun_skips_committed_shards_and_writes_nothing_new(ray_local, demo_copy, tmp_path):
    spec = job(demo_copy, tmp_path / "out")
    first = run_job(spec, progress=False)
    pdir = first.phases[0].phase_dir
    before = {p: os.stat(os.path.join(pdir, p)).st_mtime_ns for p in tree(pdir, ("data", "rejected", "ledger"))}
    second = run_job(spec, progress=False)
    assert second.phases[0].skipped == 6 and second.phases[0].phase_dir == pdir
    after = {p: os.stat(os.path.join(pdir, p)).st_mtime_ns for p in tree(pdir, ("data", "rejected", "ledger"))}
    assert after == before
    assert second.phases[0].totals == first.phases[0].totals


def test_same_output_with_one_and_two_workers(ray_local, demo_copy, tmp_path):
    one = run_job(job(demo_copy, tmp_path / "a", runtime={"workers": 1}), progress=False)
    two = run_job(job(demo_copy, tmp_path / "b", runtime={"workers": 2}), progress=False)
    assert tree(one.phases[0].phase_dir) == tree(two.phases[0].phase_dir)


def chaos(action="exit", once=True):
    return {"chaos": {"shard_source_contains": "shakespeare-00", "after_batches": 2, "action": action, "once": once}}


def test_worker_killed_mid_shard_then_rerun_equals_uninterrupted(ray_local, demo_copy, tmp_path):
    clean = run_job(job(demo_copy, tmp_path / "clean"), progress=False)
    stages = ["normalize", chaos("exit"), "length", SELECT]
    spec = job(demo_copy, tmp_path / "killed", stages=stages)  # max_retries 0: the kill quarantines the shard
    first = run_job(spec, progress=False)
    pdir = first.phases[0].phase_dir
    assert first.exit_code == EXIT_QUARANTINED and first.phases[0].quarantined == ["00002"]
    assert "died" in ledger.quarantined(pdir)["00002"]["error"].lower()
    assert "00002" not in ledger.committed(pdir)
    second = run_job(spec, progress=False)  # the rerun: chaos fired once already, the shard goes through
    assert second.exit_code == 0 and second.phases[0].skipped == 5
    assert ledger.quarantined(pdir) == {}
    assert tree(pdir) == tree(clean.phases[0].phase_dir)


def test_killed_worker_is_replaced_and_shard_retried_in_the_same_run(ray_local, demo_copy, tmp_path):
    clean = run_job(job(demo_copy, tmp_path / "clean"), progress=False)
    spec = job(demo_copy, tmp_path / "retry", stages=["normalize", chaos("exit"), "length", SELECT],
               runtime={"max_retries": 1})
    result = run_job(spec, progress=False)
    assert result.exit_code == 0
    assert ledger.committed(result.phases[0].phase_dir)["00002"]["attempt"] == 2
    assert tree(result.phases[0].phase_dir) == tree(clean.phases[0].phase_dir)


def test_shard_that_keeps_failing_is_quarantined_and_the_rest_finish(ray_local, demo_copy, tmp_path):
    spec = job(demo_copy, tmp_path / "q", stages=["normalize", chaos("raise", once=False), "length", SELECT],
               runtime={"max_retries": 2})
    result = run_job(spec, progress=False)
    pdir = result.phases[0].phase_dir
    assert result.exit_code == EXIT_QUARANTINED
    record = ledger.quarantined(pdir)["00002"]
    assert record["attempts"] == 3 and "chaos: injected failure" in record["error"]
    assert record["inputs"][0].endswith("shakespeare-00.jsonl")
    assert sorted(ledger.committed(pdir)) == ["00000", "00001", "00003", "00004", "00005"]
    stats = read_json(os.path.join(result.job_dir, "stats.json"))
    assert stats["exit_code"] == EXIT_QUARANTINED and stats["phases"][0]["quarantined"] == ["00002"]


def test_conservation_check_catches_lost_and_miscounted_rows(ray_local, demo_copy, tmp_path):
    result = run_job(job(demo_copy, tmp_path / "out"), progress=False)
    pdir = result.phases[0].phase_dir
    entries = ledger.committed(pdir)
    check_conservation(pdir, entries, None)
    bad = json.loads(json.dumps(entries))
    bad["00002"]["rows_kept"] -= 1
    with pytest.raises(ConservationError, match="shard 00002: rows_in"):
        check_conservation(pdir, bad, None)
    bad = json.loads(json.dumps(entries))
    bad["00000"]["dropped"]["read"]["invalid_json"] = 2
    with pytest.raises(ConservationError, match="drops by reason"):
        check_conservation(pdir, bad, None)
    with pytest.raises(ConservationError, match="the previous phase kept"):
        check_conservation(pdir, entries, {k: e["rows_in"] + 1 for k, e in entries.items()})
    os.remove(os.path.join(pdir, "data", entries["00003"]["files"]["data"][0]["path"]))
    with pytest.raises((ConservationError, FileNotFoundError)):
        check_conservation(pdir, entries, None)


def test_output_reads_back_with_the_declared_schema_in_duckdb_and_pandas(ray_local, demo_copy, tmp_path):
    result = run_job(job(demo_copy, tmp_path / "out"), progress=False)
    data, rejected = result.final_data, os.path.join(result.phases[0].phase_dir, "rejected")
    added = [pa.field(n, pa.int64()) for n in ("n_chars_v1", "n_words_v1", "n_lines_v1")]
    for path in pq.ParquetDataset(data).files:
        assert pq.read_schema(path).equals(pa.schema(list(DOCUMENT_FILE_V1) + added), check_metadata=False)
        assert pq.read_schema(path).metadata[b"refinery.schema"] == b"document_v1"
    got = duckdb.sql(f"select domain, count(*), sum(n_words_v1) > 0 from read_parquet('{data}/*/*.parquet', "
                     f"hive_partitioning=true) group by domain").fetchall()
    assert got == [("books", 62, True)]
    frame = pd.read_parquet(data)
    assert len(frame) == 62 and set(frame["domain"]) == {"books"} and frame["id"].is_unique
    rej = pd.read_parquet(rejected)
    assert len(rej) == 6 and set(rej["drop_stage"]) == {"read", "length"}
    rej_schema = pq.read_schema(pq.ParquetDataset(rejected).files[0])
    assert [f.name for f in rej_schema] == [f.name for f in DOCUMENT_FILE_V1] + [a.name for a in added] + [
        "drop_phase", "drop_stage", "drop_reason"]
    assert [f.name for f in REJECTED_FILE_V1][-3:] == ["drop_phase", "drop_stage", "drop_reason"]


def test_phases_chain_and_a_changed_setting_only_reruns_what_follows(ray_local, demo_copy, tmp_path):
    phases = [{"name": "score", "stages": ["normalize", "length"]},
              {"name": "filter", "stages": [SELECT]}]
    first = run_job(job(demo_copy, tmp_path / "out", phases=phases), progress=False)
    score, filt = first.phases
    assert filt.totals["rows_in"] == score.totals["rows_kept"] == 63 and filt.totals["rows_kept"] == 62
    phases[1]["stages"] = [{"select": {"rules": [{"column": "n_words_v1", "op": "<", "value": 2000,
                                                  "reason": "too_few_words"}]}}]
    second = run_job(job(demo_copy, tmp_path / "out", phases=phases), progress=False)
    assert second.phases[0].phase_dir == score.phase_dir and second.phases[0].skipped == 6
    assert second.phases[1].phase_dir != filt.phase_dir and second.phases[1].skipped == 0
    assert second.phases[1].totals["rows_kept"] < 62


def test_cross_shard_phase_sees_every_shard_and_documents_pass_through(ray_local, demo_copy, tmp_path, monkeypatch):
    import dataclasses

    from corpus.dedup import kinds
    from corpus.io.files import write_json_atomic
    from corpus.dedup.kind import PhaseKind

    @dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
    class CountConfig:
        pass

    def count(cfg, ctx):
        rows = sum(pq.ParquetFile(p).metadata.num_rows for parts in ctx.upstream_parts().values() for p in parts)
        write_json_atomic(os.path.join(ctx.phase_dir, "count.json"), {"rows": rows})
        return {"rows": rows}

    monkeypatch.setitem(kinds.PHASE_KINDS, "count", PhaseKind(name="count", config=CountConfig, run=count))
    phases = [{"name": "score", "stages": ["length"]}, {"name": "census", "kind": "count"},
              {"name": "filter", "stages": [SELECT]}]
    result = run_job(job(demo_copy, tmp_path / "out", phases=phases), progress=False)
    score, census, filt = result.phases
    assert census.kind == "count" and census.totals["summary"] == {"rows": 63}
    assert filt.totals["rows_in"] == 63 and read_json(os.path.join(result.job_dir, "stats.json"))["final_phase"] == "filter"
    again = run_job(job(demo_copy, tmp_path / "out", phases=phases), progress=False)
    assert again.phases[1].skipped == census.shards
