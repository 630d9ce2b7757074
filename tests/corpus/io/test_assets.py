import hashlib

import pytest

from corpus.io.assets import AssetError, resolve_asset


def test_local_asset_checked_in_place(tmp_path):
    f = tmp_path / "model.bin"
    f.write_bytes(b"weights")
    digest = hashlib.sha256(b"weights").hexdigest()
    assert resolve_asset(str(f), digest) == str(f)
    with pytest.raises(AssetError, match="sha256 is .* the job expects 00"):
        resolve_asset(str(f), "00" * 32)
    with pytest.raises(AssetError, match="does not exist"):
        resolve_asset(str(tmp_path / "nope"), digest)


def test_remote_asset_copied_once_into_the_cache(tmp_path):
    import fsspec

    with fsspec.open("memory://models/m.bin", "wb") as f:
        f.write(b"remote weights")
    digest = hashlib.sha256(b"remote weights").hexdigest()
    local = resolve_asset("memory://models/m.bin", digest, cache_dir=str(tmp_path / "cache"))
    assert open(local, "rb").read() == b"remote weights" and digest in local
    with pytest.raises(AssetError):
        resolve_asset("memory://models/m.bin", "ab" * 32, cache_dir=str(tmp_path / "cache"))
    assert not list((tmp_path / "cache" / ("ab" * 32)).iterdir())  # a bad download is not kept
