"""`refinery plan --params 7e9 [--manifest PATH] [--weights PATH|llama1|natural] [--json]`: data-size planner.
`refinery plan --config TRAIN.yaml`: the same for a pretraining config: the tokens its schedule draws
(train_steps x global batch x sequence length), its model's parameters, its data and mixture.

Tokens needed by the Chinchilla rule, tokens available per domain from an export manifest, LLaMA-1
epochs per domain, and the budget and shortfall per domain for a mixture (training.planner).
"""

from __future__ import annotations

import json
import sys


def register(subparsers) -> None:
    plan = subparsers.add_parser("plan", help="how many tokens a model needs, per domain, and the shortfall")
    plan.add_argument("--params", type=float, default=None, help="model parameters, e.g. 7e9")
    plan.add_argument("--config", default=None, help="a pretraining config (refinery train pretrain): its model, "
                                                     "schedule, export and mixture")
    plan.add_argument("--manifest", default=None, help="manifest.json of `refinery export megatron`")
    plan.add_argument("--weights", default=None,
                      help="mixture-weights JSON, or 'llama1' (LLaMA-1 Table 1), or 'natural' (token share of "
                           "the manifest); default: natural with a manifest, else llama1")
    plan.add_argument("--tokens-per-param", type=float, default=None, help="override the Chinchilla 20")
    plan.add_argument("--epochs", action="append", default=[], metavar="DOMAIN=N",
                      help="max epochs for a domain (repeatable; default LLaMA-1 Table 1, else 1)")
    plan.add_argument("--json", action="store_true", help="print the plan as JSON")
    plan.set_defaults(handler=_plan)


def _plan(args) -> int:
    from corpus.io.files import read_json
    from schemas.mixture import MixtureWeightsError, load_mixture_weights
    from training.mixture_weights import llama1_weights, manifest_tokens, natural_weights
    from training.planner import CHINCHILLA_TOKENS_PER_PARAM, format_plan, plan_data

    if args.config:
        return _plan_config(args)
    if args.params is None:
        print("refinery: plan needs --params (or --config TRAIN.yaml)", file=sys.stderr)
        return 2
    try:
        manifest = read_json(args.manifest) if args.manifest else None
        available = manifest_tokens(manifest) if manifest else None
        choice = args.weights or ("natural" if manifest else "llama1")
        if choice == "natural":
            if manifest is None:
                raise ValueError("--weights natural needs --manifest")
            mixture = natural_weights(manifest, args.manifest)
        elif choice == "llama1":
            mixture = llama1_weights()
        else:
            mixture = load_mixture_weights(choice)
        epochs = {}
        for item in args.epochs:
            domain, _, value = item.partition("=")
            epochs[domain.strip()] = float(value)
        plan = plan_data(params=args.params, weights=mixture.weights, available=available, epochs=epochs,
                         tokens_per_param=args.tokens_per_param or CHINCHILLA_TOKENS_PER_PARAM)
    except (FileNotFoundError, ValueError, MixtureWeightsError) as exc:
        print(f"refinery: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({**plan.to_json(), "mixture": mixture.to_json()}, indent=2))
    else:
        print(f"mixture: {mixture.method} ({', '.join(mixture.inputs)})")
        print(format_plan(plan))
    return 0


def _plan_config(args) -> int:
    from corpus.io.files import read_json
    from schemas.config import ConfigError
    from schemas.mixture import MixtureWeightsError
    from training.loop.config import load_pretrain_config
    from training.loop.launch import LaunchError, resolve_weights
    from training.mixture_weights import manifest_tokens
    from training.model.config import padded_vocab_size, parameter_count
    from training.planner import format_plan, plan_data

    try:
        cfg = load_pretrain_config(args.config)
        manifest_path = f"{cfg.data.export_dir}/manifest.json"
        manifest = read_json(manifest_path)
        mixture = resolve_weights(cfg, manifest, manifest_path)
        vocab = padded_vocab_size(cfg.model.vocab_size or manifest["tokenizer"]["vocab_size"])
        params = parameter_count(cfg.model, vocab)["total"]
        s = cfg.schedule
        tokens = s.train_steps * s.global_batch_size * cfg.model.seq_length
        plan = plan_data(params=params, weights=mixture.weights, available=manifest_tokens(manifest),
                         tokens_per_param=tokens / params)
    except (FileNotFoundError, ValueError, ConfigError, MixtureWeightsError, LaunchError) as exc:
        print(f"refinery: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({**plan.to_json(), "mixture": mixture.to_json()}, indent=2))
        return 0
    print(f"config {args.config}: {s.train_steps} steps x {s.global_batch_size} samples x {cfg.model.seq_length} "
          f"tokens = {tokens:,} tokens for {params:,} parameters")
    print(f"mixture: {mixture.method} ({', '.join(mixture.inputs)})")
    print(format_plan(plan))
    return 0
