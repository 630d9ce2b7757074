"""Atomic writes for the training half: the helpers of schemas/atomic_files.py (temp file, fsync,
rename), which the corpus half uses too through corpus/io/files.py. training does not import corpus,
so the shared code lives in schemas/."""

from __future__ import annotations

from schemas.atomic_files import publish, publish_dir, write_atomic, write_json_atomic

write_text_atomic = write_atomic
"""`write_text_atomic(path, text)`: the name training modules use for a whole text file."""

__all__ = ["publish", "publish_dir", "write_atomic", "write_json_atomic", "write_text_atomic"]
