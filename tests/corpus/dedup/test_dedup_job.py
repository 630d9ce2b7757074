"""MinHash dedup as phases of a job on a local Ray: what is dropped and why, deterministic survivors,
identical results with 2 workers and a worker killed mid-step vs 1 worker in process, and after a driver
that died before the phase finished (rerun). Line and exact dedup: test_lines_exact.py (in process)."""

import glob
import json
import os
import random
import shutil

import pytest

from corpus.dedup import fuzzy
from corpus.dedup.layout import read_table
from corpus.io.parquet import read_documents
from corpus.runtime.executor import run_job
from corpus.runtime.spec import parse_job
from tests.conftest import DEMO_CORPUS
from corpus.dedup.local import LocalContext



@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """4 shards of real scenes; shard 3 holds 2 exact copies and 3 copies with ~1% of words replaced."""
    root = tmp_path_factory.mktemp("dedup") / "corpus"
    root.mkdir()
    scenes = [json.loads(line)["text"] for line in open(os.path.join(DEMO_CORPUS, "shakespeare-00.jsonl"))]
    scenes = [s for s in scenes if len(s.split()) > 300][:12]
    rng = random.Random(3)
    copies = [scenes[0], scenes[4]]
    for s in (scenes[2], scenes[6], scenes[10]):
        w = s.split(" ")
        for _ in range(len(w) // 100):
            w[rng.randrange(len(w))] = "zounds"
        copies.append(" ".join(w))
    for k, chunk in enumerate([scenes[0:4], scenes[4:8], scenes[8:12], copies]):
        with open(root / f"s{k}.jsonl", "w") as f:
            for t in chunk:
                f.write(json.dumps({"text": t}) + "\n")
    return root


def spec(corpus, out, workers=2, fuzzy_settings=None):
    return parse_job({
        "name": "dd", "output": str(out),
        "inputs": [{"source": "jsonl", "paths": [str(corpus / "*.jsonl")], "domain": "books"}],
        "runtime": {"workers": workers, "max_retries": 1, "batch_rows": 4},
        "phases": [
            {"name": "clean", "stages": ["length"]},
            {"name": "fuzzy", "kind": "minhash_dedup", "settings": {"num_perm": 128, **(fuzzy_settings or {})}},
            {"name": "remove", "stages": [
                {"minhash_dedup": {"index_phase": "fuzzy"}},
                {"select": {"rules": [
                    {"column": "minhash_duplicate_v2", "op": "==", "value": True, "reason": "near_duplicate"}]}}]},
        ]}, base_dir=str(corpus), output_override=True)


def results(phase_dir):
    return {os.path.basename(f): read_table(f).to_pylist() for f in sorted(glob.glob(f"{phase_dir}/results/*.parquet"))}


@pytest.fixture(scope="module")
def ray_module():
    import ray

    if not ray.is_initialized():
        ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    return ray


@pytest.fixture(scope="module")
def full_run(ray_module, corpus, tmp_path_factory):
    # the worker of the fuzzy buckets step is killed once (os._exit) and retried on a new actor
    out = tmp_path_factory.mktemp("run2")
    return run_job(spec(corpus, out, fuzzy_settings={"drill_kill_step": "buckets"}), progress=False)


def test_job_drops_copies_with_reasons_and_survivors_come_first(full_run):
    phases = {p.name: p for p in full_run.phases}
    assert full_run.exit_code == 0
    assert os.path.exists(os.path.join(phases["fuzzy"].phase_dir, "_drill_buckets"))  # a worker was killed
    assert phases["remove"].totals["dropped"] == {"minhash_dedup": {"near_duplicate": 5}}  # 2 exact + 3 edited
    rejected = read_documents(os.path.join(phases["remove"].phase_dir, "rejected"))
    kept = read_documents(os.path.join(phases["remove"].phase_dir, "data"))
    assert kept.num_rows == 12 and rejected.num_rows == 5
    assert set(rejected.column("drop_reason").to_pylist()) == {"near_duplicate"}
    # the survivors are the originals (shards 0-2), every copy (shard 3) is dropped and points to one
    rejected_parts = glob.glob(os.path.join(phases["remove"].phase_dir, "rejected", "*", "*.parquet"))
    assert [os.path.basename(p) for p in rejected_parts] == ["part-00003.parquet"]  # s3.jsonl: the copies
    assert all((c >> 32) & 0xFFFFFF < 3 for c in rejected.column("minhash_cluster_v2").to_pylist())
    survivors = dict(zip(kept.column("minhash_cluster_v2").to_pylist(), kept.column("id").to_pylist()))
    assert len(survivors) == 12  # each kept document is its own cluster's survivor


def test_one_worker_in_process_and_rerun_give_identical_results(full_run, corpus, tmp_path):
    phases = {p.name: p for p in full_run.phases}
    fuzzy_dir = phases["fuzzy"].phase_dir
    want = results(fuzzy_dir)
    assert sum(r["duplicate"] for rows in want.values() for r in rows) == 5  # 2 exact copies + 3 edited
    # 1 worker, in this process, no kill
    upstream = phases["clean"].phase_dir
    from corpus.runtime import ledger
    entries = ledger.committed(upstream)
    ctx = LocalContext(phase_dir=str(tmp_path / "local"), parts={
        k: [f"{upstream}/data/{f['path']}" for f in e["files"]["data"]] for k, e in entries.items() if e["files"]["data"]})
    cfg = fuzzy.MinhashDedupConfig(num_perm=128)
    fuzzy.run_minhash_dedup(cfg, ctx)
    assert results(ctx.phase_dir) == want
    # a driver that died after some steps: drop the done marker and the later steps, run again
    os.remove(os.path.join(fuzzy_dir, "_DONE.json"))
    for step in ("results", "survivors"):
        shutil.rmtree(os.path.join(fuzzy_dir, step))
    shutil.rmtree(phases["remove"].phase_dir)
    rerun = run_job(spec(corpus, os.path.dirname(full_run.job_dir), fuzzy_settings={"drill_kill_step": "buckets"}),
                    progress=False)
    assert results(fuzzy_dir) == want
    re_phases = {p.name: p for p in rerun.phases}
    assert re_phases["clean"].skipped == re_phases["clean"].shards  # done phases are not redone
    assert read_documents(os.path.join(re_phases["remove"].phase_dir, "data")).num_rows == 12
