"""Helpers shared by the runtime tests (importable because tests/conftest.py puts tests/ on sys.path)."""

import hashlib
import os

SELECT = {"select": {"rules": [{"column": "n_words_v1", "op": "<", "value": 50, "reason": "too_few_words"}]}}


def tree(phase_dir, kinds=("data", "rejected")):
    """relative path -> sha256 of every published file of these kinds under a phase folder."""
    out = {}
    for kind in kinds:
        for dirpath, _, files in os.walk(os.path.join(phase_dir, kind)):
            for f in files:
                p = os.path.join(dirpath, f)
                with open(p, "rb") as fh:
                    out[os.path.relpath(p, phase_dir)] = hashlib.sha256(fh.read()).hexdigest()
    return out


def ci() -> bool:
    """Whether the tests run in CI (.ci/run sets CI=1, as GitHub Actions and most CI services do)."""
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def sample_unavailable(exc: Exception):
    """A registry sample could not be fetched: skip the test on a laptop, fail it in CI, where a
    skip would let the tests that read real data pass without running."""
    import pytest

    if ci():
        pytest.fail(f"{exc} (CI is set: a sample that cannot be fetched is a failure)", pytrace=False)
    pytest.skip(str(exc))


def kill_when(cmd, *, ready, cwd, timeout=300.0, env=None):
    """Start `cmd` in a new session, poll `ready()` every 50 ms, then SIGKILL the whole process group (the
    command, and the embedded Ray and workers it started): a machine dying at that moment. Returns the
    command's exit status (negative: the signal); fails when `ready()` never held within `timeout` s."""
    import signal
    import subprocess
    import time

    import pytest

    proc = subprocess.Popen(cmd, cwd=cwd, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout
    try:
        while not ready():
            if proc.poll() is not None or time.time() > deadline:
                pytest.fail(f"{cmd}: the moment to kill never came (exit status {proc.poll()})")
            time.sleep(0.05)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
    return proc.returncode


def checkpoint_tensors(step_dir):
    """name -> tensor of every safetensors piece of one checkpoints/step-N folder (weights and AdamW moments)."""
    from safetensors.torch import load_file

    out = {}
    for f in sorted(os.listdir(step_dir)):
        if f.endswith(".safetensors"):
            out.update(load_file(os.path.join(step_dir, f)))
    return out


def assert_same_tensors(got, want):
    """Bit for bit: same names, shapes, dtypes and values."""
    import torch

    assert sorted(got) == sorted(want)
    different = [k for k in want if got[k].dtype != want[k].dtype or not torch.equal(got[k], want[k])]
    assert not different, f"{len(different)} of {len(want)} tensors differ, e.g. {different[:3]}"
