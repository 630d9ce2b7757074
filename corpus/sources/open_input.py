"""Opening input files whatever their compression, and reading lines without trusting their length."""

from __future__ import annotations

import gzip
import zlib
import bz2
import lzma
from typing import BinaryIO, Iterator

import fsspec

# Errors that mean "the compressed stream is damaged": the reader stops that file with a reject row.
CORRUPT_STREAM_ERRORS = (EOFError, OSError, zlib.error, lzma.LZMAError, gzip.BadGzipFile)


def open_binary(path: str) -> BinaryIO:
    """Decompressing reader chosen by extension (.gz, .bz2, .xz, .zst): fsspec's 'infer'."""
    return fsspec.open(path, "rb", compression="infer").open()


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


__all__ = ["open_binary", "iter_lines", "CORRUPT_STREAM_ERRORS", "bz2"]
