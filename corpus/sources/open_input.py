"""Opening input files whatever their compression, with one limit on how far any input may expand
(every reader counts what it decompresses against it), and reading lines without trusting their length."""

from __future__ import annotations

import gzip
import io
import lzma
import zlib
from typing import BinaryIO, Iterator

import fsspec
from fsspec.utils import infer_compression

from corpus.io.files import filesystem

# An input file may expand this many times at most, over everything decompressed from it: one stream,
# every member of a tar or zip archive, every gzip member of a WARC, the decoded columns of a Parquet
# file. Text compresses 3-10x with gzip/bz2/xz; past 250x a file is a decompression bomb (or junk), and
# the reader stops it with one reject row, reason `decompression_limit`.
MAX_EXPANSION = 250
LIMIT_FLOOR = 1 << 20
"""Small files may always expand to this many bytes (a 1 KB gzip of a page is not a bomb)."""
DECOMPRESSION_LIMIT = "decompression_limit"


class DecompressionLimitExceeded(OSError):
    """An input expanded past its limit: probably a decompression bomb."""


# Errors that mean "the compressed stream is damaged": the reader stops that file with a reject row.
CORRUPT_STREAM_ERRORS = (EOFError, OSError, zlib.error, lzma.LZMAError, gzip.BadGzipFile)


def stream_error_reason(exc: BaseException, damaged: str = "corrupt_compressed_stream") -> str:
    """The drop reason for an error raised while decompressing: the limit, or `damaged`."""
    return DECOMPRESSION_LIMIT if isinstance(exc, DecompressionLimitExceeded) else damaged


class DecompressionBudget:
    """The decompressed bytes one input file may produce, shared by all its streams and members."""

    def __init__(self, path: str, compressed_bytes: int, max_expansion: int = MAX_EXPANSION):
        self.path, self.compressed_bytes = path, compressed_bytes
        self.limit = max(LIMIT_FLOOR, compressed_bytes * max_expansion)
        self.used = 0

    @classmethod
    def for_file(cls, path: str) -> "DecompressionBudget":
        fs, p = filesystem(path)
        return cls(path, fs.size(p))

    def spend(self, n: int) -> None:
        self.reached(self.used + n)

    def reached(self, used: int) -> None:
        """Record that `used` bytes in all have been decompressed; raises past the limit."""
        self.used = used
        if used > self.limit:
            raise DecompressionLimitExceeded(
                f"{self.path} expanded past {self.limit} bytes ({self.limit // max(self.compressed_bytes, 1)}x "
                f"its {self.compressed_bytes} bytes)")


class _LimitedReader(io.RawIOBase):
    """Counts the bytes read from a decompressing stream against a budget."""

    def __init__(self, inner: BinaryIO, budget: DecompressionBudget):
        self.inner, self.budget = inner, budget

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.inner.read(len(buffer))
        self.budget.spend(len(data))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self.inner.close()
        super().close()


def limited(stream: BinaryIO, budget: DecompressionBudget) -> BinaryIO:
    """`stream` (decompressing) with its output counted against `budget`."""
    # Small buffer: when a damaged stream raises, the lines decoded before the damage are already out.
    return io.BufferedReader(_LimitedReader(stream, budget), buffer_size=8192)


# Compression by magic number, for archives whose names do not say (.crate, .tgz, .tbz2, .txz).
_MAGIC = ((b"\x1f\x8b", "gzip"), (b"BZh", "bz2"), (b"\xfd7zXZ\x00", "xz"), (b"\x28\xb5\x2f\xfd", "zstd"))


def sniff_compression(path: str) -> str | None:
    with fsspec.open(path, "rb") as f:
        head = f.read(6)
    return next((name for magic, name in _MAGIC if head.startswith(magic)), None)


def open_binary(path: str, budget: DecompressionBudget | None = None, compression: str | None = "infer") -> BinaryIO:
    """Decompressing reader (by extension: .gz, .bz2, .xz, .zst; or the `compression` given), whose
    output counts against `budget` (a new one for this file by default)."""
    if compression == "infer":
        compression = infer_compression(path)
    stream = fsspec.open(path, "rb", compression=compression).open()
    if compression is None:
        return stream
    return limited(stream, budget or DecompressionBudget.for_file(path))


def iter_lines(stream: BinaryIO, max_line_bytes: int) -> Iterator[tuple[int, bytes, bool]]:
    """(line number, line bytes without newline, whole) for each line.

    A line longer than `max_line_bytes` is returned cut to that length with whole=False, and the rest
    of it is read through in chunks, so one giant line never sits in memory in full.
    """
    number = 0
    while True:
        line = stream.readline(max_line_bytes + 1)
        if not line:
            return
        whole = len(line) <= max_line_bytes or line.endswith(b"\n")
        if not whole:
            line = line[:max_line_bytes]
            while True:  # skip to the end of the giant line
                rest = stream.readline(max_line_bytes)
                if not rest or rest.endswith(b"\n"):
                    break
        yield number, line.rstrip(b"\r\n"), whole
        number += 1
