"""A byte-level BPE tokenizer trained with HF `tokenizers` on a deterministic sample of the corpus.

Byte-level BPE (GPT-2 style: no normalizer, no prefix space) maps every string to ids and back
exactly, so detokenized documents equal the corpus text byte for byte. The sample is a bottom-k
sample over a keyed hash of each document's `id`: the same documents are chosen whatever the order
of the files or the batch size, in O(k) memory.

Saved as `<dir>/tokenizer.json` (the HF file) and `<dir>/refinery_tokenizer.json` (our config:
special tokens with ids, vocabulary size, the sha256 of tokenizer.json, the sample description).
"""

from __future__ import annotations

import dataclasses
import hashlib
import heapq
import json
import os
from typing import Any, Iterable

import pyarrow as pa

from training.atomic_files import write_json_atomic, write_text_atomic

CONFIG_NAME = "refinery_tokenizer.json"
TOKENIZER_NAME = "tokenizer.json"
CONFIG_FORMAT = "refinery-tokenizer-v1"
EOD_TOKEN = "<|endoftext|>"
PAD_TOKEN = "<|pad|>"


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class TokenizerTrainConfig:
    vocab_size: int = 32000
    """Target vocabulary size in tokens, special tokens and the 256 byte symbols included."""
    sample_docs: int = 100_000
    """Documents in the training sample (bottom-k over hash(seed, id)); all documents if fewer."""
    min_frequency: int = 2
    """A pair must occur at least this many times in the sample to be merged."""
    seed: int = 0
    """Keys the sample hash: another seed draws another sample."""

    def __post_init__(self):
        if self.vocab_size < 256 + 2:
            raise ValueError(f"vocab_size={self.vocab_size}: must be at least 258 (256 bytes + EOD + PAD)")
        if self.vocab_size > 2**32 - 1:
            raise ValueError(f"vocab_size={self.vocab_size}: must fit in uint32")
        if self.sample_docs < 1:
            raise ValueError(f"sample_docs={self.sample_docs}: must be at least 1")
        if self.min_frequency < 1:
            raise ValueError(f"min_frequency={self.min_frequency}: must be at least 1")


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Sample:
    texts: list[str]
    """Texts of the chosen documents, in hash order (deterministic)."""
    seen: int
    """Documents offered to the sampler."""
    chars: int


def _rank(seed: int, doc_id: str) -> bytes:
    return hashlib.blake2b(doc_id.encode("utf-8"), digest_size=8, key=seed.to_bytes(8, "little")).digest()


def sample_documents(tables: Iterable[pa.Table], k: int, seed: int) -> Sample:
    """Bottom-k sample of documents by hash(seed, id) from tables with `id` and `text` columns."""
    heap: list[tuple[bytes, str, str]] = []  # max-heap on rank via inverted bytes: keeps the k smallest
    seen = 0
    for table in tables:
        for doc_id, text in zip(table.column("id").to_pylist(), table.column("text").to_pylist()):
            seen += 1
            if text is None:
                continue
            rank = _rank(seed, doc_id)
            inv = bytes(255 - b for b in rank)
            if len(heap) < k:
                heapq.heappush(heap, (inv, doc_id, text))
            elif inv > heap[0][0]:
                heapq.heapreplace(heap, (inv, doc_id, text))
    chosen = sorted(heap, reverse=True)  # ascending rank; ties broken by id
    texts = [t for _, _, t in chosen]
    return Sample(texts=texts, seen=seen, chars=sum(len(t) for t in texts))


def train_bpe(texts: list[str], cfg: TokenizerTrainConfig):
    """A byte-level BPE `tokenizers.Tokenizer` with EOD and PAD as ids 0 and 1."""
    try:
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    except ImportError as exc:
        raise ImportError("training a tokenizer needs HF tokenizers: pip install tokenizers") from exc
    tokenizer = Tokenizer(models.BPE())
    # add_prefix_space=False: a leading space would not survive decode, breaking the exact round trip.
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=cfg.vocab_size, min_frequency=cfg.min_frequency,
                                  special_tokens=[EOD_TOKEN, PAD_TOKEN], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(texts, trainer=trainer, length=len(texts))
    return tokenizer


def save_tokenizer(tokenizer, out_dir: str, *, cfg: TokenizerTrainConfig, sample: Sample,
                   sources: list[str]) -> dict[str, Any]:
    """Write tokenizer.json then the config that names its sha256; returns the config."""
    import tokenizers

    os.makedirs(out_dir, exist_ok=True)
    tok_path = os.path.join(out_dir, TOKENIZER_NAME)
    write_text_atomic(tok_path, tokenizer.to_str(pretty=True))
    with open(tok_path, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    config = {
        "format": CONFIG_FORMAT, "type": "byte_level_bpe", "tokenizer_file": TOKENIZER_NAME,
        "tokenizer_sha256": sha, "vocab_size": tokenizer.get_vocab_size(with_added_tokens=True),
        "requested_vocab_size": cfg.vocab_size,
        "special_tokens": {"eod": {"token": EOD_TOKEN, "id": tokenizer.token_to_id(EOD_TOKEN)},
                           "pad": {"token": PAD_TOKEN, "id": tokenizer.token_to_id(PAD_TOKEN)}},
        "sample": {"method": "bottom-k over blake2b-64(key=seed, id)", "seed": cfg.seed,
                   "requested_docs": cfg.sample_docs, "docs": len(sample.texts), "docs_seen": sample.seen,
                   "chars": sample.chars, "sources": sources},
        "min_frequency": cfg.min_frequency, "tokenizers_version": tokenizers.__version__,
    }
    write_json_atomic(os.path.join(out_dir, CONFIG_NAME), config)
    return config


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class LoadedTokenizer:
    tokenizer: Any
    """The `tokenizers.Tokenizer`."""
    config: dict[str, Any]
    eod_id: int
    pad_id: int
    vocab_size: int
    sha256: str


def load_tokenizer(folder: str) -> LoadedTokenizer:
    """The tokenizer saved by `save_tokenizer`; fails if tokenizer.json no longer matches its sha256."""
    try:
        from tokenizers import Tokenizer
    except ImportError as exc:
        raise ImportError("loading the tokenizer needs HF tokenizers: pip install tokenizers") from exc
    cfg_path = os.path.join(folder, CONFIG_NAME)
    if not os.path.exists(cfg_path):
        raise FileNotFoundError(f"{cfg_path}: missing. Fix: train one with `refinery tokenizer train --out {folder}`")
    with open(cfg_path, encoding="utf-8") as f:
        config = json.load(f)
    if config.get("format") != CONFIG_FORMAT:
        raise ValueError(f"{cfg_path}: format {config.get('format')!r}, expected {CONFIG_FORMAT!r}")
    tok_path = os.path.join(folder, config["tokenizer_file"])
    with open(tok_path, "rb") as f:
        raw = f.read()
    sha = hashlib.sha256(raw).hexdigest()
    if sha != config["tokenizer_sha256"]:
        raise ValueError(f"{tok_path}: sha256 {sha} differs from {config['tokenizer_sha256']} in {CONFIG_NAME}: "
                         "the tokenizer was changed after training. Fix: retrain it, or restore the file.")
    tokenizer = Tokenizer.from_str(raw.decode("utf-8"))
    # Text that spells a special token ("<|endoftext|>" inside a document) must stay text: otherwise
    # a document could inject a document boundary. EOD ids are appended by the exporter only.
    tokenizer.encode_special_tokens = True
    special = config["special_tokens"]
    return LoadedTokenizer(tokenizer=tokenizer, config=config, eod_id=special["eod"]["id"],
                           pad_id=special["pad"]["id"], vocab_size=config["vocab_size"], sha256=sha)
