"""`ray job submit` against a real Ray head started on loopback, exactly as the README shows for a cluster."""

import json
import os
import secrets
import signal
import socket
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

pytestmark = pytest.mark.slow

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@pytest.fixture
def ray_head(tmp_path):
    """A head node on loopback with token authentication; torn down with its process group."""
    token = tmp_path / "auth_token"
    token.write_text(secrets.token_hex(32))
    env = dict(os.environ, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token),
               PATH=BIN + os.pathsep + os.environ["PATH"])
    gcs, dash, agent, grpc, rtenv, metrics = free_ports(6)
    temp_dir = tempfile.mkdtemp(prefix="rh-", dir="/tmp")  # Ray's unix sockets need a short path
    head = subprocess.Popen(
        [os.path.join(BIN, "ray"), "start", "--head", "--block", "--node-ip-address", "127.0.0.1",
         "--port", str(gcs), "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dash),
         "--dashboard-agent-listen-port", str(agent), "--dashboard-agent-grpc-port", str(grpc),
         "--runtime-env-agent-port", str(rtenv), "--metrics-export-port", str(metrics),
         "--num-cpus", "2", "--disable-usage-stats", "--temp-dir", temp_dir],
        env=env, stdout=open(tmp_path / "head.log", "w"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield env, f"http://127.0.0.1:{dash}", dash, tmp_path / "head.log"
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
        shutil.rmtree(temp_dir, ignore_errors=True)


def test_demo_job_through_the_jobs_api(ray_head, tmp_path):
    env, api, dash_port, head_log = ray_head
    out = tmp_path / "out"
    cmd = [os.path.join(BIN, "ray"), "job", "submit", "--address", api, "--working-dir", REPO, "--",
           "refinery", "build", "jobs/smoke.yaml", "--address", "auto", "--output", str(out), "--no-progress"]
    deadline = time.monotonic() + 240
    while True:  # the head's dashboard and job agent take a while to come up on a busy machine
        done = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=600)
        starting = "No available agent" in done.stderr or "Failed to connect" in done.stderr
        if done.returncode == 0 or not starting or time.monotonic() > deadline:
            break
        time.sleep(5)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:] + head_log.read_text()[-3000:]
    assert "succeeded" in done.stdout + done.stderr
    stats = json.loads((out / "smoke" / "stats.json").read_text())
    assert stats["exit_code"] == 0 and stats["phases"][0]["rows_kept"] == 62
    # The dashboard (and with it the Jobs API) listens on loopback only.
    listening = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True).stdout
    binds = [line.split()[3] for line in listening.splitlines() if line.split()[3].endswith(f":{dash_port}")]
    assert binds and all(b.startswith("127.0.0.1:") for b in binds), binds
