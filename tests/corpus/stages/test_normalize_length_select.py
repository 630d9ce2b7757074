import unicodedata

import pyarrow as pa
import pytest

from corpus.config import ConfigError, config_from_dict
from corpus.stages.base import BuildContext
from corpus.stages.length import LengthConfig, score_length
from corpus.stages.normalize import NormalizeConfig, normalize, normalize_text
from corpus.stages.select import SPEC as SELECT, SelectConfig
from schemas.arrow import DOCUMENT_V1


def docs(texts):
    n = len(texts)
    return pa.table({"id": [str(i) for i in range(n)], "domain": ["c4"] * n, "text": texts, "url": [None] * n,
                     "source": ["x"] * n, "meta": [None] * n}, schema=DOCUMENT_V1)


def test_normalize_repairs_mojibake_nfc_and_controls():
    cfg = NormalizeConfig()
    # UTF-8 bytes of "café – naïve" decoded as cp1252: the classic mojibake ftfy undoes.
    broken = "café – naïve".encode("utf-8").decode("cp1252")
    assert normalize_text(broken, cfg) == "café – naïve"
    decomposed = unicodedata.normalize("NFD", "Ångström")
    assert normalize_text(decomposed, cfg) == unicodedata.normalize("NFC", "Ångström")
    assert normalize_text("a\x00b\x1bc\u200bd\r\ne\tf", cfg) == "abcd\ne\tf"
    assert normalize_text("  keep inner  space \n", cfg) == "keep inner  space"


def test_normalize_off_switches():
    cfg = NormalizeConfig(form="none", fix_mojibake=False, remove_control=False, strip=False)
    assert normalize_text(" a\x00 ", cfg) == " a\x00 "


def test_normalize_batch_and_empty_batch():
    out = normalize(docs(["x\u0307", "ok"]), NormalizeConfig())
    assert out.column("text").to_pylist() == ["\u1e8b", "ok"]
    assert normalize(docs([]), NormalizeConfig()).schema == DOCUMENT_V1


SETTINGS = [NormalizeConfig(), NormalizeConfig(form="NFKC"), NormalizeConfig(fix_mojibake=False),
            NormalizeConfig(form="none", fix_mojibake=False, remove_control=False, strip=False),
            NormalizeConfig(remove_control=False, strip=False)]


@pytest.mark.parametrize("cfg", SETTINGS, ids=lambda c: f"{c.form}-{c.fix_mojibake}-{c.remove_control}-{c.strip}")
def test_normalize_batch_equals_the_per_text_function(cfg):
    # The batch function sends only texts that could change to normalize_text; every ASCII character at the
    # start, inside and at the end, entities in and out of HTML, and non-ASCII texts must come out the same.
    ascii_chars = [chr(c) for c in range(128)]
    texts = ([f"{c}word" for c in ascii_chars] + [f"a{c}b" for c in ascii_chars] + [f"word{c}" for c in ascii_chars]
             + ["&amp; more", "x &#233; y", "&#x41;", "a & b; c", "<p>&amp;</p>", "line\n<b>&lt;</b>", "&;",
                "caf\u00c3\u00a9", "x\u0307", "\u00a0nbsp\u00a0", "\u3000ideo", "\x85next", "\u2028sep",
                "plain ascii text", "", "\r\n", "caf\u00e9 \u2013 na\u00efve", "\ufeffbom"])
    expected = [normalize_text(t, cfg) for t in texts]
    out = normalize(docs(texts), cfg).column("text")
    assert out.to_pylist() == expected and out.type == pa.string()
    # a batch of several chunks (as after a concat) is normalized chunk by chunk, rows in place
    chunked = pa.concat_tables([docs(texts[:100]), docs(texts[100:])])
    assert normalize(chunked, cfg).column("text").to_pylist() == expected


def test_length_counts_by_hand():
    out = score_length(docs(["one two  three\nfour", "", " héllo "]), LengthConfig())
    assert out.column("n_chars_v1").to_pylist() == [19, 0, 7]
    assert out.column("n_words_v1").to_pylist() == [4, 0, 1]
    assert out.column("n_lines_v1").to_pylist() == [2, 1, 1]
    empty = score_length(docs([]), LengthConfig())
    assert empty.schema.field("n_words_v1").type == pa.int64()


def build_select(rules, origin):
    cfg = config_from_dict(SelectConfig, {"rules": rules}, "select")
    return SELECT.build(cfg, BuildContext(phase="p", stage="select", column_origin=origin, work_dir="/tmp"))


def test_select_first_matching_rule_names_reason_and_stage():
    batch = score_length(docs(["a b", "a b c d e f", "x " * 100, "fine text here ok"]), LengthConfig())
    fn = build_select([{"column": "n_words_v1", "op": "<", "value": 3, "reason": "too_few_words"},
                       {"column": "n_words_v1", "op": ">", "value": 50, "reason": "too_many_words"},
                       {"column": "n_chars_v1", "op": "<", "value": 5, "reason": "too_short"}],
                      {"n_words_v1": "length", "n_chars_v1": "length", "text": "source"})
    out = fn(batch)
    assert out.column("drop_reason").to_pylist() == ["too_few_words", None, "too_many_words", None]
    assert out.column("drop_stage").to_pylist() == ["length", None, "length", None]


def test_select_on_core_column_blames_select_and_nulls_never_match():
    batch = docs(["a", "b", "c"]).set_column(3, "url", pa.array(["http://x", None, "http://spam"]))
    fn = build_select([{"column": "url", "op": "==", "value": "http://spam", "reason": "blocked"}],
                      {"url": "source"})
    out = fn(batch)
    assert out.column("drop_reason").to_pylist() == [None, None, "blocked"]
    assert out.column("drop_stage").to_pylist() == [None, None, "select"]
    fn = build_select([{"column": "url", "op": "is_null", "reason": "no_url"}], {"url": "source"})
    assert fn(batch).column("drop_reason").to_pylist() == [None, "no_url", None]


def test_select_in_and_reason_from_column():
    batch = docs(["a", "b", "c"]).append_column("lang_v1", pa.array(["en", "fr", None]))
    batch = batch.append_column("why_v1", pa.array([None, "bad_rule", None]))
    fn = build_select([{"column": "lang_v1", "op": "not_in", "value": ["en"], "reason": "not_english"},
                       {"column": "why_v1", "op": "not_null", "reason_from_column": True}],
                      {"lang_v1": "langid", "why_v1": "heuristics"})
    out = fn(batch)
    assert out.column("drop_reason").to_pylist() == [None, "not_english", None]
    batch2 = batch.set_column(batch.schema.get_field_index("lang_v1"), "lang_v1", pa.array(["en", "en", "en"]))
    assert fn(batch2).column("drop_reason").to_pylist() == [None, "bad_rule", None]
    assert fn(batch2).column("drop_stage").to_pylist() == [None, "heuristics", None]


@pytest.mark.parametrize("rule, message", [
    ({"column": "a", "op": "<", "value": 1, "reason": "Bad Reason"}, "short lowercase name"),
    ({"column": "a", "op": "in", "value": 3, "reason": "x"}, "needs a list"),
    ({"column": "a", "op": "not_null", "reason": "x", "reason_from_column": True}, "reason_from_column needs"),
])
def test_select_rule_errors(rule, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict(SelectConfig, {"rules": [rule]}, "select")


def test_select_rule_limited_to_domains():
    batch = docs(["a", "b", "c"]).set_column(1, "domain", pa.array(["commoncrawl", "github", "c4"]))
    batch = batch.append_column("why_v1", pa.array(["no_terminal_punctuation"] * 3))
    fn = build_select([{"column": "why_v1", "op": "not_null", "reason_from_column": True,
                        "domains": ["commoncrawl", "c4"]}], {"why_v1": "c4_rules"})
    assert fn(batch).column("drop_reason").to_pylist() == ["no_terminal_punctuation", None, "no_terminal_punctuation"]
