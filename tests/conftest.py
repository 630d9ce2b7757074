"""Shared fixtures. `ray_local` starts one embedded Ray for the whole test session (start-up costs
seconds on two cores); tests never shut it down, the process exit does."""

import os
import shutil

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO_CORPUS = os.path.join(REPO, "jobs", "demo_corpus")


@pytest.fixture(scope="session")
def ray_local():
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False,
                 ignore_reinit_error=True)
    return ray


@pytest.fixture
def demo_copy(tmp_path):
    """A private copy of the demo corpus (tests may add broken files to it)."""
    dest = tmp_path / "corpus"
    shutil.copytree(DEMO_CORPUS, dest)
    (dest / "README.md").unlink()
    return dest
