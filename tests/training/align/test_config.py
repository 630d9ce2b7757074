"""SFT and reward-model configs load strictly, the job files validate, and the JSON Schemas are current."""

import json
import os

import pytest

from schemas.config import ConfigError
from training.align.config import RMConfig, SFTConfig, align_json_schema, load_align_config

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


@pytest.mark.parametrize("cls,name,job", [(SFTConfig, "sft", "sft_tiny.yaml"), (RMConfig, "rm", "rm_tiny.yaml")])
def test_job_files_load_and_schemas_are_current(cls, name, job):
    cfg = load_align_config(cls, os.path.join(REPO, "jobs", job))
    assert cfg.parallel.pipeline == 1 and cfg.schedule.global_batch_size % cfg.schedule.micro_batch_size == 0
    with open(os.path.join(REPO, "schemas", f"{name}_v1.schema.json")) as f:
        assert json.load(f) == align_json_schema(cls, name), \
            f"regenerate: python -m training.align.config {name} > schemas/{name}_v1.schema.json"


def test_unknown_keys_and_bad_batches_name_the_field(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("init: {checkpoint: a, tokenizer: b}\ndata: {train: t.jsonl, packing: true}\noutput: {dir: o}\n")
    with pytest.raises(ConfigError, match=r"data: unknown key 'packing'. Did you mean 'pack'"):
        load_align_config(SFTConfig, str(path))
    path.write_text("init: {checkpoint: a, tokenizer: b}\ndata: {train: t.jsonl}\noutput: {dir: o}\n"
                    "schedule: {micro_batch_size: 3, global_batch_size: 8}\n")
    with pytest.raises(ConfigError, match="global_batch_size 8 is not a multiple"):
        load_align_config(RMConfig, str(path))
