"""The StackExchange reader on real Q&A text (perlfaq1..9 from Debian perl-doc, written as Posts.xml rows
with stated made-up scores: see perlfaq_posts.py) and on hand-made broken dumps."""

import bz2
import glob
import json
import os
import sys

import pytest

from corpus.sources.base import Shard
from corpus.samples import SampleUnavailable, sample_path
from corpus.sources.stackexchange import StackExchangeConfig, html_to_text, largest_sites, read_stackexchange
sys.path.insert(0, os.path.dirname(__file__))  # --import-mode=importlib: the helper beside us
from perlfaq_posts import posts_xml  # noqa: E402
from run_helpers import sample_unavailable  # noqa: E402


def read_all(path, batch_rows=50, **cfg):
    shard = Shard(key="00000", source="stackexchange", path=str(path), relpath=os.path.basename(str(path)),
                  domain="stackexchange", size=os.path.getsize(path))
    docs, rejects = [], []
    for batch in read_stackexchange(shard, StackExchangeConfig(**cfg), batch_rows):
        docs += batch.documents.to_pylist()
        rejects += batch.rejected
    return docs, rejects


@pytest.fixture(scope="module")
def dump(tmp_path_factory):
    """One site folder per perlfaq file: perlfaq1.stackexchange.com/Posts.xml, ..."""
    try:
        pods = sorted(glob.glob(os.path.join(sample_path("perlfaq"), "pod", "perlfaq[1-9].pod")))
    except SampleUnavailable as exc:
        sample_unavailable(exc)
    root = tmp_path_factory.mktemp("se-dump")
    expected = {}
    for n, pod in enumerate(pods):
        site = f"{os.path.basename(pod)[:-4]}.stackexchange.com"
        with open(pod, encoding="utf-8") as f:
            text, questions = posts_xml(f.read(), first_id=100_000 * (n + 1))
        os.makedirs(root / site)
        (root / site / "Posts.xml").write_text(text, encoding="utf-8")
        expected[site] = questions
    return root, expected


def test_perlfaq_questions_grouped_with_answers_ordered_by_score(dump):
    root, expected = dump
    site = "perlfaq4.stackexchange.com"
    docs, rejects = read_all(root / site / "Posts.xml", keep_largest=28)
    assert rejects == []
    questions = expected[site]
    assert len(docs) == len(questions) > 50  # perlfaq4 (data manipulation) is the longest FAQ
    by_id = {json.loads(d["meta"])["question_id"]: d for d in docs}
    for q in questions:
        doc = by_id[q["id"]]
        meta = json.loads(doc["meta"])
        want = [aid for aid, score, _ in sorted(q["answers"], key=lambda a: (-a[1], a[0]))]
        assert meta["answer_ids"] == want
        assert meta["answer_scores"] == sorted(meta["answer_scores"], reverse=True)
        assert doc["text"].startswith(q["title"])
        assert doc["url"] == f"https://{site}/questions/{q['id']}"
        # answer texts appear in the document in score order
        starts = [doc["text"].index(html_to_text(body)[:60]) for aid in want
                  for a_id, _, body in q["answers"] if a_id == aid]
        assert starts == sorted(starts)
    assert "<p>" not in "".join(d["text"] for d in docs) and "&lt;" not in "".join(d["text"] for d in docs)


def test_keep_largest_sites_by_posts_bytes(dump):
    root, expected = dump
    sizes = {s: os.path.getsize(root / s / "Posts.xml") for s in expected}
    top3 = sorted(sizes, key=lambda s: (-sizes[s], s))[:3]
    assert largest_sites(str(root), 3) == top3
    for site in expected:
        docs, rejects = read_all(root / site / "Posts.xml", keep_largest=3)
        if site in top3:
            assert len(docs) == len(expected[site])
        else:
            assert docs == [] and [r for _, r in rejects] == ["site_not_in_largest"]


def test_spill_to_disk_buckets_gives_the_same_documents(dump):
    root, _ = dump
    path = root / "perlfaq5.stackexchange.com" / "Posts.xml"
    in_memory, _ = read_all(path)
    spilled, _ = read_all(path, max_buffered_bytes=1 << 16, spill_buckets=4)
    assert sorted(d["id"] for d in spilled) == sorted(d["id"] for d in in_memory)
    assert {d["id"]: d["text"] for d in spilled} == {d["id"]: d["text"] for d in in_memory}


def test_html_to_text_keeps_blocks_apart():
    assert html_to_text("<p>one &amp; two</p><p>three <code>x &lt; y</code></p><pre>a\nb</pre>") == \
        "one & two\nthree x < y\na\nb"


def _site(tmp_path, name, content: bytes, filename="Posts.xml"):
    os.makedirs(tmp_path / name, exist_ok=True)
    path = tmp_path / name / filename
    path.write_bytes(content)
    return path


def test_bad_rows_orphans_and_other_post_types_are_rejected(tmp_path):
    xml = (b'<posts><row Id="1" PostTypeId="1" Score="2" Title="Q" Body="&lt;p&gt;why&lt;/p&gt;"/>'
           b'<row Id="2" PostTypeId="2" ParentId="1" Score="x" Body="bad score"/>'
           b'<row Id="3" PostTypeId="2" ParentId="99" Score="1" Body="orphan"/>'
           b'<row Id="4" PostTypeId="5" Score="0" Body="tag wiki"/>'
           b'<row Id="5" PostTypeId="2" ParentId="1" Score="0" Body="because"/></posts>')
    docs, rejects = read_all(_site(tmp_path, "a.example", xml))
    assert [d["text"] for d in docs] == ["Q\n\nwhy\n\nbecause"]
    assert sorted(r for _, r in rejects) == ["malformed_row", "orphan_answer", "other_post_type"]


@pytest.mark.parametrize("content, reason", [
    (b"", "empty_file"),
    (b'<posts><row Id="1" PostTypeId="1" Title="T" Body="b"/><row Id="2"', "malformed_xml"),
    (b'<posts><row Id="1" PostTypeId="1" Title="\xff\xfe" Body="b"/></posts>', "invalid_utf8"),
    (b'<posts><row Id="1" PostTypeId="1" Title="T" Body="' + b"x" * (100 << 20) + b'"/>\n</posts>',
     "line_too_long"),
])
def test_broken_dumps_end_in_a_reject(tmp_path, content, reason):
    docs, rejects = read_all(_site(tmp_path, "b.example", content))
    assert reason in [r for _, r in rejects]


def test_corrupt_bz2_dump(tmp_path):
    good = bz2.compress(b'<posts><row Id="1" PostTypeId="1" Title="T" Body="b"/></posts>')
    path = _site(tmp_path, "c.example", good[:-20] + b"\x00" * 20, "Posts.xml.bz2")
    docs, rejects = read_all(path)
    assert [r for _, r in rejects] == ["corrupt_compressed_stream"]
