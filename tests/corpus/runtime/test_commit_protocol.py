"""The exactly-once commit protocol, tested where it can break: part files invisible until published,
fsync before rename, new folders made durable, a worker that dies between publishing and its ledger
entry, and a ledger entry whose part file has gone."""

import json
import os

import pyarrow as pa
import pytest

from schemas import atomic_files
from corpus.io.files import publish_folder, write_json_atomic
from corpus.io.parquet import PartWriter, partition_path
from corpus.runtime import ledger
from corpus.runtime.executor import list_source_shards, phase_dir_name, run_job, source_id
from corpus.runtime.plan import check_plan
from corpus.runtime.shard import PhaseTask, ShardRunner
from corpus.runtime.spec import parse_job

from run_helpers import SELECT, tree

SCHEMA = pa.schema([("id", pa.string()), ("text", pa.string())])


def job(corpus, out, name="t"):
    spec = {"name": name, "output": str(out),
            "inputs": [{"source": "jsonl", "paths": ["corpus/*.jsonl*"], "domain": "books"}],
            "runtime": {"workers": 2, "max_retries": 0, "batch_rows": 5},
            "phases": [{"name": "clean", "stages": ["normalize", "length", SELECT]}]}
    return parse_job(spec, base_dir=str(corpus.parent), output_override=True)


@pytest.fixture
def io_log(monkeypatch):
    """Every fsync (as the path it was called on), rename and folder creation, in order."""
    log = []
    real_fsync, real_replace, real_rename, real_mkdir = os.fsync, os.replace, os.rename, os.mkdir

    def fsync(fd):
        log.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        return real_fsync(fd)

    def replace(src, dst):
        log.append(("rename", os.path.abspath(src), os.path.abspath(dst)))
        return real_replace(src, dst)

    def rename(src, dst):
        log.append(("rename", os.path.abspath(src), os.path.abspath(dst)))
        return real_rename(src, dst)

    def mkdir(path, *a, **kw):
        real_mkdir(path, *a, **kw)
        log.append(("mkdir", os.path.abspath(path)))

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(os, "rename", rename)
    monkeypatch.setattr(os, "mkdir", mkdir)
    return log


def test_a_part_file_is_invisible_until_commit_then_fsynced_before_its_rename(tmp_path, io_log):
    final = partition_path(str(tmp_path / "phase" / "data"), "books", "00007")
    writer = PartWriter(final, SCHEMA, row_group_bytes=1 << 20)
    writer.write(pa.table({"id": ["a", "b"], "text": ["x", "y"]}))
    assert not os.path.exists(final)  # a reader (or the next phase) never sees a half-written part
    assert [f for f in os.listdir(os.path.dirname(final)) if ".tmp-" in f]
    writer.commit()
    assert os.path.exists(final) and os.listdir(os.path.dirname(final)) == ["part-00007.parquet"]
    rename = next(i for i, e in enumerate(io_log) if e[0] == "rename" and e[2] == final)
    tmp = io_log[rename][1]
    assert ("fsync", tmp) in io_log[:rename]  # the bytes are on disk before the name points at them
    assert ("fsync", os.path.dirname(final)) in io_log[rename:]  # and the rename itself is durable


def test_an_aborted_part_leaves_nothing(tmp_path):
    final = partition_path(str(tmp_path / "data"), "books", "00001")
    writer = PartWriter(final, SCHEMA, row_group_bytes=1 << 20)
    writer.write(pa.table({"id": ["a"], "text": ["x"]}))
    writer.abort()
    assert os.listdir(os.path.dirname(final)) == []


def test_new_partition_folders_are_fsynced_into_their_parents(tmp_path, io_log):
    phase = tmp_path / "phase"
    phase.mkdir()
    io_log.clear()
    final = partition_path(str(phase / "data"), "wikipedia", "00000")
    PartWriter(final, SCHEMA, row_group_bytes=1 << 20).commit()
    made = [e[1] for e in io_log if e[0] == "mkdir"]
    assert made == [str(phase / "data"), str(phase / "data" / "domain=wikipedia")]
    for folder in made:  # each new folder's entry is fsynced in its parent after the folder is made
        at = io_log.index(("mkdir", folder))
        assert ("fsync", os.path.dirname(folder)) in io_log[at + 1:]


def test_a_json_write_that_fails_before_its_rename_leaves_the_old_file(tmp_path, monkeypatch):
    path = str(tmp_path / "ledger" / "00000.json")
    write_json_atomic(path, {"key": "00000", "rows_in": 1})

    def crash(src, dst):
        raise OSError("killed before the rename")

    # the helper lives in schemas/atomic_files.py, which corpus.io.files re-exports
    monkeypatch.setattr(atomic_files, "publish", lambda tmp, final: crash(tmp, final))
    with pytest.raises(OSError):
        write_json_atomic(path, {"key": "00000", "rows_in": 2})
    with open(path) as f:
        assert json.load(f) == {"key": "00000", "rows_in": 1}


def test_published_folder_is_swapped_whole(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("a", "b"):
        (src / name).write_text(name)
    publish_folder({"domain=x/a": str(src / "a"), "domain=x/b": str(src / "b")}, str(tmp_path / "final"))
    assert sorted(os.listdir(tmp_path / "final" / "domain=x")) == ["a", "b"]
    assert os.stat(tmp_path / "final" / "domain=x" / "a").st_ino == os.stat(src / "a").st_ino  # a link, no copy
    (tmp_path / "final.tmp-leftover").mkdir()  # a publication killed half way
    publish_folder({"domain=y/b": str(src / "b")}, str(tmp_path / "final"))
    assert sorted(os.listdir(tmp_path)) == ["final", "src"]
    assert os.listdir(tmp_path / "final") == ["domain=y"]


def test_worker_killed_between_publishing_and_its_ledger_entry_is_redone_identically(ray_local, demo_copy,
                                                                                      tmp_path):
    clean = run_job(job(demo_copy, tmp_path / "clean"), progress=False)
    spec = job(demo_copy, tmp_path / "killed")
    # What a worker does up to the commit point, for shard 00002: its part files are published...
    plan = check_plan(spec)[0]
    shards = list_source_shards(spec)
    pdir = os.path.join(spec.output, spec.name, phase_dir_name(spec, plan, source_id(spec, shards)))
    assert os.path.basename(pdir) == os.path.basename(clean.phases[0].phase_dir)
    task = PhaseTask(phase="clean", phase_dir=pdir, stages=spec.phases[0].stages, origin_before=plan.origin_before,
                     runtime=spec.runtime, inputs=spec.inputs)
    ShardRunner(task).run(next(s for s in shards if s.key == "00002"))
    # ... and it dies before the ledger entry is written: the shard is not committed.
    assert os.path.exists(os.path.join(pdir, "data", "domain=books", "part-00002.parquet"))
    assert ledger.committed(pdir) == {}
    result = run_job(spec, progress=False)
    assert result.exit_code == 0 and result.phases[0].skipped == 0
    assert sorted(ledger.committed(pdir)) == [f"{i:05d}" for i in range(6)]
    assert tree(pdir) == tree(clean.phases[0].phase_dir)  # redone under the same names, same bytes
    assert result.phases[0].totals["rows_kept"] == 62


def test_a_ledger_entry_whose_part_file_has_gone_is_redone_not_a_crash(ray_local, demo_copy, tmp_path):
    spec = job(demo_copy, tmp_path / "out")
    first = run_job(spec, progress=False)
    pdir = first.phases[0].phase_dir
    before = tree(pdir)
    stamp = ledger.committed(pdir)["00003"]["committed_at"]
    os.remove(os.path.join(pdir, "data", "domain=books", "part-00003.parquet"))
    second = run_job(spec, progress=False)
    assert second.exit_code == 0 and second.phases[0].skipped == 5
    assert ledger.committed(pdir)["00003"]["committed_at"] != stamp
    assert tree(pdir) == before
    rows = ("rows_in", "rows_kept", "rows_rejected", "dropped")
    assert [second.phases[0].totals[k] for k in rows] == [first.phases[0].totals[k] for k in rows]
