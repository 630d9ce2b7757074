import os

from jobs.cli import EXIT_INVALID, main

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO = os.path.join(REPO, "jobs", "demo.yaml")
SMOKE = os.path.join(REPO, "jobs", "smoke.yaml")  # the demo corpus only: no sample fetch


def test_validate_ok_and_bad(capsys, tmp_path):
    assert main(["validate", SMOKE]) == 0
    assert "valid" in capsys.readouterr().out
    assert main(["validate", DEMO, "--spec-only"]) == 0  # its samples may not be fetched yet
    assert "valid" in capsys.readouterr().out
    assert main(["validate", DEMO, "--spec-only", "--set", "runtime.workers=0"]) == EXIT_INVALID
    err = capsys.readouterr().err
    assert "job.runtime.workers: 0 actors is out of range" in err and "Fix:" in err
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ninputs: [}\n")
    assert main(["validate", str(bad)]) == EXIT_INVALID
    assert "not valid YAML" in capsys.readouterr().err


def test_build_then_stats_then_rerun(ray_local, capsys, tmp_path):
    out = tmp_path / "runs"
    assert main(["build", SMOKE, "--output", str(out), "--no-progress", "--set", "runtime.workers=1"]) == 0
    printed = capsys.readouterr().out
    assert "rows in 68, kept 62, rejected 6" in printed
    assert main(["stats", str(out / "smoke")]) == 0
    printed = capsys.readouterr().out
    assert "dropped read/invalid_utf8: 1" in printed and "kept 62" in printed
    assert main(["build", SMOKE, "--output", str(out), "--no-progress", "--set", "runtime.workers=1"]) == 0
    assert "6 shards (6 already done)" in capsys.readouterr().out


def test_build_missing_input_is_a_clear_error(ray_local, capsys, tmp_path):
    job = tmp_path / "j.yaml"
    job.write_text("name: j\ninputs: [{source: jsonl, paths: [nowhere/*.jsonl], domain: c4}]\n"
                   "phases: [{name: p, stages: [length]}]\n")
    assert main(["build", str(job), "--output", str(tmp_path / "o"), "--no-progress"]) == EXIT_INVALID
    assert "no file matches ['nowhere/*.jsonl']" in capsys.readouterr().err


def test_stats_on_a_folder_without_a_run(capsys, tmp_path):
    assert main(["stats", str(tmp_path)]) == EXIT_INVALID
    assert "no stats.json" in capsys.readouterr().err
