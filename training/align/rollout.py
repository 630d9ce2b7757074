"""PPO's rollout: which prompts an iteration draws, the responses sampled for them, and the batch of
sequences PPO scores and trains on.

    prompts of iteration i (seeded permutation per pass over the prompt file)
    -> `sample` (training/eval/sampling.py, the project's one sampler), one seed per global sample index
    -> prompt + response (+ the EOD the sampler drew: it is an action of the policy too)
    -> right-padded tokens [b, L] and the action mask [b, L-1]

Action position i of a sequence is the prediction of token i + 1 from tokens 0..i: its log-probability
comes from the logits at position i, and the state value V_i from the value model's output at i. The
mask is 1 where token i + 1 belongs to the response. Padding sits after the response, so causal
attention keeps it from changing any real position. Each sample's seed depends on the iteration and its
global index only, so a run draws the same responses at any data-parallel size and after a resume.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from training.eval.sampling import SamplingConfig, sample


def read_prompt_ids(path: str, tok, *, chat_template: bool, max_tokens: int) -> list[list[int]]:
    """Token ids of every prompt in `path`, cut to their last `max_tokens` (the end, with the assistant cue,
    is what the response follows). A .jsonl row gives its `prompt` (a user turn) or its `messages` (a
    trailing assistant turn is dropped: the response replaces it), so SFT and preference files serve as
    prompt files; any other file gives one prompt per non-blank line. With `chat_template` the turns go
    through the SFT chat template (training/align/data.py) and end in "Assistant:", as the SFT model saw
    them; without it the prompt text is encoded as is (a pretrained model as the policy)."""
    from training.align.data import AlignDataError, encode_prompt, read_jsonl

    if path.endswith(".jsonl"):
        turns = []
        for where, row in read_jsonl(path):
            if isinstance(row.get("prompt"), str):
                turns.append([{"role": "user", "content": row["prompt"]}])
            elif isinstance(row.get("messages"), list) and row["messages"] and all(
                    isinstance(m, dict) and isinstance(m.get("content"), str) and m.get("role") in
                    ("system", "user", "assistant") for m in row["messages"]):
                turns.append([{"role": m["role"], "content": m["content"]} for m in row["messages"]])
            else:
                raise AlignDataError(f"{where}: expected a string `prompt` or a `messages` list of {{role, content}}")
    else:
        with open(path, encoding="utf-8") as f:
            turns = [[{"role": "user", "content": line.rstrip("\n")}] for line in f if line.strip()]
    if not turns:
        raise AlignDataError(f"{path}: no prompts")
    out = []
    for t in turns:
        if chat_template:
            ids = encode_prompt(tok, t)
        else:
            text = "\n".join(m["content"] for m in t if m["role"] != "assistant")
            ids = tok.tokenizer.encode(text, add_special_tokens=False).ids
        out.append(ids[-max_tokens:] or [tok.eod_id])  # an empty prompt starts after a document boundary
    return out


def prompt_indices(n_prompts: int, iteration: int, batch: int, seed: int) -> list[int]:
    """Indices into the prompt list of the `batch` samples of `iteration`: passes over the prompts, each in the
    order of its own seeded permutation."""
    out, orders = [], {}
    for k in range(iteration * batch, (iteration + 1) * batch):
        epoch, pos = divmod(k, n_prompts)
        if epoch not in orders:
            orders[epoch] = np.random.default_rng([seed, epoch]).permutation(n_prompts)
        out.append(int(orders[epoch][pos]))
    return out


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class RolloutBatch:
    tokens: object
    """[b, L] prompt + response, right-padded (int64)."""
    position_ids: object
    """[b, L]"""
    action_mask: object
    """[b, L-1] float: 1 where token i + 1 is a response token."""
    nonpad: object
    """[b, L] bool: True on prompt and response tokens."""
    response_tokens: list[list[int]]
    prompt_lengths: list[int]

    @property
    def size(self) -> int:
        return len(self.response_tokens)

    def rows(self, index):
        """The tensors of rows `index` (a list or a tensor of row numbers) as a dict."""
        return {"tokens": self.tokens[index], "position_ids": self.position_ids[index],
                "action_mask": self.action_mask[index], "nonpad": self.nonpad[index]}


def sample_responses(policy, prompts: list[list[int]], *, global_indices: list[int], iteration: int, seed: int,
                     max_new_tokens: int, temperature: float, top_p: float, top_k: int, eod_id: int,
                     vocab_size: int, device: str) -> list[list[int]]:
    """Responses of `prompts` (token ids; ending in EOD when the policy drew it before max_new_tokens)."""
    out = []
    for prompt, index in zip(prompts, global_indices):
        cfg = SamplingConfig(max_tokens=max_new_tokens, temperature=temperature, top_p=top_p, top_k=top_k,
                             seed=int(np.random.default_rng([seed, iteration, index]).integers(2**62)))
        (new,) = sample(policy, [prompt], cfg, eod_id=eod_id, vocab_size=vocab_size, device=device)
        # the sampler leaves out the EOD it drew; the policy chose it, and the reward model reads the response
        # as it ends, so it goes back in
        out.append(new + [eod_id] if len(new) < max_new_tokens else new)
    policy.train()
    return out


def build_batch(prompts: list[list[int]], responses: list[list[int]], *, pad_id: int, device: str) -> RolloutBatch:
    import torch

    lengths = [len(p) + len(r) for p, r in zip(prompts, responses)]
    width = max(lengths)
    tokens = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    action = torch.zeros(len(prompts), width - 1)
    nonpad = torch.zeros(len(prompts), width, dtype=torch.bool)
    for i, (p, r) in enumerate(zip(prompts, responses)):
        if not p or not r:
            raise ValueError(f"sample {i}: an empty prompt or response (prompt {len(p)}, response {len(r)} tokens)")
        tokens[i, :len(p) + len(r)] = torch.tensor(p + r)
        action[i, len(p) - 1:len(p) + len(r) - 1] = 1.0
        nonpad[i, :len(p) + len(r)] = True
    positions = torch.arange(width).expand(len(prompts), width).contiguous()
    return RolloutBatch(tokens=tokens.to(device), position_ids=positions.to(device), action_mask=action.to(device),
                        nonpad=nonpad.to(device), response_tokens=[list(r) for r in responses],
                        prompt_lengths=[len(p) for p in prompts])


def policy_logits(model, rows: dict, *, vocab_size: int, temperature: float):
    """Logits [b, L-1, V] of the actions (padding rows of the vocabulary dropped), divided by the rollout
    temperature: the ratio and the KL are those of the distribution the responses were drawn from
    (top-p / top-k truncation aside)."""
    logits = model(rows["tokens"], rows["position_ids"], None)  # [b, L, V_padded]
    return logits[:, :-1, :vocab_size].float() / temperature
