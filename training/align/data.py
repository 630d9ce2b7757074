"""Instruction and preference data: JSONL rows -> chat template -> token ids with a loss mask -> packed rows.

Rows (one JSON object per line; a bad line is an error naming file:line):

    SFT          {"prompt": "...", "response": "..."}
                 {"messages": [{"role": "system" | "user" | "assistant", "content": "..."}, ...]}
    preferences  {"prompt": "..." (or "messages": [...the prompt's turns]), "answers": ["best", ..., "worst"]}

Other keys (`meta`, ...) are carried along and ignored. The chat template, plain text around the
run's own tokenizer (no special tokens beyond EOD):

    System: {system}\n
    User: {user}\n
    Assistant: {answer}<|endoftext|>User: {next user turn}\n
    Assistant: {answer}<|endoftext|>

Each piece is tokenized on its own and the ids concatenated, so the prompt a model is given at
generation time (`encode_prompt`, ending in "Assistant:") is token for token the prefix it was trained
on. The loss covers the " {answer}" tokens and the EOD after each of them (the model learns to stop);
every prompt token has loss mask 0.

Packing (`pack_examples`): examples are laid one after another into rows of `seq_length` tokens; an
example that does not fit in the current row starts the next one. Each token carries the index of its
example in the row (segment id) and its position inside the example (position ids restart at 0), and
`collate_sft` turns segment ids into an attention mask that keeps attention inside each example
(block-diagonal; the core attention adds causality). An example's logits are then those it has alone.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

import numpy as np

ROLES = ("system", "user", "assistant")
TEMPLATE_PREFIX = {"system": "System: ", "user": "User: "}
ASSISTANT_CUE = "Assistant:"


class AlignDataError(ValueError):
    """A data file that cannot be used as written: the message names file:line and the fix."""


# --- reading -------------------------------------------------------------------------------------

def read_jsonl(path: str) -> list[tuple[str, dict[str, Any]]]:
    """[(where = "file:line", row)] of every non-blank line."""
    out = []
    try:
        f = open(path, encoding="utf-8")
    except FileNotFoundError as exc:
        raise AlignDataError(f"{path}: no such file") from exc
    with f:
        for i, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{i}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise AlignDataError(f"{where}: not valid JSON ({exc.msg})") from exc
            if not isinstance(row, dict):
                raise AlignDataError(f"{where}: expected a JSON object, got {type(row).__name__}")
            out.append((where, row))
    if not out:
        raise AlignDataError(f"{path}: no rows")
    return out


def _messages(value: Any, where: str) -> list[dict[str, str]]:
    if not isinstance(value, list) or not value:
        raise AlignDataError(f"{where}: `messages` must be a non-empty list of {{role, content}} objects")
    out = []
    for j, m in enumerate(value):
        if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
            raise AlignDataError(f"{where}: messages[{j}] must be {{\"role\": one of {', '.join(ROLES)}, "
                                 f"\"content\": a string}}, got {json.dumps(m)[:120]}")
        out.append({"role": m["role"], "content": m["content"]})
    return out


def sft_messages(row: dict[str, Any], where: str) -> list[dict[str, str]]:
    """The conversation of an SFT row; it must end with an assistant turn."""
    if "messages" in row:
        messages = _messages(row["messages"], where)
    elif isinstance(row.get("prompt"), str) and isinstance(row.get("response"), str):
        messages = [{"role": "user", "content": row["prompt"]}, {"role": "assistant", "content": row["response"]}]
    else:
        raise AlignDataError(f"{where}: expected string fields `prompt` and `response`, or a `messages` list "
                             f"(keys here: {', '.join(sorted(row)) or 'none'})")
    if messages[-1]["role"] != "assistant":
        raise AlignDataError(f"{where}: the last message must be the assistant's (it is what the model learns)")
    return messages


def preference_row(row: dict[str, Any], where: str) -> tuple[list[dict[str, str]], list[str]]:
    """(the prompt's turns, answers best first) of a preference row."""
    if "messages" in row:
        prompt = _messages(row["messages"], where)
        if prompt[-1]["role"] == "assistant":
            raise AlignDataError(f"{where}: the prompt's last message must not be the assistant's")
    elif isinstance(row.get("prompt"), str):
        prompt = [{"role": "user", "content": row["prompt"]}]
    else:
        raise AlignDataError(f"{where}: expected a string `prompt` (or a `messages` list) and `answers` "
                             f"(keys here: {', '.join(sorted(row)) or 'none'})")
    answers = row.get("answers")
    if not isinstance(answers, list) or len(answers) < 2 or not all(isinstance(a, str) for a in answers):
        raise AlignDataError(f"{where}: `answers` must be a list of at least 2 strings, best first")
    if len(set(answers)) != len(answers):
        raise AlignDataError(f"{where}: `answers` holds the same text twice: a strict ranking needs distinct answers")
    return prompt, answers


def split_valid(rows: list, fraction: float, seed: int) -> tuple[list, list]:
    """(train, valid): a row is held out when a keyed hash of its JSON text falls below `fraction`, so the
    split does not depend on the rows' order. At least one row lands on each side."""
    def u(row) -> float:
        text = json.dumps(row[1] if isinstance(row, tuple) else row, sort_keys=True).encode()
        digest = hashlib.blake2b(text, digest_size=8, key=seed.to_bytes(8, "little")).digest()
        return int.from_bytes(digest, "little") / 2**64

    scores = [u(r) for r in rows]
    valid = [r for r, s in zip(rows, scores) if s < fraction]
    train = [r for r, s in zip(rows, scores) if s >= fraction]
    if len(rows) >= 2 and (not valid or not train):  # tiny files: the lowest hash is held out
        lowest = int(np.argmin(scores))
        valid = [rows[lowest]]
        train = [r for i, r in enumerate(rows) if i != lowest]
    return train, valid


# --- the chat template ---------------------------------------------------------------------------

def _encode(tok, text: str) -> list[int]:
    return tok.tokenizer.encode(text, add_special_tokens=False).ids


def encode_chat(tok, messages: list[dict[str, str]]) -> tuple[list[int], list[int]]:
    """(ids, response mask): 1 on the tokens of each assistant answer and the EOD closing it, 0 elsewhere."""
    ids: list[int] = []
    response: list[int] = []
    for m in messages:
        if m["role"] == "assistant":
            cue = _encode(tok, ASSISTANT_CUE)
            answer = _encode(tok, " " + m["content"]) + [tok.eod_id]
            ids += cue + answer
            response += [0] * len(cue) + [1] * len(answer)
        else:
            piece = _encode(tok, TEMPLATE_PREFIX[m["role"]] + m["content"] + "\n")
            ids += piece
            response += [0] * len(piece)
    return ids, response


def encode_prompt(tok, messages: list[dict[str, str]]) -> list[int]:
    """The ids a model continues to answer: the turns (a trailing assistant turn dropped) + "Assistant:"."""
    if messages and messages[-1]["role"] == "assistant":
        messages = messages[:-1]
    ids, _ = encode_chat(tok, messages)
    return ids + _encode(tok, ASSISTANT_CUE)


def chat_text(messages: list[dict[str, str]], eod: str = "<|endoftext|>") -> str:
    """The template as text (for reading; training uses `encode_chat`)."""
    parts = []
    for m in messages:
        if m["role"] == "assistant":
            parts.append(f"{ASSISTANT_CUE} {m['content']}{eod}")
        else:
            parts.append(f"{TEMPLATE_PREFIX[m['role']]}{m['content']}\n")
    return "".join(parts)


# --- SFT examples and packing --------------------------------------------------------------------

@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class SFTExample:
    ids: list[int]
    response: list[int]
    """1 = a token the model learns to produce."""


def encode_sft(tok, rows: list[tuple[str, dict[str, Any]]], *, seq_length: int) -> tuple[list[SFTExample], int]:
    """(examples, dropped): an example of n tokens fills n - 1 positions (inputs ids[:-1], targets ids[1:]);
    one longer than `seq_length` positions is dropped and counted, never cut (a cut answer teaches the model
    to stop mid-sentence)."""
    examples, dropped = [], 0
    for where, row in rows:
        ids, response = encode_chat(tok, sft_messages(row, where))
        if len(ids) - 1 > seq_length:
            dropped += 1
            continue
        examples.append(SFTExample(ids=ids, response=response))
    return examples, dropped


def pack_examples(examples: list[SFTExample], *, seq_length: int, pack: bool) -> list[dict[str, np.ndarray]]:
    """Rows of at most `seq_length` positions: tokens, labels, loss_mask, position_ids, segment_ids (int32 / float32,
    unpadded). With `pack`, examples fill rows in order (next fit); without, one example per row."""
    rows: list[dict[str, np.ndarray]] = []
    current: list[SFTExample] = []
    used = 0

    def flush():
        parts = {k: [] for k in ("tokens", "labels", "loss_mask", "position_ids", "segment_ids")}
        for seg, ex in enumerate(current):
            n = len(ex.ids) - 1
            parts["tokens"].append(np.asarray(ex.ids[:-1], dtype=np.int64))
            parts["labels"].append(np.asarray(ex.ids[1:], dtype=np.int64))
            # position t predicts token t + 1: learned when token t + 1 is a response token
            parts["loss_mask"].append(np.asarray(ex.response[1:], dtype=np.float32))
            parts["position_ids"].append(np.arange(n, dtype=np.int64))
            parts["segment_ids"].append(np.full(n, seg, dtype=np.int64))
        rows.append({k: np.concatenate(v) for k, v in parts.items()})

    for ex in examples:
        n = len(ex.ids) - 1
        if current and (not pack or used + n > seq_length):
            flush()
            current, used = [], 0
        current.append(ex)
        used += n
    if current:
        flush()
    return rows


def packed_attention_mask(segment_ids):
    """segment_ids [b, s] -> bool [b, 1, s, s], True = masked: a query sees only keys of its own segment (the
    core attention adds causality). Padding carries its own segment id, so no query has every key masked."""
    return (segment_ids[:, :, None] != segment_ids[:, None, :])[:, None]


def collate_sft(rows: list[dict[str, np.ndarray]], *, seq_length: int, pad_id: int) -> dict[str, Any]:
    """A micro-batch for training/loop/step.py: tokens, labels, position_ids, segment_ids [b, s] int64; loss_mask
    [b, s] float32; attention_mask [b, 1, s, s] bool; dataset_id [b] (one domain, "sft"). Rows are padded to
    `seq_length` (pad tokens: loss 0, segment -1)."""
    import torch

    b = len(rows)
    out = {"tokens": np.full((b, seq_length), pad_id, dtype=np.int64),
           "labels": np.full((b, seq_length), pad_id, dtype=np.int64),
           "loss_mask": np.zeros((b, seq_length), dtype=np.float32),
           "position_ids": np.tile(np.arange(seq_length, dtype=np.int64), (b, 1)),
           "segment_ids": np.full((b, seq_length), -1, dtype=np.int64)}
    for i, row in enumerate(rows):
        n = len(row["tokens"])
        for k in out:
            out[k][i, :n] = row[k]
    batch = {k: torch.from_numpy(v) for k, v in out.items()}
    batch["attention_mask"] = packed_attention_mask(batch["segment_ids"])
    batch["dataset_id"] = torch.zeros(b, dtype=torch.int64)
    return batch


# --- preferences ---------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class PreferenceExample:
    sequences: list[list[int]]
    """prompt + " {answer}" + EOD per answer, best first; the reward is read at the last token (EOD)."""


def encode_preferences(tok, rows: list[tuple[str, dict[str, Any]]], *,
                       seq_length: int) -> tuple[list[PreferenceExample], int]:
    """(examples, dropped): a prompt with any answer sequence longer than `seq_length` tokens is dropped whole
    (a cut answer would lose the EOD its reward is read at) and counted."""
    examples, dropped = [], 0
    for where, row in rows:
        prompt, answers = preference_row(row, where)
        seqs = [encode_chat(tok, prompt + [{"role": "assistant", "content": a}])[0] for a in answers]
        if max(len(s) for s in seqs) > seq_length:
            dropped += 1
            continue
        examples.append(PreferenceExample(sequences=seqs))
    return examples, dropped


def collate_preferences(examples: list[PreferenceExample], *, pad_id: int) -> dict[str, Any]:
    """One micro-batch of whole prompts (a prompt's pairs stay in one batch element, InstructGPT section 3.5):
    tokens, position_ids [R, L] (R = all answers of these prompts, right-padded to the longest), nonpad
    [R, L] bool, and the pairs: better, worse [P] row indices, pair_weight [P] = 1 / C(K, 2) of its prompt,
    pair_prompt [P] the prompt's index in the micro-batch."""
    import torch

    seqs = [s for ex in examples for s in ex.sequences]
    length = max(len(s) for s in seqs)
    tokens = np.full((len(seqs), length), pad_id, dtype=np.int64)
    nonpad = np.zeros((len(seqs), length), dtype=bool)
    for i, s in enumerate(seqs):
        tokens[i, :len(s)] = s
        nonpad[i, :len(s)] = True
    better, worse, weight, prompt = [], [], [], []
    first = 0
    for p, ex in enumerate(examples):
        k = len(ex.sequences)
        pairs = k * (k - 1) // 2
        for i in range(k):
            for j in range(i + 1, k):  # answers are best first: i is preferred to j
                better.append(first + i)
                worse.append(first + j)
                weight.append(1.0 / pairs)
                prompt.append(p)
        first += k
    return {"tokens": torch.from_numpy(tokens),
            "position_ids": torch.arange(length, dtype=torch.int64)[None].expand(len(seqs), length).contiguous(),
            "nonpad": torch.from_numpy(nonpad),
            "better": torch.tensor(better, dtype=torch.int64), "worse": torch.tensor(worse, dtype=torch.int64),
            "pair_weight": torch.tensor(weight, dtype=torch.float64),
            "pair_prompt": torch.tensor(prompt, dtype=torch.int64)}


def epoch_order(n: int, *, seed: int, epoch: int) -> np.ndarray:
    """The order of `n` rows in `epoch`: a fresh permutation per epoch, the same on every rank and every rerun."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def stream_indices(n: int, start: int, count: int, *, seed: int) -> list[int]:
    """Row indices of positions [start, start + count) of the endless stream: epoch after epoch of `n` rows."""
    orders: dict[int, np.ndarray] = {}
    out = []
    for i in range(start, start + count):
        epoch, k = divmod(i, n)
        if epoch not in orders:
            orders[epoch] = epoch_order(n, seed=seed, epoch=epoch)
        out.append(int(orders[epoch][k]))
    return out
