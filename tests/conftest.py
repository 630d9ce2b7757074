"""Shared fixtures. `ray_local` makes sure an embedded Ray runs; the first test that needs it starts it
(seconds on two cores) and later tests reuse it. Tests never shut it down (except the multi-node tests,
which need a cluster of their own); the process exit does."""

import os
import shutil
import signal
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # for run_helpers

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO_CORPUS = os.path.join(REPO, "jobs", "demo_corpus")


@pytest.fixture(autouse=True, scope="session")
def ctrl_c_reaches_the_tests():
    """A shell's background job (`make test &`) and some CI runners start with SIGINT ignored, which
    Python and every child inherit: the Ctrl-C tests would see nothing. They need Python's default."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield


@pytest.fixture
def ray_local():
    import ray

    if not ray.is_initialized():
        from schemas.local_ray import start_ray

        # as the commands start it: token authentication, and a watchdog that ends it with a killed pytest
        start_ray(None, num_cpus=2, logging_level="ERROR", log_to_driver=False)
    return ray


@pytest.fixture
def demo_copy(tmp_path):
    """A private copy of the demo corpus (tests may add broken files to it)."""
    dest = tmp_path / "corpus"
    shutil.copytree(DEMO_CORPUS, dest)
    (dest / "README.md").unlink()
    return dest
