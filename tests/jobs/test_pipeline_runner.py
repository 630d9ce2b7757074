"""`refinery run`: the pipeline file's checks, placeholders, fingerprints, skipping, resuming and moving aside.

Most tests record the commands instead of running them (the runner's run_logged is replaced), so they check
the runner's decisions; the log and Ctrl-C tests start real child processes (cheap refinery commands, or a
few lines of Python); tests/jobs/test_llama_mini.py runs the real chain end to end."""

import json
import os
import re
import signal
import sys

import pytest
import yaml

from jobs.pipeline import runner
from jobs.pipeline.child import CommandResult, run_logged
from jobs.pipeline.spec import dependencies, load_pipeline
from schemas.config import ConfigError


def write(tmp_path, steps, name="p"):
    path = tmp_path / "pipe.yaml"
    path.write_text(yaml.safe_dump({"name": name, "output": str(tmp_path / "runs"), "steps": steps}))
    return str(path)


@pytest.fixture
def calls(monkeypatch):
    """Every command the runner starts: argv after `refinery`; it 'succeeds' and writes `made.txt` into
    the folder given by --out, unless the test sets `fail` to a command name."""
    made = {"argv": [], "fail": None, "interrupt": None, "interrupt_at_exit": None}

    def fake_run(cmd, *, log_path, header, env=None):
        argv = cmd[3:]  # [python, -m, jobs.cli, ...]
        made["argv"].append(argv)
        with open(log_path, "a") as log:  # as the real one does (jobs/pipeline/child.py, tested below)
            log.write(f"=== {header}\n")
        if made["interrupt"] and made["interrupt"] in argv:
            return CommandResult(code=130, signal=signal.SIGINT, seconds=0.0)
        if made["interrupt_at_exit"] and made["interrupt_at_exit"] in argv:  # Ctrl-C as it exited, work done
            return CommandResult(code=0, signal=signal.SIGINT, seconds=0.0)
        if made["fail"] and made["fail"] in argv:
            return CommandResult(code=1, signal=None, seconds=0.0)
        if "--out" in argv:
            out = argv[argv.index("--out") + 1]
            os.makedirs(out, exist_ok=True)
            with open(os.path.join(out, "made.txt"), "w") as f:
                f.write(" ".join(argv))
        return CommandResult(code=0, signal=None, seconds=0.0)

    monkeypatch.setattr(runner, "run_logged", fake_run)
    return made


STEPS = [{"name": "a", "run": "tokenizer train --run x --out ${a}"},
         {"name": "b", "run": ["eval mc-tasks --out ${b}", "report ${a}"]},
         {"name": "c", "run": "quality train --out ${c} --positives ${sha256:a/made.txt}"},
         {"name": "d", "run": "report ${pipeline}"}]


def test_placeholders_dependencies_and_commands(tmp_path, calls):
    spec = load_pipeline(write(tmp_path, STEPS))
    assert [dependencies(s, spec) for s in spec.steps] == [[], ["a"], ["a"], ["a", "b", "c"]]
    assert runner.run_pipeline(spec, address="x:1", say=lambda _: None) == dict.fromkeys("abcd", "ran")
    run = str(tmp_path / "runs" / "p")
    digest = runner.file_sha256(os.path.join(run, "a", "made.txt"))
    assert calls["argv"] == [["tokenizer", "train", "--run", "x", "--out", f"{run}/a"],
                             ["eval", "mc-tasks", "--out", f"{run}/b"], ["report", f"{run}/a"],
                             ["quality", "train", "--out", f"{run}/c", "--positives", digest],
                             ["report", run]]
    state = json.load(open(os.path.join(run, "steps", "c.json")))
    assert state["status"] == "done" and state["commands"][0][:3] == ["refinery", "quality", "train"]
    assert json.load(open(os.path.join(run, "pipeline.json")))["steps"] == list("abcd")


def test_unchanged_steps_are_skipped_and_a_change_reruns_the_step_and_what_follows(tmp_path, calls):
    path = write(tmp_path, STEPS)
    runner.run_pipeline(load_pipeline(path), address="x:1", say=lambda _: None)
    calls["argv"].clear()
    assert set(runner.run_pipeline(load_pipeline(path), address="x:1", say=lambda _: None).values()) == {"skipped"}
    assert calls["argv"] == []
    changed = [dict(STEPS[0]), STEPS[1], STEPS[2], STEPS[3]]
    changed[0]["run"] = "tokenizer train --run y --out ${a}"
    said = []
    outcome = runner.run_pipeline(load_pipeline(write(tmp_path, changed)), address="x:1", say=said.append)
    # b and c name a's folder; d names the whole run: all follow a. The old a is kept, moved aside.
    assert outcome == dict.fromkeys("abcd", "ran")
    aside = [n for n in os.listdir(tmp_path / "runs" / "p") if n.startswith("a.replaced-")]
    assert len(aside) == 1 and any("its old folder is kept as" in s and aside[0] in s for s in said)
    assert (tmp_path / "runs" / "p" / aside[0] / "made.txt").read_text().startswith("tokenizer train --run x")
    # d (`report ${pipeline}`) wrote nothing into its folder (the fake commands write only to --out): nothing
    # to keep aside; b and c wrote theirs
    assert sorted(n.split(".")[0] for n in os.listdir(tmp_path / "runs" / "p") if ".replaced-" in n) == ["a", "b", "c"]


def test_a_change_reruns_only_its_dependants(tmp_path, calls):
    steps = [{"name": "a", "run": "eval mc-tasks --out ${a}"}, {"name": "b", "run": "eval mc-tasks --out ${b}"},
             {"name": "c", "run": "report ${b}"}]
    runner.run_pipeline(load_pipeline(write(tmp_path, steps)), address="x:1", say=lambda _: None)
    steps[1] = {"name": "b", "run": "eval mc-tasks --out ${b} --debug"}
    outcome = runner.run_pipeline(load_pipeline(write(tmp_path, steps)), address="x:1", say=lambda _: None)
    assert outcome == {"a": "skipped", "b": "ran", "c": "ran"}


def test_a_config_file_next_to_the_pipeline_is_part_of_the_fingerprint(tmp_path, calls):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("a: 1\n")
    steps = [{"name": "a", "run": "train pretrain cfg.yaml", "set": {"output.dir": "${a}", "x": [1, "${a}"]}}]
    path = write(tmp_path, steps)
    runner.run_pipeline(load_pipeline(path), address="x:1", say=lambda _: None)
    run = str(tmp_path / "runs" / "p")
    assert calls["argv"][0] == ["train", "pretrain", str(cfg), "--set", f"output.dir={run}/a",
                                "--set", f"x=[1, {run}/a]", "--address", "x:1"]
    assert runner.run_pipeline(load_pipeline(path), address="x:1", say=lambda _: None) == {"a": "skipped"}
    cfg.write_text("a: 2\n")
    assert runner.run_pipeline(load_pipeline(path), address="x:1", say=lambda _: None) == {"a": "ran"}


def test_a_failed_step_stops_the_run_and_resumes_in_its_folder(tmp_path, calls):
    path = write(tmp_path, STEPS)
    calls["fail"] = "mc-tasks"
    with pytest.raises(runner.StepFailed, match="step 'b' failed .exit 1.: refinery eval mc-tasks .*its output is in .*steps/b.log"):
        runner.run_pipeline(load_pipeline(path), address="x:1", say=lambda _: None)
    state = json.load(open(tmp_path / "runs" / "p" / "steps" / "b.json"))
    assert state["status"] == "running" and state["exit_code"] == 1
    calls["fail"] = None
    said = []
    outcome = runner.run_pipeline(load_pipeline(path), address="x:1", say=said.append)
    assert outcome == {"a": "skipped", "b": "ran", "c": "ran", "d": "ran"}
    assert "[b] failed last time (exit 1): resuming" in said
    assert not any(n.startswith("b.replaced") for n in os.listdir(tmp_path / "runs" / "p"))


def test_until_stops_after_the_step(tmp_path, calls):
    outcome = runner.run_pipeline(load_pipeline(write(tmp_path, STEPS)), address="x:1", until="b",
                                  say=lambda _: None)
    assert outcome == {"a": "ran", "b": "ran"}


@pytest.mark.parametrize("steps, message", [
    ([{"name": "a", "run": "report ${b}"}, {"name": "b", "run": "report x"}], "names a later step: 'b'"),
    ([{"name": "a", "run": "report ${zz}"}], "names no step: 'zz'"),
    ([{"name": "a", "run": "report ${sha256:a/x}"}], "the step's own file"),
    ([{"name": "a", "run": "report x"}, {"name": "a", "run": "report y"}], "used twice"),
    ([{"name": "Bad_Name", "run": "report x"}], "not a step name"),
    ([{"name": "pipeline", "run": "report x"}], "not a step name"),
    ([{"name": "steps", "run": "report x"}], "the folder of the steps' states and logs"),
    ([{"name": "a", "run": ["report x", "report y"], "set": {"k": 1}}], "only for a step with one command"),
    ([{"name": "a", "run": "report 'x"}], "No closing quotation"),
    ([{"name": "a", "run": "report x", "extra": 1}], "extra"),
])
def test_bad_pipeline_files_are_refused_with_the_step_and_the_fix(tmp_path, steps, message):
    with pytest.raises(ConfigError, match=message):
        load_pipeline(write(tmp_path, steps))


def test_validate_checks_every_command_and_config_of_the_mini_and_cluster_pipelines(capsys):
    from jobs.cli import main
    from tests.conftest import REPO

    for name, steps in (("llama_mini.yaml", 14), ("llama_cluster.yaml", 14)):
        assert main(["validate", os.path.join(REPO, "jobs", name)]) == 0, capsys.readouterr().err
        out = capsys.readouterr().out
        assert f"valid pipeline ({steps} steps" in out and "refinery train ppo" in out


def test_validate_names_the_step_of_a_bad_command_or_config(tmp_path, capsys):
    from jobs.cli import main
    from tests.conftest import REPO

    bad_flag = write(tmp_path, [{"name": "a", "run": "eval mc-tasks --outt ${a}"}])
    assert main(["validate", bad_flag]) == 2
    assert "pipeline step 'a': refinery eval mc-tasks" in capsys.readouterr().err
    cfg = os.path.join(REPO, "jobs", "pretrain_tiny.yaml")
    bad_key = write(tmp_path, [{"name": "a", "run": f"train pretrain {cfg}", "set": {"model.layers": 3}}])
    assert main(["validate", bad_key]) == 2
    err = capsys.readouterr().err
    assert "pipeline step 'a'" in err and "layers" in err


def test_each_step_is_expanded_once_per_run(tmp_path, calls, monkeypatch):
    # ${sha256:...} hashes a file that may be a large model: fingerprint and run share one expansion.
    expanded = []
    real = runner.step_commands
    monkeypatch.setattr(runner, "step_commands", lambda step, spec, preview=False: expanded.append(step.name)
                        or real(step, spec, preview))
    hashed = []
    real_sha = runner.file_sha256
    monkeypatch.setattr(runner, "file_sha256", lambda path: hashed.append(path) or real_sha(path))
    path = write(tmp_path, STEPS)
    runner.run_pipeline(load_pipeline(path), address="x:1", say=lambda _: None)
    assert expanded == list("abcd")
    assert hashed == [str(tmp_path / "runs" / "p" / "a" / "made.txt")]  # c's ${sha256:a/made.txt}, once
    expanded.clear()
    runner.run_pipeline(load_pipeline(path), address="x:1", say=lambda _: None)  # all skipped
    assert expanded == list("abcd")


def test_a_step_log_keeps_every_attempt_and_the_output_still_reaches_the_terminal(tmp_path, capsys):
    # Real child processes: two cheap refinery commands, the second failing on a bad flag value.
    path = write(tmp_path, [{"name": "a", "run": "samples list"}, {"name": "b", "run": "plan --params x"}])
    for attempt in (1, 2):
        with pytest.raises(runner.StepFailed) as failed:
            runner.run_pipeline(load_pipeline(path), address="x:1", say=print)
        log = tmp_path / "runs" / "p" / "steps" / "b.log"
        assert failed.value.log == str(log) and str(log) in str(failed.value)
        out, err = capsys.readouterr()
        assert "invalid float value: 'x'" in err  # the child's stderr still on stderr
        assert ("NAME" in out) == (attempt == 1)  # `samples list` ran once, then was skipped
    text = log.read_text()
    headers = [line for line in text.splitlines() if line.startswith("=== ")]
    assert len(headers) == 4 and "step b, attempt 1, command 1/1: refinery plan --params x" in headers[0]
    assert "attempt 2" in headers[2] and headers[1].split()[2:4] == ["exit", "2"] == headers[3].split()[2:4]
    assert text.count("invalid float value: 'x'") == 2
    a_log = (tmp_path / "runs" / "p" / "steps" / "a.log").read_text()
    assert "NAME" in a_log and a_log.splitlines()[-1].split()[2:4] == ["exit", "0"]
    state = json.load(open(tmp_path / "runs" / "p" / "steps" / "b.json"))
    assert state["attempt"] == 2 and state["log"] == os.path.join("steps", "b.log")
    from jobs.pipeline.report import render

    page = render(str(tmp_path / "runs" / "p"), str(tmp_path / "runs" / "p"))  # the page beside steps/
    assert '<a href="steps/a.log">log</a>' in page and '<a href="steps/b.log">log</a>' in page


CHILD_THAT_IS_INTERRUPTED = """
import os, signal, sys, time
sent = 0
def stop(*_):
    print(f"child: stopping cleanly after {sent} SIGINT(s) to the runner", flush=True)
    sys.exit(130)
signal.signal(signal.SIGINT, stop)
print("child: started", flush=True)
sent += 1
os.kill(os.getppid(), signal.SIGINT)      # the runner's share of a terminal's Ctrl-C, or a `kill -INT`
if sys.argv[1] == "terminal":
    os.kill(os.getpid(), signal.SIGINT)   # ours: the terminal sends it to the whole process group
for _ in range(150):                      # `kill -INT` again until the runner passes one on (signals of one
    time.sleep(0.2)                       # kind are not queued: two at once may arrive as one)
    sent += 1
    os.kill(os.getppid(), signal.SIGINT)
sys.exit(3)                               # never stopped: the test fails instead of hanging
"""


@pytest.mark.parametrize("how", ["terminal", "kill"])
def test_ctrl_c_is_waited_for_and_a_second_one_passed_on(tmp_path, capsys, how):
    # A terminal's Ctrl-C reaches the whole process group: the command stops by itself while the runner
    # waits. A SIGINT sent to the runner alone reaches the command from the second one on.
    log = tmp_path / "steps" / "x.log"
    argv = [sys.executable, "-c", CHILD_THAT_IS_INTERRUPTED, how]
    result = run_logged(argv, log_path=str(log), header="x")
    assert (result.code, result.signal) == (130, signal.SIGINT)
    text = log.read_text()
    assert "child: started" in text
    stopped = re.search(r"child: stopping cleanly after (\d+) SIGINT", text)
    assert stopped and (int(stopped.group(1)) == 1 if how == "terminal" else int(stopped.group(1)) >= 2)
    assert text.splitlines()[-1].split()[2:5] == ["exit", "130,", "after"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # ours is back
    assert "child: stopping cleanly" in capsys.readouterr().out


def test_an_interrupted_step_says_so_and_resumes(tmp_path, calls):
    path = write(tmp_path, STEPS)
    calls["interrupt"] = "mc-tasks"
    with pytest.raises(runner.StepInterrupted, match="interrupted in step 'b' .SIGINT.; its output is in .*b.log"):
        runner.run_pipeline(load_pipeline(path), address="x:1", say=lambda _: None)
    state = json.load(open(tmp_path / "runs" / "p" / "steps" / "b.json"))
    assert state["status"] == "interrupted" and state["exit_code"] == 130 and state["attempt"] == 1
    calls["interrupt"] = None
    said = []
    assert runner.run_pipeline(load_pipeline(path), address="x:1", say=said.append)["b"] == "ran"
    assert "[b] was interrupted: resuming" in said
    assert json.load(open(tmp_path / "runs" / "p" / "steps" / "b.json"))["attempt"] == 2


def test_a_folder_moved_aside_twice_under_one_fingerprint_keeps_both(tmp_path, calls):
    one, two = ([{"name": "a", "run": f"eval mc-tasks --out ${{a}} {flag}".strip()}] for flag in ("", "--debug"))
    for steps in (one, two, one, two):  # a's first folder is moved aside twice under the same fingerprint
        runner.run_pipeline(load_pipeline(write(tmp_path, steps)), address="x:1", say=lambda _: None)
    aside = sorted(n for n in os.listdir(tmp_path / "runs" / "p") if ".replaced-" in n)
    assert len(aside) == 3 and sum(n + "-2" in aside for n in aside) == 1


@pytest.mark.parametrize("argv", [["train", "pretrain"], ["train", "sft"], ["train", "rm"], ["train", "ppo"],
                                  ["mix", "doremi"]])
def test_the_commands_and_validate_load_configs_through_one_table(argv, tmp_path, monkeypatch, capsys):
    from jobs.cli import main
    from jobs.commands._configs import CONFIG_LOADERS, ConfigLoader

    def refuse(path, overrides):
        raise ConfigError(f"the table's loader read {os.path.basename(path)} with {overrides}")

    monkeypatch.setitem(CONFIG_LOADERS, tuple(argv), ConfigLoader("config", refuse))
    assert main([*argv, "cfg.yaml", "--set", "k=1"]) == 2  # the command itself
    assert "the table's loader read cfg.yaml with ['k=1']" in capsys.readouterr().err
    pipeline = write(tmp_path, [{"name": "a", "run": " ".join([*argv, "cfg.yaml"]), "set": {"k": 1}}])
    assert main(["validate", pipeline]) == 2  # and validate of a pipeline naming it
    assert "pipeline step 'a'" in (err := capsys.readouterr().err) and "the table's loader read cfg.yaml" in err


def test_clean_lists_moved_aside_step_folders_and_unused_phase_folders_then_removes_them_on_yes(
        tmp_path, calls, monkeypatch, capsys):
    from jobs.cli import main
    from jobs.errors import EXIT_FAILED

    steps = [{"name": "a", "run": "eval mc-tasks --out ${a}"}, {"name": "corpus", "run": "report x"}]
    runner.run_pipeline(load_pipeline(write(tmp_path, steps)), address="x:1", say=lambda _: None)
    run = tmp_path / "runs" / "p"
    assert main(["clean", str(run)]) == 0 and "nothing to remove" in capsys.readouterr().out
    said = []
    steps[0]["run"] = "eval mc-tasks --out ${a} --debug"
    runner.run_pipeline(load_pipeline(write(tmp_path, steps)), address="x:1", say=said.append)
    (aside,) = runner.replaced_folders(str(run))
    assert [s for s in said if "old folder" in s] == [
        f"[a] settings or inputs changed: its old folder is kept as {aside} (`refinery clean {run}` removes it)"]
    # a build inside a step (as `build job.yaml --output ${corpus}` writes it): one phase folder in use, one not
    build = run / "corpus" / "job"
    for name in ("00-clean-0123456789", "00-clean-abcdefabcd"):
        (build / name).mkdir(parents=True)
        (build / name / "part.parquet").write_bytes(b"x" * 1000)
    (build / "stats.json").write_text(json.dumps({"job": "job", "phases": [{"dir": "00-clean-0123456789"}]}))
    assert main(["stats", str(run)]) == 2  # a pipeline's folder is not a build's: stats names the builds in it
    assert f"its builds: {build}. Fix: refinery stats {build}" in capsys.readouterr().err

    assert main(["clean", str(run)]) == EXIT_FAILED  # no terminal to ask, no --yes: nothing removed
    out, err = capsys.readouterr()
    assert f"  {aside}  (" in out and "moved aside" in out and " s ago)" in out
    assert f"  {build / '00-clean-abcdefabcd'}  (0.0 MB, phase folder)" in out and "0123456789" not in out
    assert "nothing removed" in err and "--yes" in err
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda prompt: "n")
    assert main(["clean", str(run)]) == 0 and "nothing removed" in capsys.readouterr().out
    assert os.path.isdir(aside)
    assert main(["clean", str(run), "--yes"]) == 0 and "removed 2 folder(s)" in capsys.readouterr().out
    assert runner.replaced_folders(str(run)) == [] and not (build / "00-clean-abcdefabcd").exists()
    assert (run / "a" / "made.txt").exists() and (build / "00-clean-0123456789").exists()

    # a step dropped from the pipeline file: its folder, state and log go; added back, it runs again
    runner.run_pipeline(load_pipeline(write(tmp_path, steps[1:])), address="x:1", say=lambda _: None)
    assert main(["clean", str(run), "--yes"]) == 0
    assert f"  {run / 'a'}  (0.0 MB, a step no longer in the pipeline file)" in capsys.readouterr().out
    assert not (run / "a").exists() and not (run / "steps" / "a.json").exists()
    assert runner.run_pipeline(load_pipeline(write(tmp_path, steps)), address="x:1", say=lambda _: None) == {
        "a": "ran", "corpus": "skipped"}


def test_a_done_step_whose_folder_was_removed_runs_again(tmp_path, calls):
    import shutil

    path = write(tmp_path, STEPS)
    runner.run_pipeline(load_pipeline(path), address="x:1", say=lambda _: None)
    shutil.rmtree(tmp_path / "runs" / "p" / "c")
    said = []
    outcome = runner.run_pipeline(load_pipeline(path), address="x:1", say=said.append)
    # c's fingerprint is the same (same commands and inputs), so d, which depends on it, stays done
    assert outcome == {"a": "skipped", "b": "skipped", "c": "ran", "d": "skipped"}
    assert f"[c] its folder {tmp_path / 'runs' / 'p' / 'c'} is gone: running it again" in said


@pytest.mark.parametrize("make, argv, message", [
    (lambda d: None, ["run", "{d}/missing.yaml"], "no such pipeline file"),
    (lambda d: None, ["run", "{d}"], "is a folder; `refinery run` takes a pipeline file"),
    (lambda d: (d / "job.yaml").write_text("name: j\nphases: []\n"), ["run", "{d}/job.yaml"],
     "is a job file (it has `phases:`), not a pipeline file (`steps:`). Fix: refinery build"),
    (lambda d: (d / "p.yaml").write_text("name: p\nsteps: [{name: a, run: plan}]\n"),
     ["run", "{d}/p.yaml", "--until", "b"], "--until b: no such step. Steps: a"),
    (lambda d: (d / "p.yaml").write_text("name: p\nbase_dir: /x\nsteps: [{name: a, run: plan}]\n"),
     ["run", "{d}/p.yaml"], "pipeline.base_dir: set by refinery"),
])
def test_run_refuses_what_is_not_a_pipeline_file_with_the_fix(tmp_path, capsys, make, argv, message):
    from jobs.cli import main

    make(tmp_path)
    assert main([a.format(d=tmp_path) for a in argv]) == 2
    assert message in capsys.readouterr().err


def test_ctrl_c_outside_a_command_also_leaves_the_step_interrupted(tmp_path, calls, monkeypatch):
    # e.g. while the shared Ray cluster starts, or between two commands of a step
    def press_ctrl_c():
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "_start_local_ray", lambda say: press_ctrl_c())
    path = write(tmp_path, [{"name": "a", "run": "train pretrain x.yaml"}])
    with pytest.raises(runner.StepInterrupted, match="interrupted in step 'a' .SIGINT.; run the same command"):
        runner.run_pipeline(load_pipeline(path), address=None, say=lambda _: None)
    assert json.load(open(tmp_path / "runs" / "p" / "steps" / "a.json"))["status"] == "interrupted"
    assert calls["argv"] == []


def test_run_checks_every_step_before_the_first_one_runs(tmp_path, calls, capsys):
    from jobs.cli import main

    steps = [{"name": "a", "run": "eval mc-tasks --out ${a}"}, {"name": "b", "run": "eval mc-tasks --outt ${b}"}]
    assert main(["run", write(tmp_path, steps)]) == 2
    assert "pipeline step 'b': refinery eval mc-tasks" in capsys.readouterr().err and calls["argv"] == []
    # a config an earlier step writes does not exist yet: it is left to the command that reads it
    steps[1] = {"name": "b", "run": "train pretrain ${a}/pretrain.yaml"}
    assert main(["run", write(tmp_path, steps), "--until", "a"]) == 0, capsys.readouterr().err
    assert calls["argv"] == [["eval", "mc-tasks", "--out", str(tmp_path / "runs" / "p" / "a")]]


def test_a_second_run_or_a_clean_of_the_same_pipeline_is_refused_while_the_first_runs(tmp_path, calls, capsys):
    import fcntl

    from jobs.cli import main

    path = write(tmp_path, STEPS)
    runner.run_pipeline(load_pipeline(path), address="x:1", say=lambda _: None)  # leaves no lock behind
    lock = tmp_path / "runs" / "p" / "steps" / runner.LOCK_FILE
    with open(lock, "a+") as held:  # what the first `refinery run` holds while it runs
        fcntl.flock(held.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write("pid 4242 since then\n")
        held.flush()
        assert main(["run", path]) == 1
        assert "is in use by a `refinery run` (pid 4242 since then)" in capsys.readouterr().err
        # nor may clean remove folders while steps run (a build writes a phase folder its stats do not name yet)
        assert main(["clean", str(tmp_path / "runs" / "p"), "--yes"]) == 1
        assert "and clean again" in capsys.readouterr().err
    assert runner.run_pipeline(load_pipeline(path), address="x:1", say=lambda _: None) == dict.fromkeys("abcd",
                                                                                                     "skipped")


def test_a_failed_step_says_what_its_exit_status_means():
    failed = str(runner.StepFailed("a", ["build", "j.yaml"], 3, "x.log"))
    assert "failed (exit 3: done, but shards were quarantined): refinery build j.yaml; its output is in x.log" in failed


def test_the_log_footer_gets_its_own_line_after_output_without_a_newline(tmp_path, capsys):
    log = tmp_path / "x.log"
    code = "import sys; sys.stdout.write('step 3/3\\r'); sys.stderr.write('no newline'); sys.exit(4)"
    assert run_logged([sys.executable, "-c", code], log_path=str(log), header="h").code == 4
    header, rest = log.read_bytes().decode().split("\n", 1)
    body, footer = rest.rsplit("=== ", 1)
    assert header.endswith(" h") and footer.split()[1:3] == ["exit", "4"]
    assert body in ("no newlinestep 3/3\r\n", "step 3/3\rno newline\n")  # either pipe may come first
    assert capsys.readouterr() == ("step 3/3\r", "no newline")


def test_ctrl_c_as_a_step_finished_keeps_the_step_done_and_stops_before_the_next(tmp_path, calls):
    path = write(tmp_path, STEPS)
    calls["interrupt_at_exit"] = "mc-tasks"  # b's first command, which exits 0 with a Ctrl-C noted
    with pytest.raises(runner.StepInterrupted, match="interrupted in step 'b'"):
        runner.run_pipeline(load_pipeline(path), address="x:1", say=lambda _: None)
    assert json.load(open(tmp_path / "runs" / "p" / "steps" / "b.json"))["status"] == "interrupted"  # report: not run
    calls["interrupt_at_exit"] = "report"  # b's last command
    with pytest.raises(runner.StepInterrupted, match="interrupted after step 'b' had finished"):
        runner.run_pipeline(load_pipeline(path), address="x:1", say=lambda _: None)
    assert json.load(open(tmp_path / "runs" / "p" / "steps" / "b.json"))["status"] == "done"
    assert not (tmp_path / "runs" / "p" / "steps" / "c.json").exists()


def test_a_process_the_command_leaves_running_does_not_hold_the_runner(tmp_path, capsys):
    # The grandchild inherits the command's stdout and sleeps: the runner returns when the command exits.
    code = ("import subprocess, sys; p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)']); "
            "print('grandchild', p.pid, flush=True)")
    result = run_logged([sys.executable, "-c", code], log_path=str(tmp_path / "x.log"), header="h")
    pid = int(re.search(r"grandchild (\d+)", (tmp_path / "x.log").read_text()).group(1))
    try:
        os.kill(pid, 0)  # still alive: the runner did not wait for it
    finally:
        os.kill(pid, signal.SIGKILL)
    assert result.code == 0


def test_a_closed_terminal_stream_does_not_stop_the_log(tmp_path, monkeypatch):
    class ClosedPipe:  # `refinery run | head` after head has exited
        def write(self, _):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            pass

    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    code = "print('line\\n' * 20000, end='')"
    result = run_logged([sys.executable, "-c", code], log_path=str(tmp_path / "x.log"), header="h")
    assert result.code == 0 and (tmp_path / "x.log").read_text().count("line\n") == 20000


def test_validate_says_what_run_would_do_with_each_step(tmp_path, calls, capsys):
    from jobs.cli import main

    def statuses(path):
        assert main(["validate", path]) == 0, capsys.readouterr().err
        out = capsys.readouterr().out.split("what `refinery run` would do now:\n")[1]
        return dict(line.strip().split(None, 1) for line in out.splitlines())

    path = write(tmp_path, STEPS)
    after_a = dict.fromkeys("bcd", "decided once a has run")
    assert statuses(path) == {"a": "not run yet", **after_a}
    assert not (tmp_path / "runs").exists()  # validate writes nothing
    calls["fail"] = "mc-tasks"
    with pytest.raises(runner.StepFailed):
        runner.run_pipeline(load_pipeline(path), address="x:1", say=lambda _: None)
    assert statuses(path) == {"a": "done: skipped", "b": "interrupted: resumes in its folder",
                              "c": "not run yet", "d": "decided once b has run"}
    calls["fail"] = None
    runner.run_pipeline(load_pipeline(path), address="x:1", say=lambda _: None)
    assert set(statuses(path).values()) == {"done: skipped"}
    changed = [dict(STEPS[0], run="tokenizer train --run y --out ${a}")] + STEPS[1:]
    assert statuses(write(tmp_path, changed)) == {
        "a": "changed since it ran: runs afresh (its old folder is moved aside)", **after_a}
