"""The chaos stage learns its shard through the typed `start_shard(shard)` hook and arms on the input
path or on an upstream part file, as the space-joined string it used to get allowed."""

import pyarrow as pa
import pytest

from corpus.sources.base import Shard
from corpus.stages.base import BuildContext, StartsShards
from corpus.stages.chaos import ChaosConfig, ChaosScorer


def scorer(tmp_path, needle):
    ctx = BuildContext(phase="p", stage="chaos", column_origin={}, work_dir=str(tmp_path))
    return ChaosScorer(ChaosConfig(shard_source_contains=needle, action="raise", after_batches=0), ctx)


def test_arms_on_the_input_path_or_an_upstream_part(tmp_path):
    batch = pa.table({"id": ["a"]})
    first = Shard(key="00001", source="jsonl", path="in/shard-bad.jsonl", relpath="x", domain="c4", size=1)
    later = Shard.of_phase("run/00-clean", "00001", ("run/00-clean/data/domain=c4/part-00001.parquet",))
    s = scorer(tmp_path, "shard-bad")
    assert isinstance(s, StartsShards)
    s.start_shard(later)
    assert s(batch) is batch  # not this shard
    s.start_shard(first)
    with pytest.raises(RuntimeError, match="injected failure"):
        s(batch)
    p = scorer(tmp_path / "other", "part-00001")
    (tmp_path / "other").mkdir()
    p.start_shard(later)
    with pytest.raises(RuntimeError):
        p(batch)
