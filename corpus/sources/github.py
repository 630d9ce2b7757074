"""GitHub-like repository trees: a folder or an archive (.tar.gz, .crate, .zip) per repository.

One record per kept file, with repo, path, language (by extension) and the repository's license
(SPDX expression, see licenses.py). Following LLaMA-1 (sec. 2: "kept only projects that are
distributed under the Apache, BSD and MIT licenses"), only permissively licensed repositories are
kept, by default MIT, BSD-2-Clause, BSD-3-Clause and Apache-2.0. The per-file quality filters and
their thresholds are in code_files.py, with their source.

Each file that is not kept becomes a reject row with its reason: license_not_permissive,
license_unknown, extension_not_allowed, license_file, file_too_large, binary_file, invalid_utf8,
empty_file, line_too_long, mean_line_too_long, low_alphanumeric, duplicate_content; a damaged archive
ends the repository with corrupt_archive, one that expands too far with decompression_limit. Dropped
files keep their path in `source` and `meta`, not their content (a rejected .png is no use as text).

The tree is read twice (archives are streamed, never unpacked): a first pass finds the repository
root and its license files and metadata, the second emits the files. A shard that is one plain file
(the runtime walks an input folder into files) belongs to the nearest folder above it that holds a
license or package-metadata file; its records are the same, but dedup then only sees that file. Exact dedup by content hash
(sha256 of the cleaned text) is within the shard, i.e. within one repository; duplicates across
repositories are the cross-shard exact-dedup phase's job.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from typing import Iterator

from corpus.config import setting
from corpus.sources.base import DocumentBuffer, ReadBatch, Shard, SourceSpec
from corpus.sources.code_files import LANGUAGES, language_of, line_stats, strip_license_header
from corpus.sources.licenses import LICENSE_FILE, METADATA_FILES, is_permitted, repo_license
from corpus.sources.open_input import stream_error_reason
from corpus.sources.trees import (ARCHIVE_ERRORS, TreeError, TreeFile, common_root, decode_utf8, is_archive,
                                  iter_tree, tree_name)

_META_LIMIT = 256 << 10  # license and metadata files bigger than this are not license files


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class GithubConfig:
    allowed_licenses: tuple[str, ...] = setting(
        ("MIT", "BSD-2-Clause", "BSD-3-Clause", "Apache-2.0"),
        doc="SPDX ids a repository must be usable under (LLaMA-1: Apache, BSD, MIT)")
    extensions: tuple[str, ...] = setting(tuple(sorted(LANGUAGES)),
                                          doc="allowed file extensions (lower case, no dot) or exact file names")
    max_line_chars: int = setting(1000, doc="files with a longer line are dropped (RedPajama v1)", unit="chars",
                                  ge=1)
    max_mean_line_chars: float = setting(100.0, doc="files whose mean line is longer are dropped (RedPajama v1)",
                                         unit="chars", gt=0)
    min_alnum_fraction: float = setting(0.25, doc="files with fewer alphanumeric characters are dropped "
                                        "(RedPajama v1)", unit="fraction", ge=0, le=1)
    max_file_bytes: int = setting(1 << 20, doc="larger files are dropped unread", unit="bytes", ge=1)
    strip_license_headers: bool = setting(True, doc="remove a leading comment block about copyright/license")
    repo: str | None = setting(None, doc="repository name for meta; default: the folder or archive name")


def read_github(shard: Shard, cfg: GithubConfig, batch_rows: int) -> Iterator[ReadBatch]:
    buf = DocumentBuffer(shard, batch_rows)
    single = not os.path.isdir(shard.path) and not is_archive(shard.path)
    scan = _scan_single(shard.path) if single else _scan(shard.path)
    if isinstance(scan, TreeError):
        buf.reject("tree", scan.reason, scan.detail)
        yield buf.take()
        return
    root, legal_files = scan
    repo = cfg.repo or (os.path.basename(root) if single and root else root if root else tree_name(shard.path))
    if root is None:
        buf.reject("tree", "empty_file", "", meta={"repo": repo})
        yield buf.take()
        return
    license_expr, license_from = repo_license(legal_files)
    allowed = frozenset(cfg.allowed_licenses)
    permitted = is_permitted(license_expr, allowed)
    extensions = frozenset(e.lower() for e in cfg.extensions)
    seen_hashes: dict[str, str] = {}
    prefix = root + "/" if root and not single else ""
    items = iter_tree(shard.path)
    if single:  # one file of a repository folder (the runtime walks folders into files)
        rel = os.path.relpath(os.path.abspath(shard.path), root).replace(os.sep, "/")
        items = [TreeFile(rel, os.path.getsize(shard.path), lambda: open(shard.path, "rb"))]
    for item in items:
        if isinstance(item, TreeError):  # changed since the first pass, or damaged further on
            buf.reject("tree", item.reason, item.detail, meta={"repo": repo})
            break
        path = item.path[len(prefix):] if prefix and item.path.startswith(prefix) else item.path
        meta = {"repo": repo, "path": path, "license": license_expr, "license_from": license_from or None}
        reason = _file_reason(item, path, permitted, license_expr, extensions, cfg)
        if reason:
            buf.reject(path, reason, "", meta=meta)
        else:
            try:
                _add_file(buf, item, path, meta, seen_hashes, cfg)
            except ARCHIVE_ERRORS as exc:  # the archive breaks inside this member
                buf.reject(path, stream_error_reason(exc, "corrupt_archive"), f"{type(exc).__name__}: {exc}", meta=meta)
                break
        if buf.full():
            yield buf.take()
    yield buf.take()


def _scan(path: str) -> tuple[str | None, dict[str, str]] | TreeError:
    """(repository root inside the tree, {root-level license/metadata file: text}); root None if empty."""
    paths: list[str] = []
    candidates: dict[str, str] = {}
    for item in iter_tree(path):
        if isinstance(item, TreeError):
            return item
        paths.append(item.path)
        name = item.path.rsplit("/", 1)[-1]
        if item.path.count("/") <= 1 and (name in METADATA_FILES or LICENSE_FILE.match(name)):
            try:
                data = item.read(_META_LIMIT)
            except ARCHIVE_ERRORS as exc:
                return TreeError(stream_error_reason(exc, "corrupt_archive"), f"{type(exc).__name__}: {exc}")
            text = decode_utf8(data)[0] if data is not None else None
            if text is not None:
                candidates[item.path] = text
    if not paths:
        return None, {}
    root = common_root(paths)
    prefix = root + "/" if root else ""
    legal = {p[len(prefix):]: t for p, t in candidates.items() if p.startswith(prefix) and "/" not in p[len(prefix):]}
    return root, legal


def _scan_single(path: str) -> tuple[str | None, dict[str, str]]:
    """For a file shard: its repository is the nearest folder above it with a license or package file."""
    folder = os.path.dirname(os.path.abspath(path))
    for _ in range(16):
        try:
            names = sorted(os.listdir(folder))
        except OSError:
            break
        legal = [n for n in names if n in METADATA_FILES or LICENSE_FILE.match(n)]
        if legal:
            files = {}
            for n in legal:
                full = os.path.join(folder, n)
                if os.path.isfile(full) and os.path.getsize(full) <= _META_LIMIT:
                    with open(full, "rb") as f:
                        text = decode_utf8(f.read())[0]
                    if text is not None:
                        files[n] = text
            return folder, files
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    return os.path.dirname(os.path.abspath(path)), {}


def _file_reason(item, path: str, permitted: bool, license_expr: str | None, extensions, cfg) -> str | None:
    name = path.rsplit("/", 1)[-1]
    if not permitted:
        return "license_unknown" if license_expr is None else "license_not_permissive"
    if LICENSE_FILE.match(name):
        return "license_file"
    ext = name.lower().rsplit(".", 1)[1] if "." in name else ""
    if name.lower() not in extensions and ext not in extensions:
        return "extension_not_allowed"
    if item.size > cfg.max_file_bytes:
        return "file_too_large"
    return None


def _add_file(buf: DocumentBuffer, item, path: str, meta: dict, seen: dict[str, str], cfg: GithubConfig) -> None:
    data = item.read(cfg.max_file_bytes)
    if data is None:
        buf.reject(path, "file_too_large", "", meta=meta)
        return
    if b"\x00" in data:
        buf.reject(path, "binary_file", "", meta=meta)
        return
    text, error = decode_utf8(data)
    if text is None:
        buf.reject(path, "invalid_utf8", data, meta={**meta, "error": error})
        return
    if cfg.strip_license_headers:
        text, stripped = strip_license_header(text)
        meta["license_header_stripped"] = stripped
    if not text.strip():
        buf.reject(path, "empty_file", text, meta=meta)
        return
    longest, mean, alnum = line_stats(text)
    reason = ("line_too_long" if longest > cfg.max_line_chars else
              "mean_line_too_long" if mean > cfg.max_mean_line_chars else
              "low_alphanumeric" if alnum < cfg.min_alnum_fraction else None)
    if reason:
        buf.reject(path, reason, text[:4096], meta={**meta, "max_line": longest, "mean_line": round(mean, 2),
                                                    "alnum_fraction": round(alnum, 4)})
        return
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    if digest in seen:
        buf.reject(path, "duplicate_content", "", meta={**meta, "duplicate_of": seen[digest]})
        return
    seen[digest] = path
    meta["language"] = language_of(path)
    meta["sha256"] = digest
    buf.add(path, text, meta=meta)


SPEC = SourceSpec(name="github", config=GithubConfig, read=read_github, folder_shards=True)
