"""The pieces of `refinery experiment cleaning` that decide what is compared: which documents are held
out (the export's validation range, with their duplicates), the raw job that reads the inputs again
without cleaning, equal token budgets for both arms, and the table over seeds. The experiment itself
trains models for minutes: it runs on the demo data (benchmarks/README.md), not here."""

import json
import math
import os
import statistics

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from jobs.experiments.cleaning import (ARMS, HELD_OUT_REASON, aggregate, arm_configs, format_table, held_out_ids,
                                       raw_job, run_phase_files, token_budget, with_duplicates)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_aggregate_gives_mean_and_sample_sd_per_arm_and_the_paired_difference():
    losses = {"raw": {1: {"books": 6.0, "all": 6.5}, 2: {"books": 6.4, "all": 6.7}, 3: {"books": 6.2, "all": 6.6}},
              "clean": {1: {"books": 5.9, "all": 6.4}, 2: {"books": 6.1, "all": 6.5}, 3: {"books": 6.3, "all": 6.6}}}
    table = aggregate(losses)
    assert list(table) == ["books", "all"]  # the overall row last
    books = table["books"]
    assert books["raw"]["mean"] == pytest.approx(6.2) and books["clean"]["mean"] == pytest.approx(6.1)
    assert books["raw"]["sd"] == pytest.approx(0.2)  # sample sd (n - 1): sqrt((0.04 + 0.04 + 0) / 2)
    assert books["raw"]["perplexity"] == pytest.approx(math.exp(6.2))
    # paired by seed: 0.1, 0.3, -0.1
    assert books["raw_minus_clean"]["mean"] == pytest.approx(0.1)
    assert books["raw_minus_clean"]["sd"] == pytest.approx(statistics.stdev([0.1, 0.3, -0.1]))
    result = {"design": {"seeds": [1, 2, 3], "held_out_documents": {"books": 2}, "held_out_tokens": {"books": 900},
                         "mixture": "natural", "token_budget": 1000}, "table": table}
    text = format_table(result)
    assert "| books | 2 | 900 | 6.200 ± 0.200 | 6.100 ± 0.200 | +0.100 ± 0.200 |" in text
    assert "| all | 2 | 900 |" in text



def test_the_plot_is_written_from_the_result(tmp_path):
    pytest.importorskip("matplotlib")
    from jobs.experiments.cleaning import plot_result

    losses = {arm: {s: {"books": 6.0 + 0.1 * s + (arm == "raw") * 0.05, "all": 6.5} for s in (1, 2)} for arm in ARMS}
    plot_result({"design": {"token_budget": 1000, "mixture": "natural"}, "table": aggregate(losses)},
                str(tmp_path / "p.png"))
    assert (tmp_path / "p.png").read_bytes().startswith(b"\x89PNG")


def _base_config():
    from training.loop.config import parse_pretrain_config

    return parse_pretrain_config({
        "data": {"export_dir": "unused", "split": "90,10,0"}, "model": {"seq_length": 64},
        "schedule": {"train_steps": 1000, "warmup_steps": 5, "micro_batch_size": 4, "global_batch_size": 8},
        "output": {"dir": "unused"}})


def test_both_arms_get_the_same_token_budget_and_differ_only_in_data_seed_and_folder(tmp_path):
    from training.loop.config import config_to_dict

    runs = arm_configs(_base_config(), exports={"raw": ("e/raw", "87,13,0"), "clean": ("e/clean", "90,10,0")},
                       mixtures={"raw": "m/raw.json", "clean": "m/clean.json"}, steps=50, seeds=[1, 2, 3],
                       out=str(tmp_path))
    assert [(arm, seed) for arm, seed, _ in runs] == [(a, s) for a in ARMS for s in (1, 2, 3)]
    assert {token_budget(cfg) for _, _, cfg in runs} == {50 * 8 * 64}
    assert len({cfg.output.dir for _, _, cfg in runs}) == 6
    raw = {cfg.schedule.seed: cfg for arm, _, cfg in runs if arm == "raw"}
    assert raw[2].data.split == "87,13,0" and raw[2].data.export_dir == os.path.abspath("e/raw")
    assert raw[2].data.mixture == os.path.abspath("m/raw.json")

    def rest(cfg):
        d = config_to_dict(cfg)
        for key in ("export_dir", "split", "mixture"):
            d["data"].pop(key)
        d["schedule"].pop("seed")
        d["output"].pop("dir")
        return d

    assert all(rest(cfg) == rest(runs[0][2]) for _, _, cfg in runs)
    # --mixture same names the raw arm's runs apart, so the clean arm's are shared between mixtures
    same = arm_configs(_base_config(), exports={"raw": ("e/raw", "87,13,0"), "clean": ("e/clean", "90,10,0")},
                       mixtures={"raw": "m/clean.json", "clean": "m/clean.json"}, steps=50, seeds=[1],
                       out=str(tmp_path), names={"raw": "raw-same", "clean": "clean"})
    assert [os.path.basename(cfg.output.dir) for _, _, cfg in same] == ["raw-same-seed1", "clean-seed1"]
    assert same[1][2] == runs[3][2]  # clean seed 1: the very same run under either mixture


@pytest.fixture
def clean_run(tmp_path):
    """A hand-made clean run: a final phase with two github parts (5 + 5 documents) and a near duplicate of the
    last document that dedup dropped; its export manifest lists the parts in export order."""
    run = tmp_path / "demo"
    phase = run / "03-remove-abc"
    rows = {"part-00001": [f"g{i}" for i in range(5)], "part-00002": [f"g{i}" for i in range(5, 10)]}
    shards = []
    for part, ids in rows.items():
        folder = phase / "data" / "domain=github"
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table({"id": ids, "minhash_cluster_v2": [hash(i) % 1000 for i in ids]}),
                       folder / f"{part}.parquet")
        shards.append({"key": f"github--{part}", "source": str(folder / f"{part}.parquet"), "documents": len(ids)})
    rejected = phase / "rejected" / "domain=github"
    rejected.mkdir(parents=True)
    pq.write_table(pa.table({"id": ["dup-of-g9", "other"], "minhash_cluster_v2": [hash("g9") % 1000, -1]}),
                   rejected / "part-00002.parquet")
    (run / "stats.json").write_text(json.dumps({"phases": [{"name": "remove", "dir": "03-remove-abc"}]}))
    manifest = {"domains": {"github": {"prefix": "github_text_document", "documents": 10, "shards": shards}}}
    return str(run), manifest


def test_held_out_are_the_export_validation_documents_and_their_duplicates(clean_run):
    pytest.importorskip("megatron.core")  # the split is megatron-core's own
    run, manifest = clean_run
    held = held_out_ids(manifest, "80,20,0")
    assert held == {"github": ["g8", "g9"]}  # documents [8, 10) of 10, in export order across the two parts
    assert len(run_phase_files(run)) == 3
    assert with_duplicates({"g8", "g9"}, run_phase_files(run)) == {"g8", "g9", "dup-of-g9"}


def test_an_export_that_no_longer_matches_its_corpus_is_refused(clean_run):
    pytest.importorskip("megatron.core")
    _, manifest = clean_run
    manifest["domains"]["github"]["shards"][0]["documents"] = 4
    with pytest.raises(ValueError, match="changed after the export"):
        held_out_ids(manifest, "80,20,0")


def test_the_raw_job_reads_the_same_inputs_with_only_the_held_out_select(tmp_path):
    job = raw_job(os.path.join(REPO, "jobs", "smoke.yaml"), {"b", "a"}, str(tmp_path))
    assert job.name == "raw" and job.output == str(tmp_path)
    assert job.base_dir == os.path.join(REPO, "jobs")  # relative input paths, so document ids, as the job file's
    with open(os.path.join(REPO, "jobs", "smoke.yaml")) as f:
        spec = yaml.safe_load(f)
    assert [list(i["paths"]) for i in job.raw["inputs"]] == [i["paths"] for i in spec["inputs"]]
    [phase] = job.raw["phases"]
    assert phase["name"] == "read"
    [stage] = phase["stages"]
    [rule] = stage["select"]["rules"]
    assert (rule["column"], rule["op"], rule["value"], rule["reason"]) == ("id", "in", ["a", "b"], HELD_OUT_REASON)
    assert rule["domains"] == []  # every domain


def test_the_raw_training_view_puts_the_set_aside_documents_last(tmp_path):
    from jobs.experiments.cleaning import training_view

    raw = tmp_path / "raw"
    phase = raw / "00-read-abc"
    for kind in ("data", "rejected"):
        (phase / kind / "domain=github").mkdir(parents=True)
    part = "domain=github/part-00003.parquet"
    pq.write_table(pa.table({"id": ["a", "b"], "text": ["x", "y"]}), phase / "data" / part)
    pq.write_table(pa.table({"id": ["h", "r"], "text": ["held", "broken"],
                             "drop_reason": [HELD_OUT_REASON, "invalid_json"]}), phase / "rejected" / part)
    (raw / "stats.json").write_text(json.dumps({"phases": [{"name": "read", "dir": "00-read-abc"}]}))
    counts = training_view(str(raw), str(tmp_path / "view"))
    assert counts == {"github": 1}
    folder = tmp_path / "view" / "data" / "domain=github"
    assert sorted(os.listdir(folder)) == ["part-00003.parquet", "part-99999-held-out.parquet"]  # export order
    assert os.path.islink(folder / "part-00003.parquet")
    assert pq.read_table(folder / "part-99999-held-out.parquet").to_pydict() == {"id": ["h"], "text": ["held"]}
    stats = json.loads((tmp_path / "view" / "stats.json").read_text())
    assert stats["final_data"] == "data"  # recorded inside the view, as every run folder records it
