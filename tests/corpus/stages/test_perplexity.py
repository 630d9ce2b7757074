"""The perplexity stage: typed columns on an empty batch, model choice by language, buckets, config.

The model is a tiny SentencePiece + 5-gram KenLM trained here with the real lmplz / build_binary on
300 real Wikipedia summaries (sample `wiki-summaries`); skips with the build command when the KenLM
tools or packages are missing.
"""

import json
import os

import pyarrow as pa
import pytest

from corpus.config import ConfigError, config_from_dict
from corpus.stages import STAGES
from corpus.stages.base import BuildContext
from corpus.stages.perplexity import PerplexityConfig
from schemas.arrow import DOCUMENT_V1
from run_helpers import sample_unavailable


def docs(texts, langs=None):
    n = len(texts)
    table = pa.table({"id": [str(i) for i in range(n)], "domain": ["c4"] * n, "text": texts,
                      "url": [None] * n, "source": ["x"] * n, "meta": [None] * n}, schema=DOCUMENT_V1)
    if langs is not None:
        table = table.append_column(pa.field("lang_v1", pa.string()), pa.array(langs, pa.string()))
    return table


def ctx(columns=("id", "domain", "text", "url", "source", "meta")):
    return BuildContext(phase="quality", stage="perplexity", column_origin={c: "source" for c in columns},
                        work_dir="/nonexistent")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    pytest.importorskip("kenlm", reason="pip install kenlm (the `quality` extra)")
    pytest.importorskip("sentencepiece", reason="pip install sentencepiece (the `quality` extra)")
    from corpus.lm.tools import ToolMissing, find_tool
    from corpus.lm.train import read_reference, train_language_model
    from corpus.samples import SampleUnavailable

    try:
        find_tool("lmplz"), find_tool("build_binary")
    except ToolMissing as exc:
        pytest.skip(str(exc))
    try:
        docs_en, source = read_reference("en")
    except SampleUnavailable as exc:
        sample_unavailable(exc)
    out = tmp_path_factory.mktemp("lm")
    train_language_model(docs_en[:300], lang="en", out_dir=str(out), source=source,
                         vocab_size=400, memory="100M")
    return str(out), docs_en


def build(cfg_dict, context):
    cfg = config_from_dict(PerplexityConfig, cfg_dict, "stage")
    return STAGES["perplexity"].build(cfg, context)


def test_config_is_strict():
    with pytest.raises(ConfigError, match="languages"):
        config_from_dict(PerplexityConfig, {"languages": []}, "stage")
    with pytest.raises(ConfigError, match="model_dri"):
        config_from_dict(PerplexityConfig, {"model_dri": "x"}, "stage")
    assert STAGES["perplexity"].kind == "score"
    assert STAGES["perplexity"].writes(PerplexityConfig()) == ("ppl_v1", "ppl_bucket_v1")


def test_missing_model_names_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="refinery lm train --lang en"):
        build({"model_dir": str(tmp_path)}, ctx())


def test_empty_batch_returns_typed_columns(model_dir):
    scorer = build({"model_dir": model_dir[0]}, ctx())
    out = scorer(docs([]))
    assert out.num_rows == 0
    assert out.schema.field("ppl_v1").type == pa.float64()
    assert out.schema.field("ppl_bucket_v1").type == pa.string()
    assert out.schema.names[:6] == DOCUMENT_V1.names


def test_language_column_picks_the_model_and_buckets_follow_cutoffs(model_dir, tmp_path):
    from corpus.lm.cutoffs import write_cutoffs
    from corpus.lm.model import LanguageModel

    folder, texts = model_dir
    batch_texts = [texts[500], texts[501], texts[502], "", texts[503]]
    expected = LanguageModel(os.path.join(folder, "en.json")).score_texts(batch_texts)
    lo, hi = sorted(expected[:3])[0], sorted(expected[:3])[2]
    cut = str(tmp_path / "cut.json")
    write_cutoffs(cut, "en", {"head": (lo + 1e-9), "tail": hi, "n_docs": 3}, (30.0, 60.0))

    with_lang = ctx(("id", "domain", "text", "url", "source", "meta", "lang_v1"))
    scorer = build({"model_dir": folder, "cutoffs": cut}, with_lang)
    out = scorer(docs(batch_texts, ["en", "en", "en", "en", "fr"]))
    ppl = out.column("ppl_v1").to_pylist()
    assert ppl[:3] == pytest.approx(expected[:3], rel=1e-12)
    assert ppl[3:] == [None, None]  # nothing to score; no French model loaded
    buckets = out.column("ppl_bucket_v1").to_pylist()
    assert sorted(buckets[:3]) == ["head", "middle", "tail"]
    assert buckets[3:] == [None, None]

    # Without a language column in the job, every document is scored with `language`.
    plain = build({"model_dir": folder}, ctx())(docs(batch_texts))
    assert plain.column("ppl_v1").to_pylist()[4] == pytest.approx(expected[4], rel=1e-12)
    assert plain.column("ppl_bucket_v1").null_count == 5  # no cut-offs file in the model folder


def test_fixed_language_needs_its_model(model_dir):
    with pytest.raises(ValueError, match="not among `languages`"):
        build({"model_dir": model_dir[0], "language": "fr"}, ctx())


def test_models_from_a_uri_and_pinned(model_dir):
    """A cluster reads the model folder from a URI; each node verifies and caches the files."""
    import fsspec

    folder, texts = model_dir
    fs = fsspec.filesystem("memory")
    for name in ("en.json", "en.sp.model", "en.kenlm"):
        with open(os.path.join(folder, name), "rb") as f:
            fs.pipe(f"/lm-test/{name}", f.read())
    local = build({"model_dir": folder}, ctx())(docs(texts[600:603])).column("ppl_v1")
    with open(os.path.join(folder, "en.json")) as f:
        sha = json.load(f)["files"]["kenlm"]["sha256"]
    remote = build({"model_dir": "memory://lm-test", "model_sha256": {"en": sha}}, ctx())
    assert remote(docs(texts[600:603])).column("ppl_v1").equals(local)
    with pytest.raises(ValueError, match="pins"):
        build({"model_dir": "memory://lm-test", "model_sha256": {"en": "f" * 64}}, ctx())


def test_named_cutoffs_file_must_exist(model_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="refinery lm cutoffs"):
        build({"model_dir": model_dir[0], "cutoffs": str(tmp_path / "none.json")}, ctx())
