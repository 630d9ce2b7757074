"""C4 and Gopher rules: for each rule, a hand-written case that passes and one that fails."""

from __future__ import annotations

import random
from collections import Counter

import pyarrow as pa
import pytest

from corpus.stages.c4_rules import C4RulesConfig, score_c4_rules
from corpus.stages.gopher_quality import GopherQualityConfig, score_gopher_quality
from corpus.stages.gopher_repetition import GopherRepetitionConfig, score_gopher_repetition

GOOD = (
    "The history of the region shows that farming and trade grew together over many centuries.\n"
    "Early settlers built small villages near the river, where the soil was rich and water was easy to reach.\n"
    "Merchants travelled along the coast with grain, cloth and metal tools, and they returned with salt.\n"
    "Over time the villages joined into a kingdom with its own laws, coins and written records.\n"
    "Scholars still study these records to learn how people lived, worked and governed themselves."
)


def _one(fn, cfg, text: str, column: str):
    return fn(pa.table({"text": pa.array([text], pa.string())}), cfg).column(column)[0].as_py()


def c4(text, cfg=C4RulesConfig()):
    return _one(score_c4_rules, cfg, text, "c4_drop_reason_v1")


def gq(text, cfg=GopherQualityConfig()):
    return _one(score_gopher_quality, cfg, text, "gopher_quality_reason_v2")


def gr(text, cfg=GopherRepetitionConfig()):
    return _one(score_gopher_repetition, cfg, text, "gopher_repetition_reason_v2")


@pytest.mark.parametrize("fn,cfg", [(score_c4_rules, C4RulesConfig()), (score_gopher_quality, GopherQualityConfig()),
                                    (score_gopher_repetition, GopherRepetitionConfig())])
def test_empty_batch_and_null_text_keep_types(fn, cfg):
    empty = fn(pa.table({"text": pa.array([], pa.string())}), cfg)
    assert empty.num_rows == 0 and len(empty.schema) > 1
    out = fn(pa.table({"text": pa.array([None, "", GOOD], pa.string())}), cfg)
    assert out.schema == empty.schema and out.num_rows == 3


def test_good_text_passes_every_rule():
    assert c4(GOOD) is None
    assert gq(GOOD) is None
    assert gr(GOOD) is None


LINES_C4 = GOOD.splitlines()


# --- C4 -----------------------------------------------------------------------------------------

def test_c4_lorem_ipsum_drops_the_page():
    assert c4(GOOD + "\nLorem ipsum dolor sit amet, consectetur adipiscing elit.") == "c4_lorem_ipsum"


def test_c4_curly_bracket_drops_the_page_only_in_a_kept_line():
    assert c4(GOOD + "\nThe function returns { x: 1 } to the caller.") == "c4_curly_bracket"
    assert c4(GOOD + "\nfunction main() {") is None  # removed for lack of punctuation first


def test_c4_javascript_line_is_removed_before_the_curly_check():
    out = score_c4_rules(pa.table({"text": [GOOD + "\nPlease enable JavaScript { now } in your browser."]}),
                         C4RulesConfig())
    assert out.column("c4_drop_reason_v1")[0].as_py() is None
    assert out.column("c4_kept_line_frac_v1")[0].as_py() == pytest.approx(5 / 6)
    assert c4("Please enable JavaScript to see this site.\nThis site needs JavaScript to work well.") == "c4_javascript"


def test_c4_policy_lines_are_removed():
    assert c4(GOOD + "\nRead our privacy policy before you sign up.") is None
    assert c4("This website uses cookies to improve it.\nSee the cookie policy for more details.") == "c4_policy"


def test_c4_lines_without_terminal_punctuation_or_with_ellipsis():
    assert c4("Home page of the site\nAbout us and our team\nContact us today") == "c4_no_terminal_punct"
    assert c4("And then the story went on...\nAnd on it went without end...\nUntil it stopped…") \
        == "c4_no_terminal_punct"
    assert c4('He said "this is a fine line of text."\n' + GOOD) is None  # a closing quote ends a line


def test_c4_lines_with_fewer_than_three_words():
    assert c4("Yes.\nNo way.\nGood.") == "c4_too_few_words"
    assert c4("Three words here.\nAnd three more.\nYet three again.", C4RulesConfig(min_sentences=3)) is None


def test_c4_minimum_sentences():
    four = "This is one sentence. This is another one.\nAnd here is a third! Is this the fourth?"
    assert c4(four) == "c4_too_few_sentences"  # the paper's minimum is 5
    assert c4(four + ' He said "a fifth."') is None
    assert c4(four, C4RulesConfig(min_sentences=4)) is None


def test_c4_word_longer_than_1000_characters_removes_the_line():
    assert c4(GOOD + "\nSee " + "x" * 1001 + " here.") is None
    out = score_c4_rules(pa.table({"text": [GOOD + "\nSee " + "x" * 1001 + " here."]}), C4RulesConfig())
    assert out.column("c4_kept_line_frac_v1")[0].as_py() == pytest.approx(5 / 6)
    assert c4("See " + "x" * 1001 + " here.\nAnd " + "y" * 2000 + " there.") == "c4_too_long_word"


def test_c4_citations_do_not_hide_terminal_punctuation():
    assert c4("\n".join(line + "[1]" for line in LINES_C4)) is None
    assert c4("\n".join(line + "[note]" for line in LINES_C4)) == "c4_no_terminal_punct"


# --- Gopher quality -----------------------------------------------------------------------------

def test_gopher_word_count_bounds():
    assert gq(" ".join(GOOD.split()[:40])) == "gopher_too_few_words"
    assert gq(" ".join((GOOD + " ") * 1200)) == "gopher_too_many_words"  # > 100,000 words
    assert gq(GOOD, GopherQualityConfig(max_words=50)) == "gopher_too_many_words"


def test_gopher_mean_word_length():
    assert gq("the cat is on a mat and it is to be as it was " * 5) == "gopher_short_mean_word"
    long = "the internationalization and characterization of extraordinarily incomprehensible "
    assert gq((long + "responsibilities with ") * 8) == "gopher_long_mean_word"


def test_gopher_hash_and_ellipsis_ratios_are_separate():
    n_words = len(GOOD.split())
    assert gq(GOOD + " #tag" * (n_words // 10 - 1)) is None  # ratio just under 0.1
    assert gq(GOOD + " #tag" * (n_words // 10 + 2)) == "gopher_hash_ratio"
    assert gq(GOOD + " wait..." * (n_words // 10 + 2)) == "gopher_ellipsis_ratio"
    # "for either the hash symbol or the ellipsis": 0.08 of each passes, though together they are 0.16.
    k = int(0.08 * n_words)
    assert gq(GOOD + " #tag" * k + " wait..." * k) is None


def test_gopher_bullet_lines():
    bullets = "\n".join("- " + line for line in GOOD.splitlines())
    assert gq(bullets) == "gopher_bullet_lines"
    assert gq(bullets + "\nA closing line without a bullet makes it fine.") is None  # 5 of 6 < 0.9


def test_gopher_ellipsis_lines():
    lines = GOOD.splitlines()
    assert gq("\n".join(lines[:3] + [l[:-1] + "..." for l in lines[3:]])) == "gopher_ellipsis_lines"  # 2 of 5
    assert gq("\n".join(lines[:2] + [l[:-1] + "…" for l in lines[2:]])) == "gopher_ellipsis_lines"
    assert gq("\n".join(lines + ["More to come..."])) is None  # 1 of 6


def test_gopher_alphabetic_words():
    n_words = len(GOOD.split())
    assert gq(GOOD + " 2024" * (n_words // 5)) is None  # 1/6 without a letter
    assert gq(GOOD + " 2024 | 42" * (n_words // 6)) == "gopher_non_alpha_words"


def test_gopher_stop_words():
    no_stop = ("Cats sleep often during long afternoons. Dogs bark loudly at passing cars. Birds sing "
               "early every morning near our house. Fish swim quietly in cold clear lakes. ") * 3
    assert gq(no_stop) == "gopher_few_stop_words"
    assert gq(no_stop + " the") == "gopher_few_stop_words"  # one distinct stop word
    assert gq(no_stop + " the and") is None
    assert gq(no_stop + ' "The, (and).') is None  # case and punctuation around the word ignored


# --- Gopher repetition --------------------------------------------------------------------------

LINES = GOOD.splitlines()


def test_duplicate_lines_fraction():
    assert gr("\n".join(LINES + ["Hello there."] * 3)) is None  # 2 duplicates of 8 lines
    assert gr("\n".join(LINES + ["Hello there."] * 5)) == "gopher_dup_line_frac"  # 4 of 10


NO_NGRAM_RULES = GopherRepetitionConfig(top_ngram_char_frac={}, dup_ngram_char_frac={})


def test_duplicate_line_characters():
    long_line = " ".join(LINES[:3])
    assert gr("\n".join(LINES + [long_line] * 2)) == "gopher_dup_line_char_frac"  # 1 of 7 lines, 25% chars
    assert gr("\n".join(LINES + [LINES[1]]), NO_NGRAM_RULES) is None  # 1 of 6 lines, 18% of chars


def _paragraph(i: int) -> str:
    return "\n".join(" ".join(f"w{i}x{j}y{k}" for k in range(12)) for j in range(5))


def test_duplicate_paragraphs():
    paras = [_paragraph(i) for i in range(4)]
    assert gr("\n\n".join(paras + ["Short note."] * 4)) == "gopher_dup_para_frac"  # 3 of 8 paragraphs
    assert gr("\n\n".join(paras + ["Short note."] * 2)) is None  # 1 of 6
    text = "\n\n".join(paras[:2] + [paras[2], paras[2]])
    off = GopherRepetitionConfig(dup_line_frac=1.0, dup_line_char_frac=1.0)
    assert gr(text, off) == "gopher_dup_para_char_frac"
    assert gr(text) == "gopher_dup_line_char_frac"  # its lines repeat too (5 of 20), and lines come first


def _filler(m: int) -> list[str]:
    return [f"f{i:04d}" for i in range(m)]  # distinct 5-character words


@pytest.mark.parametrize("n,words", [(2, ["alpha", "beta"]), (3, ["alpha", "beta", "gamma"]),
                                     (4, ["ab", "cd", "ef", "gh"])])
def test_top_ngram(n, words):
    # The n-gram repeats k times between distinct words; k is the smallest count that fails rule n.
    limits = {2: 0.20, 3: 0.18, 4: 0.16}
    base = _filler(90)
    for k in range(2, 60):
        body = []
        for i, w in enumerate(base):
            body.append(w)
            if i < k:
                body.extend(words)
        text = " ".join(body)
        reason = gr(text)
        if reason is not None:
            break
    assert reason == f"gopher_top_{n}gram"
    # The n-gram as text ("alpha beta": its words and the spaces between), k times, over the document.
    assert k * len(" ".join(words)) / len(text) > limits[n]
    assert (k - 1) * len(" ".join(words)) / (len(text) - len(" ".join(words)) - 1) <= limits[n]


@pytest.mark.parametrize("n,limit", [(5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.10)])
def test_duplicate_ngrams(n, limit):
    # A 10-word phrase (50 characters without its spaces) occurs twice: its second occurrence is the
    # duplicate, for every n = 5..10, so the covered fraction f = 50 / len(text) is the same for all n
    # and the first failing rule is the n whose limit lies just under f.
    phrase = [f"p{i:04d}" for i in range(10)]
    cfg = GopherRepetitionConfig(top_ngram_char_frac={})
    # len(text) = 5 * (m + 20) + (m + 19) spaces; choose m so that f lies in (limit, limit + 0.004].
    m = int((50 / (limit + 0.004) - 119) / 6) + 1
    f = 50 / (6 * m + 119)
    assert limit < f <= {5: 1.0, 6: 0.15, 7: 0.14, 8: 0.13, 9: 0.12, 10: 0.11}[n]
    filler = _filler(m)
    text = " ".join(filler[: m // 2] + phrase + filler[m // 2:] + phrase)
    assert len(text) == 6 * m + 119
    assert gr(text, cfg) == f"gopher_dup_{n}gram"
    assert gr(" ".join(filler[: m // 2] + phrase + filler[m // 2:]), cfg) is None


def _naive_ngram_reason(words: list[str], cfg: GopherRepetitionConfig) -> str | None:
    """The rules written the slow, obvious way from the definitions, to check the vectorized hashing."""
    total = len(" ".join(words))  # the document's characters: the words and one space between each
    checks = []
    for n, limit in cfg.top_ngram_char_frac.items():
        grams = Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))  # in order of first occurrence
        top = max(grams.values(), default=0)
        chars = next((len(" ".join(g)) for g, c in grams.items() if c == top), 0)  # the first most frequent
        checks.append((n, "top", top * chars / total > limit))
    for n, limit in cfg.dup_ngram_char_frac.items():
        seen, covered = set(), set()
        for i in range(len(words) - n + 1):
            gram = tuple(words[i:i + n])
            if gram in seen:  # an occurrence after the first
                covered.update(range(i, i + n))
            seen.add(gram)
        checks.append((n, "dup", sum(len(words[i]) for i in covered) / total > limit))
    for n, kind, failed in sorted(checks):
        if failed:
            return f"gopher_{kind}_{n}gram"
    return None


_D = GopherRepetitionConfig()
_ONE_RULE = ([GopherRepetitionConfig(top_ngram_char_frac={n: f}, dup_ngram_char_frac={})
              for n, f in _D.top_ngram_char_frac.items()]
             + [GopherRepetitionConfig(top_ngram_char_frac={}, dup_ngram_char_frac={n: f})
                for n, f in _D.dup_ngram_char_frac.items()])


@pytest.mark.parametrize("cfg", [_D] + _ONE_RULE, ids=["defaults"] + [f"top-{n}" for n in _D.top_ngram_char_frac]
                         + [f"dup-{n}" for n in _D.dup_ngram_char_frac])
def test_vectorized_ngram_rules_match_a_naive_implementation(cfg):
    rng = random.Random(7)
    texts, expected = [], []
    for _ in range(300):
        vocab = [rng.choice("abcdefgh") * rng.randint(1, 6) for _ in range(rng.randint(2, 40))]
        words = [rng.choice(vocab) for _ in range(rng.randint(1, 120))]
        if rng.random() < 0.3:  # a copied passage, so that long n-grams repeat too
            a = rng.randrange(len(words))
            words += words[a:a + rng.randint(5, 30)]
        texts.append(" ".join(words))  # one line: only the n-gram rules can fire
        expected.append(_naive_ngram_reason(words, cfg))
    got = score_gopher_repetition(pa.table({"text": texts}), cfg).column("gopher_repetition_reason_v2").to_pylist()
    assert got == expected
    assert len(set(expected)) >= (4 if cfg is _D else 2)  # the sample exercises each rule both ways


def test_c4_lines_transform_keeps_only_the_lines_c4_keeps():
    from corpus.stages.c4_lines import c4_lines

    page = ("Home | About | Contact\n" + GOOD.replace("\n", "\n  ") + "\nPlease enable JavaScript to continue.\n"
            "This site uses cookies to work well.\nOk.")
    out = c4_lines(pa.table({"id": ["a", "b"], "text": [page, "menu\nlogin"]}), C4RulesConfig())
    assert out.column("text").to_pylist() == [GOOD, ""]
    assert out.column("id").to_pylist() == ["a", "b"] and out.schema.field("text").type == pa.string()
    assert c4_lines(pa.table({"text": pa.array([], pa.string())}), C4RulesConfig()).num_rows == 0
