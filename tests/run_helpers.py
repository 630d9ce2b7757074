"""Helpers shared by the runtime tests (importable because tests/conftest.py puts tests/ on sys.path)."""

import hashlib
import os

SELECT = {"select": {"rules": [{"column": "n_words_v1", "op": "<", "value": 50, "reason": "too_few_words"}]}}


def tree(phase_dir, kinds=("data", "rejected")):
    """relative path -> sha256 of every published file of these kinds under a phase folder."""
    out = {}
    for kind in kinds:
        for dirpath, _, files in os.walk(os.path.join(phase_dir, kind)):
            for f in files:
                p = os.path.join(dirpath, f)
                with open(p, "rb") as fh:
                    out[os.path.relpath(p, phase_dir)] = hashlib.sha256(fh.read()).hexdigest()
    return out


def ci() -> bool:
    """Whether the tests run in CI (.ci/run sets CI=1, as GitHub Actions and most CI services do)."""
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def sample_unavailable(exc: Exception):
    """A registry sample could not be fetched: skip the test on a laptop, fail it in CI, where a
    skip would let the tests that read real data pass without running."""
    import pytest

    if ci():
        pytest.fail(f"{exc} (CI is set: a sample that cannot be fetched is a failure)", pytrace=False)
    pytest.skip(str(exc))
