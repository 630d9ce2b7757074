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
