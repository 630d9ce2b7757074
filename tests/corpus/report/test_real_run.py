"""The report of a real run (conftest.real_run): its numbers against the ledger and against DuckDB
reading the same Parquet files independently."""

import os

import duckdb
import pytest

pytest.importorskip("matplotlib", reason="`refinery report` needs matplotlib")
pytestmark = pytest.mark.slow  # a real Ray run with two dedup phases (shared by the module)

from corpus.report import NOT_COMPUTED, collect_run, render_html  # noqa: E402


def phase_dir(result, name):
    return next(p.phase_dir for p in result.phases if p.name == name)


def glob(folder, kind):
    return f"read_parquet('{folder}/{kind}/*/*.parquet', hive_partitioning=true, union_by_name=true)"


def test_funnel_matches_the_ledger_and_the_files(real_run):
    run_dir, result = real_run
    run = collect_run(run_dir)
    assert [(p.name, p.kind) for p in run.phases] == [("clean", "map"), ("exact", "exact_dedup"),
                                                       ("fuzzy", "minhash_dedup"), ("remove", "map")]
    clean = result.phases[0].totals
    reads = {s.source: s for s in run.stages if s.phase == "clean" and s.stage == "read"}
    assert set(reads) == {"books", "wikipedia"}
    assert reads["books"].docs_in == 68  # the demo corpus, broken records included
    assert sum(s.docs_in for s in reads.values()) == clean["rows_in"]
    stages = [s.stage for s in run.stages if s.phase == "clean" and s.source == "books"]
    assert stages == ["read", "normalize", "length", "langid", "select"]
    for phase in ("clean", "remove"):
        folder = phase_dir(result, phase)
        kept = dict(duckdb.sql(f"select domain, sum(n_words_v1) from {glob(folder, 'data')} group by 1").fetchall())
        dropped = {(d, s, r): (n, w) for d, s, r, n, w in duckdb.sql(
            f"select domain, drop_stage, drop_reason, count(*), sum(n_words_v1) from {glob(folder, 'rejected')} "
            f"group by all").fetchall()}
        for t in (t for t in run.tokens if t.phase == phase):
            assert t.tokens_kept == kept.get(t.source, 0)
            assert t.tokens_in == t.tokens_kept + sum(w for _, w in t.dropped.values())
            for (stage, reason), (n, words) in t.dropped.items():
                assert n == dropped[(t.source, stage, reason)][0]
                if stage != "read":  # a read reject has no n_words_v1: the report counts its raw words
                    assert words == dropped[(t.source, stage, reason)][1]
    remove = {k: v for t in run.tokens if t.phase == "remove" for k, v in t.dropped.items()}
    assert set(remove) <= {("minhash", "near_duplicate"), ("exact", "exact_duplicate"),
                           ("minhash_dedup", "near_duplicate"), ("exact_dedup", "exact_duplicate")}
    assert sum(n for n, _ in remove.values()) == result.phases[-1].totals["rows_rejected"] > 0


def test_languages_and_clusters_match_duckdb(real_run):
    run_dir, result = real_run
    run = collect_run(run_dir)
    clean = phase_dir(result, "clean")
    both = f"(select lang_v1 from {glob(clean, 'data')} union all select lang_v1 from {glob(clean, 'rejected')})"
    expected = dict(duckdb.sql(f"select lang_v1, count(*) from {both} where lang_v1 is not null group by 1")
                    .fetchall())
    got = {k: kept + dropped for k, (kept, dropped) in run.languages.items()}
    assert {k: n for k, n in got.items() if k != "(too short)"} == expected
    # every document the langid stage took in has a language or counts as too short (read rejects don't)
    assert sum(got.values()) == result.phases[0].totals["counters"]["langid"]["rows_in"]
    assert next(iter(run.languages)) == "en" and run.language_phase == "clean"
    remove = phase_dir(result, "remove")
    rows = f"(select minhash_cluster_v2 c, minhash_duplicate_v2 d from {glob(remove, 'data')} union all " \
           f"select minhash_cluster_v2, minhash_duplicate_v2 from {glob(remove, 'rejected')})"
    sizes = duckdb.sql(f"select count(*) + 1 from {rows} where d group by c").fetchall()
    assert sorted(s for s, n in run.clusters["minhash_cluster_v2"].items() for _ in range(n)) == \
        sorted(s for (s,) in sizes)
    assert run.clusters["minhash_cluster_v2"], "the edited copies form near-duplicate clusters"


def test_sections_absent_from_this_run_say_so(real_run):
    run_dir, _ = real_run
    page = render_html(collect_run(run_dir))
    assert "perplexity (ppl_v1): " + NOT_COMPUTED in page
    assert "quality score (quality_v1): " + NOT_COMPUTED in page
    assert "language identification (lang_v1): " + NOT_COMPUTED not in page
    assert "(minhash_cluster_v2): " + NOT_COMPUTED not in page
    assert os.path.isdir(run_dir)
