"""Every command's known failures: one line on stderr, a documented exit code, no traceback unless --debug."""

import errno
import json
import os
import threading
import time

import pytest

from jobs.cli import main
from jobs.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_INVALID, CommandError, explain, run_guarded

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SMOKE = os.path.join(REPO, "jobs", "smoke.yaml")
DEMO_CORPUS = os.path.join(REPO, "jobs", "demo_corpus")


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err and len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize("exc, code, words", [
    (PermissionError(errno.EACCES, "Permission denied", "/out/runs"), EXIT_FAILED, "cannot write /out/runs"),
    (OSError(errno.EROFS, "Read-only file system", "/out/runs"), EXIT_FAILED, "cannot write /out/runs"),
    (OSError(errno.ENOSPC, "No space left on device", "/out/runs"), EXIT_FAILED, "free space"),
    (ConnectionError("Could not find any running Ray instance. Please specify the one to connect to by setting "
                     "`--address` flag or `RAY_ADDRESS` environment variable."), EXIT_FAILED, "ray start --head"),
    (FileNotFoundError(errno.ENOENT, "No such file or directory", "m.npz"), EXIT_INVALID, "m.npz: No such file"),
    (CommandError("said already", 3), 3, "said already"),
])
def test_known_failures_are_explained(exc, code, words):
    got_code, line = explain(exc)
    assert got_code == code and words in line and "\n" not in line


def test_a_bug_keeps_its_traceback(capsys):
    def boom():
        raise KeyError("job")

    assert explain(KeyError("job")) is None
    assert run_guarded(boom) == EXIT_FAILED
    err = capsys.readouterr().err
    assert "Traceback" in err and "KeyError" in err and "please report it" in err


def test_debug_shows_the_traceback_of_a_known_failure(capsys, tmp_path):
    assert main(["stats", str(tmp_path), "--debug"]) == EXIT_INVALID
    err = capsys.readouterr().err
    assert "Traceback" in err and "no stats.json" in err
    assert main(["stats", str(tmp_path)]) == EXIT_INVALID
    assert "no stats.json" in one_line(capsys.readouterr().err)


def test_stats_on_a_phase_folder_or_a_file_names_the_run_folder(capsys, tmp_path):
    phase = tmp_path / "runs" / "smoke" / "00-clean-0123456789"
    phase.mkdir(parents=True)
    (phase / "stats.json").write_text(json.dumps({"phase": "clean", "rows_in": 1}))
    assert main(["stats", str(phase)]) == EXIT_INVALID
    line = one_line(capsys.readouterr().err)
    assert "the folder of phase 'clean'" in line and f"refinery stats {tmp_path / 'runs' / 'smoke'}" in line
    assert main(["stats", str(phase / "stats.json")]) == EXIT_INVALID
    assert "is a file" in one_line(capsys.readouterr().err)


def test_set_with_a_typo_is_one_line_with_the_suggestion(capsys, tmp_path):
    labelled = tmp_path / "l.jsonl"
    labelled.write_text(json.dumps({"id": "a", "text": "x y z", "cluster": 0}) + "\n")
    assert main(["dedup", "eval", "--labelled", str(labelled), "--set", "thresold=0.7"]) == EXIT_INVALID
    assert "Did you mean 'threshold'?" in one_line(capsys.readouterr().err)


def _unwritable(tmp_path):
    """A folder this process cannot create anything in (root ignores permission bits: try /sys then)."""
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    for candidate in (ro, "/sys"):
        try:
            os.mkdir(os.path.join(candidate, "probe"))
        except OSError:
            return os.path.join(candidate, "runs")
        os.rmdir(os.path.join(candidate, "probe"))
    pytest.skip("no unwritable folder on this machine")


def test_an_unwritable_output_folder_is_one_line(capsys, tmp_path):
    out = _unwritable(tmp_path)
    assert main(["build", SMOKE, "--output", out, "--no-progress"]) == EXIT_FAILED
    line = one_line(capsys.readouterr().err)
    assert "cannot write" in line and "--output" in line


def test_address_without_a_cluster_is_one_line(capsys, tmp_path, monkeypatch):
    import ray

    def no_cluster(*args, **kwargs):  # what ray.init(address="auto") raises when nothing runs
        raise ConnectionError("Could not find any running Ray instance. Please specify the one to connect to by "
                              "setting `--address` flag or `RAY_ADDRESS` environment variable.")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", no_cluster)
    assert main(["build", SMOKE, "--output", str(tmp_path), "--no-progress", "--address", "auto"]) == EXIT_FAILED
    assert "no Ray cluster to join" in one_line(capsys.readouterr().err)


def test_ctrl_c_says_how_far_the_job_got_and_a_rerun_resumes(ray_local, capsys, tmp_path):
    # One worker takes the shards in order; the last one sleeps long enough to be interrupted (and again,
    # briefly, in the rerun).
    job = tmp_path / "slow.yaml"
    job.write_text(f"""name: slow
inputs: [{{source: jsonl, paths: ["{DEMO_CORPUS}/*.jsonl*"], domain: books}}]
runtime: {{workers: 1, max_retries: 0}}
phases:
  - name: clean
    stages:
      - chaos: {{shard_source_contains: truncated, after_batches: 0, action: sleep, sleep_s: 8}}
      - length: {{}}
""")
    out = tmp_path / "runs"
    ledger = out / "slow"

    def interrupt_when_five_are_committed():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if len(list(ledger.glob("00-clean-*/ledger/*.json"))) >= 5:
                import _thread
                _thread.interrupt_main()
                return
            time.sleep(0.2)

    threading.Thread(target=interrupt_when_five_are_committed, daemon=True).start()
    argv = ["build", str(job), "--output", str(out), "--no-progress"]
    assert main(argv) == EXIT_INTERRUPTED
    line = one_line(capsys.readouterr().err)
    assert line == ("refinery: interrupted: 5/6 shards of phase clean committed; run the same command again to "
                    "resume")
    assert main(argv) == 0  # the chaos stage fires once per phase folder: the rerun finishes
    assert "6 shards (5 already done)" in capsys.readouterr().out
