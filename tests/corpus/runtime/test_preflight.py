"""What is checked before Ray starts: select values against column types, inputs and model files."""

import os

import pyarrow as pa
import pytest

from corpus.config import ConfigError
from corpus.runtime.plan import check_plan
from corpus.runtime.preflight import find_problems, input_fix
from corpus.runtime.spec import parse_job
from corpus.stages import STAGES
from corpus.stages.base import BuildContext

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
DEMO_CORPUS = os.path.join(REPO, "jobs", "demo_corpus")


def job(stages, paths=(f"{DEMO_CORPUS}/*.jsonl*",), base_dir=REPO):
    return parse_job({"name": "t", "inputs": [{"source": "jsonl", "paths": list(paths), "domain": "c4"}],
                      "phases": [{"name": "clean", "stages": stages}]}, base_dir=base_dir)


def rule(column, op, value, **extra):
    return {"select": {"rules": [{"column": column, "op": op, "value": value, "reason": "r", **extra}]}}


@pytest.mark.parametrize("stages, fragment", [
    ([{"length": {}}, rule("n_words_v1", "<", "5O")], "n_words_v1 < '5O'): value '5O' cannot be compared with "
                                                      "column 'n_words_v1' (int64). Fix: write the value as a number"),
    ([{"langid": {}}, rule("lang_v1", "in", [3])], "column 'lang_v1' (string)"),
    ([rule("text", ">", True)], "column 'text' (string)"),
    ([{"length": {}}, {"select": {"rules": [{"column": "n_words_v1", "op": "not_null", "reason_from_column": True}]}}],
     "reason_from_column needs a string column"),
])
def test_a_select_value_that_does_not_fit_its_column_fails_the_plan(stages, fragment):
    with pytest.raises(ConfigError) as info:
        check_plan(job(stages))
    assert "stages[" in str(info.value) and fragment in str(info.value)


@pytest.mark.parametrize("stages", [
    [{"length": {}}, rule("n_words_v1", "<", 5.5)],
    [{"langid": {}}, {"select": {"rules": [{"column": "lang_v1", "op": "not_in", "value": ["en"], "reason": "a",
                                            "domains": ["c4"]},
                                           {"column": "lang_score_v1", "op": "<", "value": 1, "reason": "b"}]}}],
    [{"length": {}}, {"normalize": {}}, rule("n_words_v1", ">=", 3)],
])
def test_values_that_fit_pass(stages):
    check_plan(job(stages))


def test_declared_column_types_are_what_the_stages_write():
    # The plan trusts each StageSpec's `types`: check them against real output on a small batch.
    from corpus.runtime.plan import check_plan as plan_of

    text = ("The quick brown fox jumps over the lazy dog. " * 20 + "\n") * 3
    batch = pa.table({"id": ["a"], "domain": ["c4"], "text": [text], "url": [None], "source": ["s"], "meta": [None]})
    names = ["length", "langid", "gopher_quality", "gopher_repetition", "c4_rules"]
    plan = plan_of(job([{n: {}} for n in names]))[0]
    for i, name in enumerate(names):
        spec = STAGES[name]
        fn = spec.build(spec.config(), BuildContext(phase="clean", stage=name, column_origin=plan.origin_before[i],
                                                    work_dir="/nonexistent"))
        out = fn(batch)
        for column, kind in spec.types(spec.config()).items():
            assert out.schema.field(column).type == kind, (name, column)
        assert set(spec.types(spec.config())) <= set(spec.writes(spec.config())), name


def test_missing_inputs_and_models_are_listed_with_their_fix(tmp_path):
    j = job([{"perplexity": {"model_dir": str(tmp_path / "lm"), "language": "fr", "languages": ["fr"]}},
             {"quality": {"model_path": str(tmp_path / "q.npz"), "model_sha256": "0" * 64}}],
            paths=["../samples/warc/*.warc"], base_dir=str(tmp_path / "jobs"))
    problems = find_problems(j)
    assert len(problems) == 3
    assert problems[0].startswith("inputs[0]: no file matches ['../samples/warc/*.warc']")
    assert problems[0].endswith(f"Fix: refinery samples fetch --dest {os.path.relpath(tmp_path / 'samples')}")
    assert f"{tmp_path}/lm/fr.json does not exist. Fix: refinery lm train --lang fr --out {tmp_path}/lm" in problems[1]
    assert f"Fix: refinery quality train --out {tmp_path}/q.npz" in problems[2]
    assert find_problems(job([{"length": {}}])) == []


def test_input_fix_without_samples_says_where_paths_are_read_from():
    assert "relative ones are read from the job file's folder" in input_fix(["/data/x/*.jsonl"])
