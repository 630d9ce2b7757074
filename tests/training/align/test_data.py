"""training/align/data.py: the chat template and its loss mask, packing, the block-diagonal attention mask,
preference batches, clear errors for bad rows."""

import json

import numpy as np
import pytest
import torch

from training.align.data import (AlignDataError, chat_text, collate_preferences, collate_sft, encode_chat,
                                 encode_preferences, encode_prompt, encode_sft, pack_examples, packed_attention_mask,
                                 preference_row, read_jsonl, sft_messages, split_valid, stream_indices)

from .conftest import PREFERENCE_FIXTURE, SFT_FIXTURE


@pytest.fixture(scope="module")
def tok(tiny_tokenizer):
    from training.tokenizer import load_tokenizer

    return load_tokenizer(tiny_tokenizer)


def test_template_masks_exactly_the_answers_and_their_eod(tok):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a colour."},
                {"role": "assistant", "content": "Red."}, {"role": "user", "content": "Another?"},
                {"role": "assistant", "content": "Blue."}]
    ids, response = encode_chat(tok, messages)
    assert len(ids) == len(response)
    # the text round-trips through the template (EOD is the tokenizer's own special token)
    assert tok.tokenizer.decode(ids, skip_special_tokens=False) == chat_text(messages)
    assert chat_text(messages) == ("System: Be brief.\nUser: Name a colour.\nAssistant: Red.<|endoftext|>"
                                   "User: Another?\nAssistant: Blue.<|endoftext|>")
    learned = [i for i, r in zip(ids, response) if r]
    eod = tok.eod_id
    # exactly the two answers, each with its EOD
    assert tok.tokenizer.decode(learned, skip_special_tokens=False) == " Red.<|endoftext|> Blue.<|endoftext|>"
    assert learned.count(eod) == 2 and ids.count(eod) == 2
    # the generation prompt is the training sequence's prefix, token for token
    prompt = encode_prompt(tok, messages[:3])
    assert ids[:len(prompt)] == prompt and response[len(prompt)] == 1 and not any(response[:len(prompt)])


def test_rows_and_errors_name_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"prompt": "a", "response": "b"}\n\n{"prompt": "only a prompt"}\n')
    rows = read_jsonl(str(path))
    assert sft_messages(rows[0][1], rows[0][0])[-1] == {"role": "assistant", "content": "b"}
    with pytest.raises(AlignDataError, match=r"bad.jsonl:3: expected string fields `prompt` and `response`"):
        sft_messages(rows[1][1], rows[1][0])
    path.write_text('{"prompt": "a", "response": "b"}\nnot json\n')
    with pytest.raises(AlignDataError, match=r"bad.jsonl:2: not valid JSON"):
        read_jsonl(str(path))
    with pytest.raises(AlignDataError, match=r"x:7: messages\[1\] must be"):
        sft_messages({"messages": [{"role": "user", "content": "a"}, {"role": "bot", "content": "b"}]}, "x:7")
    with pytest.raises(AlignDataError, match="last message must be the assistant"):
        sft_messages({"messages": [{"role": "user", "content": "a"}]}, "x:1")
    with pytest.raises(AlignDataError, match="x:2: `answers` must be a list of at least 2"):
        preference_row({"prompt": "p", "answers": ["only one"]}, "x:2")
    with pytest.raises(AlignDataError, match="same text twice"):
        preference_row({"prompt": "p", "answers": ["a", "a"]}, "x:3")


def test_packing_fills_rows_in_order_and_restarts_positions(tok):
    rows = read_jsonl(SFT_FIXTURE)
    examples, dropped = encode_sft(tok, rows, seq_length=384)
    assert dropped == 0 and len(examples) == 40
    packed = pack_examples(examples, seq_length=384, pack=True)
    alone = pack_examples(examples, seq_length=384, pack=False)
    assert len(alone) == 40 and len(packed) < 40
    # every example appears once, whole, in order; positions restart; segments count up inside a row
    flat = np.concatenate([r["tokens"] for r in packed])
    assert np.array_equal(flat, np.concatenate([r["tokens"] for r in alone]))
    for r in packed:
        assert len(r["tokens"]) <= 384
        starts = np.flatnonzero(r["position_ids"] == 0)
        assert np.array_equal(r["segment_ids"][starts], np.arange(len(starts)))
        assert np.array_equal(r["labels"][:-1][np.diff(r["segment_ids"]) == 0],
                              r["tokens"][1:][np.diff(r["segment_ids"]) == 0])  # targets are the next tokens
    # next fit: the next example would not have fitted in the row before
    lengths = [len(e.ids) - 1 for e in examples]
    used, k = [len(r["tokens"]) for r in packed], 0
    for i, u in enumerate(used[:-1]):
        k += int((packed[i]["position_ids"] == 0).sum())
        assert u + lengths[k] > 384
    # loss mask = response tokens of the targets
    assert sum(r["loss_mask"].sum() for r in packed) == sum(sum(e.response[1:]) for e in examples)
    # too long: dropped and counted, never cut
    _, dropped = encode_sft(tok, rows, seq_length=40)
    assert dropped > 0


def test_attention_mask_is_block_diagonal_and_padding_keeps_itself():
    seg = torch.tensor([[0, 0, 1, 1, 1, -1]])
    mask = packed_attention_mask(seg)[0, 0]  # True = masked
    want = torch.ones(6, 6, dtype=torch.bool)
    want[:2, :2] = want[2:5, 2:5] = want[5:, 5:] = False
    assert torch.equal(mask, want)
    row = {"tokens": np.array([5, 6, 7]), "labels": np.array([6, 7, 8]), "loss_mask": np.array([0, 1, 1], "float32"),
           "position_ids": np.array([0, 1, 2]), "segment_ids": np.array([0, 0, 0])}
    batch = collate_sft([row], seq_length=5, pad_id=1)
    assert batch["tokens"].tolist() == [[5, 6, 7, 1, 1]] and batch["loss_mask"].tolist() == [[0, 1, 1, 0, 0]]
    assert batch["attention_mask"].shape == (1, 1, 5, 5) and batch["dataset_id"].tolist() == [0]
    assert not batch["attention_mask"][0, 0].all(dim=1).any()  # no query has every key masked


def test_preference_batch_keeps_each_prompts_pairs_with_weight_one_over_c_k_2(tok):
    examples, dropped = encode_preferences(tok, read_jsonl(PREFERENCE_FIXTURE), seq_length=1024)
    assert dropped == 0 and {len(e.sequences) for e in examples} == {4, 5, 6, 7, 8, 9}
    batch = collate_preferences(examples[:3], pad_id=tok.pad_id)
    ks = [len(e.sequences) for e in examples[:3]]
    assert batch["tokens"].shape[0] == sum(ks) and batch["better"].numel() == sum(k * (k - 1) // 2 for k in ks)
    assert torch.all(batch["better"] < batch["worse"])  # best first: the lower row index is preferred
    for p, k in enumerate(ks):  # each prompt's weights sum to 1, its pairs stay among its own rows
        sel = batch["pair_prompt"] == p
        assert batch["pair_weight"][sel].sum().item() == pytest.approx(1.0)
        first = sum(ks[:p])
        assert batch["better"][sel].min() >= first and batch["worse"][sel].max() < first + k
    # every answer sequence ends with EOD and shares its prompt's tokens
    for i, s in enumerate(s for e in examples[:3] for s in e.sequences):
        assert batch["tokens"][i, len(s) - 1] == tok.eod_id and batch["nonpad"][i].sum() == len(s)
    row = json.loads(open(PREFERENCE_FIXTURE).readline())
    prompt = encode_prompt(tok, row["messages"])
    assert all(s[:len(prompt)] == prompt for s in examples[0].sequences)


def test_valid_split_is_stable_under_reordering_and_stream_covers_each_epoch():
    rows = [("f:%d" % i, {"prompt": str(i), "response": "r"}) for i in range(200)]
    train, valid = split_valid(rows, 0.1, seed=3)
    train2, valid2 = split_valid(rows[::-1], 0.1, seed=3)
    assert {w for w, _ in valid} == {w for w, _ in valid2} and 5 < len(valid) < 40
    assert len(train) + len(valid) == 200
    stream = stream_indices(7, 0, 21, seed=1)
    assert [sorted(stream[i:i + 7]) for i in (0, 7, 14)] == [list(range(7))] * 3
    assert stream_indices(7, 9, 5, seed=1) == stream[9:14]
