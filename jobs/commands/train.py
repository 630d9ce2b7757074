"""`refinery train pretrain CONFIG.yaml [--set key=value ...] [--address ADDR] [--no-progress]`:
pretrain a GPT with megatron-core on Ray Train, resuming from the run folder's `latest` checkpoint.
`refinery train sft CONFIG.yaml ...` and `refinery train rm CONFIG.yaml ...` (same options): supervised
fine-tuning of a GPT checkpoint and a reward model on ranked answers (training/align/).

Exit status: 0 done; 2 the config or the run folder is unusable (the message names the field and the
fix); 1 training failed on a worker (its traceback is printed above by Ray).
"""

from __future__ import annotations

import os

from jobs.commands._configs import CONFIG_LOADERS
from jobs.commands._training import add_run_options, load_and_launch


def register(subparsers) -> None:
    train = subparsers.add_parser("train", help="train models on an exported corpus (megatron-core on Ray Train)")
    actions = train.add_subparsers(dest="train_command", required=True)
    for name, handler, help_text, config_help, example in (
            ("pretrain", _pretrain, "pretrain a GPT (resumes from the run folder's latest checkpoint)",
             "training config YAML, e.g. jobs/pretrain_tiny.yaml", "schedule.train_steps=50"),
            ("sft", _sft, "supervised fine-tuning of a GPT checkpoint on instruction data "
                          "(loss on responses only; resumes from the run folder's latest)",
             "SFT config YAML, e.g. jobs/sft_tiny.yaml", "schedule.train_steps=50"),
            ("rm", _rm, "a reward model (GPT trunk + scalar head) on ranked answers "
                        "(resumes from the run folder's latest)",
             "reward-model config YAML, e.g. jobs/rm_tiny.yaml", "schedule.train_steps=50"),
            ("ppo", _ppo, "RLHF with PPO from an SFT run and a reward model (InstructGPT); resumes "
                          "from the run folder's latest checkpoint",
             "PPO config YAML, e.g. jobs/ppo_tiny.yaml", "ppo.iterations=20")):
        command = actions.add_parser(name, help=help_text)
        command.add_argument("config", help=config_help)
        add_run_options(command, example=example)
        command.set_defaults(handler=handler)


def _pretrain(args) -> int:
    from schemas.mixture import MixtureWeightsError
    from training.loop.launch import LaunchError, launch_pretrain

    summary, cfg = load_and_launch(args, load=CONFIG_LOADERS["train", "pretrain"].load, launch=launch_pretrain, what="training",
                                   fixable=(LaunchError, MixtureWeightsError))
    if summary is None:
        return cfg
    valid = summary.get("valid_loss", {})
    print(f"trained {summary['steps']}/{summary['train_steps']} steps, {summary['tokens']:,} tokens; "
          f"valid loss {valid.get('all', float('nan')):.4f}; skipped steps {summary['bad_steps']}")
    for d in sorted(summary["weights"]):
        print(f"  {d:<14} weight {summary['weights'][d]:.4f}  realized {summary['realized_token_share'][d]:.4f}"
              + (f"  valid loss {valid[d]:.4f}" if d in valid else ""))
    print(f"run folder: {cfg.output.dir} (metrics.jsonl, checkpoints/, summary.json)")
    return 0


def _run_align(args, kind: str):
    """(summary, config) of an SFT or RM run, or (None, exit status)."""
    from training.align.data import AlignDataError
    from training.loop.launch import LaunchError

    def launch(cfg, **kwargs):
        if kind == "sft":
            from training.align.sft import launch_sft as launch_run
        else:
            from training.align.reward import launch_rm as launch_run
        return launch_run(cfg, **kwargs)

    # the data and source checks raise ValueError and FileNotFoundError with the fix in the message
    return load_and_launch(args, load=CONFIG_LOADERS["train", kind].load, launch=launch, what=kind,
                           fixable=(LaunchError, AlignDataError, FileNotFoundError, ValueError))


def _sft(args) -> int:
    summary, cfg = _run_align(args, "sft")
    if summary is None:
        return cfg
    d = summary["data"]
    print(f"trained {summary['steps']}/{summary['train_steps']} steps ({summary['epochs']:.2f} epochs of "
          f"{d['train_rows']} packed rows, {d['train_examples']} examples; {d['dropped_too_long']} too long); "
          f"held-out loss {summary['valid_loss_start']:.4f} -> {summary['valid_loss']:.4f}"
          if summary.get("valid_loss_start") is not None else
          f"trained {summary['steps']}/{summary['train_steps']} steps; held-out loss {summary['valid_loss']:.4f}")
    if summary.get("samples_file"):
        print(f"generations: {os.path.join(cfg.output.dir, summary['samples_file'])}")
    print(f"run folder: {cfg.output.dir} (metrics.jsonl, checkpoints/ readable as GPT checkpoints, summary.json)")
    return 0


def _rm(args) -> int:
    summary, cfg = _run_align(args, "rm")
    if summary is None:
        return cfg
    d = summary["data"]
    start = summary.get("valid_accuracy_start")
    print(f"trained {summary['steps']}/{summary['train_steps']} steps on {d['train_prompts']} prompts "
          f"(K {d['k_min']}..{d['k_max']}, {d['train_pairs']} pairs); held-out pairwise accuracy "
          + (f"{start:.3f} -> " if start is not None else "") + f"{summary['valid_accuracy']:.3f} over "
          f"{summary['valid_pairs']} pairs, loss {summary['valid_loss']:.4f}")
    print(f"run folder: {cfg.output.dir} (metrics.jsonl, checkpoints/ of training.model.heads.ScalarHeadGPT, "
          f"summary.json)")
    return 0


def _ppo(args) -> int:
    """`refinery train ppo CONFIG`: exit 0 done, 2 unusable config or inputs, 1 a worker failed."""
    from schemas.mixture import MixtureWeightsError
    from training.align.ppo import launch_ppo
    from training.loop.launch import LaunchError

    summary, cfg = load_and_launch(args, load=CONFIG_LOADERS["train", "ppo"].load, launch=launch_ppo, what="PPO",
                                   fixable=(LaunchError, MixtureWeightsError), failed="PPO failed")
    if summary is None:
        return cfg
    print(f"PPO {summary['iterations']}/{summary['target_iterations']} iterations, {summary['samples']:,} samples; "
          f"reward {summary.get('first_reward', float('nan')):.4f} -> {summary.get('last_reward', float('nan')):.4f}, "
          f"KL {summary.get('last_kl', float('nan')):.3f} (beta {summary['kl_beta']:.4g}); skipped steps "
          f"{summary['bad_steps']}")
    if "valid_loss_end" in summary:
        print(f"  pretraining valid loss {summary['valid_loss_start']['all']:.4f} (SFT) -> "
              f"{summary['valid_loss_end']['all']:.4f}")
    print(f"run folder: {cfg.output.dir} (metrics.jsonl, checkpoints/ = policy, checkpoints/value/, summary.json)")
    return 0
