"""validate's view of a run folder, a threshold change that re-runs no scorer, `refinery clean`, and an
empty result that is said and still published."""

import os

import pyarrow.dataset as ds
import pytest

from corpus.runtime.executor import phase_dir_name
from corpus.runtime.plan import check_plan
from corpus.runtime.spec import load_job
from corpus.stages import STAGES
from jobs.cli import main
from jobs.errors import EXIT_FAILED, EXIT_INVALID

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO = os.path.join(REPO, "jobs", "demo.yaml")
SMOKE = os.path.join(REPO, "jobs", "smoke.yaml")
DEMO_CORPUS = os.path.join(REPO, "jobs", "demo_corpus")


def phase_names(job):
    chain, names = "the same inputs", []
    for plan in check_plan(job):
        names.append(phase_dir_name(job, plan, chain))
        chain = names[-1]
    return names


def test_a_demo_threshold_change_recomputes_no_scorer():
    before = load_job(DEMO)
    after = load_job(DEMO, ["phases.3.stages.0.select.rules.0.value=30"])
    changed = [b != a for b, a in zip(phase_names(before), phase_names(after))]
    for phase, is_new in zip(after.phases, changed):
        scorers = [s.name for s in phase.stages if STAGES[s.name].kind != "select"]
        assert not (is_new and scorers and phase.name == "clean"), f"{phase.name} re-runs {scorers}"
    names = [p.name for p in after.phases]
    clean, filter_ = names.index("clean"), names.index("filter")
    assert not any(changed[:filter_]) and changed[filter_]  # clean (all scorers) and before kept; filter re-run
    assert clean < filter_ and [s.name for s in after.phases[filter_].stages] == ["select"]


def test_validate_shows_the_output_folder_and_phase_status_then_clean_removes_old_folders(ray_local, capsys,
                                                                                        tmp_path, monkeypatch):
    job = tmp_path / "two.yaml"
    job.write_text(f"""name: two
inputs: [{{source: jsonl, paths: ["{DEMO_CORPUS}/*.jsonl*"], domain: books}}]
runtime: {{workers: 1}}
phases:
  - name: score
    stages: [normalize, length]
  - name: filter
    stages:
      - select: {{rules: [{{column: n_words_v1, op: "<", value: 50, reason: too_few_words}}]}}
""")
    out = tmp_path / "runs"
    base = [str(job), "--output", str(out)]
    assert main(["validate", *base]) == 0
    printed = capsys.readouterr().out
    assert f"output: {out / 'two'}" in printed
    assert "phase score        not run" in printed and "phase filter       not run" in printed
    assert main(["build", *base, "--no-progress"]) == 0
    capsys.readouterr()

    lower = ["--set", "phases.1.stages.0.select.rules.0.value=40"]
    assert main(["validate", *base, *lower]) == 0
    printed = capsys.readouterr().out
    assert "phase score        done" in printed and "phase filter       not run" in printed
    assert main(["build", *base, *lower, "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "phase score: 6 shards (6 already done)" in printed and "phase filter: 5 shards (0 already done)" in printed
    assert main(["validate", *base, *lower]) == 0
    assert "1 phase folder(s) from earlier settings" in capsys.readouterr().out

    def phase_folders():
        return sorted(p.name for p in (out / "two").iterdir() if p.is_dir() and p.name != "final")

    folders = phase_folders()
    assert len(folders) == 3
    assert main(["clean", str(out / "two")]) == EXIT_FAILED  # pytest's stdin is no terminal: nothing to ask
    err = capsys.readouterr().err
    assert "nothing removed" in err and "--yes" in err
    assert len(phase_folders()) == 3
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda prompt: "n")
    assert main(["clean", str(out / "two")]) == 0 and "nothing removed" in capsys.readouterr().out
    assert main(["clean", str(out / "two"), "--yes"]) == 0
    printed = capsys.readouterr().out
    left = phase_folders()
    assert (out / "two" / "final").is_dir()  # the corpus is not a phase folder: clean keeps it
    (removed,) = set(folders) - set(left)
    assert removed.startswith("01-filter-") and "removed 1 folder(s)" in printed
    assert main(["build", *base, *lower, "--no-progress"]) == 0  # what is in use stayed
    assert "phase filter: 5 shards (5 already done)" in capsys.readouterr().out
    assert main(["clean", str(out / "two")]) == 0 and "nothing to remove" in capsys.readouterr().out


def test_validate_spec_only_skips_inputs_and_files(capsys, tmp_path):
    job = tmp_path / "j.yaml"
    job.write_text("name: j\ninputs: [{source: jsonl, paths: [nowhere/*.jsonl], domain: c4}]\n"
                   "phases: [{name: p, stages: [length]}]\n")
    assert main(["validate", str(job)]) == EXIT_INVALID
    assert "no file matches ['nowhere/*.jsonl']" in capsys.readouterr().err
    assert main(["validate", str(job), "--spec-only"]) == 0
    assert "inputs and models not checked" in capsys.readouterr().out


def test_a_job_that_keeps_nothing_says_so_and_publishes_an_empty_dataset(ray_local, capsys, tmp_path):
    out = tmp_path / "runs"
    assert main(["build", SMOKE, "--output", str(out), "--no-progress", "--set", "runtime.workers=1",
                 "--set", "phases.0.stages.2.select.rules.0.value=1000000"]) == 0
    printed = capsys.readouterr().out
    assert "the job kept 0 of 68 documents (dropped by clean/length/too_few_words 63, " in printed
    final = printed.split("output: ")[1].split()[0]
    table = ds.dataset(final, format="parquet", partitioning="hive").to_table()
    assert table.num_rows == 0 and {"id", "text", "domain"} <= set(table.column_names)
    assert main(["tokenizer", "train", "--run", str(out / "smoke"), "--out", str(tmp_path / "tok")]) == EXIT_INVALID
    assert "the run kept 0 documents" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["quality", "train", "--output", "m.joblib"], ["quality", "train", "--out", "m.joblib"]])
def test_quality_train_takes_out_and_the_old_output(argv, capsys):
    assert main(argv) == 1
    assert "--out 'm.joblib' must end with .npz" in capsys.readouterr().err


def test_lm_train_reads_the_samples_make_demo_fetched(tmp_path, monkeypatch):
    import json

    from corpus.lm import train as lm_train
    from corpus.samples import MANIFEST

    sample = next(s for s in MANIFEST if s.name == lm_train.REFERENCE_SAMPLE)
    seen = []

    def read_reference(lang, samples_dest=None):
        seen.append(samples_dest)
        raise SystemExit(0)  # stop before training: only where it reads from matters here

    monkeypatch.setattr(lm_train, "read_reference", read_reference)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit):
        main(["lm", "train", "--lang", "en", "--out", str(tmp_path / "lm")])
    folder = tmp_path / "samples" / sample.name  # what `refinery samples fetch --dest samples` leaves
    folder.mkdir(parents=True)
    (folder / ".sample.json").write_text(json.dumps({"fingerprint": sample.fingerprint()}))
    with pytest.raises(SystemExit):
        main(["lm", "train", "--lang", "en", "--out", str(tmp_path / "lm")])
    assert seen == [None, "samples"]  # the cache when ./samples lacks it; ./samples when it holds it
