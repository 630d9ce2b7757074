from corpus.runtime.executor import list_source_shards
from corpus.runtime.spec import parse_job


def job(tmp_path, source, paths):
    return parse_job({"name": "l", "inputs": [{"source": source, "paths": paths, "domain": "github"}],
                      "phases": [{"name": "p", "stages": ["length"]}]}, base_dir=str(tmp_path))


def test_folder_sharded_sources_keep_each_matched_folder_whole(tmp_path):
    for repo in ("repo-a", "repo-b"):
        (tmp_path / "repos" / repo / "src").mkdir(parents=True)
        (tmp_path / "repos" / repo / "LICENSE").write_text("MIT License")
        (tmp_path / "repos" / repo / "src" / "main.rs").write_text("fn main() {}\n")
    shards = list_source_shards(job(tmp_path, "github", ["repos/*"]))
    assert [(s.key, s.relpath) for s in shards] == [("00000", "repos/repo-a"), ("00001", "repos/repo-b")]
    assert shards[0].size == len("MIT License") + len("fn main() {}\n")


def test_file_sources_walk_folders_into_files(tmp_path):
    (tmp_path / "data" / "sub").mkdir(parents=True)
    for name in ("a.jsonl", "sub/b.jsonl"):
        (tmp_path / "data" / name).write_text('{"text": "x"}\n')
    shards = list_source_shards(job(tmp_path, "jsonl", ["data"]))
    assert [s.relpath for s in shards] == ["data/a.jsonl", "data/sub/b.jsonl"]


def test_row_group_shards_of_a_parquet_file_count_their_own_bytes(tmp_path):
    import random

    import pyarrow as pa
    import pyarrow.parquet as pq

    from corpus.runtime.plan import check_plan
    from corpus.runtime.shard import PhaseTask, ShardRunner

    rng = random.Random(0)  # incompressible text: the row groups' bytes are most of the file
    texts = ["".join(rng.choice("abcdefghij ") for _ in range(2000)) for _ in range(80)]
    path = tmp_path / "c4.parquet"
    pq.write_table(pa.table({"text": texts}), path, row_group_size=10)  # 8 row groups
    spec = parse_job({"name": "l", "inputs": [{"source": "parquet", "paths": ["c4.parquet"], "domain": "c4",
                                               "options": {"row_groups_per_shard": 2}}],
                      "phases": [{"name": "p", "stages": ["length"]}]}, base_dir=str(tmp_path))
    shards = list_source_shards(spec)
    meta = pq.ParquetFile(path).metadata
    data_bytes = sum(meta.row_group(g).column(0).total_compressed_size for g in range(meta.num_row_groups))
    assert len(shards) == 4
    assert sum(s.size for s in shards) == data_bytes <= path.stat().st_size  # not 4x the file
    assert all(s.size < path.stat().st_size / 3 for s in shards)
    plan = check_plan(spec)[0]
    task = PhaseTask(phase="p", phase_dir=str(tmp_path / "out" / "l" / "00-p"), stages=spec.phases[0].stages,
                     origin_before=plan.origin_before, runtime=spec.runtime, inputs=spec.inputs)
    runner = ShardRunner(task)
    counted = [runner.run(s)["counters"]["read"]["input_bytes"] for s in shards]
    assert counted == [s.size for s in shards]
