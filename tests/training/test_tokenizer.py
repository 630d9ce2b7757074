import json
import os
import random

import pyarrow as pa
import pytest

from training.tokenizer import (CONFIG_NAME, EOD_TOKEN, PAD_TOKEN, TokenizerTrainConfig, load_tokenizer,
                                sample_documents, train_bpe)

pytest.importorskip("tokenizers")


def _tables(docs, batch):
    for i in range(0, len(docs), batch):
        chunk = docs[i:i + batch]
        yield pa.table({"id": [d[0] for d in chunk], "text": [d[1] for d in chunk]})


def test_sample_is_bottom_k_and_independent_of_order_and_batching():
    docs = [(f"doc-{i}", f"text {i}") for i in range(500)]
    a = sample_documents(_tables(docs, 7), k=50, seed=3)
    shuffled = docs[:]
    random.Random(1).shuffle(shuffled)
    b = sample_documents(_tables(shuffled, 64), k=50, seed=3)
    assert a.texts == b.texts and len(a.texts) == 50 and a.seen == b.seen == 500
    assert sample_documents(_tables(docs, 7), k=50, seed=4).texts != a.texts  # the seed draws another sample
    everything = sample_documents(_tables(docs, 7), k=10_000, seed=3)
    assert sorted(everything.texts) == sorted(t for _, t in docs)


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="vocab_size"):
        TokenizerTrainConfig(vocab_size=100)
    with pytest.raises(ValueError, match="sample_docs"):
        TokenizerTrainConfig(sample_docs=0)


def test_saved_tokenizer_config_and_special_tokens(tiny_tokenizer):
    tok = load_tokenizer(tiny_tokenizer)
    with open(os.path.join(tiny_tokenizer, CONFIG_NAME)) as f:
        config = json.load(f)
    assert config["vocab_size"] == tok.tokenizer.get_vocab_size() == 1000
    assert (tok.eod_id, tok.pad_id) == (tok.tokenizer.token_to_id(EOD_TOKEN), tok.tokenizer.token_to_id(PAD_TOKEN))
    assert tok.eod_id != tok.pad_id
    assert config["sample"]["docs"] == config["sample"]["docs_seen"] == 61
    # Special tokens are never produced from text: the literal string is split into ordinary tokens.
    text = f"a{EOD_TOKEN}b{PAD_TOKEN}"
    ids = tok.tokenizer.encode(text, add_special_tokens=False).ids
    assert tok.eod_id not in ids and tok.pad_id not in ids
    assert tok.tokenizer.decode(ids, skip_special_tokens=False) == text


def test_round_trip_is_exact_on_the_corpus(tiny_run, tiny_tokenizer):
    tok = load_tokenizer(tiny_tokenizer).tokenizer
    _, texts_by_domain = tiny_run
    texts = [t for ts in texts_by_domain.values() for t in ts]
    texts += ["  leading spaces", "tabs\tand\r\nCRLF", "naïve café – 東京 🎭", "\x00nul", f"x{EOD_TOKEN}y"]
    for text, enc in zip(texts, tok.encode_batch(texts, add_special_tokens=False)):
        assert tok.decode(enc.ids, skip_special_tokens=False) == text


def test_training_is_deterministic(tiny_run):
    _, texts_by_domain = tiny_run
    texts = texts_by_domain["books"]
    cfg = TokenizerTrainConfig(vocab_size=600)
    assert train_bpe(texts, cfg).to_str() == train_bpe(texts, cfg).to_str()


def test_a_changed_tokenizer_file_is_refused(tiny_tokenizer, tmp_path):
    import shutil

    copy = tmp_path / "tok"
    shutil.copytree(tiny_tokenizer, copy)
    with open(copy / "tokenizer.json", "a") as f:
        f.write(" ")
    with pytest.raises(ValueError, match="sha256"):
        load_tokenizer(str(copy))
    with pytest.raises(FileNotFoundError, match="refinery tokenizer train"):
        load_tokenizer(str(tmp_path / "nothing"))
