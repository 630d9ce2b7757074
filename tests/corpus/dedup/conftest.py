"""In-process cross-shard context (corpus.dedup.local): the distributed steps without Ray start-up."""

import os

import pytest

from corpus.dedup.local import LocalContext


@pytest.fixture
def local_ctx(tmp_path):
    os.makedirs(tmp_path / "phase", exist_ok=True)
    return LocalContext(phase_dir=str(tmp_path / "phase"))
