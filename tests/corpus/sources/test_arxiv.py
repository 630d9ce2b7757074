"""The arXiv reader and LaTeX cleaning on real papers (the zoo and sandwich R vignettes, JSS papers in
Sweave LaTeX, from Debian r-cran-zoo / r-cran-sandwich) and on hand-made sources for each bad case."""

import gzip
import io
import json
import os
import re
import tarfile

import pytest

from corpus.sources.arxiv import ArxivConfig, read_arxiv
from corpus.sources.base import Shard
from corpus.sources.latex import LatexError, clean_latex, collect_macros, expand_macros, strip_comments
from corpus.samples import SampleUnavailable, sample_path
from run_helpers import sample_unavailable


def read_all(path, **cfg):
    shard = Shard(key="00000", source="arxiv", path=str(path), relpath=os.path.basename(str(path)),
                  domain="arxiv", size=0)
    docs, rejects = [], []
    for batch in read_arxiv(shard, ArxivConfig(**cfg), batch_rows=5):
        docs += batch.documents.to_pylist()
        rejects += batch.rejected
    return docs, rejects


def vignette(pkg, name):
    try:
        return os.path.join(sample_path(f"rnw-{pkg}"), "doc", name)
    except SampleUnavailable as exc:
        sample_unavailable(exc)


def test_zoo_vignette_cleaned_by_the_arxiv_rules():
    path = vignette("zoo", "zoo.Rnw")
    raw = open(path, encoding="utf-8").read()
    [doc], rejects = read_all(path)
    text = doc["text"]
    assert rejects == []
    assert text.startswith("\\section{Introduction}")  # preamble, title, abstract gone
    assert "\\documentclass" not in text and "\\Abstract{" not in text
    assert "<<" not in text and "\n@\n" not in text and "\\SweaveOpts" not in text  # R chunks gone
    assert "\\bibliography" not in text and "\\end{document}" not in text
    assert not re.search(r"(?<!\\)%", text)  # comments gone
    assert raw.count("\n@") >= 40 and "library(\"zoo\")" in raw and "library(\"zoo\")" not in text
    assert "Computational details" in text  # the last section before the bibliography is kept
    assert len(text) < len(raw) * 0.9


def test_sandwich_argument_free_macro_is_expanded():
    path = vignette("sandwich", "sandwich-OOP.Rnw")
    raw = open(path, encoding="utf-8").read()
    assert "\\newcommand{\\darrow}" in raw and "\\darrow" in raw.split("\\section", 1)[1]
    [doc], _ = read_all(path)
    assert json.loads(doc["meta"])["macros"] == 1
    assert "\\darrow" not in doc["text"]
    assert "\\stackrel{\\mbox{\\tiny \\textnormal{d}}}{\\longrightarrow}" in doc["text"]


def test_vignette_folder_is_read_file_by_file():
    folder = os.path.dirname(vignette("zoo", "zoo.Rnw"))
    docs, rejects = read_all(folder)
    assert {json.loads(d["meta"])["path"] for d in docs} == {"zoo.Rnw", "zoo-read.Rnw"}
    # zoo-design, zoo-faq, zoo-quickref have no \section-level command (their own macros take arguments)
    assert sorted(r for _, r in rejects) == ["no_section"] * 3


def test_comments_and_macros():
    assert strip_comments("a % c\n% whole line\nb \\% kept\nc \\\\% gone\n") == "a \nb \\% kept\nc \\\\\n"
    tex, macros = collect_macros("\\newcommand{\\R}{\\mathbb{R}}\\def\\eps{\\varepsilon}"
                                 "\\newcommand{\\f}[1]{f(#1)}\\def\\g#1{g(#1)}x")
    assert macros == {"\\R": "\\mathbb{R}", "\\eps": "\\varepsilon"} and tex == "x"
    assert expand_macros("$\\R \\Rx \\eps$", macros) == "$\\mathbb{R} \\Rx \\varepsilon$"
    with pytest.raises(LatexError):
        collect_macros("\\newcommand{\\broken}{never closed")


def test_multi_file_paper_as_tarball_and_folder(tmp_path):
    files = {
        "paper/main.tex": "\\documentclass{article}\n\\newcommand{\\ours}{OurMethod}\n\\begin{document}\n"
                          "\\maketitle\nabstract here\n\\input{sections/intro}\n\\include{method}\n"
                          "\\bibliographystyle{plain}\n\\bibliography{refs}\n\\end{document}\n",
        "paper/sections/intro.tex": "\\section{Introduction}\nWe present \\ours. % a comment\n",
        "paper/method.tex": "\\section{Method}\n\\ours{} is 50\\% faster.\n",
        "paper/unused.tex": "\\section{Old}\nnot included anywhere\n",
    }
    tar = tmp_path / "2101.00001.tar.gz"
    with tarfile.open(tar, "w:gz") as t:
        for name, content in files.items():
            data = content.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    docs, rejects = read_all(tar)
    assert [d["text"] for d in docs] == [
        "\\section{Introduction}\nWe present OurMethod.\n\n\\section{Method}\nOurMethod{} is 50\\% faster."]
    assert [(json.loads(r["meta"]).get("note", "")[:14], x) for r, x in rejects] == \
        [("not a main fil", "latex_fragment")]
    for name, content in files.items():  # the same paper as a folder, read through its main file
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(content)
    main_docs, _ = read_all(tmp_path / "paper" / "main.tex")
    assert [d["text"] for d in main_docs] == [d["text"] for d in docs]
    assert [x for _, x in read_all(tmp_path / "paper" / "method.tex")[1]] == ["latex_fragment"]


@pytest.mark.parametrize("content, reason", [
    (b"", "empty_file"),
    (b"\\documentclass{article}\\begin{document}\\section{A} caf\xe9\\end{document}", "invalid_utf8"),
    (b"\\documentclass{article}\\begin{document}\\section{A} {unclosed group\\end{document}", "malformed_latex"),
    (b"\\documentclass{article}\\newcommand{\\x}{oops\\begin{document}\\section{A}x", "malformed_latex"),
    (b"\\documentclass{article}\\begin{document}No sections at all.\\end{document}", "no_section"),
    (b"\\documentclass{article}\n" + b"%" * (100 << 20), "file_too_large"),
])
def test_bad_sources(tmp_path, content, reason):
    path = tmp_path / "p.tex"
    path.write_bytes(content)
    docs, rejects = read_all(path)
    assert docs == [] and [x for _, x in rejects] == [reason]


def test_an_empty_file_in_a_paper_folder_is_empty_not_a_fragment(tmp_path):
    paper = tmp_path / "paper"
    paper.mkdir()
    (paper / "main.tex").write_text("\\documentclass{article}\\begin{document}\\section{A}\nBody.\n\\end{document}\n")
    (paper / "notes.tex").write_bytes(b"")
    (paper / "blank.tex").write_bytes(b" \n\n")
    docs, rejects = read_all(paper)
    assert len(docs) == 1 and [(r["source"], x) for r, x in rejects] == [("paper#blank.tex", "empty_file"),
                                                                          ("paper#notes.tex", "empty_file")]


def test_gzipped_source_and_corrupt_gzip(tmp_path):
    tex = b"\\documentclass{article}\\begin{document}\\section{A}\nBody.\n\\end{document}\n"
    good = tmp_path / "2101.00002.gz"
    good.write_bytes(gzip.compress(tex))
    assert [d["text"] for d in read_all(good)[0]] == ["\\section{A}\nBody."]
    bad = tmp_path / "2101.00003.gz"
    bad.write_bytes(gzip.compress(tex * 50)[:60])
    assert [x for _, x in read_all(bad)[1]] == ["corrupt_compressed_stream"]


def test_clean_latex_cuts_at_thebibliography():
    body, _ = clean_latex("\\begin{document}\\section{S}\ntext\n\\begin{thebibliography}{9}\\bibitem{a} A"
                          "\\end{thebibliography}\n\\section{Appendix}\n", lambda name: None, sweave=False)
    assert body == "\\section{S}\ntext"
