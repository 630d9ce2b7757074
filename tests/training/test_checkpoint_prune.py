"""Pruning old checkpoints around a save that was killed while replacing a step folder."""

import os

import pytest

from training.loop.checkpoint import LATEST, _prune, latest_checkpoint


def _step(root, name, meta=True):
    os.makedirs(root / name)
    if meta:
        (root / name / "meta.json").write_text("{}")


def test_a_replaced_copy_does_not_push_the_latest_step_out(tmp_path):
    # publish_dir renames step-N to step-N.old-*, the new folder to step-N, then removes the old copy:
    # a kill before the removal leaves both, and the old copy sorts after step-N.
    for name in ("step-00000002", "step-00000004", "step-00000004.old-0123abcd", "step-00000005.tmp"):
        _step(tmp_path, name)
    (tmp_path / LATEST).write_text("step-00000004\n")
    _prune(str(tmp_path), keep=1)
    assert sorted(os.listdir(tmp_path)) == [LATEST, "step-00000004", "step-00000005.tmp"]
    assert latest_checkpoint(str(tmp_path)) == str(tmp_path / "step-00000004")


def test_the_only_copy_of_a_step_is_kept_and_named_in_the_error(tmp_path):
    # Killed between the two renames: step-4 is only there as the copy being replaced.
    for name in ("step-00000003", "step-00000004.old-0123abcd"):
        _step(tmp_path, name)
    (tmp_path / LATEST).write_text("step-00000004\n")
    _prune(str(tmp_path), keep=1)
    assert sorted(os.listdir(tmp_path)) == [LATEST, "step-00000003", "step-00000004.old-0123abcd"]
    with pytest.raises(FileNotFoundError, match="step-00000004.old-0123abcd is the copy it replaced; rename it"):
        latest_checkpoint(str(tmp_path))


def test_keep_counts_only_step_folders(tmp_path):
    for step in range(1, 6):
        _step(tmp_path, f"step-{step:08d}")
    _step(tmp_path, "step-00000001.old-ff")
    _prune(str(tmp_path), keep=2)
    assert sorted(os.listdir(tmp_path)) == ["step-00000004", "step-00000005"]
