"""SFT's two masks: the loss ignores prompt tokens (training/align/data.py's loss mask in
training/loop/step.py's loss), and packing keeps attention inside each example (the segment-id mask in
training/model/attention.py's core attention): an example's logits are the same packed or alone."""

import numpy as np
import pytest

pytest.importorskip("megatron.core")

import torch  # noqa: E402

from training.model.config import ModelConfig  # noqa: E402

from .conftest import SFT_FIXTURE  # noqa: E402

SEQ = 256  # 33 of the 40 fixture examples fit


@pytest.fixture(scope="module")
def tok(tiny_tokenizer):
    from training.tokenizer import load_tokenizer

    return load_tokenizer(tiny_tokenizer)


@pytest.fixture(scope="module")
def packed(tok):
    from training.align.data import encode_sft, pack_examples, read_jsonl

    examples, _ = encode_sft(tok, read_jsonl(SFT_FIXTURE), seq_length=SEQ)
    return examples, pack_examples(examples[:8], seq_length=SEQ, pack=True)


def _model(position="rope", seed=5):
    from training.model.gpt import build_gpt

    return build_gpt(ModelConfig(seq_length=SEQ, position=position), vocab_size=1024, seed=seed)


def test_loss_ignores_prompt_tokens(megatron_cpu, tok, packed):
    from training.align.data import collate_sft
    from training.loop.step import forward_loss

    model = _model()
    batch = collate_sft(packed[1][:2], seq_length=SEQ, pad_id=tok.pad_id)
    prompt = torch.nonzero(batch["loss_mask"][0] == 0).flatten()
    response = torch.nonzero(batch["loss_mask"][0] == 1).flatten()
    assert len(prompt) > 10 and len(response) > 3

    def loss_and_grad(b):
        model.zero_grad()
        loss = (forward_loss(model, b, bf16=False, device="cpu") * b["loss_mask"]).sum() / b["loss_mask"].sum()
        loss.backward()
        return loss.item(), torch.cat([p.grad.flatten() for p in model.parameters()])

    base, grad = loss_and_grad(batch)
    changed = {k: v.clone() for k, v in batch.items()}
    changed["labels"][0, prompt[5]] = (changed["labels"][0, prompt[5]] + 7) % tok.vocab_size  # a prompt target
    got, got_grad = loss_and_grad(changed)
    assert got == base and torch.equal(got_grad, grad)
    changed = {k: v.clone() for k, v in batch.items()}
    changed["labels"][0, response[1]] = (changed["labels"][0, response[1]] + 7) % tok.vocab_size  # a response target
    assert loss_and_grad(changed)[0] != base  # the check can fail


@pytest.mark.parametrize("position", ["rope", "learned", "alibi"])
def test_packed_logits_equal_each_example_alone(megatron_cpu, tok, packed, position):
    from training.align.data import collate_sft, pack_examples

    examples, rows = packed
    model = _model(position)
    model.eval()
    row = rows[0]
    starts = np.flatnonzero(row["position_ids"] == 0)
    assert len(starts) >= 2, "the first packed row should hold several examples"
    batch = collate_sft([row], seq_length=SEQ, pad_id=tok.pad_id)
    with torch.no_grad():
        together = model(batch["tokens"], batch["position_ids"], batch["attention_mask"])[0]  # [s, V]
        unmasked = model(batch["tokens"], batch["position_ids"], None)[0]
    ends = list(starts[1:]) + [len(row["tokens"])]
    for i, (a, b) in enumerate(zip(starts, ends)):
        alone = collate_sft(pack_examples([examples[i]], seq_length=SEQ, pack=False), seq_length=SEQ,
                            pad_id=tok.pad_id)
        with torch.no_grad():
            single = model(alone["tokens"][:, :b - a], alone["position_ids"][:, :b - a], None)[0]
        torch.testing.assert_close(together[a:b], single, rtol=1e-5, atol=1e-5)
    # without the mask the second example attends to the first: the check can fail
    a, b = starts[1], ends[1]
    assert (unmasked[a:b] - together[a:b]).abs().max() > 1e-3
