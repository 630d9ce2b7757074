"""The batch's words are split once and shared by the heuristic stages: the cache must never serve the
words of another text."""

import gc

import pyarrow as pa

from corpus.stages.c4_rules import C4RulesConfig, score_c4_rules
from corpus.stages.gopher_quality import GopherQualityConfig, score_gopher_quality
from corpus.stages.gopher_repetition import GopherRepetitionConfig, score_gopher_repetition
from corpus.stages.segments import split_words, word_codes


def _words(text) -> list[list[str]]:
    seg = split_words(text)
    items = seg.items.to_pylist()
    return [items[a:b] for a, b in zip(seg.offsets[:-1], seg.offsets[1:])]


def test_words_follow_the_text_not_the_last_call():
    a = pa.chunked_array([pa.array(["one two", "three"])])
    b = pa.chunked_array([pa.array(["four five", "six"])])  # same lengths, other bytes
    assert _words(a) == [["one", "two"], ["three"]]
    assert _words(b) == [["four", "five"], ["six"]]
    assert _words(a) == [["one", "two"], ["three"]]
    codes, distinct = word_codes(a)
    assert [distinct[int(c)].as_py() for c in codes] == ["one", "two", "three"]


def test_a_slice_of_the_same_buffers_is_another_text():
    whole = pa.array(["a b", "c d e", "f"])
    assert _words(whole) == [["a", "b"], ["c", "d", "e"], ["f"]]
    assert _words(whole.slice(1)) == [["c", "d", "e"], ["f"]]
    assert _words(pa.chunked_array([whole.slice(0, 2), whole.slice(2)])) == [["a", "b"], ["c", "d", "e"], ["f"]]


def test_a_freed_text_is_not_mistaken_for_a_new_one():
    # The cache holds the last text, so its buffers cannot be freed and their addresses reused.
    for i in range(50):
        text = pa.array([f"w{i} x{i}", f"y{i}"])
        assert _words(text) == [[f"w{i}", f"x{i}"], [f"y{i}"]]
        del text
        gc.collect()


def test_stages_in_sequence_equal_each_stage_alone():
    batches = [pa.table({"text": [f"The {w} sat on the mat. " * (k + 1) + "\nA line.\n\nA line." for k in range(5)]})
               for w in ("cat", "dog")]
    stages = [lambda b: score_gopher_quality(b, GopherQualityConfig()),
              lambda b: score_gopher_repetition(b, GopherRepetitionConfig()),
              lambda b: score_c4_rules(b, C4RulesConfig())]
    alone = []
    for stage in stages:
        for batch in batches:
            split_words(pa.array(["reset the cache"]))
            alone.append(stage(batch))
    in_sequence = {}
    for j, batch in enumerate(batches):
        for i, stage in enumerate(stages):
            in_sequence[i * len(batches) + j] = stage(batch)
    assert [in_sequence[k] for k in range(len(alone))] == alone
