"""`refinery eval mc`: MMLU / C-Eval task files, lm-eval's prompts to the character, the letter (or choice
text) with the highest log-likelihood computed by hand, macro vs micro accuracy, and the CLI on the
committed real fixture (tests/training/mc_fixture, questions from the `evals` wheel, MIT)."""

import json
import os
from collections import Counter
import shutil
import subprocess
import sys

import pytest
from run_helpers import sample_unavailable

from training.eval.multiple_choice import (LETTERS, aggregate, build_prompt, encode_pairs, read_csv_split,
                                           read_tasks, score_tasks)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURE = os.path.join(REPO, "tests", "training", "mc_fixture")
MMLU = os.path.join(FIXTURE, "mmlu")
CEVAL = os.path.join(FIXTURE, "ceval-zh")


# --- task files and prompts (no model) -------------------------------------------------------------

def test_both_layouts_parse_and_are_told_apart_by_the_header():
    mmlu = read_tasks(MMLU)
    assert mmlu.layout == "mmlu"
    assert {s: {k: len(v) for k, v in x.items()} for s, x in mmlu.subjects.items()} == {
        "astronomy": {"dev": 5, "test": 8}, "high_school_psychology": {"dev": 5, "test": 4}}
    q = mmlu.subjects["high_school_psychology"]["test"][0]
    assert q.question.startswith("Which of the following usually increases with age in healthy adults")
    assert q.choices == ("fluid intelligence", "crystallized intelligence", "g", "speededness") and q.answer == 1
    assert q.where.endswith("high_school_psychology_test.csv:1")
    # a quoted field spanning lines: the next row is reported at the line where it starts
    assert mmlu.subjects["astronomy"]["dev"][1].where.endswith("astronomy_dev.csv:2")

    ceval = read_tasks(CEVAL)
    assert ceval.layout == "ceval"
    assert ceval.names == {"marxist_philosophy": "马克思主义哲学", "parable_moral": "寓言寓意"}
    q = ceval.subjects["marxist_philosophy"]["test"][1]
    assert q.choices == ("商品二因素理论", "价值规律理论", "劳动二重性理论", "剩余价值理论") and LETTERS[q.answer] == "C"
    assert q.where.endswith("marxist_philosophy_test.csv:3")  # line 1 is the header
    parable = ceval.subjects["parable_moral"]["dev"][0]
    assert parable.question.endswith("\n这个故事想要表达的寓意是：")
    # the source's answer C is the moral below; one wrong moral before it was dropped, so it is B here
    assert LETTERS[parable.answer] == "B" and parable.choices[parable.answer] == "很多时候，我们不是败在缺陷上，而是败在优势里。"


def test_ceval_subfolders_explanation_column_and_test_split_without_answers(tmp_path):
    """C-Eval as published: dev/ (with explanation), val/ (answer), test/ (no answer column)."""
    import csv

    with open(os.path.join(CEVAL, "marxist_philosophy_test.csv"), encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    for sub, keep, extra in (("dev", 7, ["explanation"]), ("val", 7, []), ("test", 6, [])):
        os.makedirs(tmp_path / sub)
        with open(tmp_path / sub / f"marxist_philosophy_{sub}.csv", "w", encoding="utf-8", newline="") as f:
            w = csv.writer(f)
            w.writerow(rows[0][:keep] + extra)
            w.writerows(r[:keep] + (["(explanation)"] if extra else []) for r in rows[1:])
    tasks = read_tasks(str(tmp_path))
    splits = tasks.subjects["marxist_philosophy"]
    assert [len(splits[s]) for s in ("dev", "val", "test")] == [4, 4, 4]
    assert splits["test"][0].answer is None and splits["val"][0].answer == splits["dev"][0].answer == 1
    # scoring the answerless split fails before any model is needed
    with pytest.raises(ValueError, match=r"marxist_philosophy_test.csv:2: no answer.*--split val"):
        score_tasks(None, None, tasks, shots=0, split="test", choice_text=False, window=64, vocab_size=10, pad_id=0)
    with pytest.raises(ValueError, match="dev questions, --shots 5 needs 5"):
        score_tasks(None, None, tasks, shots=5, split="val", choice_text=False, window=64, vocab_size=10, pad_id=0)


def test_bad_input_fails_with_one_line_naming_the_place(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such folder.*mc-tasks"):
        read_tasks(str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match=r"no SUBJECT_\{dev,val,test\}.csv"):
        read_tasks(str(tmp_path))
    bad = tmp_path / "law_test.csv"
    bad.write_text('q1,a,b,c,d,A\n"q2\nspans two lines",a,b,c,D\nq3,a,b,c,d,E\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"law_test.csv:2: 5 fields, expected 6 \(question,A,B,C,D,answer\)"):
        read_csv_split(str(bad))
    bad.write_text("q1,a,b,c,d,A\nq3,a,b,c,d,E\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"law_test.csv:2: answer 'E' is not one of A, B, C, D"):
        read_csv_split(str(bad))
    shutil.copy(os.path.join(CEVAL, "marxist_philosophy_dev.csv"), tmp_path / "marxist_philosophy_dev.csv")
    bad.write_text("q1,a,b,c,d,A\n", encoding="utf-8")
    with pytest.raises(ValueError, match="mixes layouts"):
        read_tasks(str(tmp_path))


def test_zero_shot_prompt_is_lm_eval_mmlu_to_the_character():
    tasks = read_tasks(MMLU)
    q = tasks.subjects["high_school_psychology"]["test"][0]
    assert build_prompt("mmlu", tasks.names["high_school_psychology"], [], q, choice_text=False) == (
        "The following are multiple choice questions (with answers) about high school psychology.\n\n"
        "Which of the following usually increases with age in healthy adults between the ages of 18 and 70?\n"
        "A. fluid intelligence\nB. crystallized intelligence\nC. g\nD. speededness\nAnswer:")
    assert build_prompt("mmlu", "high school psychology", [], q, choice_text=True) == (
        "The following are questions (with answers) about high school psychology.\n\n"
        "Question: Which of the following usually increases with age in healthy adults between the ages of 18 "
        "and 70?\nAnswer:")


def test_two_shot_prompt_puts_the_first_two_dev_questions_with_their_answers_first():
    tasks = read_tasks(MMLU)
    splits = tasks.subjects["high_school_psychology"]
    prompt = build_prompt("mmlu", "high school psychology", splits["dev"][:2], splits["test"][0], choice_text=False)
    assert prompt == (
        "The following are multiple choice questions (with answers) about high school psychology.\n\n"
        "Which of the following kinds of personality theorists is the most likely to use a projective test?\n"
        "A. social-cognitive\nB. behaviorist\nC. humanist\nD. psychoanalyst\nAnswer: D\n\n"
        "During cooperative learning, all of the students in Group A members initially were opposed to the "
        "death penalty, whereas two of the students in Group B members were opposed to the death penalty and "
        "two were in favor of the death penalty. According to research, after an intense discussion within each "
        "group about capital punishment, we would expect\n"
        "A. both groups would moderate their positions\n"
        "B. Group A members would moderate their positions, but Group B members would retain their original "
        "positions\n"
        "C. Group A would become more firmly entrenched, while Group B members would moderate their positions\n"
        "D. Group A members would retain their original positions, but Group B members would moderate their "
        "positions\nAnswer: C\n\n"
        "Which of the following usually increases with age in healthy adults between the ages of 18 and 70?\n"
        "A. fluid intelligence\nB. crystallized intelligence\nC. g\nD. speededness\nAnswer:")


def test_ceval_prompt_has_the_chinese_header_and_answer_mark():
    tasks = read_tasks(CEVAL)
    splits = tasks.subjects["marxist_philosophy"]
    prompt = build_prompt("ceval", tasks.names["marxist_philosophy"], splits["dev"][:1], splits["test"][1],
                          choice_text=False)
    assert prompt.startswith("以下是中国关于马克思主义哲学的单项选择题，请选出其中的正确答案。\n\n垄断组织通过制定垄断价格")
    assert "\nA. 成本价格\nB. 生产价格\nC. 垄断低价\nD. 垄断高价\n答案： B\n\n《资本论》" in prompt
    assert prompt.endswith("\nA. 商品二因素理论\nB. 价值规律理论\nC. 劳动二重性理论\nD. 剩余价值理论\n答案：")


def test_macro_averages_subjects_micro_averages_questions():
    report = aggregate({"law": [1.0, 1.0, 1.0, 0.0], "astronomy": [0.0], "empty": []})
    assert report["subjects"] == {"law": {"questions": 4, "accuracy": 0.75},
                                  "astronomy": {"questions": 1, "accuracy": 0.0}}
    assert report["macro"] == pytest.approx(0.375)  # (0.75 + 0) / 2
    assert report["micro"] == pytest.approx(0.6)  # 3 of 5


def test_joint_encoding_splits_where_separate_encoding_would(tiny_tokenizer):
    """The byte-level BPE's pre-tokenizer starts a new piece at " A" after ":" / "：", so lm-eval's joint
    encoding and encoding context and continuation apart give the same ids on every fixture prompt."""
    from training.tokenizer import load_tokenizer

    tok = load_tokenizer(tiny_tokenizer).tokenizer
    pairs = []
    for folder in (MMLU, CEVAL):
        tasks = read_tasks(folder)
        for subject, splits in tasks.subjects.items():
            for q in splits["test"]:
                for choice_text in (False, True):
                    ctx = build_prompt(tasks.layout, tasks.names[subject], splits["dev"][:2], q,
                                       choice_text=choice_text)
                    conts = [f" {c}" for c in q.choices] if choice_text else [f" {x}" for x in LETTERS]
                    pairs += [(ctx, c) for c in conts]
    for (ctx, cont), (ctx_ids, cont_ids) in zip(pairs, encode_pairs(tok, pairs)):
        assert ctx_ids == tok.encode(ctx, add_special_tokens=False).ids
        assert cont_ids == tok.encode(cont, add_special_tokens=False).ids
        assert tok.decode(cont_ids) == cont
    # trailing whitespace of the context moves to the continuation (lm-eval's rule)
    [(ctx_ids, cont_ids)] = encode_pairs(tok, [("Answer: ", "B")])
    assert tok.decode(ctx_ids) == "Answer:" and tok.decode(cont_ids) == " B"


# --- scoring with a tiny trained checkpoint -----------------------------------------------------------

@pytest.fixture(scope="module")
def trained(tiny_pretrain_run):
    """Three steps of a tiny GPT (RoPE, seq 32), trained once per session in this process (conftest.py)."""
    pytest.importorskip("megatron.core")
    return tiny_pretrain_run[1]


def _by_hand(model, ids: list[int], n: int, vocab_size: int) -> float:
    """Sum of log p of the last n ids, from one unbatched, unpadded forward of exactly these ids."""
    import torch

    with torch.no_grad():
        logits = model(torch.tensor([ids[:-1]]), torch.arange(len(ids) - 1)[None], None)[0].float()  # [s, V]
    logp = torch.log_softmax(logits[:, :vocab_size], dim=-1)
    return float(sum(logp[len(ids) - 1 - n + j, ids[len(ids) - n + j]] for j in range(n)))


@pytest.mark.parametrize("choice_text,window", [(False, 1024), (True, 1024), (False, 40)])
def test_prediction_is_the_choice_with_the_highest_loglikelihood_by_hand(trained, tiny_tokenizer, choice_text,
                                                                       window):
    """Batched (3 inputs a forward, right-padded, letters sharing one forward) scores equal one forward per
    choice by hand; window 40 cuts context from the left, which the by-hand forward repeats."""
    from training.eval.loaded import loaded_checkpoint
    from training.tokenizer import load_tokenizer

    tok = load_tokenizer(tiny_tokenizer)
    tasks = read_tasks(MMLU)
    with loaded_checkpoint(str(trained), vocab_size=tok.vocab_size, seq_length=window) as loaded:
        report = score_tasks(loaded.model, tok.tokenizer, tasks, shots=1, split="test", choice_text=choice_text,
                             window=window, vocab_size=tok.vocab_size, pad_id=tok.pad_id, batch_size=3)
        items = iter(report["items"])
        for subject, splits in tasks.subjects.items():
            for q in splits["test"]:
                item = next(items)
                context = build_prompt("mmlu", tasks.names[subject], splits["dev"][:1], q, choice_text=choice_text)
                by_hand = []
                for j, letter in enumerate(LETTERS):
                    cont = f" {q.choices[j]}" if choice_text else f" {letter}"
                    n = len(tok.tokenizer.encode(cont, add_special_tokens=False).ids)
                    ids = tok.tokenizer.encode(context + cont, add_special_tokens=False).ids[-(window + 1):]
                    by_hand.append(_by_hand(loaded.model, ids, n, tok.vocab_size))
                assert item["loglikelihoods"] == pytest.approx(by_hand, abs=1e-4)
                best = max(range(4), key=lambda j: by_hand[j])
                assert item["prediction"] == LETTERS[best] and item["answer"] == LETTERS[q.answer]
                if choice_text:
                    norm = [by_hand[j] / len(q.choices[j]) for j in range(4)]
                    assert item["prediction_norm"] == LETTERS[max(range(4), key=lambda j: norm[j])]
    assert report["requests"] == 4 * 12
    assert (report["truncated_requests"] > 0) == (window == 40)
    per_subject = {s: [float(i["prediction"] == i["answer"]) for i in report["items"] if i["subject"] == s]
                   for s in tasks.subjects}
    assert report["acc"] == aggregate(per_subject)
    assert ("acc_norm" in report) == choice_text


def test_cli_prints_the_table_beside_the_random_baseline_and_writes_json(trained, tiny_tokenizer):
    cmd = [sys.executable, "-m", "jobs.cli", "eval", "mc", str(trained), "--tokenizer", tiny_tokenizer,
           "--seq-length", "1024"]
    done = subprocess.run(cmd + ["--tasks", MMLU, "--shots", "2"], cwd=REPO, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert lines[1].split() == ["subject", "questions", "acc", "random"]
    assert lines[2].split()[:2] == ["astronomy", "8"] and lines[2].split()[-1] == "0.25"
    assert lines[4].split()[:3] == ["macro", "average", "12"] and lines[5].split()[:2] == ["micro", "average"]
    path = os.path.join(trained, "eval", "mc-step-00000003-mmlu-2shot.json")
    report = json.load(open(path))
    assert report["shots"] == 2 and report["random_baseline"] == 0.25 and report["truncated_requests"] == 0
    assert sorted(report["acc"]["subjects"]) == ["astronomy", "high_school_psychology"]
    assert f"{report['acc']['macro']:.4f}" in lines[4]

    done = subprocess.run(cmd + ["--tasks", CEVAL, "--choice-text", "--json", "--seq-length", "512"], cwd=REPO,
                          capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["layout"] == "ceval" and report["scoring"] == "choice_text"
    assert sorted(report["acc_norm"]["subjects"]) == ["marxist_philosophy", "parable_moral"]
    assert os.path.exists(os.path.join(trained, "eval", "mc-step-00000003-ceval-zh-0shot-text.json"))

    done = subprocess.run(cmd + ["--tasks", os.path.join(FIXTURE, "nope")], cwd=REPO, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 2 and "nope: no such folder" in done.stderr


# --- the task folders built from the evals wheel ------------------------------------------------------

def test_mc_tasks_builds_the_folders_the_fixture_was_cut_from(tmp_path):
    """`refinery eval mc-tasks` on the pinned wheel: every fixture file is the head of the built one."""
    from corpus.samples import SampleUnavailable, sample_path

    try:
        sample_path("evals-mc")
    except SampleUnavailable as exc:
        sample_unavailable(exc)
    out = tmp_path / "tasks"
    done = subprocess.run([sys.executable, "-m", "jobs.cli", "eval", "mc-tasks", "--out", str(out)], cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "mmlu: mmlu layout, 9 subjects, 45 dev + 194 test questions" in done.stdout
    assert "mmlu-mixed: mmlu layout, 1 subjects, 5 dev + 974 test questions" in done.stdout
    assert "ceval-zh: ceval layout, 2 subjects, 10 dev + 1929 test questions" in done.stdout
    for folder in ("mmlu", "ceval-zh"):
        for name in os.listdir(os.path.join(FIXTURE, folder)):
            small = open(os.path.join(FIXTURE, folder, name), "rb").read()
            assert open(out / folder / name, "rb").read().startswith(small), name
    ceval = read_tasks(str(out / "ceval-zh"))
    assert ceval.layout == "ceval"
    parables = [q for split in ceval.subjects["parable_moral"].values() for q in split]
    # the dropped wrong moral is chosen by hash, so the answer letters stay balanced
    assert Counter(LETTERS[q.answer] for q in parables) == {"A": 456, "B": 504, "C": 496, "D": 474}
    provenance = json.load(open(out / "PROVENANCE.json"))
    assert provenance["sha256"] == "0abcb2051303500784b1641a6e4f6b813ed43ad64f879a37d344a6774eb8eb78"
    assert provenance["left_out"] == {"marxist_philosophy.multiple_answers": 6}
    assert (out / "LICENSE").read_text().startswith("MIT License")
    again = subprocess.run([sys.executable, "-m", "jobs.cli", "eval", "mc-tasks", "--out", str(out)], cwd=REPO,
                           capture_output=True, text=True, timeout=600)
    assert again.returncode == 2 and "not empty" in again.stderr
