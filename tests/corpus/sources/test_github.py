"""The GitHub reader on real repository snapshots (Debian's serde and regex crates, as folders and as
tarballs) and on hand-made trees for each drop reason."""

import json
import os
import tarfile

from corpus.sources.base import Shard
from corpus.sources.code_files import line_stats, strip_license_header
from corpus.sources.github import GithubConfig, read_github
from corpus.sources.licenses import is_permitted, license_from_metadata, license_from_text, repo_license
from corpus.samples import SampleUnavailable, sample_path
from run_helpers import sample_unavailable

PERMISSIVE = frozenset({"MIT", "BSD-2-Clause", "BSD-3-Clause", "Apache-2.0"})


def read_all(path, **cfg):
    shard = Shard(key="00000", source="github", path=str(path), relpath=os.path.basename(str(path)),
                  domain="github", size=0)
    docs, rejects = [], []
    for batch in read_github(shard, GithubConfig(**cfg), batch_rows=16):
        docs += batch.documents.to_pylist()
        rejects += batch.rejected
    return docs, rejects


def crate(name):
    try:
        root = os.path.join(sample_path(f"crate-{name.split('-')[0]}"), "crates")
    except SampleUnavailable as exc:
        sample_unavailable(exc)
    return os.path.join(root, name)


def tarball(folder, dest):
    with tarfile.open(dest, "w:gz") as tar:
        tar.add(folder, arcname=os.path.basename(folder))
    return dest


def test_rust_crate_license_from_cargo_toml():
    folder = crate("serde-1.0.152")
    with open(os.path.join(folder, "Cargo.toml"), encoding="utf-8") as f:
        assert license_from_metadata("Cargo.toml", f.read()) == "MIT OR Apache-2.0"
    files = {n: open(os.path.join(folder, n), encoding="utf-8").read() for n in ("LICENSE-MIT", "LICENSE-APACHE")}
    assert license_from_text(files["LICENSE-MIT"]) == "MIT"
    assert license_from_text(files["LICENSE-APACHE"]) == "Apache-2.0"
    assert repo_license(files) == ("Apache-2.0 OR MIT", "LICENSE-APACHE+LICENSE-MIT")  # no Cargo.toml: files


def test_crate_folder_and_tarball_give_the_same_records(tmp_path):
    folder = crate("regex-1.7.1")
    docs, rejects = read_all(folder)
    tdocs, trejects = read_all(tarball(folder, tmp_path / "regex-1.7.1.tar.gz"))
    assert sorted((json.loads(d["meta"])["path"], d["text"]) for d in docs) == \
        sorted((json.loads(d["meta"])["path"], d["text"]) for d in tdocs)
    assert sorted(r for _, r in rejects) == sorted(r for _, r in trejects)
    metas = [json.loads(d["meta"]) for d in docs]
    assert {m["license"] for m in metas} == {"MIT OR Apache-2.0"}
    assert {m["repo"] for m in metas} == {"regex-1.7.1"}
    assert {m["language"] for m in metas} >= {"Rust", "Markdown"}
    assert "src/lib.rs" in {m["path"] for m in metas}
    reasons = {r for _, r in rejects}
    assert "license_file" in reasons and "extension_not_allowed" in reasons
    for d in docs:  # every kept file passes the quality rules
        longest, mean, alnum = line_stats(d["text"])
        assert longest <= 1000 and mean <= 100 and alnum >= 0.25


def test_spdx_expressions():
    assert is_permitted("MIT OR Apache-2.0", PERMISSIVE)
    assert is_permitted("MIT/Apache-2.0", PERMISSIVE) is False  # raw old Cargo form is cleaned first ...
    assert license_from_metadata("Cargo.toml", '[package]\nlicense = "MIT/Apache-2.0"') == "MIT OR Apache-2.0"
    assert is_permitted("GPL-3.0-only OR MIT", PERMISSIVE)
    assert not is_permitted("GPL-3.0-only AND MIT", PERMISSIVE)
    assert is_permitted("(MIT OR GPL-2.0-only) AND Apache-2.0 WITH LLVM-exception", PERMISSIVE)
    assert not is_permitted("GPL-2.0-only", PERMISSIVE) and not is_permitted(None, PERMISSIVE)


def _repo(tmp_path, files: dict[str, str | bytes], name="repo"):
    root = tmp_path / name
    for rel, content in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content if isinstance(content, bytes) else content.encode())
    return root


GOOD = "def add(a, b):\n    return a + b\n"


def test_every_drop_has_its_reason(tmp_path):
    root = _repo(tmp_path, {
        "package.json": json.dumps({"name": "x", "license": "BSD-3-Clause"}),
        "LICENSE": "BSD license text",
        "a.py": "# Copyright 2020 Someone\n# Licensed under the BSD license\n\n" + GOOD,
        "b.py": GOOD.replace("add", "sub"),
        "dup.py": GOOD.replace("add", "sub"),
        "long.py": "x = '" + "a" * 1200 + "'\n",
        "wide.py": "\n".join("y = '" + "b" * 150 + "'" for _ in range(5)),
        "symbols.py": "#" * 10 + "\n" + "+-*/ {} [] () <> == != ;;\n" * 20,
        "bad.py": b"x = '\xff\xfe'\n",
        "bin.c": b"int x;\x00\x00",
        "empty.rs": "// Copyright 2021 X, MIT license\n",
        "big.js": "var a = 1;\n" * 200_000,
        "image.png": b"\x89PNG",
    })
    docs, rejects = read_all(root)
    got = {json.loads(d["meta"])["path"]: d["text"] for d in docs}
    assert got == {"a.py": GOOD, "b.py": GOOD.replace("add", "sub")}
    reasons = {json.loads(r["meta"])["path"]: reason for r, reason in rejects}
    assert reasons == {"package.json": "extension_not_allowed", "LICENSE": "license_file",
                       "dup.py": "duplicate_content", "long.py": "line_too_long", "wide.py": "mean_line_too_long",
                       "symbols.py": "low_alphanumeric", "bad.py": "invalid_utf8", "bin.c": "binary_file",
                       "empty.rs": "empty_file", "big.js": "file_too_large", "image.png": "extension_not_allowed"}
    assert json.loads(docs[0]["meta"])["license"] == "BSD-3-Clause"


def test_non_permissive_and_unknown_licenses(tmp_path):
    gpl = _repo(tmp_path, {"setup.cfg": "[metadata]\nname = x\nlicense = GPL-3.0\n", "a.py": GOOD}, "gpl")
    docs, rejects = read_all(gpl)
    assert docs == [] and {r for _, r in rejects} == {"license_not_permissive"}
    assert read_all(gpl, allowed_licenses=["GPL-3.0-only"])[0]  # configurable
    none = _repo(tmp_path, {"a.py": GOOD}, "none")
    assert {r for _, r in read_all(none)[1]} == {"license_unknown"}


def test_license_header_stripping():
    text, stripped = strip_license_header("#!/usr/bin/env python\n# Copyright (c) 2020 A\n# MIT License\n\nimport os\n")
    assert stripped and text == "#!/usr/bin/env python\nimport os\n"
    text, stripped = strip_license_header("/*\n * SPDX-License-Identifier: MIT\n */\nint x;\n")
    assert stripped and text == "int x;\n"
    same = "// Adds two numbers.\nint add(int a, int b);\n"
    assert strip_license_header(same) == (same, False)


def test_corrupt_and_empty_archives(tmp_path):
    good = tarball(_repo(tmp_path, {"LICENSE": "x", "a.py": GOOD}), tmp_path / "r.tar.gz")
    data = good.read_bytes()
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(data[: len(data) // 2])
    assert [r for _, r in read_all(bad)[1]] == ["corrupt_archive"]
    empty = tmp_path / "empty.tar"
    with tarfile.open(empty, "w"):
        pass
    assert [r for _, r in read_all(empty)[1]] == ["empty_file"]
    zero = tmp_path / "zero.tar.gz"
    zero.write_bytes(b"")
    assert [r for _, r in read_all(zero)[1]] in (["corrupt_archive"], ["empty_file"])


def test_a_100mb_single_line_file_is_dropped_unread(tmp_path):
    root = _repo(tmp_path, {"Cargo.toml": '[package]\nlicense = "MIT"\n', "a.rs": "fn main() {}\n"})
    with open(root / "huge.rs", "wb") as f:
        f.write(b"x" * (100 << 20))
    docs, rejects = read_all(root)
    assert [json.loads(d["meta"])["path"] for d in docs] == ["Cargo.toml", "a.rs"]
    assert ("huge.rs", "file_too_large") in {(json.loads(r["meta"])["path"], x) for r, x in rejects}


def test_a_single_file_shard_finds_its_repository_license():
    """The runtime walks an input folder into one shard per file: each still gets its crate's license."""
    folder = crate("serde-1.0.152")
    whole = {json.loads(d["meta"])["path"]: d["text"] for d in read_all(folder)[0]}
    docs, rejects = read_all(os.path.join(folder, "src", "lib.rs"))
    [doc] = docs
    meta = json.loads(doc["meta"])
    assert (meta["repo"], meta["path"], meta["license"]) == ("serde-1.0.152", "src/lib.rs", "MIT OR Apache-2.0")
    assert doc["text"] == whole["src/lib.rs"] and rejects == []
