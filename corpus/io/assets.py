"""The one way a stage gets a model or data file: by path or URI plus sha256, into a node-local cache.

A local file is checked in place; a remote one (s3://, gs://, https:// through fsspec) is copied once
into `<cache>/<sha256>/<name>` and checked there. A file whose sha256 differs from the one the job
names is refused before anything loads it: a swapped or truncated model fails loudly instead of
scoring a corpus with the wrong weights.
"""

from __future__ import annotations

import os


from corpus.io.files import filesystem, is_local, publish, temp_name
from schemas.digests import file_sha256  # noqa: F401  (re-exported: corpus modules import it from here)

DEFAULT_CACHE = os.path.join(os.path.expanduser("~"), ".cache", "refinery", "assets")


class AssetError(ValueError):
    """A model or data file that is missing or is not the file the job names."""


def resolve_asset(uri: str, sha256: str, cache_dir: str = DEFAULT_CACHE) -> str:
    """Local path of the verified file `uri`; raises AssetError naming the file, both digests and the fix."""
    fs, path = filesystem(uri)
    if is_local(fs):
        if not os.path.exists(path):
            raise AssetError(f"asset {uri} does not exist. Fix: check the path in the job spec.")
        _check(uri, path, sha256)
        return path
    local = os.path.join(cache_dir, sha256, os.path.basename(path))
    if not os.path.exists(local):
        os.makedirs(os.path.dirname(local), exist_ok=True)
        tmp = temp_name(local)
        fs.get_file(path, tmp)
        try:
            _check(uri, tmp, sha256)
        except AssetError:
            os.remove(tmp)
            raise
        publish(tmp, local)
    return local


def _check(uri: str, path: str, sha256: str) -> None:
    got = file_sha256(path)
    if got != sha256.lower():
        raise AssetError(f"asset {uri}: sha256 is {got}, the job expects {sha256}. Fix: point the job at the "
                         f"right file, or update the sha256 if the model was retrained on purpose.")
