"""A driver killed in the middle of a job leaves no process of its embedded Ray cluster behind, and is
resumed from the ledger by running the same command again."""

import os
import re
import signal
import subprocess
import sys
import time

import pytest
import yaml

from corpus.runtime import ledger
from corpus.runtime.executor import run_job
from corpus.runtime.spec import load_job
from run_helpers import SELECT, tree
from schemas.ray_watchdog import descendants, processes

pytestmark = pytest.mark.slow
BIN = os.path.dirname(sys.executable)


def test_driver_killed_mid_job_then_rerun_equals_uninterrupted(ray_local, demo_copy, tmp_path):
    spec = {"name": "dk", "inputs": [{"source": "jsonl", "paths": ["corpus/*.jsonl*"], "domain": "books"}],
            "runtime": {"workers": 1, "batch_rows": 5},
            "phases": [{"name": "clean", "stages": [
                "normalize", {"chaos": {"shard_source_contains": "", "after_batches": 0, "action": "sleep",
                                        "once": False, "sleep_s": 0.5}}, "length", SELECT]}]}
    job_file = tmp_path / "dk.yaml"
    job_file.write_text(yaml.safe_dump(spec))
    baseline = run_job(load_job(str(job_file), output=str(tmp_path / "base")), progress=False)
    pdir = str(tmp_path / "killed" / "dk" / os.path.basename(baseline.phases[0].phase_dir))
    cmd = [os.path.join(BIN, "refinery"), "build", str(job_file), "--output", str(tmp_path / "killed"), "--no-progress"]
    driver = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 240
    while len(ledger.committed(pdir)) < 2:
        assert driver.poll() is None, "the driver finished before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.2)
    table = processes()
    cluster = {pid: table[pid][1] for pid in descendants({driver.pid}, table)}  # pid -> start time
    titles = {table[pid][2].strip() for pid in cluster}
    assert {"ray::DashboardAgent", "ray::RuntimeEnvAgent"} <= titles and any("ray_watchdog" in t for t in titles)
    os.kill(driver.pid, signal.SIGKILL)  # the driver alone, as the OOM killer or `kill -9 PID` does
    driver.wait()
    # Nothing it started may outlive it (Ray's DashboardAgent and RuntimeEnvAgent did, for a minute or more).
    deadline = time.monotonic() + 5
    while (left := _alive(cluster)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not left, f"still running 5 s after the driver's SIGKILL: {left}"
    done_before = set(ledger.committed(pdir))
    assert 2 <= len(done_before) < 6
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    # A worker that was mid-shard may still commit it while the driver dies: that commit is valid.
    already = int(re.search(r"\((\d+) already done\)", rerun.stdout).group(1))
    assert len(done_before) <= already < 6
    assert tree(pdir) == tree(baseline.phases[0].phase_dir)


def _alive(listed):
    """{pid: command line} of the listed processes still running (same pid and start time)."""
    table = processes()
    return {pid: table[pid][2][:80] for pid, started in listed.items() if pid in table and table[pid][1] == started}
