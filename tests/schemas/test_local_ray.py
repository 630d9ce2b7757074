"""The embedded Ray cluster refuses requests without its token (tests/jobs/test_driver_kill.py checks
that it does not outlive its driver).

The cluster is started in a driver subprocess (the tests' shared `ray_local` cluster must not be
reconfigured), with HOME in a temporary folder so that Ray writes a fresh token there.
"""

import json
import os
import signal
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

DRIVER = """
import json, sys, ray
from schemas.local_ray import start_ray
start_ray(None, num_cpus=1, logging_level="ERROR", log_to_driver=False)
node = ray.nodes()[0]
host = node["NodeManagerAddress"]
print(json.dumps({"gcs": ray.get_runtime_context().gcs_address, "host": host,
                  **{k: f"{host}:{v}" for k, v in node.items() if k.endswith("Port")}}), flush=True)
sys.stdin.read()  # until the test closes our stdin
"""


@pytest.fixture
def driver(tmp_path):
    """A driver process that started the embedded cluster; yields (process, its cluster's addresses)."""
    env = {**os.environ, "HOME": str(tmp_path), "PYTHONPATH": REPO,
           "RAY_AUTH_MODE": "disabled"}  # an operator's setting for other clusters must not open this one
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.Popen([sys.executable, "-c", DRIVER], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        line = proc.stdout.readline()
        assert line, f"the driver did not start its cluster: {proc.stderr.read()[-3000:]}"
        yield proc, json.loads(line)
    finally:
        if proc.poll() is None:
            proc.stdin.close()  # a normal exit: ray.shutdown at exit, then the watchdog
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def _call(address, method, token=None):
    """A raw gRPC call with an empty request; returns the status code."""
    import grpc

    metadata = [("authorization", f"Bearer {token}")] if token is not None else []
    with grpc.insecure_channel(address) as channel:
        try:
            channel.unary_unary(method)(b"", metadata=metadata, timeout=30)
            return grpc.StatusCode.OK
        except grpc.RpcError as exc:
            return exc.code()


def _http(url, token=None):
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, data=b"", headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_the_embedded_cluster_refuses_clients_without_its_token(driver, tmp_path):
    import grpc

    _, cluster = driver
    # The servers that run code or move objects; an empty request is valid for the first two.
    grpc_ports = ((cluster["gcs"], "/ray.rpc.NodeInfoGcsService/GetAllNodeInfo"),
                  (cluster["NodeManagerPort"], "/ray.rpc.NodeManagerService/GetNodeStats"),
                  (cluster["ObjectManagerPort"], "/ray.rpc.ObjectManagerService/Pull"),
                  (cluster["MetricsAgentPort"], "/ray.rpc.ReporterService/HealthCheck"))
    runtime_env_agent = f"http://{cluster['RuntimeEnvAgentPort']}/get_or_create_runtime_env"
    for address, method in grpc_ports:
        assert _call(address, method) == grpc.StatusCode.UNAUTHENTICATED, method
        assert _call(address, method, token="not-the-token") == grpc.StatusCode.UNAUTHENTICATED, method
    assert _http(runtime_env_agent) == 401 and _http(runtime_env_agent, token="not-the-token") == 403
    token = (tmp_path / ".ray" / "auth_token").read_text().strip()  # Ray wrote it for this cluster
    for address, method in grpc_ports[:2]:
        assert _call(address, method, token=token) == grpc.StatusCode.OK, method
    for address, method in grpc_ports[2:]:
        assert _call(address, method, token=token) != grpc.StatusCode.UNAUTHENTICATED, method
    assert _http(runtime_env_agent, token=token) not in (401, 403)
