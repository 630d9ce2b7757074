"""arXiv-like LaTeX sources: a .tex/.Rnw file (optionally .gz), or a paper as a folder or archive.

A paper is a main file (one with \\documentclass or \\begin{document}) with its \\input/\\include
files resolved relative to it: inside the archive or folder for a tree shard, next to the file on
disk for a single-file shard. Every main file of a tree is one paper; .Rnw files (Sweave/knitr
vignettes) have their code chunks removed. Cleaning follows the LLaMA-1 rules (latex.py).

Rejects: latex_fragment (a file that is only ever \\input by a main file), no_section,
malformed_latex (unbalanced braces, bad definitions), invalid_utf8, file_too_large,
empty_file, corrupt_archive / corrupt_compressed_stream, decompression_limit, empty_after_cleaning.
"""

from __future__ import annotations

import dataclasses
import os
import posixpath
import re
from typing import Callable, Iterator

from corpus.config import setting
from corpus.sources.base import DocumentBuffer, ReadBatch, Shard, SourceSpec
from corpus.sources.latex import LatexError, clean_latex
from corpus.sources.open_input import CORRUPT_STREAM_ERRORS, open_binary, stream_error_reason
from corpus.sources.trees import ARCHIVE_ERRORS, TreeError, decode_utf8, is_archive, iter_tree

_MAIN = re.compile(r"\\documentclass|\\begin\{document\}")
_SWEAVE_SUFFIXES = (".rnw", ".snw", ".rtex")


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class ArxivConfig:
    extensions: tuple[str, ...] = setting(("tex", "ltx", "rnw", "snw"), doc="LaTeX file extensions")
    max_file_bytes: int = setting(16 << 20, doc="larger LaTeX files are rejected unread", unit="bytes", ge=1024)
    min_chars: int = setting(1, doc="papers with less text after cleaning are rejected", unit="chars", ge=1)


def read_arxiv(shard: Shard, cfg: ArxivConfig, batch_rows: int) -> Iterator[ReadBatch]:
    buf = DocumentBuffer(shard, batch_rows)
    if os.path.isdir(shard.path) or is_archive(shard.path):
        _read_tree(shard, cfg, buf)
    else:
        _read_single(shard, cfg, buf)
    yield buf.take()


def _read_single(shard: Shard, cfg: ArxivConfig, buf: DocumentBuffer) -> None:
    name = os.path.basename(shard.path)
    if name.lower().endswith((".gz", ".bz2", ".xz")):
        name = name.rsplit(".", 1)[0]
    try:
        with open_binary(shard.path) as f:
            data = f.read(cfg.max_file_bytes + 1)
    except CORRUPT_STREAM_ERRORS as exc:
        buf.reject(name, stream_error_reason(exc), f"{type(exc).__name__}: {exc}")
        return
    if len(data) > cfg.max_file_bytes:
        buf.reject(name, "file_too_large", data[:4096], meta={"limit_bytes": cfg.max_file_bytes})
        return
    folder = os.path.dirname(shard.path)

    def load(rel: str) -> str | None:  # \input files next to the main file
        p = os.path.normpath(os.path.join(folder, rel))
        if not os.path.isfile(p) or os.path.getsize(p) > cfg.max_file_bytes:
            return None
        with open(p, "rb") as f:
            return decode_utf8(f.read())[0]

    _paper(buf, name, data, load, cfg, must_be_main=True)


def _read_tree(shard: Shard, cfg: ArxivConfig, buf: DocumentBuffer) -> None:
    exts = tuple("." + e.lower() for e in cfg.extensions)
    files: dict[str, bytes] = {}
    for item in iter_tree(shard.path):
        if isinstance(item, TreeError):
            buf.reject("tree", item.reason, item.detail, meta={"files_before": len(files)})
            return  # a paper with a missing part is not worth keeping
        if not item.path.lower().endswith(exts):
            continue
        try:
            data = item.read(cfg.max_file_bytes)
        except ARCHIVE_ERRORS as exc:  # the archive breaks inside this member
            buf.reject("tree", stream_error_reason(exc, "corrupt_archive"), f"{type(exc).__name__}: {exc}",
                       meta={"files_before": len(files)})
            return
        if data is None:
            buf.reject(item.path, "file_too_large", "", meta={"bytes": item.size})
            continue
        files[item.path] = data
    if not files:
        buf.reject("tree", "empty_file", "", meta={"note": "no LaTeX files"})
        return
    texts = {p: decode_utf8(d)[0] for p, d in files.items()}
    included: set[str] = set()
    mains = [p for p, t in sorted(texts.items()) if t is not None and _MAIN.search(t)]
    for path in mains:
        folder = posixpath.dirname(path)

        def load(rel: str, folder=folder) -> str | None:
            key = posixpath.normpath(posixpath.join(folder, rel))
            if key in texts:
                included.add(key)
                return texts[key]
            return None

        _paper(buf, path, files[path], load, cfg, must_be_main=False)
    for path in sorted(set(files) - set(mains) - included):
        if not files[path].strip():
            buf.reject(path, "empty_file", "")
        elif texts[path] is None:
            buf.reject(path, "invalid_utf8", files[path])
        else:
            buf.reject(path, "latex_fragment", texts[path], meta={"note": "not a main file, not \\input by one"})


def _paper(buf: DocumentBuffer, name: str, data: bytes, load: Callable[[str], str | None], cfg: ArxivConfig,
           *, must_be_main: bool) -> None:
    if not data.strip():
        buf.reject(name, "empty_file", "")
        return
    text, error = decode_utf8(data)
    if text is None:
        buf.reject(name, "invalid_utf8", data, meta={"error": error})
        return
    if must_be_main and not _MAIN.search(text):
        buf.reject(name, "latex_fragment", text, meta={"note": "no \\documentclass: read through its main file"})
        return
    try:
        body, facts = clean_latex(text, load, sweave=name.lower().endswith(_SWEAVE_SUFFIXES))
    except LatexError as exc:
        buf.reject(name, "malformed_latex", text, meta={"error": str(exc)})
        return
    except RecursionError:
        buf.reject(name, "malformed_latex", text, meta={"error": "\\input recursion"})
        return
    meta = {"path": name, **facts}
    if not body:
        buf.reject(name, "no_section", text, meta=meta)
        return
    if len(body) < cfg.min_chars:
        buf.reject(name, "empty_after_cleaning", text, meta=meta)
        return
    buf.add(name, body, meta=meta)


SPEC = SourceSpec(name="arxiv", config=ArxivConfig, read=read_arxiv, folder_shards=True)
