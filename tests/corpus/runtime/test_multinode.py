"""Several Ray nodes on one machine (ray.cluster_utils.Cluster): the job spreads over them, and a node
killed in the middle of a phase costs nothing: the shards it ran are retried elsewhere and the output
equals an uninterrupted run's."""

import os
import threading
import time

import pytest

from corpus.runtime import ledger
from corpus.runtime.executor import run_job
from corpus.runtime.spec import parse_job

from run_helpers import SELECT, tree

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster():
    import ray
    from ray.cluster_utils import Cluster

    if ray.is_initialized():
        ray.shutdown()
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    workers = [c.add_node(num_cpus=1) for _ in range(2)]
    ray.init(address=c.address, logging_level="ERROR", log_to_driver=False)
    c.wait_for_nodes()
    yield c, workers
    ray.shutdown()
    c.shutdown()


def slow_job(corpus, out, sleep_s=0.0):
    stages = ["normalize", {"chaos": {"shard_source_contains": "", "after_batches": 0, "action": "sleep",
                                      "once": False, "sleep_s": sleep_s}}, "length", SELECT]
    spec = {"name": "mn", "output": str(out),
            "inputs": [{"source": "jsonl", "paths": ["corpus/*.jsonl*"], "domain": "books"}],
            "runtime": {"workers": 2, "max_retries": 3, "batch_rows": 5},
            "phases": [{"name": "clean", "stages": stages}]}
    return parse_job(spec, base_dir=str(corpus.parent), output_override=True)


def test_job_spreads_over_nodes(cluster, demo_copy, tmp_path):
    result = run_job(slow_job(demo_copy, tmp_path / "out", sleep_s=0.2), progress=False)
    nodes = {e["node"] for e in ledger.committed(result.phases[0].phase_dir).values()}
    assert result.exit_code == 0 and len(nodes) == 2


def test_node_killed_mid_phase_loses_nothing(cluster, demo_copy, tmp_path):
    c, workers = cluster
    baseline = run_job(slow_job(demo_copy, tmp_path / "base", sleep_s=0.6), progress=False)
    spec = slow_job(demo_copy, tmp_path / "killed", sleep_s=0.6)
    outcome = {}
    runner = threading.Thread(target=lambda: outcome.update(result=run_job(spec, progress=False)))
    runner.start()
    pdir = os.path.join(str(tmp_path / "killed"), "mn", os.path.basename(baseline.phases[0].phase_dir))
    deadline = time.monotonic() + 120
    while not (os.path.isdir(os.path.join(pdir, "ledger")) and os.listdir(os.path.join(pdir, "ledger"))):
        assert time.monotonic() < deadline, "no shard committed in time"
        time.sleep(0.2)
    c.add_node(num_cpus=1)  # where the lost actor's replacement can go
    c.remove_node(workers[0])  # kills the node's raylet and its actors, mid-shard
    runner.join(timeout=300)
    result = outcome["result"]
    assert result.exit_code == 0
    assert result.phases[0].totals["rows_in"] == baseline.phases[0].totals["rows_in"] == 68
    assert tree(result.phases[0].phase_dir) == tree(baseline.phases[0].phase_dir)
    assert max(e["attempt"] for e in ledger.committed(result.phases[0].phase_dir).values()) >= 2
