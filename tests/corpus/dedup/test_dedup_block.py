"""The one-block dedup (`- dedup: {method: minhash, ...}`) is the three-part form written once: same
resolved spec, same phase folders, same bytes out; and its mistakes are reported at the block."""

import filecmp
import os

import pytest
import yaml

from corpus.config import ConfigError
from corpus.runtime.executor import phase_dir_name, run_job
from corpus.runtime.plan import check_plan
from corpus.runtime.spec import load_job, parse_job
from tests.conftest import REPO

# jobs/dedup_demo.yaml's phases as they were written before the block existed
THREE_PART = yaml.safe_load("""
- name: clean
  stages:
    - normalize: {form: NFC, fix_mojibake: true}
    - length: {}
    - select:
        rules:
          - {column: n_words_v1, op: "<", value: 50, reason: too_few_words}
- name: exact
  kind: exact_dedup
  settings: {key: text}
- name: fuzzy
  kind: minhash_dedup
  settings: {threshold: 0.8, num_perm: 128, ngram: 5}
- name: remove
  stages:
    - exact_dedup: {index_phase: exact}
    - minhash_dedup: {index_phase: fuzzy}
    - select:
        rules:
          - {column: exact_duplicate_v1, op: "==", value: true, reason: exact_duplicate}
          - {column: minhash_duplicate_v2, op: "==", value: true, reason: near_duplicate}
- name: lines
  kind: line_dedup
  settings: {group_shards: 0, keep_first: false}
- name: apply-lines
  stages:
    - line_dedup: {index_phase: lines}
    - select:
        rules:
          - {column: line_dedup_empty_v1, op: "==", value: true, reason: empty_after_line_dedup}
""")
DEDUP_DEMO = os.path.join(REPO, "jobs", "dedup_demo.yaml")


def job_data(phases, **top):
    with open(DEDUP_DEMO) as f:
        data = yaml.safe_load(f)
    return {**data, "phases": phases, **top}


def parse(phases, tmp_path=None, **top):
    return parse_job(job_data(phases, **top), base_dir=os.path.dirname(DEDUP_DEMO))


def folders(job):
    return [phase_dir_name(job, p, "upstream") for p in check_plan(job)]


def test_dedup_demo_uses_blocks_and_resolves_to_the_three_part_form():
    with open(DEDUP_DEMO) as f:
        written = yaml.safe_load(f)["phases"]
    assert sum("dedup" in p for p in written) == 3  # the committed job uses the one-block form
    blocks, three = load_job(DEDUP_DEMO), parse(THREE_PART)
    assert blocks.raw == three.raw
    assert folders(blocks) == folders(three)
    assert [p.name for p in blocks.phases] == ["clean", "exact", "fuzzy", "remove", "lines", "apply-lines"]


def test_demo_job_resolves_to_its_three_part_form():
    demo = load_job(os.path.join(REPO, "jobs", "demo.yaml"))
    assert [(p.name, p.kind) for p in demo.phases] == [
        ("normalize", "map"), ("lines", "line_dedup"), ("apply-lines", "map"), ("clean", "map"), ("filter", "map"),
        ("exact", "exact_dedup"), ("fuzzy", "minhash_dedup"), ("remove", "map")]
    assert demo.phases[1].settings.domains == ("commoncrawl", "c4")  # CCNet line dedup of web text only
    remove = demo.raw["phases"][7]["stages"]
    assert [next(iter(s)) for s in remove] == ["exact_dedup", "minhash_dedup", "select"]
    assert [r["reason"] for r in remove[2]["select"]["rules"]] == ["exact_duplicate", "near_duplicate"]


def test_one_minhash_block_is_index_marker_and_select_with_default_knobs():
    clean = THREE_PART[:1]
    one = parse([*clean, {"dedup": {"method": "minhash", "threshold": 0.7, "verify": True}}])
    three = parse([*clean, {"name": "minhash", "kind": "minhash_dedup", "settings": {"threshold": 0.7, "verify": True}},
                   {"name": "remove", "stages": [
                       {"minhash_dedup": {"index_phase": "minhash"}},
                       {"select": {"rules": [{"column": "minhash_duplicate_v2", "op": "==", "value": True,
                                              "reason": "near_duplicate"}]}}]}])
    assert one.raw == three.raw and folders(one) == folders(three)
    settings = one.phases[1].settings
    assert (settings.num_perm, settings.bands, settings.rows, settings.verify) == (128, 0, 0, True)


def test_blocks_with_other_mark_phases_get_phases_of_their_own():
    job = parse([*THREE_PART[:1], {"dedup": {"method": "exact", "mark_phase": "drop-exact"}},
                 {"dedup": {"method": "minhash", "name": "near", "mark_phase": "drop-near"}}])
    assert [(p.name, p.kind) for p in job.phases] == [
        ("clean", "map"), ("exact", "exact_dedup"), ("drop-exact", "map"), ("near", "minhash_dedup"),
        ("drop-near", "map")]


@pytest.mark.parametrize("block, message", [
    ({"dedup": {"method": "minhas"}}, r"job\.phases\[1\]\.dedup\.method: 'minhas'.*Did you mean 'minhash'"),
    ({"dedup": {"method": "minhash", "threshold": 1.5}}, r"job\.phases\[1\]\.dedup\.threshold"),
    ({"dedup": {"method": "minhash", "bands": 4}}, r"bands and rows"),
    ({"dedup": {"method": "exact", "num_perm": 64}}, r"job\.phases\[1\]\.dedup.*num_perm"),
    ({"dedup": {"method": "exact", "name": "clean"}}, r"job\.phases\[1\]\.dedup\.name: .*'clean'"),
    ({"dedup": {"method": "exact", "name": "Bad Name"}}, r"job\.phases\[1\]\.dedup\.name"),
    ({"dedup": {"method": "exact"}, "name": "x"}, r"job\.phases\[1\]\.dedup: .*unknown key 'name'"),
    ({"dedup": "minhash"}, r"job\.phases\[1\]\.dedup: expected a mapping"),
])
def test_validate_errors_name_the_block(block, message):
    with pytest.raises(ConfigError, match=message):
        parse([*THREE_PART[:1], block])


def test_a_dedup_first_or_a_second_run_with_default_names_is_refused_at_its_block():
    with pytest.raises(ConfigError, match=r"job\.phases\[0\]\.dedup: a dedup needs a map phase before it"):
        parse([{"dedup": {"method": "exact"}}, *THREE_PART[:1]])
    again = [*THREE_PART[:1], {"dedup": {"method": "exact"}}, {"name": "mid", "stages": ["length"]},
             {"dedup": {"method": "minhash"}}]
    with pytest.raises(ConfigError, match=r"job\.phases\[3\]\.dedup\.mark_phase: .*'remove'"):
        parse(again)


def test_cli_validate_names_the_block(tmp_path, capsys):
    from jobs.cli import main

    job = tmp_path / "job.yaml"
    job.write_text(yaml.safe_dump(job_data([*THREE_PART[:1], {"dedup": {"method": "minhash", "rows": 3}}],
                                           inputs=[{"source": "jsonl", "paths": [os.path.join(REPO, "jobs", "demo_corpus", "*.jsonl*")],
                                                    "domain": "books"}])))
    assert main(["validate", str(job), "--spec-only"]) == 2  # invalid input
    err = capsys.readouterr().err
    assert "job.phases[1].dedup" in err and "bands and rows" in err


def test_one_block_and_three_part_jobs_write_the_same_bytes(ray_local, tmp_path):
    """The dedup demo corpus through both forms of the same job, into two output roots."""
    runs = {}
    for form, phases in (("blocks", None), ("three", THREE_PART)):
        if phases is None:
            job = load_job(DEDUP_DEMO, output=str(tmp_path / form))
        else:
            job = parse_job(job_data(phases, output=str(tmp_path / form)), base_dir=os.path.dirname(DEDUP_DEMO),
                            output_override=True)
        runs[form] = run_job(job, progress=False)
    a, b = runs["blocks"], runs["three"]
    assert a.exit_code == b.exit_code == 0
    assert [os.path.basename(p.phase_dir) for p in a.phases] == [os.path.basename(p.phase_dir) for p in b.phases]
    dropped = a.phases[3].totals["dropped"]
    assert dropped  # the demo corpus has copies: something was dropped, so the comparison means something
    for pa_, pb in zip(a.phases, b.phases):
        if pa_.kind != "map":
            continue
        for sub in ("data", "rejected"):
            left, right = [sorted(_files(os.path.join(p.phase_dir, sub))) for p in (pa_, pb)]
            assert left == right
            for rel in left:
                assert filecmp.cmp(os.path.join(pa_.phase_dir, sub, rel), os.path.join(pb.phase_dir, sub, rel),
                                   shallow=False), rel


def _files(root):
    return [os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs]
