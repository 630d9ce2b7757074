"""Walking a tree of files, whether it is a folder or an archive (.tar, .tar.gz, .tgz, .crate, .zip).

GitHub repositories, multi-file LaTeX papers and collections of books all arrive as trees. The
readers see them through one generator that yields members in a deterministic order (folders sorted,
archives in stored order) and never raises: a damaged archive ends the walk with a `TreeError`, so
the reader can turn it into a reject row and keep what it already read.

Members are read through a bounded `read(limit)`: a member bigger than the limit is reported with
its size and never loaded, so one giant file cannot blow the memory of a worker. Everything an
archive decompresses, members read or skipped, counts against one budget per walk (open_input.py:
at most 250x the archive's size); past it the walk ends with a `decompression_limit` TreeError.
"""

from __future__ import annotations

import dataclasses
import os
import tarfile
import zipfile
import zlib
import lzma
from typing import BinaryIO, Callable, Iterator

from corpus.sources.open_input import DecompressionBudget, limited, open_binary, sniff_compression, stream_error_reason

TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".crate")
ZIP_SUFFIXES = (".zip",)
ARCHIVE_ERRORS = (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError, zlib.error, lzma.LZMAError,
                  ValueError)


@dataclasses.dataclass(frozen=True, slots=True)
class TreeFile:
    path: str
    """Member path inside the tree, '/'-separated, relative to the tree root."""
    size: int
    open: Callable[[], BinaryIO]
    """Opens the member (valid only until the walk moves on, for streamed tarballs)."""

    def read(self, limit: int) -> bytes | None:
        """The member's bytes, or None when it is larger than `limit` (then nothing is read)."""
        if self.size > limit:
            return None
        with self.open() as f:
            data = f.read(limit + 1)
        return None if len(data) > limit else data


@dataclasses.dataclass(frozen=True, slots=True)
class TreeError:
    reason: str
    detail: str


def is_archive(path: str) -> bool:
    low = path.lower()
    return low.endswith(TAR_SUFFIXES + ZIP_SUFFIXES)


def tree_name(path: str) -> str:
    """A tree's name: the folder name, or the archive name without its suffix."""
    base = os.path.basename(path.rstrip("/"))
    low = base.lower()
    for suffix in sorted(TAR_SUFFIXES + ZIP_SUFFIXES, key=len, reverse=True):
        if low.endswith(suffix):
            return base[: -len(suffix)]
    return base


def iter_tree(path: str) -> Iterator[TreeFile | TreeError]:
    """Members of a folder, an archive, or (for a plain file) the file itself."""
    if os.path.isdir(path):
        yield from _iter_folder(path)
    elif path.lower().endswith(ZIP_SUFFIXES):
        yield from _iter_zip(path)
    elif path.lower().endswith(TAR_SUFFIXES):
        yield from _iter_tar(path)
    else:
        size = os.path.getsize(path)
        yield TreeFile(os.path.basename(path), size, lambda: open(path, "rb"))


def _iter_folder(root: str) -> Iterator[TreeFile]:
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(folder, name)
            if os.path.islink(full) or not os.path.isfile(full):
                continue  # links may point outside the tree
            rel = os.path.relpath(full, root).replace(os.sep, "/")
            yield TreeFile(rel, os.path.getsize(full), lambda full=full: open(full, "rb"))


def _iter_tar(path: str) -> Iterator[TreeFile | TreeError]:
    seen = 0
    try:
        # We decompress (the budget sees every byte, also of members tarfile skips), and tarfile reads
        # the plain tar as a forward-only stream ("r|"): a multi-GB tarball is never seeked or held in memory.
        stream = open_binary(path, DecompressionBudget.for_file(path), compression=sniff_compression(path))
        with stream, tarfile.open(fileobj=stream, mode="r|") as tar:
            for member in tar:
                seen += 1
                if not member.isfile():
                    continue
                fobj = tar.extractfile(member)
                if fobj is None:
                    continue
                yield TreeFile(member.name.lstrip("./"), member.size, lambda fobj=fobj: _NoClose(fobj))
    except ARCHIVE_ERRORS as exc:
        yield TreeError(stream_error_reason(exc, "corrupt_archive"),
                        f"{type(exc).__name__}: {exc} (after {seen} members)")


def _iter_zip(path: str) -> Iterator[TreeFile | TreeError]:
    budget = DecompressionBudget.for_file(path)  # members decompress one by one: one budget for all
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if info.is_dir():
                    continue
                yield TreeFile(info.filename, info.file_size, lambda info=info: limited(zf.open(info), budget))
    except ARCHIVE_ERRORS as exc:
        yield TreeError(stream_error_reason(exc, "corrupt_archive"), f"{type(exc).__name__}: {exc}")


class _NoClose:
    """A streamed tar member with its own 1 MiB read buffer: closing it must not close the tar stream,
    and tarfile's own readline on a stream reads in small pieces (minutes for a 100 MB line)."""

    _CHUNK = 1 << 20

    def __init__(self, f):
        self.f = f
        self.buf = b""
        self.pos = 0
        self.eof = False

    def _fill(self) -> bool:
        chunk = b"" if self.eof else self.f.read(self._CHUNK)
        if not chunk:
            self.eof = True
            return False
        self.buf = self.buf[self.pos:] + chunk
        self.pos = 0
        return True

    def read(self, n: int = -1) -> bytes:
        out = [self.buf[self.pos:]]
        self.buf, self.pos = b"", 0
        have = len(out[0])
        while n < 0 or have < n:
            chunk = self.f.read(self._CHUNK if n < 0 else max(n - have, 0))
            if not chunk:
                break
            out.append(chunk)
            have += len(chunk)
        data = b"".join(out)
        if 0 <= n < len(data):
            self.buf, self.pos = data[n:], 0
            data = data[:n]
        return data

    def readline(self, limit: int = -1) -> bytes:
        while True:
            i = self.buf.find(b"\n", self.pos)
            if i >= 0 or (0 <= limit <= len(self.buf) - self.pos) or not self._fill():
                break
        end = i + 1 if i >= 0 else len(self.buf)
        if limit >= 0:
            end = min(end, self.pos + limit)
        line = self.buf[self.pos:end]
        self.pos = end
        return line

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass


def common_root(paths: list[str]) -> str:
    """The single top folder all member paths share ('' if none): archives of repos usually have one."""
    tops = {p.split("/", 1)[0] for p in paths}
    if len(tops) == 1 and all("/" in p for p in paths):
        return tops.pop()
    return ""


def decode_utf8(data: bytes) -> tuple[str | None, str]:
    """(text, '') or (None, error message) for bytes that must be UTF-8 (a BOM is dropped)."""
    try:
        return data.decode("utf-8-sig"), ""
    except UnicodeDecodeError as exc:
        return None, str(exc)
