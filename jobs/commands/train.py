"""`refinery train pretrain CONFIG.yaml [--set key=value ...] [--address ADDR] [--no-progress]`:
pretrain a GPT with megatron-core on Ray Train, resuming from the run folder's `latest` checkpoint.
`refinery train sft CONFIG.yaml ...` and `refinery train rm CONFIG.yaml ...` (same options): supervised
fine-tuning of a GPT checkpoint and a reward model on ranked answers (training/align/).

Exit status: 0 done; 2 the config or the run folder is unusable (the message names the field and the
fix); 1 training failed on a worker (its traceback is printed above by Ray).
"""

from __future__ import annotations

import os
import sys


def register(subparsers) -> None:
    train = subparsers.add_parser("train", help="train models on an exported corpus (megatron-core on Ray Train)")
    actions = train.add_subparsers(dest="train_command", required=True)
    pre = actions.add_parser("pretrain", help="pretrain a GPT (resumes from the run folder's latest checkpoint)")
    pre.add_argument("config", help="training config YAML, e.g. jobs/pretrain_tiny.yaml")
    pre.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override a config value, e.g. schedule.train_steps=50 (repeatable)")
    pre.add_argument("--address", default=None,
                     help="Ray cluster to join ('auto', or host:port); default: RAY_ADDRESS, else a local cluster")
    pre.add_argument("--no-progress", action="store_true", help="no progress bar")
    pre.set_defaults(handler=_pretrain)
    _register_sft(actions)
    _register_rm(actions)
    _register_ppo(actions)


def _pretrain(args) -> int:
    import logging

    from schemas.config import ConfigError
    from schemas.mixture import MixtureWeightsError
    from training.loop.config import load_pretrain_config
    from training.loop.launch import LaunchError, launch_pretrain

    logging.getLogger("megatron").setLevel(logging.WARNING)
    try:
        cfg = load_pretrain_config(args.config, args.overrides)
    except FileNotFoundError as exc:
        print(f"refinery: {exc}", file=sys.stderr)
        return 2
    except ConfigError as exc:
        print(f"refinery: invalid training config: {exc}", file=sys.stderr)
        return 2
    address = args.address or os.environ.get("RAY_ADDRESS")
    try:
        summary = launch_pretrain(cfg, address=address, progress=not args.no_progress)
    except (LaunchError, MixtureWeightsError) as exc:
        print(f"refinery: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # Ray Train wraps a worker's error; its traceback is already on the screen
        if type(exc).__name__ in ("TrainingFailedError", "WorkerGroupError", "RayTaskError"):
            print(f"refinery: training failed: {exc}", file=sys.stderr)
            return 1
        raise
    valid = summary.get("valid_loss", {})
    print(f"trained {summary['steps']}/{summary['train_steps']} steps, {summary['tokens']:,} tokens; "
          f"valid loss {valid.get('all', float('nan')):.4f}; skipped steps {summary['bad_steps']}")
    for d in sorted(summary["weights"]):
        print(f"  {d:<14} weight {summary['weights'][d]:.4f}  realized {summary['realized_token_share'][d]:.4f}"
              + (f"  valid loss {valid[d]:.4f}" if d in valid else ""))
    print(f"run folder: {cfg.output.dir} (metrics.jsonl, checkpoints/, summary.json)")
    return 0


def _add_common(parser) -> None:
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. schedule.train_steps=50 (repeatable)")
    parser.add_argument("--address", default=None,
                        help="Ray cluster to join ('auto', or host:port); default: RAY_ADDRESS, else a local cluster")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _register_sft(actions) -> None:
    sft = actions.add_parser("sft", help="supervised fine-tuning of a GPT checkpoint on instruction data "
                                         "(loss on responses only; resumes from the run folder's latest)")
    sft.add_argument("config", help="SFT config YAML, e.g. jobs/sft_tiny.yaml")
    _add_common(sft)
    sft.set_defaults(handler=_sft)


def _register_rm(actions) -> None:
    rm = actions.add_parser("rm", help="a reward model (GPT trunk + scalar head) on ranked answers "
                                       "(resumes from the run folder's latest)")
    rm.add_argument("config", help="reward-model config YAML, e.g. jobs/rm_tiny.yaml")
    _add_common(rm)
    rm.set_defaults(handler=_rm)


def _run_align(args, kind: str):
    """(summary, config) of an SFT or RM run, or (None, exit status)."""
    import logging

    from schemas.config import ConfigError
    from training.align.config import RMConfig, SFTConfig, load_align_config
    from training.align.data import AlignDataError
    from training.loop.launch import LaunchError

    logging.getLogger("megatron").setLevel(logging.WARNING)
    try:
        cfg = load_align_config(SFTConfig if kind == "sft" else RMConfig, args.config, args.overrides)
    except FileNotFoundError as exc:
        print(f"refinery: {exc}", file=sys.stderr)
        return None, 2
    except ConfigError as exc:
        print(f"refinery: invalid {kind} config: {exc}", file=sys.stderr)
        return None, 2
    address = args.address or os.environ.get("RAY_ADDRESS")
    try:
        if kind == "sft":
            from training.align.sft import launch_sft as launch
        else:
            from training.align.reward import launch_rm as launch
        return launch(cfg, address=address, progress=not args.no_progress), cfg
    except (LaunchError, AlignDataError, FileNotFoundError, ValueError) as exc:
        print(f"refinery: {exc}", file=sys.stderr)
        return None, 2
    except Exception as exc:  # Ray Train wraps a worker's error; its traceback is already on the screen
        if type(exc).__name__ in ("TrainingFailedError", "WorkerGroupError", "RayTaskError"):
            print(f"refinery: training failed: {exc}", file=sys.stderr)
            return None, 1
        raise


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


def _register_ppo(actions) -> None:
    ppo = actions.add_parser("ppo", help="RLHF with PPO from an SFT run and a reward model (InstructGPT); resumes "
                                         "from the run folder's latest checkpoint")
    ppo.add_argument("config", help="PPO config YAML, e.g. jobs/ppo_tiny.yaml")
    ppo.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override a config value, e.g. ppo.iterations=20 (repeatable)")
    ppo.add_argument("--address", default=None,
                     help="Ray cluster to join ('auto', or host:port); default: RAY_ADDRESS, else a local cluster")
    ppo.add_argument("--no-progress", action="store_true", help="no progress bar")
    ppo.set_defaults(handler=_ppo)


def _ppo(args) -> int:
    """`refinery train ppo CONFIG`: exit 0 done, 2 unusable config or inputs, 1 a worker failed."""
    import logging

    from schemas.config import ConfigError
    from schemas.mixture import MixtureWeightsError
    from training.align.ppo import launch_ppo
    from training.align.ppo_config import load_ppo_config
    from training.loop.launch import LaunchError

    logging.getLogger("megatron").setLevel(logging.WARNING)
    try:
        cfg = load_ppo_config(args.config, args.overrides)
    except FileNotFoundError as exc:
        print(f"refinery: {exc}", file=sys.stderr)
        return 2
    except ConfigError as exc:
        print(f"refinery: invalid PPO config: {exc}", file=sys.stderr)
        return 2
    try:
        summary = launch_ppo(cfg, address=args.address or os.environ.get("RAY_ADDRESS"),
                             progress=not args.no_progress)
    except (LaunchError, MixtureWeightsError) as exc:
        print(f"refinery: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # Ray Train wraps a worker's error; its traceback is already on the screen
        if type(exc).__name__ in ("TrainingFailedError", "WorkerGroupError", "RayTaskError"):
            print(f"refinery: PPO failed: {exc}", file=sys.stderr)
            return 1
        raise
    print(f"PPO {summary['iterations']}/{summary['target_iterations']} iterations, {summary['samples']:,} samples; "
          f"reward {summary.get('first_reward', float('nan')):.4f} -> {summary.get('last_reward', float('nan')):.4f}, "
          f"KL {summary.get('last_kl', float('nan')):.3f} (beta {summary['kl_beta']:.4g}); skipped steps "
          f"{summary['bad_steps']}")
    if "valid_loss_end" in summary:
        print(f"  pretraining valid loss {summary['valid_loss_start']['all']:.4f} (SFT) -> "
              f"{summary['valid_loss_end']['all']:.4f}")
    print(f"run folder: {cfg.output.dir} (metrics.jsonl, checkpoints/ = policy, checkpoints/value/, summary.json)")
    return 0
