"""The normalize stage skips ftfy only where ftfy would change nothing: `ftfy_may_change` and its batch
pre-pass `ftfy_may_change_batch` are sound (never False for a text ftfy changes), and the stage's output
equals plain ftfy + the rest on real documents, real mojibake included."""

import glob
import os
import re

import ftfy
import pyarrow as pa
import pytest
from ftfy.chardata import C1_CONTROL_RE, CONTROL_CHARS, HTML_ENTITY_RE
from hypothesis import given, settings
from hypothesis import strategies as st

from corpus.stages import ftfy_triggers
from corpus.stages.ftfy_triggers import FTFY_SETTINGS, ftfy_may_change, ftfy_may_change_batch
from corpus.stages.normalize import NormalizeConfig, normalize, normalize_text
from run_helpers import sample_unavailable

CFG = NormalizeConfig()


def plain_normalize(text: str) -> str:
    """The stage before the check: ftfy on every text, then the same control / NFC / strip steps."""
    return normalize_text(ftfy.fix_text(text, **FTFY_SETTINGS), NormalizeConfig(fix_mojibake=False))


def assert_sound(*texts: str) -> None:
    # Arrow strings are valid UTF-8: texts with lone surrogates never reach the batch pre-pass
    in_arrow = [t for t in texts if not re.search("[\ud800-\udfff]", t)]
    batch = dict(zip(in_arrow, ftfy_may_change_batch(pa.array(in_arrow, pa.string())).to_pylist()))
    for text in texts:
        if ftfy.fix_text(text, **FTFY_SETTINGS) != text:
            assert ftfy_may_change(text), repr(text[:200])
            assert batch.get(text, True), repr(text[:200])


# What ftfy 6.3's mojibake detector (ftfy.badness) and fixers look at: UTF-8 read as cp1252 / Latin-1 /
# MacRoman / cp1251 / cp1253 leftovers, C1 controls, entities, line breaks, and plain text around them.
MOJIBAKE_ALPHABET = list("ÃÂâ€™œžŸ¢£¤¥¦§¨©ª«¬®¯°±²³´µ¶·¸¹º»¼½¾¿ÐÑØÙÎ×àáèéöüŒ•’“”–—…√≈‚ÄвЂГВРСβΓΞΟā") + [
    "\xa0", "\xad", "\x81", "\x85", "\x9d", "\u2028", "\ufeff", "\x1b", "[", "m", "&", "#", ";", "1", "amp",
    "eacute", "EACUTE", "\r", "\n", " ", "<", "a", "z", "A", "Q", ".", "-", "(", "\t", "\x0c", "\x00", "\ud83d",
    "日本", "😀"]


@given(st.lists(st.sampled_from(MOJIBAKE_ALPHABET), max_size=30).map("".join))
@settings(max_examples=800, deadline=None)
def test_never_skips_a_text_ftfy_changes(text):
    assert_sound(text)


@given(st.lists(st.sampled_from(MOJIBAKE_ALPHABET), max_size=12).map("".join),
       st.sampled_from(["", "x", "the quick brown fox ", "café ", "line\n", "•\n", "’"]))
@settings(max_examples=500, deadline=None)
def test_sound_wherever_the_mojibake_sits_in_a_longer_text(core, filler):
    # windows are cut at line ends and at run boundaries: put the mojibake at line starts, ends and mid-line
    assert_sound(filler * 5 + core, core + filler * 5, filler * 3 + "\n" + core + "\n" + filler * 3,
                 (filler + core) * 4)


def test_every_code_point_alone_and_in_context():
    # every code point of the blocks ftfy's tables and mojibake detector use (Latin, Greek, Cyrillic,
    # general punctuation, letterlike, math, box drawing, specials), every 251st one elsewhere
    dense = [*range(0x800), *range(0x2000, 0x2600), *range(0xD800, 0xE000, 7), *range(0xFE00, 0x10000)]
    points = sorted(set(dense) | set(range(0, 0x110000, 251)))
    assert_sound(*(text for c in map(chr, points) for text in ("a" + c + "b", "\n" + c + " x", "Ã" + c, c + "\n")))


def test_triggers_cover_ftfy_tables():
    # if a newer ftfy grows its tables, this fails: re-derive the check from its fixers
    for cp in list(CONTROL_CHARS) + [c for c in range(0x10000) if C1_CONTROL_RE.match(chr(c))]:
        assert ftfy_may_change("x" + chr(cp)), hex(cp)
    for entity in ("&amp;", "&#x2019;", "&#8217;", "&EACUTE;", "&HilbertSpace;", "&" + "a" * 24 + ";"):
        assert HTML_ENTITY_RE.search(entity) and ftfy_may_change("text " + entity)
    for brk in ("\r", "\r\n", "\u2028", "\u2029", "\x85"):
        assert ftfy_may_change("a" + brk + "b")


def test_window_analysis_of_ftfy_pattern():
    # ftfy 6.3's detector: 37 alternatives of at most 7 characters, each with a character from a set of
    # Latin-1, Latin Extended, Greek, Cyrillic and symbol characters; CJK ideographs are none of them
    assert ftfy_triggers._WINDOW == 7
    anchors = re.compile(f"[{ftfy_triggers._ANCHORS}]")
    assert all(anchors.match(c) for c in "ÃÂâ€œ•’¶ВГΒΓ\x81") and not any(anchors.match(c) for c in "a日本\n")
    analyse = ftfy_triggers._window_analysis
    assert analyse(re.compile("(?<!x)é|ü")) is None  # lookbehind
    assert analyse(re.compile("é|a")) is None  # an alternative without a non-ASCII character
    assert analyse(re.compile("[é][a-z]{2}|ü$")) is None  # $
    assert analyse(re.compile("é", re.IGNORECASE)) is None  # É would match too
    assert analyse(re.compile("^[é][a-z]{2}|ü.|[α-γ]x")) == (3, "éüα-γ")


def test_mojibake_at_a_line_start_and_at_a_line_end(monkeypatch):
    # ftfy's detector anchors "^[ÃÂ] " at a segment (line) start: a window must start there too
    long_ascii = "plain ascii words " * 20
    cases = [long_ascii + "\nÃ  la carte", long_ascii + "café\nÃ  la", "œ\n" + long_ascii, long_ascii + "œ\nx",
             "voilÃ  le travail", long_ascii + "â€™s", "Ã©t\u00e9 " + long_ascii, long_ascii + "\n\nÂ ",
             "ÃƒÂ©" + long_ascii]
    assert_sound(*cases)
    for text in cases:
        assert normalize_text(text, CFG) == plain_normalize(text)
    # without the window analysis (another ftfy): whole lines, same answers
    monkeypatch.setattr(ftfy_triggers, "_WINDOW", None)
    for text in cases:
        assert_sound(text)
    assert not ftfy_may_change("naïve café — “quoted” •\n" + long_ascii)


def test_entities_count_only_before_the_first_line_with_a_tag():
    # ftfy leaves entities alone from the first segment holding "<" on ("auto"): so does the check
    assert ftfy_may_change("caf&eacute;\n<b>x</b>")
    assert not ftfy_may_change("<b>x</b>\ncaf&eacute; &amp; &gt;")
    assert not ftfy_may_change("a &lt; b < c &amp; d")
    assert_sound("<p>\n&amp;", "&amp;<", "x\n&amp;\ny<", "x<\n&amp;", "&amp;\n\n<")


def test_another_ftfy_sends_every_text_to_ftfy(monkeypatch):
    assert ftfy_triggers._DERIVED  # the pinned ftfy is the one the triggers were derived from
    assert not ftfy_may_change("plain text")
    assert ftfy_may_change_batch(pa.array(["plain text", "caf\u00e9"])).to_pylist() == [False, False]
    monkeypatch.setattr(ftfy_triggers, "_DERIVED", False)  # e.g. a new option, maybe a new fixer
    assert ftfy_may_change("plain text")
    assert ftfy_may_change_batch(pa.array(["plain text", "caf\u00e9"])).to_pylist() == [True, True]


def test_batch_pre_pass_flags_a_mojibake_line_anywhere():
    # ftfy's detector anchors some alternatives at a segment (line) start: "^" must match after every "\n"
    texts = ["plain\nÃ  la carte", "plain Ã  la", "x\n\nâ€™s", "naïve café — “quoted” •", "", None]
    assert ftfy_may_change_batch(pa.array(texts, pa.string())).to_pylist() == [
        ftfy_may_change(t) if t is not None else True for t in texts]


def test_line_longer_than_an_ftfy_segment_takes_ftfy(monkeypatch):
    monkeypatch.setattr(ftfy_triggers, "_MAX_SEGMENT", 50)
    assert ftfy_may_change("é" + "x" * 60)  # ftfy would cut this line: not modelled, so ftfy runs
    assert not ftfy_may_change("é" + "x" * 40 + "\n" + "y" * 40)


CHARDET_CODECS = {"Big5": "big5", "EUC-JP": "euc_jp", "EUC-KR": "euc_kr", "GB2312": "gb2312", "SHIFT_JIS": "shift_jis",
                  "KOI8-R": "koi8_r", "iso-8859-1": "latin-1", "iso-8859-7-greek": "iso8859_7", "utf-8": "utf-8",
                  "windows-1251-russian": "cp1251", "windows-1252": "cp1252", "windows-1255-hebrew": "cp1255"}


def _misread(raw: bytes) -> list[str]:
    """UTF-8 bytes read as cp1252 and as Latin-1: the mojibake a misconfigured crawler makes."""
    return [raw.decode("cp1252", "replace"), raw.decode("latin-1")]


def _real_texts() -> list[str]:
    """Clean text (web pages, Wikipedia leads, pages in 12 legacy encodings, the UDHR in many scripts) and
    real mojibake (UTF-8 news articles and pages read as cp1252 / Latin-1, whole and paragraph by
    paragraph)."""
    import json

    from corpus.quality.data import iter_web_pages, page_text
    from corpus.samples import SampleUnavailable, sample_path

    try:
        texts = []
        for name in ("python-doc", "newspaper4k", "warc"):
            texts += [page_text(raw) for _, raw in iter_web_pages({name: sample_path(name)}, 40)]
        for path in sorted(glob.glob(os.path.join(sample_path("chardet"), "*", "*"))):
            with open(path, "rb") as f:
                raw = f.read()[:20000]
            codec = CHARDET_CODECS[os.path.basename(os.path.dirname(path))]
            texts.append(raw.decode(codec, "replace"))
            texts += _misread(raw) if codec == "utf-8" else []
        for path in sorted(glob.glob(os.path.join(sample_path("newspaper4k"), "txt", "*.txt"))):
            with open(path, "rb") as f:
                raw = f.read()
            texts.append(raw.decode("utf-8"))
            for wrong in _misread(raw):
                texts += [wrong] + [p for p in wrong.split("\n") if len(p) > 40]
        udhr = sorted(glob.glob(os.path.join(sample_path("udhr"), "declaration", "*.html")))
        for i, path in enumerate(udhr[::6]):
            with open(path, "rb") as f:
                raw = f.read()[:8000]
            texts += [raw.decode("utf-8", "ignore")] + (_misread(raw) if i % 2 else [])  # cut: may end mid-character
        with open(os.path.join(sample_path("wiki-summaries"), "data", "summaries_en-us.json"), encoding="utf-8") as f:
            texts += [v["extract"] for _, v in sorted(json.load(f).items()) if v.get("extract")][:1000]
    except SampleUnavailable as exc:
        sample_unavailable(exc)
    return [t for t in texts if t]


@pytest.mark.slow
def test_stage_output_equals_plain_ftfy_on_real_documents():
    texts = _real_texts()
    repaired = 0
    for text in texts:
        fixed = ftfy.fix_text(text, **FTFY_SETTINGS)
        # the stage before the check: ftfy on every text, then the same control / NFC / strip steps
        assert normalize_text(text, CFG) == normalize_text(fixed, NormalizeConfig(fix_mojibake=False))
        repaired += fixed != text
    # the batch function (Arrow pre-pass, then the per-text path for the flagged texts) agrees
    in_arrow = [t for t in texts if not re.search("[\ud800-\udfff]", t)]
    docs = pa.table({"text": pa.array(in_arrow, pa.string())})
    assert normalize(docs, CFG).column("text").to_pylist() == [normalize_text(t, CFG) for t in in_arrow]
    # the set holds real mojibake and entities that ftfy repairs, and much clean text it leaves alone
    assert repaired >= 100 and len(texts) - repaired >= 1000, (repaired, len(texts))
