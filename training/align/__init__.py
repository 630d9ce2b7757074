"""Alignment after pretraining (InstructGPT, Ouyang et al. 2022): SFT, reward model, PPO.

    data.py     instruction / preference JSONL -> chat template -> token ids, loss masks, packing
    sft.py      `refinery train sft`: the GPT trained on responses only; its checkpoints are GPT checkpoints
    reward.py   `refinery train rm`: training/model/heads.py's ScalarHeadGPT on ranked answers

Each run folder has pretraining's layout: config.resolved.yaml (with the model section, read from the
source checkpoint's run), checkpoints/ (training/loop/checkpoint.py), metrics.jsonl, summary.json.
SFT checkpoints are ordinary GPT checkpoints, so whatever reads pretraining checkpoints (eval ppl,
eval generate, PPO's policy and reference) reads them; reward-model checkpoints load into
ScalarHeadGPT.
"""
