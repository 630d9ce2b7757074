"""Opening input files whatever their compression, and reading lines without trusting their length."""

from __future__ import annotations

import gzip
import io
import lzma
import zlib
from typing import BinaryIO, Iterator

import fsspec
from fsspec.utils import infer_compression

from corpus.io.files import filesystem

# A compressed input may expand this many times at most. Text compresses 3-10x with gzip/bz2/xz;
# a stream past 250x is a decompression bomb (or junk), and is stopped with a reject row.
MAX_EXPANSION = 250


class DecompressionLimitExceeded(OSError):
    """A compressed input expanded past its limit: probably a decompression bomb."""


# Errors that mean "the compressed stream is damaged": the reader stops that file with a reject row.
CORRUPT_STREAM_ERRORS = (EOFError, OSError, zlib.error, lzma.LZMAError, gzip.BadGzipFile)


def stream_error_reason(exc: BaseException) -> str:
    """The drop reason for an error raised while reading a (compressed) stream."""
    return "decompressed_size_limit" if isinstance(exc, DecompressionLimitExceeded) else "corrupt_compressed_stream"


class _LimitedReader(io.RawIOBase):
    """Counts decompressed bytes and raises DecompressionLimitExceeded past `limit`."""

    def __init__(self, inner: BinaryIO, limit: int, path: str):
        self.inner, self.limit, self.path, self.count = inner, limit, path, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.inner.read(len(buffer))
        self.count += len(data)
        if self.count > self.limit:
            raise DecompressionLimitExceeded(
                f"{self.path} expanded past {self.limit} bytes ({MAX_EXPANSION}x its compressed size)")
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self.inner.close()
        super().close()


def open_binary(path: str, max_expansion: int = MAX_EXPANSION) -> BinaryIO:
    """Decompressing reader chosen by extension (.gz, .bz2, .xz, .zst), guarded against bombs."""
    compression = infer_compression(path)
    stream = fsspec.open(path, "rb", compression=compression).open()
    if compression is None:
        return stream
    fs, p = filesystem(path)
    limit = max(1 << 20, fs.size(p) * max_expansion)
    # Small buffer: when a damaged stream raises, the lines decoded before the damage are already out.
    return io.BufferedReader(_LimitedReader(stream, limit, path), buffer_size=8192)


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
