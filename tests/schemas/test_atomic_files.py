"""Every file a reader could see half-written is published through schemas/atomic_files.py (corpus
modules reach it through corpus/io/files.py, training modules through training/atomic_files.py)."""

import json
import os
import re

import pytest

from schemas.atomic_files import publish_dir, write_atomic, write_json_atomic
from tests.conftest import REPO

# The calls that publish by renaming: only the shared helper may make them.
RENAMES = re.compile(r"\bos\.(replace|rename)\(|\bshutil\.move\(|NamedTemporaryFile|\bmkstemp\(")


def test_no_module_renames_files_into_place_on_its_own():
    found = []
    for top in ("corpus", "training", "schemas", "jobs"):
        for folder, _, files in os.walk(os.path.join(REPO, top)):
            for name in files:
                path = os.path.join(folder, name)
                rel = os.path.relpath(path, REPO)
                if not name.endswith(".py") or rel == os.path.join("schemas", "atomic_files.py"):
                    continue
                for n, line in enumerate(open(path, encoding="utf-8"), 1):
                    if RENAMES.search(line):
                        found.append(f"{rel}:{n}: {line.strip()}")
    assert found == []


def test_the_two_halves_share_one_implementation():
    import corpus.io.files as corpus_files
    import training.atomic_files as training_files

    assert corpus_files.write_atomic is training_files.write_atomic is write_atomic
    assert corpus_files.write_json_atomic is training_files.write_json_atomic is write_json_atomic
    assert corpus_files.publish_dir is training_files.publish_dir is publish_dir


def test_publish_dir_replaces_a_folder_whole_and_leaves_nothing_behind(tmp_path):
    final = tmp_path / "out"
    final.mkdir()
    (final / "old.txt").write_text("old")
    staging = tmp_path / ".tmp-out"
    (staging / "sub").mkdir(parents=True)
    (staging / "sub" / "new.txt").write_text("new")
    publish_dir(str(staging), str(final))
    assert sorted(os.listdir(tmp_path)) == ["out"]  # no staging, no moved-aside old folder
    assert [os.path.relpath(os.path.join(d, f), final) for d, _, fs in os.walk(final) for f in fs] == ["sub/new.txt"]
    with pytest.raises(FileNotFoundError):
        publish_dir(str(tmp_path / "missing"), str(tmp_path / "other"))
    assert os.path.isdir(final)  # a failed publication leaves the old folder alone


def test_write_atomic_makes_its_folder_and_leaves_no_temp_file(tmp_path):
    target = tmp_path / "a" / "b" / "c.json"
    write_json_atomic(str(target), {"b": 1, "a": [1, 2]})
    assert json.loads(target.read_text()) == {"a": [1, 2], "b": 1}
    assert os.listdir(target.parent) == ["c.json"]


def test_files_keep_their_bytes_through_the_shared_helper(tmp_path):
    """The writers moved onto the helper write what they wrote before (their readers and digests see
    no change): mixture weights and perplexity cut-offs."""
    from corpus.lm.cutoffs import write_cutoffs
    from schemas.mixture import make_mixture_weights, write_mixture_weights

    weights = make_mixture_weights({"books": 0.25, "github": 0.75}, method="uniform", inputs=[])
    path = tmp_path / "w.json"
    write_mixture_weights(str(path), weights)
    assert path.read_text() == json.dumps(weights.to_json(), indent=2) + "\n"
    cut = tmp_path / "cutoffs.json"
    data = write_cutoffs(str(cut), "en", {"head": 1.0, "tail": 2.0}, (30.0, 60.0))
    assert cut.read_text() == json.dumps(data, indent=2, sort_keys=True)
