"""Paths recorded inside a run folder are relative to it, resolved there, and refused when missing."""

import json

import pytest

from corpus.runtime import layout


def run_folder(tmp_path, stats):
    run = tmp_path / "run"
    (run / "final" / "domain=c4").mkdir(parents=True)
    (run / "final" / "domain=c4" / "part-00000.parquet").write_bytes(b"")
    (run / "stats.json").write_text(json.dumps(stats))
    return str(run)


def test_relative_paths_round_trip(tmp_path):
    run = str(tmp_path / "run")
    assert layout.relative_to(run, f"{run}/final/domain=c4") == "final/domain=c4"
    assert layout.relative_to(f"{run}/export", f"{run}/final") == "../final"
    assert layout.relative_to("s3://b/runs/demo", "s3://b/runs/demo/final") == "final"
    with pytest.raises(ValueError, match="not inside"):
        layout.relative_to("s3://b/runs/demo", "s3://b/other/final")
    # Another filesystem does not move with the folder: recorded as it is.
    assert layout.record_path(run, "s3://b/runs/demo/final") == "s3://b/runs/demo/final"
    assert layout.record_path("s3://b/runs/demo/export", "s3://b/runs/demo/final") == "s3://b/runs/demo/final"
    assert layout.record_path(f"{run}/tok", f"{run}/final/domain=c4/part-00000.parquet") == (
        "../final/domain=c4/part-00000.parquet")


def test_final_data_resolves_in_the_folder_it_is_given(tmp_path):
    run = run_folder(tmp_path, {"job": "j", "exit_code": 0, "final_data": "final", "phases": []})
    assert layout.final_data(run) == f"{run}/final"
    assert layout.final_parquet_files(run) == [f"{run}/final/domain=c4/part-00000.parquet"]


@pytest.mark.parametrize("recorded, message", [
    ("/somewhere/else/final", "outside the folder"),  # what older builds wrote: never followed
    ("runs/demo/03-remove-abc/data", "does not exist there"),  # relative to the build's working folder
])
def test_a_recorded_path_that_is_not_in_the_run_is_refused(tmp_path, recorded, message):
    run = run_folder(tmp_path, {"job": "j", "exit_code": 0, "final_data": recorded, "phases": []})
    with pytest.raises(layout.RunFolderError, match=message) as err:
        layout.final_data(run)
    assert "Fix:" in str(err.value)


def test_no_final_corpus_after_quarantine_and_no_stats(tmp_path):
    run = run_folder(tmp_path, {"job": "j", "exit_code": 3, "final_data": None, "phases": []})
    with pytest.raises(layout.RunFolderError, match="quarantined"):
        layout.final_data(run)
    with pytest.raises(layout.RunFolderError, match="no stats.json"):
        layout.read_stats(str(tmp_path))
