"""Multiple-choice task folders (MMLU and C-Eval file layouts) built from the real questions that the PyPI
wheel `evals==3.0.1.post1` (MIT, Copyright (c) 2023 OpenAI) ships under `evals/registry/data/`.

    refinery eval mc-tasks --out DIR     # DIR/mmlu, DIR/mmlu-mixed, DIR/ceval-zh (+ PROVENANCE.json)

What exists there and what is made of it (counts measured on 3.0.1.post1):
- `sandbagging/samples-all.jsonl`: 200 MMLU questions with their subject (`topic`), and
  `sandbagging/samples-ast.jsonl`: 152 MMLU astronomy questions. Each prompt is MMLU's own
  "question\\nA. ..\\nB. ..\\nC. ..\\nD. ..\\nAnswer:" text, split back into question and choices here.
  -> `mmlu/`: one subject per topic with at least DEV_PER_SUBJECT + 1 questions, the first
  DEV_PER_SUBJECT (file order) as `{subject}_dev.csv`, the rest as `{subject}_test.csv`. Smaller topics
  would leave a K-shot prompt without its examples; they are left out and counted in PROVENANCE.json.
- `sandbagging/samples-all-large.jsonl`: 1,000 MMLU questions without a subject. The ones found in
  neither file above (979) have no recoverable subject -> `mmlu-mixed/`, one subject `mixed_subjects`.
- Chinese: no C-Eval questions ship in any registry package we found. The four-option Chinese items
  that do exist become `ceval-zh/` in C-Eval's layout (header id,question,A,B,C,D,answer):
  `marxist_philosophy_exam/fuzzy_match.jsonl` (15 exam questions; the 10 single-answer ones are kept,
  C-Eval being single-answer) and `parable-to-moral-match/parable-to-moral-match-zh.jsonl` (1,930
  parables, five candidate morals each): one wrong moral, chosen by the first byte of sha256(story) mod 4,
  is dropped to leave four options, the rest re-lettered in order, and the English instruction replaced
  by the Chinese stem PARABLE_STEM.
  `subject_mapping.json` gives each subject its Chinese name for the C-Eval prompt header, in the format
  of C-Eval's own file ([English name, Chinese name, category]).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import shutil
import tempfile
from typing import Any, Iterable

from training.atomic_files import publish_dir, write_json_atomic

DEV_PER_SUBJECT = 5
"""MMLU and C-Eval both ship five dev (few-shot) questions per subject."""
LETTERS = "ABCD"
CEVAL_HEADER = ["id", "question", "A", "B", "C", "D", "answer"]
PARABLE_STEM = "这个故事想要表达的寓意是："
CEVAL_NAMES = {
    "marxist_philosophy": ["Marxist Philosophy", "马克思主义哲学", "Social Science"],
    "parable_moral": ["Parable Morals", "寓言寓意", "Humanities"],
}

_MMLU_PROMPT = re.compile(r"\A(?P<q>.*?)\s*\nA\. (?P<A>.*?)\nB\. (?P<B>.*?)\nC\. (?P<C>.*?)\nD\. (?P<D>.*?)\n"
                          r"Answer:\s*\Z", re.S)
_EXAM_PROMPT = re.compile(r"\A[^\n]*\n(?P<q>.*?)\nA\.(?P<A>.*?)\nB\.(?P<B>.*?)\nC\.(?P<C>.*?)\nD\.(?P<D>.*?)\s*\Z",
                          re.S)  # the first line is the instruction ("单选题，请给出以下问题的答案…")
_PARABLE_PROMPT = re.compile(r"\A(?P<story>.*?)\nWhich moral is this story attempting to convey\?[^\n]*\n"
                             r"A\) (?P<A>.*?) B\) (?P<B>.*?) C\) (?P<C>.*?) D\) (?P<D>.*?) E\) (?P<E>.*?)\n", re.S)


def parse_mmlu_prompt(text: str, where: str) -> tuple[str, list[str]]:
    """(question, [A, B, C, D]) of an MMLU prompt as the evals registry stores it."""
    m = _MMLU_PROMPT.match(text)
    if m is None:
        raise ValueError(f"{where}: not an MMLU prompt (question, A. .. D. lines, 'Answer:')")
    return m["q"].strip(), [m[x] for x in LETTERS]


def _read_jsonl(path: str) -> Iterable[tuple[str, dict[str, Any]]]:
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            if line.strip():
                yield f"{path}:{i}", json.loads(line)


def mmlu_subjects(data_dir: str) -> tuple[dict[str, list[list[str]]], list[list[str]], dict[str, int]]:
    """(subject -> rows, subject-less rows, small subjects left out -> their size); a row is
    [question, A, B, C, D, answer letter], in file order."""
    by_subject: dict[str, list[list[str]]] = {}
    seen: set[str] = set()
    sources = [("samples-all.jsonl", None), ("samples-ast.jsonl", "astronomy")]
    for name, fixed in sources:
        for where, rec in _read_jsonl(os.path.join(data_dir, "sandbagging", name)):
            question, choices = parse_mmlu_prompt(rec["question"], where)
            subject = (fixed or rec["topic"]).strip().replace(" ", "_")
            by_subject.setdefault(subject, []).append([question, *choices, _letter(rec["answer"], where)])
            seen.add(rec["question"])
    small = {s: len(rows) for s, rows in by_subject.items() if len(rows) <= DEV_PER_SUBJECT}
    mixed = [[*_split(rec["question"], where), _letter(rec["answer"], where)]
             for where, rec in _read_jsonl(os.path.join(data_dir, "sandbagging", "samples-all-large.jsonl"))
             if rec["question"] not in seen]
    return {s: rows for s, rows in sorted(by_subject.items()) if s not in small}, mixed, dict(sorted(small.items()))


def _split(text: str, where: str) -> list[str]:
    question, choices = parse_mmlu_prompt(text, where)
    return [question, *choices]


def _letter(value: Any, where: str) -> str:
    letter = str(value).strip()
    if letter not in LETTERS:
        raise ValueError(f"{where}: answer {value!r} is not one of A, B, C, D")
    return letter


def chinese_subjects(data_dir: str) -> tuple[dict[str, list[list[str]]], dict[str, int]]:
    """(subject -> rows [question, A, B, C, D, answer], items left out per reason)."""
    left_out = {"marxist_philosophy.multiple_answers": 0}
    exam = []
    for where, rec in _read_jsonl(os.path.join(data_dir, "marxist_philosophy_exam", "fuzzy_match.jsonl")):
        answer = rec["ideal"][0].strip()
        if answer not in LETTERS:  # "A、B、C" and the like: several correct options, not C-Eval's kind
            left_out["marxist_philosophy.multiple_answers"] += 1
            continue
        m = _EXAM_PROMPT.match(rec["input"][-1]["content"])
        if m is None:
            raise ValueError(f"{where}: not a four-option exam question")
        exam.append([m["q"].strip(), *(m[x].strip() for x in LETTERS), answer])
    parables = []
    for where, rec in _read_jsonl(os.path.join(data_dir, "parable-to-moral-match", "parable-to-moral-match-zh.jsonl")):
        m = _PARABLE_PROMPT.match(rec["input"][-1]["content"])
        gold = re.fullmatch(r"The final answer is: ([A-E])", rec["ideal"][0].strip())
        if m is None or gold is None:
            raise ValueError(f"{where}: not a five-option parable item")
        options = [m[x].strip() for x in "ABCDE"]
        right = options[ord(gold[1]) - ord("A")]
        wrong = [i for i, o in enumerate(options) if o != right]
        # One wrong moral goes, picked by the story's hash: dropping always the last one would move every
        # E answer to D and make D the answer twice as often as A; this way each letter keeps about a quarter.
        drop = wrong[hashlib.sha256(m["story"].strip().encode("utf-8")).digest()[0] % len(wrong)]
        four = options[:drop] + options[drop + 1:]
        parables.append([f"{m['story'].strip()}\n{PARABLE_STEM}", *four, LETTERS[four.index(right)]])
    return {"marxist_philosophy": exam, "parable_moral": parables}, left_out


def _csv_text(rows: Iterable[list[str]], header: list[str] | None = None) -> str:
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\n")
    if header:
        writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def write_subject(folder: str, subject: str, rows: list[list[str]], *, layout: str) -> dict[str, int]:
    """`{subject}_dev.csv` (the first DEV_PER_SUBJECT rows) and `{subject}_test.csv` (the rest) in the
    MMLU layout (no header) or the C-Eval one (header, an `id` column counting from 0 per file)."""
    counts = {}
    for split, part in (("dev", rows[:DEV_PER_SUBJECT]), ("test", rows[DEV_PER_SUBJECT:])):
        if layout == "ceval":
            text = _csv_text(([str(i), *r] for i, r in enumerate(part)), CEVAL_HEADER)
        else:
            text = _csv_text(part)
        with open(os.path.join(folder, f"{subject}_{split}.csv"), "w", encoding="utf-8", newline="") as f:
            f.write(text)
        counts[split] = len(part)
    return counts


def build_mc_tasks(data_dir: str, out: str, *, provenance: dict[str, Any], license_file: str | None = None
                   ) -> dict[str, Any]:
    """Write out/{mmlu,mmlu-mixed,ceval-zh} from the evals registry's data folder (`data_dir`, holding
    sandbagging/, marxist_philosophy_exam/, parable-to-moral-match/); `out` must not exist yet or be empty.
    The MIT licence asks for its notice to travel with the data: `license_file` is copied to out/LICENSE.
    Built in a temporary sibling folder and renamed, so a failed build leaves nothing half-written."""
    out = os.path.abspath(out)
    if os.path.exists(out) and os.listdir(out):
        raise FileExistsError(f"{out} exists and is not empty. Fix: remove it or choose another --out")
    if not os.path.isdir(data_dir):
        raise FileNotFoundError(f"{data_dir}: no such folder (the evals registry's data/)")
    labelled, mixed, small = mmlu_subjects(data_dir)
    chinese, left_out = chinese_subjects(data_dir)
    parent = os.path.dirname(out)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".tmp-{os.path.basename(out)}-", dir=parent)
    try:
        summary: dict[str, Any] = {}
        for name, layout, subjects in (("mmlu", "mmlu", labelled), ("mmlu-mixed", "mmlu", {"mixed_subjects": mixed}),
                                       ("ceval-zh", "ceval", chinese)):
            folder = os.path.join(staging, name)
            os.makedirs(folder)
            summary[name] = {"layout": layout, "subjects": {s: write_subject(folder, s, rows, layout=layout)
                                                            for s, rows in subjects.items()}}
        write_json_atomic(os.path.join(staging, "ceval-zh", "subject_mapping.json"), CEVAL_NAMES)
        doc = {**provenance, "folders": summary, "mmlu_subjects_left_out_too_small": small,
               "left_out": left_out, "dev_per_subject": DEV_PER_SUBJECT,
               "rules": __doc__.split("What exists there and what is made of it", 1)[1].strip()}
        write_json_atomic(os.path.join(staging, "PROVENANCE.json"), doc)
        if license_file:
            shutil.copyfile(license_file, os.path.join(staging, "LICENSE"))
        if os.path.exists(out):
            os.rmdir(out)  # checked empty above: nothing of the user's is replaced
        publish_dir(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return doc
