"""training/align/evals_data.py on a wheel-shaped zip made of the committed real rows (put back into the evals
format): the sha256 pin, MIT-only sets, the LIMA-style round-robin selection, constructed rankings with
their provenance, SFT and preference prompts kept apart."""

import json
import os
import zipfile

import pytest

from training.align.data import preference_row, read_jsonl, sft_messages
from training.align.evals_data import (AlignDataBuildConfig, EvalsDataError, build_align_data, cut_after_words,
                                       diverse_selection, fetch_evals_wheel, read_evals_rows)

from .conftest import SFT_FIXTURE


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """evals/registry/data/<set>/samples.jsonl members holding the fixture's rows as evals writes them (system
    turns named example_user / example_assistant for few-shot), plus a set the licence excludes."""
    path = tmp_path_factory.mktemp("wheel") / "evals-like.whl"
    by_set = {}
    for _, row in read_jsonl(SFT_FIXTURE):
        msgs = row["messages"]
        by_set.setdefault(row["meta"]["eval_set"], []).append({"input": msgs[:-1], "ideal": msgs[-1]["content"]})
    by_set["abc_fewshot"] = [{"input": [{"role": "system", "content": "Answer like the example."},
                                        {"role": "system", "name": "example_user", "content": "2 + 2?"},
                                        {"role": "system", "name": "example_assistant", "content": "four"},
                                        {"role": "user", "content": "Name the three primary colours of light."}],
                              "ideal": ["Red, green and blue are the three primary colours of light."]}]
    with zipfile.ZipFile(path, "w") as z:
        for s, rows in by_set.items():
            z.writestr(f"evals/registry/data/{s}/samples.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
        z.writestr("evals/registry/data/steganography/samples.jsonl",
                   json.dumps({"input": [{"role": "user", "content": "x" * 50}], "ideal": "y " * 30}) + "\n")
    return str(path)


def test_wheel_sha256_is_checked(wheel):
    with pytest.raises(EvalsDataError, match="sha256 differs"):
        fetch_evals_wheel("/nonexistent-cache", wheel)


def test_rows_keep_few_shot_turns_and_leave_out_non_mit_sets(wheel):
    rows = list(read_evals_rows(wheel))
    assert "steganography" not in {r.eval_set for r in rows}
    few = next(r for r in rows if r.eval_set == "abc_fewshot")
    assert [m["role"] for m in few.prompt] == ["system", "user", "assistant", "user"]
    assert few.answer.startswith("Red, green and blue")  # the first of a list of ideals


def test_round_robin_gives_no_set_more_than_one_row_above_another(wheel):
    rows = list(read_evals_rows(wheel))
    chosen = diverse_selection(rows, 20, seed=0)
    counts = {}
    for r in chosen:
        counts[r.eval_set] = counts.get(r.eval_set, 0) + 1
    available = {}
    for r in rows:
        available[r.eval_set] = available.get(r.eval_set, 0) + 1
    # every set that still had rows gave within one of the most any set gave
    top = max(counts.values())
    assert all(counts.get(s, 0) >= min(n, top - 1) for s, n in available.items())
    assert diverse_selection(rows, 20, seed=0) == chosen and diverse_selection(rows, 20, seed=1) != chosen


def test_built_files_read_back_with_rankings_by_construction(wheel, tmp_path):
    cfg = AlignDataBuildConfig(sft_examples=12, preference_prompts=10, min_answer_chars=20, min_answer_words=8)
    report = build_align_data(wheel, str(tmp_path), cfg)
    sft = read_jsonl(str(tmp_path / "sft.jsonl"))
    prefs = read_jsonl(str(tmp_path / "preferences.jsonl"))
    assert len(sft) == 12 == report["sft"]["rows"] and 0 < len(prefs) == report["preferences"]["rows"] <= 10
    for where, row in sft:
        messages = sft_messages(row, where)  # the trainer's own reader accepts them
        assert len(messages[-1]["content"].split()) >= 8 and row["meta"]["source"] == "evals==3.0.1.post1"
    sft_prompts = {json.dumps(r["messages"][:-1]) for _, r in sft}
    for where, row in prefs:
        prompt, answers = preference_row(row, where)
        k = len(answers)
        assert 4 <= k <= 9 and row["meta"]["k"] == k and len(row["meta"]["construction"]) == k
        assert json.dumps(prompt) not in sft_prompts  # SFT and RM prompts kept apart
        cuts = answers[1:k - 2]
        assert all(answers[0].startswith(c) for c in cuts)  # cuts of the reference, longest first
        assert [len(c) for c in cuts] == sorted((len(c) for c in cuts), reverse=True) and len(set(cuts)) == len(cuts)
        assert not answers[0].startswith(answers[-2]) and not answers[0].startswith(answers[-1])
    assert os.path.exists(tmp_path / "align_data.json")


def test_cut_keeps_the_original_spacing():
    assert cut_after_words("a  b\nc d", 3) == "a  b\nc"
