"""The dedup job file and the dedup stages' declarations: the demo job parses and passes the plan check;
dedup settings fail early with the field named."""

import os

import pytest

from corpus.config import ConfigError, config_from_dict
from corpus.dedup.fuzzy import MinhashDedupConfig, lsh_params
from corpus.runtime.plan import check_plan
from corpus.runtime.spec import load_job

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def test_dedup_demo_job_parses_and_plans():
    job = load_job(os.path.join(REPO, "jobs", "dedup_demo.yaml"))
    kinds = [p.kind for p in job.phases]
    assert kinds == ["map", "exact_dedup", "minhash_dedup", "map", "line_dedup", "map"]
    plans = check_plan(job)
    final = plans[-1].column_origin
    assert final["minhash_duplicate_v2"] == "minhash_dedup" and final["line_dedup_empty_v1"] == "line_dedup"
    assert final["text"] == "line_dedup"


@pytest.mark.parametrize("settings,message", [
    ({"bands": 4}, "set both"),
    ({"bands": 20, "rows": 10}, "exceeds num_perm"),
    ({"threshold": 1.5}, "out of range"),
    ({"mode": "chars"}, "not allowed"),
    ({"priority": {"web": 500}}, "out of range"),
])
def test_minhash_settings_are_checked(settings, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict(MinhashDedupConfig, settings, "phases[1].settings")


def test_bands_derive_from_threshold_unless_given():
    assert lsh_params(MinhashDedupConfig()) == (21, 6)  # verified candidates: recall at the threshold
    assert lsh_params(MinhashDedupConfig(verify=False)) == (9, 13)  # least error area
    assert lsh_params(MinhashDedupConfig(bands=16, rows=8)) == (16, 8)
