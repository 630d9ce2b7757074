"""CCNet normalization on hand-written cases (rules from cc_net/text_normalizer.py `normalize`)."""

from corpus.lm.normalize import normalize_line, normalized_lines, strip_accents


def test_case_accents_and_digits():
    assert normalize_line("  Élève à l'École 1992  ") == "eleve a l'ecole 0000"
    # Unicode decimal digits too (Arabic-Indic three, Devanagari five, full-width four).
    assert normalize_line("\u0663\u096b\uff14") == "000"
    # NFD without recomposition: the ligature-free letters keep their base, the marks go.
    assert strip_accents("ñandú Ørsted") == "nandu Ørsted"  # Ø has no decomposition in Unicode


def test_unicode_punctuation_table():
    assert normalize_line("«Oui» — dit-il…") == '"oui"  -  dit-il...'
    assert normalize_line("你好，世界。") == "你好,世界."
    assert normalize_line("\u2018quoted\u2019 \u2013 x") == "\u2018quoted' - x"  # only U+2019 is in the table
    assert normalize_line("【注】（一）％") == "[注](一)%"


def test_control_characters_removed():
    # Tabs and other C0/C1 controls disappear without leaving a space, as in CCNet.
    assert normalize_line("a\tb\x00c\x85d\x7fe") == "abcde"


def test_lines_split_and_blank_lines_dropped():
    assert normalized_lines("First line.\n\n   \nSecond LINE 42\n") == ["first line.", "second line 00"]
    assert normalized_lines("") == []
