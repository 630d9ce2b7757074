"""The run-folder helpers every training worker shares (training/loop/run_folder.py): which settings may resume a
folder, when an interval is due, the index cache made anew."""

import os

import pytest
import yaml

from training.loop.launch import RESOLVED, LaunchError
from training.loop.run_folder import (CHECKPOINTS, fresh_index_cache, is_due, read_summary, refuse_other_run,
                                      write_summary)


def _run_folder(tmp_path, doc, *, checkpoint):
    (tmp_path / RESOLVED).write_text(yaml.safe_dump(doc))
    if checkpoint:
        (tmp_path / CHECKPOINTS).mkdir(exist_ok=True)
        (tmp_path / CHECKPOINTS / "latest").write_text("step-00000004\n")
    return str(tmp_path)


def test_a_checkpointed_folder_resumes_only_the_same_kind_and_settings(tmp_path):
    run = _run_folder(tmp_path, {"identity": "abc", "config": {}}, checkpoint=True)  # pretraining: no `kind`
    refuse_other_run(run, kind="pretrain", identity="abc")
    with pytest.raises(LaunchError, match="holds a pretrain run with other training settings .*now pretrain def"):
        refuse_other_run(run, kind="pretrain", identity="def")
    with pytest.raises(LaunchError, match="holds a pretrain run"):
        refuse_other_run(run, kind="sft", identity="abc")  # same digest, another kind: still two runs
    run = _run_folder(tmp_path, {"kind": "ppo", "identity": "abc"}, checkpoint=True)
    refuse_other_run(run, kind="ppo", identity="abc")
    with pytest.raises(LaunchError, match="Fix: choose another output.dir"):
        refuse_other_run(run, kind="rm", identity="abc")


def test_a_folder_without_a_checkpoint_takes_any_config(tmp_path):
    refuse_other_run(str(tmp_path), kind="sft", identity="abc")  # nothing there yet
    run = _run_folder(tmp_path, {"kind": "rm", "identity": "old"}, checkpoint=False)
    refuse_other_run(run, kind="sft", identity="new")  # a run that died before its first checkpoint


def test_intervals_fall_on_multiples_and_on_the_last_step():
    assert [s for s in range(1, 11) if is_due(s, 4, 10)] == [4, 8, 10]
    assert [s for s in range(1, 9) if is_due(s, 4, 8)] == [4, 8]


def test_the_index_cache_starts_empty_and_summaries_round_trip(tmp_path):
    calls = []
    path = fresh_index_cache(str(tmp_path), rank0=True, barrier=lambda: calls.append("barrier"))
    (tmp_path / "index-cache" / "stale.npy").write_bytes(b"left by an earlier start")
    assert fresh_index_cache(str(tmp_path), rank0=True, barrier=lambda: calls.append("barrier")) == path
    assert os.listdir(path) == [] and calls == ["barrier", "barrier"]
    assert read_summary(str(tmp_path)) is None
    write_summary(str(tmp_path), {"steps": 3})
    assert read_summary(str(tmp_path)) == {"steps": 3}
