"""The sample fetcher: archive layouts, checksums, cache, skips; and one real fetch from npm."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
import zipfile

import pytest

import corpus.samples as samples
from corpus.samples import Sample, SampleUnavailable, fetch_samples, sample_path
from run_helpers import sample_unavailable


def _tar_gz(path, files: dict[str, bytes]) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def _deb(path, files: dict[str, bytes]) -> None:
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:xz") as tar:
        for name, body in files.items():
            info = tarfile.TarInfo(name)
            if isinstance(body, tuple):  # ("link", target)
                info.type, info.linkname = tarfile.SYMTYPE, body[1]
                tar.addfile(info)
                continue
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    members = [("debian-binary", b"2.0\n"), ("control.tar.xz", b""), ("data.tar.xz", data.getvalue())]
    with open(path, "wb") as f:
        f.write(b"!<arch>\n")
        for name, body in members:
            f.write(f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(body):<10}`\n".encode())
            f.write(body + (b"\n" if len(body) % 2 else b""))


def _sha(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.fixture
def registry(tmp_path, monkeypatch):
    """A fake registry: _run_download copies a prepared artifact, as pip/npm/apt-get would."""
    store = tmp_path / "registry"
    store.mkdir()
    calls = []

    def run_download(sample, work):
        calls.append(sample.name)
        src = store / sample.package
        if not src.exists():
            return f"no such package {sample.package}"
        shutil.copy(src / os.listdir(src)[0], work)
        return ""

    monkeypatch.setattr(samples, "_run_download", run_download)
    return store, calls


def _publish(store, package, filename, build, files) -> str:
    (store / package).mkdir()
    path = store / package / filename
    build(path, files)
    return _sha(path)


def test_layouts_of_sdist_wheel_npm_and_deb(tmp_path, monkeypatch, registry):
    store, _ = registry
    sdist = _publish(store, "sd", "sd-1.0.tar.gz", _tar_gz,
                     {"sd-1.0/tests/data/a.html": b"<p>a</p>", "sd-1.0/tests/data/sub/b.txt": b"b",
                      "sd-1.0/setup.py": b""})
    npm = _publish(store, "np", "np-1.0.tgz", _tar_gz, {"package/test/fixtures/x.warc": b"WARC"})
    deb = _publish(store, "db", "db_1.0_all.deb", _deb, {"./usr/share/doc/db/copyright": b"PD",
                                                           "./usr/share/doc/db/linked": ("link", "copyright"),
                                                           "./usr/share/doc/db/dangling": ("link", "../x/none")})
    wheel_path = store / "wh"
    wheel_path.mkdir()
    with zipfile.ZipFile(wheel_path / "wh-1.0-py3-none-any.whl", "w") as z:
        z.writestr("wh/resources/model.bin", b"\x00\x01")
    wheel = _sha(wheel_path / "wh-1.0-py3-none-any.whl")
    monkeypatch.setattr(samples, "MANIFEST", (
        Sample(name="sd", kind="pypi-sdist", package="sd", version="1.0", sha256=sdist,
               extract={"tests/data/*": "data"}),
        Sample(name="np", kind="npm", package="np", version="1.0", sha256=npm,
               extract={"test/fixtures/*.warc": ""}),
        Sample(name="db", kind="debian", package="db", version="1.0", sha256=deb,
               extract={"usr/share/doc/*": "doc"}),
        Sample(name="wh", kind="pypi-wheel", package="wh", version="1.0", sha256=wheel,
               extract={"wh/resources/model.bin": "model"}),
    ))
    monkeypatch.setattr(samples.shutil, "which", lambda tool: f"/usr/bin/{tool}")
    monkeypatch.setattr(samples, "_ensure_apt_lists", lambda: "")
    dest = tmp_path / "cache"
    results = fetch_samples(str(dest))
    assert {n: r.status for n, r in results.items()} == dict.fromkeys(["sd", "np", "db", "wh"], "fetched")
    assert (dest / "sd/data/a.html").read_bytes() == b"<p>a</p>"
    assert (dest / "sd/data/sub/b.txt").read_bytes() == b"b"
    assert not (dest / "sd/data/setup.py").exists()
    assert (dest / "np/x.warc").read_bytes() == b"WARC"
    assert (dest / "db/doc/db/copyright").read_bytes() == b"PD"
    assert (dest / "db/doc/db/linked").read_bytes() == b"PD"  # a link inside the package is followed
    assert not (dest / "db/doc/db/dangling").exists()  # one pointing outside it is passed over
    assert (dest / "wh/model/model.bin").read_bytes() == b"\x00\x01"
    assert json.loads((dest / "sd/.sample.json").read_text())["files"] == {"tests/data/*": 2}


def test_cache_checksum_and_skips(tmp_path, monkeypatch, registry):
    store, calls = registry
    good = _publish(store, "sd", "sd-1.0.tar.gz", _tar_gz, {"sd-1.0/data/a.txt": b"a"})
    entries = (
        Sample(name="ok", kind="pypi-sdist", package="sd", version="1.0", sha256=good, extract={"data/*": ""}),
        Sample(name="badsum", kind="pypi-sdist", package="sd", version="1.0", sha256="0" * 64,
               extract={"data/*": ""}),
        Sample(name="noglob", kind="pypi-sdist", package="sd", version="1.0", sha256=good,
               extract={"nothing/*": ""}),
        Sample(name="gone", kind="pypi-sdist", package="missing", version="1.0", sha256=good, extract={"*": ""}),
        Sample(name="nonpm", kind="npm", package="sd", version="1.0", sha256=good, extract={"*": ""}),
    )
    monkeypatch.setattr(samples, "MANIFEST", entries)
    real_which = shutil.which
    monkeypatch.setattr(samples.shutil, "which", lambda tool: None if tool == "npm" else real_which(tool))
    dest = str(tmp_path / "cache")
    results = fetch_samples(dest, ["ok", "badsum", "noglob", "gone", "nonpm", "unknown"])
    status = {n: r.status for n, r in results.items()}
    assert status == {"ok": "fetched", "badsum": "failed", "noglob": "failed", "gone": "skipped",
                      "nonpm": "skipped", "unknown": "failed"}
    assert "sha256 mismatch" in results["badsum"].reason and good in results["badsum"].reason
    assert "matched no member" in results["noglob"].reason
    assert results["nonpm"].reason == "npm is not installed"
    assert not os.path.exists(os.path.join(dest, "badsum"))
    before = len(calls)
    assert fetch_samples(dest, ["ok"])["ok"].status == "cached"
    assert len(calls) == before
    with pytest.raises(SampleUnavailable, match="sha256 mismatch"):
        sample_path("badsum", dest)


def test_a_manifest_of_its_own_is_fetched_and_checked_alike(tmp_path, registry):
    # benchmarks/bulk_corpus.py pins its bulk packages outside MANIFEST: same download, checksum, cache.
    store, calls = registry
    good = _publish(store, "sd", "sd-1.0.tar.gz", _tar_gz, {"sd-1.0/data/a.txt": b"a"})
    own = (Sample(name="bulk", kind="pypi-sdist", package="sd", version="1.0", sha256=good, extract={"data/*": ""}),
           Sample(name="bulk-bad", kind="pypi-sdist", package="sd", version="1.0", sha256="0" * 64,
                  extract={"data/*": ""}))
    dest = str(tmp_path / "cache")
    results = fetch_samples(dest, ["bulk", "bulk-bad", "python-doc"], manifest=own)
    assert {n: r.status for n, r in results.items()} == {"bulk": "fetched", "bulk-bad": "failed",
                                                         "python-doc": "failed"}
    assert open(os.path.join(results["bulk"].path, "a.txt")).read() == "a"
    assert "sha256 mismatch" in results["bulk-bad"].reason
    assert "no sample named 'python-doc'" in results["python-doc"].reason  # MANIFEST is not consulted
    before = len(calls)
    assert fetch_samples(dest, ["bulk"], manifest=own)["bulk"].status == "cached" and len(calls) == before


def test_real_common_crawl_fixture_from_npm():
    try:
        folder = sample_path("warc")
    except SampleUnavailable as exc:
        sample_unavailable(exc)
    names = sorted(os.listdir(os.path.join(folder, "commoncrawl")))
    base = "CC-MAIN-20140820021334-00006-ip-10-180-136-8.ec2.internal.warc"
    assert names == [base, base + ".wat", base + ".wet"]
    with open(os.path.join(folder, "commoncrawl", base), "rb") as f:
        assert f.read(9) == b"WARC/1.0\r"


def test_manifest_entries_are_well_formed():
    names = [s.name for s in samples.MANIFEST]
    assert len(names) == len(set(names)), f"duplicate sample names: {sorted({n for n in names if names.count(n) > 1})}"
    for s in samples.MANIFEST:
        assert s.kind in samples.KINDS, s.name
        assert len(s.sha256) == 64 and int(s.sha256, 16) >= 0, s.name
        assert s.extract and all(isinstance(g, str) and isinstance(d, str) for g, d in s.extract.items()), s.name


def test_cli_fetch_prints_each_sample_and_exit_status(tmp_path, monkeypatch, registry, capsys):
    from jobs.cli import main

    store, _ = registry
    good = _publish(store, "sd", "sd-1.0.tar.gz", _tar_gz, {"sd-1.0/data/a.txt": b"a"})
    monkeypatch.setattr(samples, "MANIFEST", (
        Sample(name="ok", kind="pypi-sdist", package="sd", version="1.0", sha256=good, extract={"data/*": ""}),
        Sample(name="gone", kind="pypi-sdist", package="missing", version="1.0", sha256=good, extract={"*": ""}),
    ))
    dest = str(tmp_path / "cache")
    assert main(["samples", "fetch", "--dest", dest]) == 0  # a skip is not a failure
    out = capsys.readouterr().out
    assert "fetched  ok: " in out and "skipped  gone: no such package missing" in out
    assert "1 fetched, 0 cached, 1 skipped, 0 failed" in out
    assert main(["samples", "fetch", "--dest", dest, "--only", "ok,nosuch"]) == 1
    out = capsys.readouterr().out
    assert "cached   ok: " in out and "failed   nosuch: no sample named 'nosuch'" in out


def test_an_unavailable_sample_skips_on_a_laptop_and_fails_in_ci(monkeypatch):
    exc = SampleUnavailable("sample 'warc' skipped: registry unreachable")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="registry unreachable"):
        sample_unavailable(exc)
    for value in ("1", "true"):
        monkeypatch.setenv("CI", value)
        with pytest.raises(pytest.fail.Exception, match="registry unreachable.*CI is set"):
            sample_unavailable(exc)


def test_ci_sets_ci_and_no_test_skips_on_an_unavailable_sample_by_itself():
    import ast

    tests = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(os.path.dirname(tests), ".ci", "run"), encoding="utf-8") as f:
        script = f.read()
    assert "export CI=1\n" in script and script.index("export CI=1") < script.index("make test")
    offenders = []
    for folder, _, files in os.walk(tests):
        for name in files:
            if not name.endswith(".py"):
                continue
            path = os.path.join(folder, name)
            with open(path, encoding="utf-8") as f:
                tree = ast.parse(f.read(), path)
            for handler in ast.walk(tree):
                if isinstance(handler, ast.ExceptHandler) and "SampleUnavailable" in ast.unparse(handler.type or ""):
                    if any(isinstance(n, ast.Attribute) and n.attr == "skip" for n in ast.walk(handler)):
                        offenders.append(f"{os.path.relpath(path, tests)}:{handler.lineno}")
    assert not offenders, f"skip on SampleUnavailable through run_helpers.sample_unavailable: {offenders}"


def test_the_downloader_is_not_a_reader():
    """corpus/sources/ holds readers (raw input -> documents); fetching sample packages is not one."""
    import importlib.util

    from corpus.sources import SOURCES

    assert importlib.util.find_spec("corpus.sources.samples") is None
    assert "samples" not in SOURCES and samples.__name__ == "corpus.samples"
