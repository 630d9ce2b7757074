"""Running a pipeline: each step's commands in a child process, skipped when nothing it depends on changed.

A step's fingerprint is the sha256 of what decides its output: its command lines after ${...} are
filled in, the bytes of the files they name next to the pipeline file (configs, job files), for a
`build` the list of its input files (path, size, modification time), and the fingerprints of the
steps it refers to. `<run>/steps/<step>.json` records it: `running` when the step starts, `done` when
its last command has exited 0, `interrupted` after Ctrl-C. Every command's output also goes to
`<run>/steps/<step>.log`, appended across attempts (jobs/pipeline/child.py). Then:

- done with the same fingerprint: skipped (unless its folder was removed: then it runs again);
- running or interrupted (killed, failed or stopped earlier) with the same fingerprint: run again in the
  same folder; every command resumes from what it wrote (a build from its ledger, training from
  `checkpoints/latest`);
- another fingerprint: the old folder, unless empty, is moved aside to `<step>.replaced-<old fingerprint>` (nothing
  is deleted; `refinery clean RUN_DIR` lists and removes them) and the step starts afresh; steps after
  it that refer to it follow, since their fingerprints contain its. A build keeps its folder: its
  phases are keyed by their settings already.

A step's commands are expanded once per run (placeholders filled in, ${sha256:...} files hashed): the
same argv is fingerprinted, recorded and run.

The steps share one Ray cluster: `--address`, or one embedded local cluster started here, which every
command that takes `--address` joins (starting Ray once instead of once per command).
"""

from __future__ import annotations

import contextlib
import datetime
import glob
import hashlib
import json
import os
import re
import shlex
import signal
import sys
import threading
from typing import Callable

from jobs.errors import EXIT_INVALID, EXIT_QUARANTINED, EXIT_UNBALANCED
from jobs.pipeline.child import run_logged
from jobs.pipeline.spec import PLACEHOLDER, RUN_FOLDER, STATE_DIR, PipelineSpec, StepSpec, dependencies
from schemas.atomic_files import move_aside, write_json_atomic
from schemas.digests import file_sha256

PIPELINE_FILE = "pipeline.json"
LOCK_FILE = ".lock"
REPLACED = re.compile(r"^[a-z][a-z0-9-]*\.replaced-[0-9a-f]{12}(-[0-9]+)?$")
"""`<step>.replaced-<old fingerprint>[-N]`: a step folder moved aside when its fingerprint changed."""
TAKES_ADDRESS = (("build",), ("export", "megatron"), ("mix", "doremi"), ("mix", "compare"), ("train",))
"""Commands with an --address option: they join the pipeline's Ray cluster."""


EXIT_MEANINGS = {EXIT_INVALID: "invalid input", EXIT_QUARANTINED: "done, but shards were quarantined",
                 EXIT_UNBALANCED: "the books did not balance"}
"""What a refinery command's exit status says (jobs/errors.py), for the line that reports a failed step."""


class StepFailed(RuntimeError):
    def __init__(self, step: str, command: list[str], code: int, log: str):
        meaning = f": {EXIT_MEANINGS[code]}" if code in EXIT_MEANINGS else ""
        super().__init__(f"step {step!r} failed (exit {code}{meaning}): refinery {shlex.join(command)}; its output "
                         f"is in {log}")
        self.step, self.command, self.code, self.log = step, command, code, log


class StepInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM / SIGHUP) while a step ran: the step's state says `interrupted`. A KeyboardInterrupt
    still, so that code which lets Ctrl-C through keeps doing so."""

    def __init__(self, step: str, signum: int, log: str, finished: bool = False):
        output = f"; its output is in {log}" if os.path.exists(log) else ""
        where = f"after step {step!r} had finished" if finished else f"in step {step!r}"
        super().__init__(f"interrupted {where} ({signal.Signals(signum).name}){output}; "
                         f"run the same command again to resume")
        self.step, self.signum, self.log = step, signum, log


STAND_IN_SHA256 = "0" * 64
"""What ${sha256:...} becomes in a preview (`refinery validate`): the file does not exist yet."""


def expand(text: str, spec: PipelineSpec, preview: bool = False) -> str:
    """Fill in ${step...} (a step's folder) and ${sha256:step/file} (that file's sha256)."""
    def one(m) -> str:
        kind, ref, rest = m.groups()
        path = (spec.run_dir if ref == RUN_FOLDER else spec.step_dir(ref)) + rest
        if kind == "sha256" and preview:
            return STAND_IN_SHA256
        if kind == "sha256":
            if not os.path.isfile(path):
                raise FileNotFoundError(f"${{sha256:{ref}{rest}}}: {path} does not exist (did step {ref!r} "
                                        f"write it?)")
            return file_sha256(path)
        return path
    return PLACEHOLDER.sub(one, text)


def step_commands(step: StepSpec, spec: PipelineSpec, preview: bool = False) -> list[list[str]]:
    """The argv (after `refinery`) of each command of the step, placeholders filled in, files next to the
    pipeline file made absolute, `set:` appended as --set flags."""
    out = []
    for line in step.run:
        argv = [_local_file(expand(tok, spec, preview), spec) for tok in shlex.split(line)]
        if step.set:
            for key, value in step.set.items():
                text = (_local_file(expand(value, spec, preview), spec) if isinstance(value, str)
                        else _yaml_flow(_expand_deep(value, spec, preview)))
                argv += ["--set", f"{key}={text}"]
        out.append(argv)
    return out


def _expand_deep(value, spec: PipelineSpec, preview: bool):
    if isinstance(value, str):
        return expand(value, spec, preview)
    if isinstance(value, dict):
        return {k: _expand_deep(v, spec, preview) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_deep(v, spec, preview) for v in value]
    return value


def _yaml_flow(value) -> str:
    """A --set value as one line of YAML (flow style; a scalar as JSON, which YAML reads the same)."""
    import yaml

    if not isinstance(value, (dict, list)):
        return json.dumps(value)
    return yaml.safe_dump(value, default_flow_style=True, width=1 << 20).strip()


def _local_file(token: str, spec: PipelineSpec) -> str:
    if token.startswith("-") or os.path.isabs(token):
        return token
    candidate = os.path.join(spec.base_dir, token)
    return candidate if os.path.isfile(candidate) else token


def fingerprint(step: StepSpec, spec: PipelineSpec, commands: list[list[str]], upstream: dict[str, str]) -> str:
    """Of the step's expanded `commands` (step_commands), the files they name and its upstream fingerprints."""
    files = {}
    for argv in commands:
        for tok in argv:
            tok = tok.partition("=")[2] if "=" in tok and not tok.startswith("-") else tok  # a --set value
            if os.path.isabs(tok) and os.path.isfile(tok) and tok.startswith(spec.base_dir + os.sep):
                files[os.path.relpath(tok, spec.base_dir)] = file_sha256(tok)
    # Folder names are written relative to the run folder, so a moved run keeps its fingerprints.
    relative = [[tok.replace(spec.run_dir, "<run>").replace(spec.base_dir, "<pipeline>") for tok in argv]
                for argv in commands]
    doc = {"commands": relative, "files": files, "upstream": {d: upstream[d] for d in dependencies(step, spec)},
           "inputs": [_build_inputs(argv) for argv in commands if argv[:1] == ["build"]]}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def _build_inputs(argv: list[str]) -> list:
    """(path, size, mtime) of every input file of a build's job: a changed or added raw file re-runs it."""
    from corpus.runtime.spec import load_job

    sets = [argv[i + 1] for i, tok in enumerate(argv[:-1]) if tok == "--set"]
    job = load_job(argv[1], sets)
    rows = []
    for inp in job.inputs:
        for pattern in inp.paths:
            pattern = pattern if os.path.isabs(pattern) or "://" in pattern else os.path.join(job.base_dir, pattern)
            for path in sorted(glob.glob(pattern)):
                walk = [path] if os.path.isfile(path) else sorted(
                    os.path.join(d, f) for d, _, fs in os.walk(path) for f in fs)
                for p in walk:
                    st = os.stat(p)
                    rows.append([os.path.relpath(p, job.base_dir), st.st_size, st.st_mtime_ns])
    return rows


def read_state(spec: PipelineSpec, name: str) -> dict | None:
    try:
        with open(state_path(spec.run_dir, name), encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def state_path(run_dir: str, step: str) -> str:
    return os.path.join(run_dir, STATE_DIR, f"{step}.json")


def log_path(run_dir: str, step: str) -> str:
    return os.path.join(run_dir, STATE_DIR, f"{step}.log")


def _write_state(spec: PipelineSpec, name: str, state: dict) -> None:
    write_json_atomic(state_path(spec.run_dir, name), state)


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def run_pipeline(spec: PipelineSpec, *, address: str | None, until: str | None = None,
                 say: Callable[[str], None] = print, env: dict | None = None) -> dict[str, str]:
    """Run the steps in order (up to and including `until`); {step: "skipped" | "ran"}. Raises StepFailed,
    StepInterrupted, PipelineBusy (another process runs this pipeline's run folder)."""
    if until is not None and until not in {s.name for s in spec.steps}:
        raise ValueError(f"until={until!r}: no such step")
    os.makedirs(os.path.join(spec.run_dir, STATE_DIR), exist_ok=True)
    with only_runner(spec.run_dir):
        return _run_steps(spec, address=address, until=until, say=say, env=env)


class PipelineBusy(RuntimeError):
    pass


@contextlib.contextmanager
def only_runner(run_dir: str, doing: str = "run again"):
    """Hold `<run>/steps/.lock` while the steps run: two `refinery run`s of one pipeline (a second terminal, a
    second `make demo`) would run the same step into the same folder at once, and `refinery clean` would
    remove folders a running build is writing. The lock goes with the process, however it ends."""
    import fcntl

    path = os.path.join(run_dir, STATE_DIR, LOCK_FILE)
    with open(path, "a+", encoding="utf-8") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            raise PipelineBusy(f"{run_dir} is in use by a `refinery run` ({holder}). Fix: wait for it to finish, "
                               f"or stop it (Ctrl-C in its terminal), and {doing}") from None
        f.truncate(0)
        f.write(f"pid {os.getpid()} since {_now()}\n")
        f.flush()
        try:
            yield
        finally:
            f.truncate(0)


def _run_steps(spec: PipelineSpec, *, address: str | None, until: str | None, say: Callable[[str], None],
               env: dict | None) -> dict[str, str]:
    # What the report and a reader of the folder need: the steps in order and where the file was.
    write_json_atomic(os.path.join(spec.run_dir, PIPELINE_FILE),
                      {"name": spec.name, "steps": [s.name for s in spec.steps], "base_dir": spec.base_dir})
    prints: dict[str, str] = {}
    outcome: dict[str, str] = {}
    cluster: list[str] = []  # the shared cluster's address, once started

    def shared_address() -> str:
        if address:
            return address
        if not cluster:
            cluster.append(_start_local_ray(say))
        return cluster[0]

    for step in spec.steps:
        # Once: ${sha256:...} hashes files that may be large, and what is fingerprinted is what runs.
        commands = step_commands(step, spec)
        fp = fingerprint(step, spec, commands, prints)
        prints[step.name] = fp
        state = read_state(spec, step.name)
        folder = spec.step_dir(step.name)
        done = state and state.get("fingerprint") == fp and state.get("status") == "done"
        if done and os.path.isdir(folder):
            say(f"[{step.name}] unchanged: skipped ({folder})")
            outcome[step.name] = "skipped"
        else:
            if done:  # every step gets its folder when it starts: someone removed it to have the step redone
                say(f"[{step.name}] its folder {folder} is gone: running it again")
            if state and state.get("fingerprint") != fp and os.path.isdir(folder) and not os.listdir(folder):
                os.rmdir(folder)  # nothing to keep (a step that writes elsewhere, e.g. the report)
            elif state and state.get("fingerprint") != fp and os.path.exists(folder) and not _is_build(step):
                aside = move_aside(folder, replaced_name(folder, state["fingerprint"]))
                say(f"[{step.name}] settings or inputs changed: its old folder is kept as {aside} "
                    f"(`refinery clean {spec.run_dir}` removes it)")
            elif state and state.get("status") in ("running", "interrupted") and state.get("fingerprint") == fp:
                # `running` with an exit code: a command failed; without one: killed (SIGKILL, a crash, power)
                failed = state["status"] == "running" and "exit_code" in state
                say(f"[{step.name}] " + (f"failed last time (exit {state['exit_code']}): resuming" if failed
                                         else "was interrupted: resuming"))
            attempt = state.get("attempt", 1) + 1 if state and state.get("fingerprint") == fp else 1
            _run_step(step, spec, commands, fp, attempt, shared_address, say, env)
            outcome[step.name] = "ran"
        if until and step.name == until:
            break
    return outcome


def step_status(spec: PipelineSpec) -> dict[str, str]:
    """What `refinery run` would do with each step now, by the same rules, without running or writing anything
    (`refinery validate PIPELINE.yaml` prints it). A step that depends on one that will run is decided only
    then: that step's output (a ${sha256:...}) or fingerprint may change."""
    skipped: dict[str, str] = {}  # fingerprints of the steps that would be skipped
    out: dict[str, str] = {}
    for step in spec.steps:
        waiting = [d for d in dependencies(step, spec) if d not in skipped]
        if waiting:
            out[step.name] = f"decided once {waiting[0]} has run"
            continue
        fp = fingerprint(step, spec, step_commands(step, spec), skipped)
        state = read_state(spec, step.name) or {}
        same = state.get("fingerprint") == fp
        if not state:
            out[step.name] = "not run yet"
        elif same and state.get("status") == "done" and os.path.isdir(spec.step_dir(step.name)):
            out[step.name] = "done: skipped"
            skipped[step.name] = fp
        elif same and state.get("status") == "done":
            out[step.name] = "done, but its folder is gone: runs again"
        elif same:
            out[step.name] = "interrupted: resumes in its folder"
        else:
            out[step.name] = "changed since it ran: runs afresh" + (
                "" if _is_build(step) or not os.path.exists(spec.step_dir(step.name))
                else " (its old folder is moved aside)")
    return out


def replaced_name(folder: str, old_fingerprint: str) -> str:
    return f"{folder}.replaced-{old_fingerprint[:12]}"


def replaced_folders(run_dir: str) -> list[str]:
    """The step folders moved aside in a pipeline's run folder (`refinery clean` lists them)."""
    if not os.path.isdir(run_dir):
        return []
    return sorted(os.path.join(run_dir, n) for n in os.listdir(run_dir)
                  if REPLACED.match(n) and os.path.isdir(os.path.join(run_dir, n)))


def _is_build(step: StepSpec) -> bool:
    return all(shlex.split(c)[:1] == ["build"] for c in step.run)


def _run_step(step: StepSpec, spec: PipelineSpec, commands: list[list[str]], fp: str, attempt: int,
              shared_address: Callable[[], str], say: Callable[[str], None], env: dict | None) -> None:
    os.makedirs(spec.step_dir(step.name), exist_ok=True)
    log = log_path(spec.run_dir, step.name)
    state = {"step": step.name, "fingerprint": fp, "status": "running", "started": _now(), "attempt": attempt,
             "commands": [["refinery", *argv] for argv in commands], "log": os.path.relpath(log, spec.run_dir)}
    _write_state(spec, step.name, state)
    seconds = 0.0
    try:
        for i, argv in enumerate(commands, 1):
            child_env = env
            if any(tuple(argv[:len(prefix)]) == prefix for prefix in TAKES_ADDRESS) and "--address" not in argv:
                argv = [*argv, "--address", shared_address()]
                # Also for what Ray Train starts without an address: with two clusters on one machine (another
                # user's), "connect to the local one" is ambiguous.
                child_env = {**(env if env is not None else os.environ), "RAY_ADDRESS": argv[-1]}
            say(f"[{step.name}] refinery {shlex.join(argv)}")
            result = run_logged([sys.executable, "-m", "jobs.cli", *argv], log_path=log, env=child_env,
                                header=f"step {step.name}, attempt {attempt}, command {i}/{len(commands)}: "
                                       f"refinery {shlex.join(argv)}")
            seconds += result.seconds
            # A Ctrl-C that came as the command was exiting can leave it with exit 0 and its work done: then
            # only what comes after it is stopped.
            if result.signal is not None and (result.code != 0 or i < len(commands)):
                state.update(status="interrupted", interrupted=_now(), exit_code=result.code)
                _write_state(spec, step.name, state)
                raise StepInterrupted(step.name, result.signal, log)
            if result.code != 0:
                state.update(status="running", failed=_now(), exit_code=result.code)
                _write_state(spec, step.name, state)
                raise StepFailed(step.name, argv, result.code, log)
    except StepInterrupted:
        raise
    except KeyboardInterrupt:
        # Ctrl-C between two commands, or while the shared cluster started: the state must not say `running`
        # as if a process were still at work.
        state.update(status="interrupted", interrupted=_now())
        _write_state(spec, step.name, state)
        raise StepInterrupted(step.name, signal.SIGINT, log) from None
    state.update(status="done", finished=_now(), seconds=round(seconds, 1))
    _write_state(spec, step.name, state)
    say(f"[{step.name}] done in {state['seconds']:.0f} s")
    if result.signal is not None:
        raise StepInterrupted(step.name, result.signal, log, finished=True)


def _start_local_ray(say: Callable[[str], None]) -> str:
    import ray

    from schemas.local_ray import start_ray

    say("starting the embedded local Ray cluster the steps share")
    # Ctrl-C in the middle of ray.init leaves it half set up, and its exit handler then crashed this process
    # (SIGSEGV, seen on Ray 2.60): a press during the start is acted on once the cluster is up.
    pressed: list[int] = []
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, lambda signum, _frame: pressed.append(signum)) if main else None
    try:
        # Enough logical CPUs for a build's actors or a training layout plus Ray Train's controller.
        start_ray(None, num_cpus=max(os.cpu_count() or 1, 4))
    finally:
        if main:
            signal.signal(signal.SIGINT, previous)
    if pressed:
        raise KeyboardInterrupt
    return ray.get_runtime_context().gcs_address
