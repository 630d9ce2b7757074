"""KenLM perplexity of each document and its CCNet bucket (head / middle / tail).

A scoring stage: it only adds `ppl_v1` (float64) and `ppl_bucket_v1` (string). Models come from
`refinery lm train` (one SentencePiece + 5-gram KenLM pair per language, see corpus/lm/model.py for the
scoring formula) and load once per actor, after their sha256s are checked; `model_dir` may be a URI
(s3://, gs://) that each node copies once into its asset cache, and `model_sha256` pins the models. The model of a document is
picked by its language column (`lang_v1`, written by the langid stage) when the job has that column,
else every document is scored with the model of `language`. A document whose language has no loaded
model, or that has no text to score, gets nulls. Buckets use the cut-offs file that `refinery lm
cutoffs` writes from a sample of the user's own data (CCNet's 30th / 60th percentiles by default).
The keep rule (e.g. drop `tail`) lives in the job's select step.
"""

from __future__ import annotations

import dataclasses
import os

import pyarrow as pa

from corpus.config import setting
from corpus.stages.base import BuildContext, StageSpec, fixed

COLUMNS = ("ppl_v1", "ppl_bucket_v1")


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class PerplexityConfig:
    model_dir: str = setting("~/.cache/refinery/lm",
                             doc="folder holding `<lang>.json` + model files written by `refinery lm train`")
    languages: tuple[str, ...] = setting(("en",), doc="languages whose models are loaded (one model each)")
    language: str = setting("en", doc="language of every document when the job has no language column")
    lang_column: str = setting("lang_v1", doc="column with each document's language code, used if present")
    per_line: bool = setting(True, doc="score each line as a sentence (CCNet's DocLM); false: the whole "
                                       "document as one line, as CCNet's mine.py does after normalizing "
                                       "away its newlines")
    model_sha256: dict[str, str] | None = setting(None, doc="optional pin: language -> sha256 of its "
                                                           "KenLM file (in <lang>.json); another model "
                                                           "is refused, and a new pin re-runs the stage")
    cutoffs: str | None = setting(None, doc="cut-offs JSON from `refinery lm cutoffs`; "
                                            "default: <model_dir>/cutoffs.json; buckets are null without one")

    def __post_init__(self) -> None:
        if not self.languages:
            raise ValueError("languages: give at least one language code, e.g. [en]")


class PerplexityScorer:
    """Loads each language's model once (per actor) and scores whole batches."""

    def __init__(self, cfg: PerplexityConfig, use_lang_column: bool):
        from corpus.io.files import filesystem
        from corpus.lm.cutoffs import read_cutoffs
        from corpus.lm.model import LanguageModel, metadata_path

        def exists(path: str) -> bool:
            fs, p = filesystem(path)
            return fs.exists(p)

        self.cfg = cfg
        self.use_lang_column = use_lang_column
        if not use_lang_column and cfg.language not in cfg.languages:
            raise ValueError(f"perplexity: the job has no '{cfg.lang_column}' column, so every document is "
                             f"in `language` {cfg.language!r}, which is not among `languages` "
                             f"{list(cfg.languages)}. Fix: add it to `languages` or run langid first")
        self.models = {}
        for lang in cfg.languages:
            path = metadata_path(cfg.model_dir, lang)
            if not exists(path):
                raise FileNotFoundError(f"perplexity: no model for {lang!r} ({path} is missing). Fix: "
                                        f"`refinery lm train --lang {lang} --out {cfg.model_dir}`")
            self.models[lang] = LanguageModel(path, (cfg.model_sha256 or {}).get(lang))
        cutoffs_path = cfg.cutoffs or metadata_path(cfg.model_dir, "cutoffs")
        if "://" not in cutoffs_path:
            cutoffs_path = os.path.expanduser(cutoffs_path)
        if cfg.cutoffs and not exists(cutoffs_path):
            raise FileNotFoundError(f"perplexity: cut-offs file {cutoffs_path} is missing. Fix: "
                                    f"`refinery lm cutoffs --parquet ... --lang ... --out {cfg.cutoffs}`")
        self.cutoffs = read_cutoffs(cutoffs_path) if exists(cutoffs_path) else {}

    def __call__(self, batch: pa.Table) -> pa.Table:
        from corpus.lm.cutoffs import assign_buckets

        texts = batch.column("text").to_pylist()
        if self.use_lang_column:
            langs = batch.column(self.cfg.lang_column).to_pylist()
        else:
            langs = [self.cfg.language] * len(texts)
        ppl: list[float | None] = [None] * len(texts)
        for lang, model in self.models.items():
            rows = [i for i, doc_lang in enumerate(langs) if doc_lang == lang]
            if rows:
                values = model.score_texts([texts[i] for i in rows], self.cfg.per_line)
                for i, value in zip(rows, values):
                    ppl[i] = value
        batch = batch.append_column(pa.field("ppl_v1", pa.float64()), pa.array(ppl, type=pa.float64()))
        buckets = assign_buckets(ppl, langs, self.cutoffs)
        return batch.append_column(pa.field("ppl_bucket_v1", pa.string()), buckets)


def build_perplexity(cfg: PerplexityConfig, ctx: BuildContext) -> PerplexityScorer:
    return PerplexityScorer(cfg, use_lang_column=cfg.lang_column in ctx.column_origin)


def _model_files(cfg: PerplexityConfig) -> tuple[tuple[str, str], ...]:
    from corpus.lm.model import metadata_path

    files = tuple((metadata_path(cfg.model_dir, lang), f"refinery lm train --lang {lang} --out {cfg.model_dir}")
                  for lang in cfg.languages)
    if cfg.cutoffs:
        files += ((cfg.cutoffs, f"refinery lm cutoffs --run RUN_DIR --lang {cfg.languages[0]} --out {cfg.cutoffs}"),)
    return files


SPEC = StageSpec(
    name="perplexity",
    config=PerplexityConfig,
    kind="score",
    build=build_perplexity,
    reads=fixed("text"),
    writes=fixed(*COLUMNS),
    types=lambda _cfg: {"ppl_v1": pa.float64(), "ppl_bucket_v1": pa.string()},
    files=lambda cfg: _model_files(cfg),
)
