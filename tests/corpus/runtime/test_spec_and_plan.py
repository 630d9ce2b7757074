import json
import os

import jsonschema
import pytest
import yaml

from corpus.config import ConfigError
from corpus.runtime.job_schema import job_json_schema
from corpus.runtime.plan import check_plan
from corpus.runtime.spec import apply_overrides, load_job, parse_job

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def spec(**changes):
    base = {
        "name": "t", "output": "out",
        "inputs": [{"source": "jsonl", "paths": ["x.jsonl"], "domain": "c4"}],
        "phases": [{"name": "clean", "stages": [{"normalize": {}}, {"length": {}},
                                                {"select": {"rules": [{"column": "n_words_v1", "op": "<",
                                                                       "value": 5, "reason": "short"}]}}]}],
    }
    base.update(changes)
    return base


def test_demo_job_is_valid_and_plans():
    job = load_job(os.path.join(REPO, "jobs", "demo.yaml"))
    plans = check_plan(job)
    clean = [p.name for p in job.phases].index("clean")
    assert plans[clean].column_origin["n_words_v1"] == "length"
    assert job.raw["runtime"]["workers"] == 2  # defaults are filled in the resolved spec


@pytest.mark.parametrize("change, message", [
    ({"nme": "x"}, r"job: unknown key 'nme'\. Did you mean 'name'"),
    ({"name": "Bad Name"}, r"job\.name: 'Bad Name' must be"),
    ({"runtime": {"workers": 0}}, r"job\.runtime\.workers: 0 actors is out of range\. Fix: use a value >= 1"),
    ({"runtime": {"workers": "4"}}, r"job\.runtime\.workers: got '4' \(str\); expected int"),
    ({"inputs": [{"source": "jsnol", "paths": ["a"], "domain": "c4"}]}, r"Did you mean 'jsonl'"),
    ({"inputs": [{"source": "jsonl", "paths": ["a"], "domain": "reddit"}]}, r"'reddit' is not a domain"),
    ({"inputs": [{"source": "jsonl", "paths": ["a"], "domain": "c4", "options": {"max_line_bytes": 10}}]},
     r"job\.inputs\[0\]\.options\.max_line_bytes: 10 bytes is out of range"),
    ({"phases": [{"name": "p", "stages": [{"normalise": {}}]}]}, r"unknown stage 'normalise'\. Did you mean 'normalize'"),
    ({"phases": [{"name": "p", "stages": [{"normalize": {"form": "NFX"}}]}]}, r"\.normalize\.form: 'NFX' is not allowed"),
    ({"phases": [{"name": "p", "stages": [{"select": {"rules": [{"column": "text", "op": "<", "reason": "x"}]}}]}]},
     r"op < needs one number"),
    ({"phases": [{"name": "p", "stages": ["length", "length"]}]}, r"appears twice"),
    ({"phases": [{"name": "p", "stages": ["length"]}, {"name": "p", "stages": ["normalize"]}]}, r"two phases are named 'p'"),
])
def test_invalid_specs_name_field_value_and_fix(change, message):
    with pytest.raises(ConfigError, match=message):
        parse_job(spec(**change), base_dir=".")


def test_plan_check_missing_column_says_which_stage_writes_it():
    bad = spec(phases=[{"name": "clean", "stages": [
        {"select": {"rules": [{"column": "n_words_v1", "op": "<", "value": 5, "reason": "short"}]}},
        {"length": {}}]}])
    with pytest.raises(ConfigError, match=r"reads column 'n_words_v1'.*Fix: move it after clean\.length"):
        check_plan(parse_job(bad, base_dir="."))


def test_plan_check_sees_columns_of_earlier_phases():
    ok = spec(phases=[{"name": "score", "stages": ["length"]},
                      {"name": "filter", "stages": [{"select": {"rules": [
                          {"column": "n_chars_v1", "op": ">", "value": 10, "reason": "long"}]}}]}])
    plans = check_plan(parse_job(ok, base_dir="."))
    assert plans[1].origin_before[0]["n_chars_v1"] == "length"


def test_plan_check_refuses_a_scorer_twice_across_phases():
    bad = spec(phases=[{"name": "a", "stages": ["length"]}, {"name": "b", "stages": ["length"]}])
    with pytest.raises(ConfigError, match="already written by length"):
        check_plan(parse_job(bad, base_dir="."))


def test_overrides_walk_mappings_and_lists():
    data = apply_overrides(spec(), ["runtime.workers=4", "phases.0.stages.2.select.rules.0.value=50"])
    assert data["runtime"]["workers"] == 4
    assert data["phases"][0]["stages"][2]["select"]["rules"][0]["value"] == 50
    with pytest.raises(ConfigError, match="not an index"):
        apply_overrides(spec(), ["phases.7.name=x"])
    with pytest.raises(ConfigError, match="expected key=value"):
        apply_overrides(spec(), ["runtime.workers"])


def test_committed_json_schema_matches_the_code():
    with open(os.path.join(REPO, "schemas", "job_spec_v1.schema.json")) as f:
        committed = json.load(f)
    assert committed == job_json_schema(), (
        "schemas/job_spec_v1.schema.json is stale: python -m corpus.runtime.job_schema > schemas/job_spec_v1.schema.json")


def test_json_schema_accepts_the_shipped_jobs_and_refuses_bad_ones():
    schema = job_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    checked = 0
    for name in os.listdir(os.path.join(REPO, "jobs")):
        if name.endswith(".yaml"):
            with open(os.path.join(REPO, "jobs", name)) as f:
                doc = yaml.safe_load(f)
            if "phases" not in doc:  # a training config (jobs/pretrain_*.yaml): tests/training checks those
                continue
            jsonschema.validate(doc, schema)
            checked += 1
    assert checked >= 3
    for bad in (spec(nme="x"), spec(runtime={"workers": 0}),
                spec(phases=[{"name": "p", "stages": [{"normalise": {}}]}])):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)


@pytest.mark.parametrize("output, why", [
    ("../elsewhere", "leaves the working folder"), ("/etc/refinery", "leaves the working folder"),
    ("runs/../../x", "leaves the working folder"),
    ("file:///tmp/anywhere", "leaves the working folder"), ("file://../x", "leaves the working folder"),
    ("~/x", "leaves the working folder"), ("~", "leaves the working folder"), ("~root/x", "leaves the working folder"),
    ("file://", "names no folder"),
    ("local:///tmp/x", "may not write to local://"), ("memory://x", "may not write to memory://"),
    ("http://example.org/x", "may not write to http://"),
    ("simplecache::file:///tmp/x", "chains fsspec file systems"), ("s3://b/x::file:///tmp/y", "chains"),
    ("file:/tmp/x", "not a plain relative path"), ("data:text/plain,x", "not a plain relative path"),
])
def test_job_file_cannot_write_outside_the_working_folder(output, why, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=f"job.output: .*{why}.*--output"):
        parse_job(spec(output=output), base_dir=".")
    # the operator may choose any place on the command line
    assert parse_job(spec(output=output), base_dir=".", output_override=True).output == output


@pytest.mark.parametrize("output, kept", [("runs", "runs"), ("runs/sub/", "runs/sub/"), ("./runs", "./runs"),
                                          ("file://runs", "runs"), ("s3://bucket/runs", "s3://bucket/runs"),
                                          ("gs://bucket/runs", "gs://bucket/runs")])
def test_job_file_may_write_below_the_working_folder_or_to_an_object_store(output, kept, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    job = parse_job(spec(output=output), base_dir=".")
    assert job.output == kept and job.raw["output"] == kept


def test_validate_refuses_a_job_file_writing_to_a_file_url(tmp_path, monkeypatch, capsys):
    from jobs.cli import EXIT_INVALID, main

    monkeypatch.chdir(tmp_path)
    job = tmp_path / "j.yaml"
    job.write_text(yaml.safe_dump(spec(output=f"file://{tmp_path}/elsewhere")))
    assert main(["validate", str(job)]) == EXIT_INVALID
    assert "job.output" in capsys.readouterr().err


def test_job_file_cannot_run_code(tmp_path):
    evil = tmp_path / "evil.yaml"
    evil.write_text("name: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_job(str(evil))
