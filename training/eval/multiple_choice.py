"""Multiple-choice accuracy (MMLU and C-Eval file layouts) of a pretraining checkpoint, in this process.

    refinery eval mc CHECKPOINT --tasks DIR --tokenizer DIR [--shots K] [--split test] [--choice-text]

Task folder: one CSV per subject and split, `{subject}_{dev,val,test}.csv`, in DIR or its dev/ val/ test/
subfolders. The layout is told by the first row: C-Eval's files start with the header
`id,question,A,B,C,D[,answer[,explanation]]` (its test split has no answers); MMLU's have no header and
six fields per row, `question,A,B,C,D,answer`. An optional `subject_mapping.json` (C-Eval's own file:
subject -> [English, Chinese, category]) gives the Chinese subject name for the C-Eval header.

Prompts and scoring follow lm-evaluation-harness (v0.4 task files `mmlu/default`, `mmlu/continuation`,
`ceval`), so figures are comparable:
- MMLU: "The following are multiple choice questions (with answers) about {subject with spaces}.\\n\\n",
  then K dev examples (the first K of the subject's dev file), each "{question}\\nA. ..\\nB. ..\\nC. ..\\n
  D. ..\\nAnswer: {letter}\\n\\n", then the question, ending in "Answer:". Each choice is scored by the
  log-likelihood of the continuation " A" .. " D"; the most likely letter is the prediction (acc).
- C-Eval: "以下是中国关于{Chinese name}的单项选择题，请选出其中的正确答案。\\n\\n", the same blocks with
  "答案：" for "Answer:", continuations " A" .. " D".
- --choice-text: the continuation is " " + the choice's text, after "Question: {question}\\nAnswer:"
  (MMLU, header "The following are questions (with answers) about {subject}.\\n\\n"; lm-eval's
  mmlu_continuation) or "{question}\\n答案：" (C-Eval; refinery's own, lm-eval has no such variant). Both
  acc (sum of log-likelihoods) and acc_norm (divided by the choice text's length in characters,
  Python `len`, leading space excluded: lm-eval's acc_norm) are reported.
Tokenization follows lm-eval's decoder-only `_encode_pair`: trailing whitespace of the context moves to
the continuation, context + continuation is encoded as one string and split after the context's own
token count. With this byte-level BPE (GPT-2 regex pre-tokenizer) a continuation starting with a space
after a non-space character begins a new pre-token, so the split equals encoding the two apart.
Sequences longer than the window (`seq_length`) lose context tokens from the left, as in lm-eval; their
number is reported. Log-probabilities are over the tokenizer's vocabulary (padding rows of the output
layer excluded, as the sampler does). Where refinery differs from lm-eval: per-subject figures and both
the macro (mean over subjects) and micro (over questions: lm-eval's `mmlu` group figure, weight_by_size)
averages are reported; no BOS token is prepended (the tokenizer has none; lm-eval's HF models add none
by default either).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import re
from typing import Any, Sequence

LETTERS = ("A", "B", "C", "D")
RANDOM_BASELINE = 1 / len(LETTERS)
SPLITS = ("dev", "val", "test")
CEVAL_HEADER = ("id", "question", "A", "B", "C", "D")
_FILE = re.compile(r"^(?P<subject>.+)_(?P<split>dev|val|test)\.csv$")


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Question:
    question: str
    choices: tuple[str, str, str, str]
    answer: int | None
    """Index into LETTERS; None where the file has no answers (C-Eval's test split)."""
    where: str
    """file:line of the row, for messages."""


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class TaskSet:
    layout: str
    """mmlu | ceval"""
    subjects: dict[str, dict[str, list[Question]]]
    """subject -> split -> questions in file order."""
    names: dict[str, str]
    """subject -> the name its prompt header uses."""


# --- task files -----------------------------------------------------------------------------------

def read_csv_split(path: str) -> tuple[str, list[Question]]:
    """(layout, questions) of one subject file; the layout is told by the first row."""
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        rows, starts, line = [], [], 1
        for row in reader:
            rows.append(row)
            starts.append(line)  # a quoted field may span lines: report where the row starts
            line = reader.line_num + 1
    if not rows:
        raise ValueError(f"{path}: empty file")
    header = tuple(c.strip() for c in rows[0])
    if header[:6] == CEVAL_HEADER:
        columns = list(header)
        if columns[6:] not in ([], ["answer"], ["answer", "explanation"]):
            raise ValueError(f"{path}:1: C-Eval header {','.join(columns)}: expected "
                             f"id,question,A,B,C,D[,answer[,explanation]]")
        layout, body, width = "ceval", list(zip(starts[1:], rows[1:])), len(columns)
        answer_at = 6 if len(columns) > 6 else None
        fields = "id,question,A,B,C,D" + (",answer" if answer_at else "") + (",explanation" if width > 7 else "")
    else:
        layout, body, width, answer_at, fields = "mmlu", list(zip(starts, rows)), 6, 5, "question,A,B,C,D,answer"
    questions = []
    for start, row in body:
        where = f"{path}:{start}"
        if len(row) != width:
            raise ValueError(f"{where}: {len(row)} fields, expected {width} ({fields}) in the {layout} layout")
        q = row[1:6] if layout == "ceval" else row[0:5]
        answer = None
        if answer_at is not None:
            letter = row[answer_at].strip()
            if letter not in LETTERS:
                raise ValueError(f"{where}: answer {row[answer_at]!r} is not one of A, B, C, D")
            answer = LETTERS.index(letter)
        questions.append(Question(question=q[0], choices=tuple(q[1:5]), answer=answer, where=where))
    return layout, questions


def read_tasks(folder: str) -> TaskSet:
    """All `{subject}_{split}.csv` files of a task folder (and of its dev/ val/ test/ subfolders)."""
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{folder}: no such folder. Fix: build one with `refinery eval mc-tasks --out DIR`")
    paths = []
    for sub in ("", *SPLITS):
        d = os.path.join(folder, sub)
        if os.path.isdir(d):
            paths += [os.path.join(d, n) for n in sorted(os.listdir(d)) if _FILE.match(n)]
    if not paths:
        raise FileNotFoundError(f"{folder}: no SUBJECT_{{dev,val,test}}.csv files (MMLU or C-Eval layout)")
    subjects: dict[str, dict[str, list[Question]]] = {}
    layouts = {}
    for path in paths:
        m = _FILE.match(os.path.basename(path))
        layouts[path], questions = read_csv_split(path)
        split = subjects.setdefault(m["subject"], {})
        if m["split"] in split:
            raise ValueError(f"{path}: a second {m['split']} file for subject {m['subject']}")
        split[m["split"]] = questions
    if len(set(layouts.values())) > 1:
        mmlu = next(p for p, v in layouts.items() if v == "mmlu")
        ceval = next(p for p, v in layouts.items() if v == "ceval")
        raise ValueError(f"{folder} mixes layouts: {mmlu} is MMLU (no header), {ceval} is C-Eval (header)")
    layout = next(iter(layouts.values()))
    names = {s: s.replace("_", " ") for s in subjects}
    mapping = os.path.join(folder, "subject_mapping.json")
    if layout == "ceval" and os.path.exists(mapping):
        with open(mapping, encoding="utf-8") as f:
            names.update({s: v[1] for s, v in json.load(f).items() if s in subjects})
    return TaskSet(layout=layout, subjects=dict(sorted(subjects.items())), names=names)


# --- prompts --------------------------------------------------------------------------------------

def header(layout: str, name: str, *, choice_text: bool) -> str:
    if layout == "ceval":
        return f"以下是中国关于{name}的单项选择题，请选出其中的正确答案。\n\n"
    if choice_text:
        return f"The following are questions (with answers) about {name}.\n\n"
    return f"The following are multiple choice questions (with answers) about {name}.\n\n"


def question_text(layout: str, q: Question, *, choice_text: bool) -> str:
    """The question block, ending where the answer's continuation starts."""
    answer = "答案：" if layout == "ceval" else "Answer:"
    if choice_text:
        return f"{q.question.strip()}\n{answer}" if layout == "ceval" else f"Question: {q.question.strip()}\n{answer}"
    options = "".join(f"\n{letter}. {choice}" for letter, choice in zip(LETTERS, q.choices))
    return f"{q.question.strip()}{options}\n{answer}"


def continuations(q: Question, *, choice_text: bool) -> list[str]:
    return [f" {c}" for c in q.choices] if choice_text else [f" {letter}" for letter in LETTERS]


def build_prompt(layout: str, name: str, shots: Sequence[Question], q: Question, *, choice_text: bool) -> str:
    """Header, K solved examples separated by a blank line, then the question (lm-eval's fewshot context)."""
    examples = "".join(f"{question_text(layout, s, choice_text=choice_text)}"
                       f"{continuations(s, choice_text=choice_text)[s.answer]}\n\n" for s in shots)
    return header(layout, name, choice_text=choice_text) + examples + question_text(layout, q, choice_text=choice_text)


def encode_pairs(tokenizer, pairs: Sequence[tuple[str, str]]) -> list[tuple[list[int], list[int]]]:
    """(context ids, continuation ids) per (context, continuation): lm-eval's joint encoding (see above)."""
    moved = []
    for context, continuation in pairs:
        spaces = len(context) - len(context.rstrip())
        moved.append((context[:len(context) - spaces], context[len(context) - spaces:] + continuation))
    whole = tokenizer.encode_batch([c + x for c, x in moved], add_special_tokens=False)
    ctx = tokenizer.encode_batch([c for c, _ in moved], add_special_tokens=False)
    return [(w.ids[:len(c.ids)], w.ids[len(c.ids):]) for w, c in zip(whole, ctx)]


# --- scoring --------------------------------------------------------------------------------------

def loglikelihoods(model, requests: Sequence[tuple[list[int], list[int]]], *, window: int, vocab_size: int,
                   pad_id: int, batch_size: int = 16, device: str = "cpu") -> tuple[list[float], int]:
    """(sum of log p(continuation token | everything before it) per request, requests truncated).

    A request is scored from the model's input (context + continuation)[-(window + 1):][:-1]. Requests with
    the same input share one forward (the four one-token letters of a question have the same input),
    inputs are batched longest first and right-padded (causal attention: padding after a position never
    changes it)."""
    import torch

    by_input: dict[tuple[int, ...], list[int]] = {}
    targets, truncated = [], 0
    for i, (ctx, cont) in enumerate(requests):
        if not cont or len(cont) > window:
            raise ValueError(f"continuation of {len(cont)} tokens: must be 1..{window} (the window)")
        seq = (ctx + cont)[-(window + 1):]
        truncated += len(ctx) + len(cont) > window + 1
        by_input.setdefault(tuple(seq[:-1]), []).append(i)
        targets.append(cont)
    inputs = sorted(by_input, key=len, reverse=True)
    scores = [0.0] * len(requests)
    model.eval()
    with torch.no_grad():
        for b in range(0, len(inputs), batch_size):
            batch = inputs[b:b + batch_size]
            width = len(batch[0])
            tokens = torch.full((len(batch), width), pad_id, dtype=torch.long, device=device)
            for r, inp in enumerate(batch):
                tokens[r, :len(inp)] = torch.tensor(inp, dtype=torch.long)
            positions = torch.arange(width, device=device)[None].expand(len(batch), -1)
            logits = model(tokens, positions, None)  # [b, s, V_padded]
            for r, inp in enumerate(batch):
                for i in by_input[inp]:
                    n = len(targets[i])
                    logp = torch.log_softmax(logits[r, len(inp) - n:len(inp), :vocab_size].float(), dim=-1)  # [n, V]
                    target = torch.tensor(targets[i], device=logp.device)
                    scores[i] = float(logp.gather(-1, target[:, None]).sum())
    return scores, truncated


def aggregate(correct: dict[str, list[float]]) -> dict[str, Any]:
    """Per-subject accuracy, macro (mean over subjects) and micro (over questions) from subject -> 0/1 list."""
    subjects = {s: {"questions": len(v), "accuracy": sum(v) / len(v)} for s, v in correct.items() if v}
    total = sum(len(v) for v in correct.values())
    return {"subjects": subjects,
            "macro": sum(v["accuracy"] for v in subjects.values()) / len(subjects) if subjects else None,
            "micro": sum(sum(v) for v in correct.values()) / total if total else None}


def score_tasks(model, tokenizer, tasks: TaskSet, *, shots: int, split: str, choice_text: bool, window: int,
                vocab_size: int, pad_id: int, batch_size: int = 16) -> dict[str, Any]:
    """The report's body: per-subject and averaged acc (and acc_norm with choice_text), per-question scores."""
    if split not in SPLITS:
        raise ValueError(f"split {split!r}: one of {', '.join(SPLITS)}")
    if shots < 0:
        raise ValueError(f"shots={shots}: must be >= 0")
    if shots and split == "dev":
        raise ValueError("few-shot examples come from the dev split: evaluate val or test, or use --shots 0")
    subjects = {s: v for s, v in tasks.subjects.items() if v.get(split)}
    if not subjects:
        raise ValueError(f"no subject has a {split} file. Fix: --split one of "
                         f"{', '.join(sorted({x for v in tasks.subjects.values() for x in v}))}")
    items, pairs = [], []
    for subject, splits in subjects.items():
        dev = splits.get("dev", [])[:shots]
        if len(dev) < shots:
            raise ValueError(f"subject {subject} has {len(dev)} dev questions, --shots {shots} needs {shots}")
        for q in [*dev, *splits[split]]:
            if q.answer is None:
                raise ValueError(f"{q.where}: no answer in this file (C-Eval publishes none for its test split). "
                                 f"Fix: --split val")
        for q in splits[split]:
            context = build_prompt(tasks.layout, tasks.names[subject], dev, q, choice_text=choice_text)
            items.append((subject, q))
            pairs += [(context, c) for c in continuations(q, choice_text=choice_text)]
    scores, truncated = loglikelihoods(model, encode_pairs(tokenizer, pairs), window=window, vocab_size=vocab_size,
                                       pad_id=pad_id, batch_size=batch_size)
    acc: dict[str, list[float]] = {s: [] for s in subjects}
    acc_norm: dict[str, list[float]] = {s: [] for s in subjects}
    rows = []
    for k, (subject, q) in enumerate(items):
        ll = scores[4 * k:4 * k + 4]
        pred = max(range(4), key=lambda j: ll[j])  # ties: the first letter, as numpy's argmax
        acc[subject].append(float(pred == q.answer))
        row = {"subject": subject, "where": q.where, "answer": LETTERS[q.answer], "loglikelihoods": ll,
               "prediction": LETTERS[pred]}
        if choice_text:
            norm = [x / len(c) for x, c in zip(ll, q.choices)]  # characters of the choice, as lm-eval
            pred_norm = max(range(4), key=lambda j: norm[j])
            acc_norm[subject].append(float(pred_norm == q.answer))
            row["prediction_norm"] = LETTERS[pred_norm]
        rows.append(row)
    report = {"layout": tasks.layout, "split": split, "shots": shots,
              "scoring": "choice_text" if choice_text else "letter", "window": window,
              "truncated_requests": truncated, "requests": len(pairs), "random_baseline": RANDOM_BASELINE,
              "acc": aggregate(acc), "items": rows}
    if choice_text:
        report["acc_norm"] = aggregate(acc_norm)
    return report


def evaluate_checkpoint(path: str, tasks_dir: str, *, tokenizer_dir: str, shots: int = 0, split: str = "test",
                        choice_text: bool = False, seq_length: int | None = None,
                        batch_size: int = 16) -> dict[str, Any]:
    from training.eval.loaded import loaded_checkpoint, read_manifest, read_run_config, resolve_checkpoint
    from training.tokenizer import load_tokenizer

    tasks = read_tasks(tasks_dir)  # before loading anything: a bad folder fails fast
    run_dir, _ = resolve_checkpoint(path)
    tok = load_tokenizer(tokenizer_dir)
    trained_on = read_manifest(read_run_config(run_dir).data.export_dir)["tokenizer"]["tokenizer_sha256"]
    if tok.sha256 != trained_on:
        raise ValueError(f"{tokenizer_dir} is tokenizer {tok.sha256[:12]}, the run was trained on "
                         f"{trained_on[:12]}. Fix: --tokenizer the run's tokenizer folder")
    with loaded_checkpoint(path, vocab_size=tok.vocab_size, seq_length=seq_length) as loaded:
        body = score_tasks(loaded.model, tok.tokenizer, tasks, shots=shots, split=split, choice_text=choice_text,
                           window=loaded.seq_length, vocab_size=tok.vocab_size, pad_id=tok.pad_id,
                           batch_size=batch_size)
    return {"checkpoint": loaded.checkpoint, "step": loaded.step, "tasks_dir": os.path.abspath(tasks_dir), **body}


def format_report(report: dict[str, Any]) -> str:
    norm = report.get("acc_norm")
    lines = [f"checkpoint {report['checkpoint']} (step {report['step']}), {report['layout']} tasks "
             f"{report['tasks_dir']} ({report['split']}), {report['shots']}-shot, scoring {report['scoring']}",
             f"{'subject':<36}{'questions':>10}{'acc':>8}" + (f"{'acc_norm':>10}" if norm else "") + f"{'random':>8}"]
    for s, v in report["acc"]["subjects"].items():
        extra = f"{norm['subjects'][s]['accuracy']:>10.4f}" if norm else ""
        lines.append(f"{s:<36}{v['questions']:>10}{v['accuracy']:>8.4f}{extra}{report['random_baseline']:>8.2f}")
    total = sum(v["questions"] for v in report["acc"]["subjects"].values())
    for avg in ("macro", "micro"):
        extra = f"{norm[avg]:>10.4f}" if norm else ""
        lines.append(f"{avg + ' average':<36}{total:>10}{report['acc'][avg]:>8.4f}{extra}"
                     f"{report['random_baseline']:>8.2f}")
    if report["truncated_requests"]:
        lines.append(f"{report['truncated_requests']} of {report['requests']} requests lost context tokens from the "
                     f"left (window {report['window']} tokens): raise --seq-length")
    return "\n".join(lines)
