"""`refinery eval generate CHECKPOINT --prompts FILE --tokenizer DIR [--max-tokens --temperature --top-k
--top-p --seed]`: sampled continuations (JSONL on stdout and in the run's eval/ folder).
`refinery eval ppl CHECKPOINT [--data EXPORT_DIR] [--seq-length N] [--samples N] [--json]`: held-out
perplexity of a pretraining checkpoint per domain and overall (training/eval/perplexity.py). CHECKPOINT is
a run folder (its `latest`) or one of its checkpoints/step-N folders. The report is printed as a table
(or JSON) and written next to the checkpoint's run as eval/ppl-step-N[-seqL].json.
`refinery eval mc CHECKPOINT --tasks DIR --tokenizer DIR [--shots K] [--split test] [--choice-text]
[--seq-length N] [--json]`: multiple-choice accuracy per subject, macro and micro, beside the random
baseline (training/eval/multiple_choice.py); written as eval/mc-step-N-<tasks>-<K>shot[-<split>][-text].json.
`refinery eval mc-tasks --out DIR [--dest CACHE]`: MMLU- and C-Eval-layout task folders built from the
real questions of the pinned `evals` wheel (training/eval/mc_tasks.py).
"""

from __future__ import annotations

import json
import os
import sys

from training.atomic_files import write_json_atomic, write_text_atomic


def register(subparsers) -> None:
    ev = subparsers.add_parser("eval", help="evaluate trained checkpoints")
    actions = ev.add_subparsers(dest="eval_command", required=True)
    ppl = actions.add_parser("ppl", help="held-out perplexity per domain and overall")
    ppl.add_argument("checkpoint", help="run folder of `refinery train pretrain`, or its checkpoints/step-N")
    ppl.add_argument("--data", default=None, help="export folder (default: the run's data.export_dir)")
    ppl.add_argument("--seq-length", type=int, default=None, help="tokens per sample (default: the run's)")
    ppl.add_argument("--samples", type=int, default=None,
                     help="valid samples per domain (default: the run's data.valid_samples_per_domain)")
    ppl.add_argument("--json", action="store_true", help="print the report as JSON")
    ppl.set_defaults(handler=_ppl)
    gen = actions.add_parser("generate", help="sampled continuations of prompts")
    gen.add_argument("checkpoint", help="run folder of `refinery train pretrain`, or its checkpoints/step-N")
    gen.add_argument("--prompts", required=True, help="text file (one prompt per line) or .jsonl with `prompt`")
    gen.add_argument("--tokenizer", required=True, help="folder of `refinery tokenizer train` (the run's)")
    gen.add_argument("--max-tokens", type=int, default=64)
    gen.add_argument("--temperature", type=float, default=1.0, help="0 = greedy")
    gen.add_argument("--top-k", type=int, default=0, help="0 = no top-k cut")
    gen.add_argument("--top-p", type=float, default=1.0, help="1 = no nucleus cut")
    gen.add_argument("--seed", type=int, default=0)
    gen.set_defaults(handler=_generate)
    mc = actions.add_parser("mc", help="multiple-choice accuracy (MMLU / C-Eval layout) per subject")
    mc.add_argument("checkpoint", help="run folder of `refinery train pretrain`, or its checkpoints/step-N")
    mc.add_argument("--tasks", required=True, help="folder of SUBJECT_{dev,val,test}.csv (`refinery eval mc-tasks`)")
    mc.add_argument("--tokenizer", required=True, help="folder of `refinery tokenizer train` (the run's)")
    mc.add_argument("--shots", type=int, default=0, help="solved dev examples before each question (default 0)")
    mc.add_argument("--split", default="test", choices=("dev", "val", "test"), help="split scored (default test)")
    mc.add_argument("--choice-text", action="store_true",
                    help="score each choice's text (acc and per-character acc_norm) instead of its letter")
    mc.add_argument("--seq-length", type=int, default=None,
                    help="tokens the model sees; longer prompts lose context from the left (default: the run's)")
    mc.add_argument("--batch-size", type=int, default=16, help="sequences per forward")
    mc.add_argument("--json", action="store_true", help="print the report as JSON")
    mc.set_defaults(handler=_mc)
    tasks = actions.add_parser("mc-tasks", help="build MMLU / C-Eval-layout task folders from the evals wheel")
    tasks.add_argument("--out", required=True, help="new folder: gets mmlu/, mmlu-mixed/, ceval-zh/")
    tasks.add_argument("--dest", default=None, help="sample cache (default ~/.cache/refinery/samples)")
    tasks.set_defaults(handler=_mc_tasks)


def _ppl(args) -> int:
    import logging

    from training.eval.perplexity import evaluate_checkpoint, format_report

    logging.getLogger("megatron").setLevel(logging.WARNING)
    try:
        report = evaluate_checkpoint(args.checkpoint, export_dir=args.data, seq_length=args.seq_length,
                                     samples=args.samples)
    except (FileNotFoundError, ValueError) as exc:
        print(f"refinery: {exc}", file=sys.stderr)
        return 2
    run_dir = os.path.dirname(os.path.dirname(report["checkpoint"]))
    out_dir = os.path.join(run_dir, "eval")
    os.makedirs(out_dir, exist_ok=True)
    suffix = "" if args.seq_length is None else f"-seq{args.seq_length}"
    path = os.path.join(out_dir, f"ppl-step-{report['step']:08d}{suffix}.json")
    write_json_atomic(path, report)
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    print(f"written: {path}", file=sys.stderr)
    return 0


def _generate(args) -> int:
    import logging

    from training.eval.generate import generate_from_checkpoint, read_prompts
    from training.eval.sampling import SamplingConfig

    logging.getLogger("megatron").setLevel(logging.WARNING)
    try:
        sampling = SamplingConfig(max_tokens=args.max_tokens, temperature=args.temperature, top_k=args.top_k,
                                  top_p=args.top_p, seed=args.seed)
        result = generate_from_checkpoint(args.checkpoint, read_prompts(args.prompts), tokenizer_dir=args.tokenizer,
                                          sampling=sampling)
    except (FileNotFoundError, ValueError) as exc:
        print(f"refinery: {exc}", file=sys.stderr)
        return 2
    run_dir = os.path.dirname(os.path.dirname(result["checkpoint"]))
    os.makedirs(os.path.join(run_dir, "eval"), exist_ok=True)
    path = os.path.join(run_dir, "eval", f"generate-step-{result['step']:08d}-seed{args.seed}.jsonl")
    write_text_atomic(path, "".join(json.dumps({**g, "step": result["step"], **result["sampling"]},
                                               ensure_ascii=False) + "\n" for g in result["generations"]))
    for g in result["generations"]:
        print(json.dumps(g, ensure_ascii=False))
    print(f"written: {path}", file=sys.stderr)
    return 0


def _mc(args) -> int:
    import logging

    from training.eval.multiple_choice import evaluate_checkpoint, format_report

    logging.getLogger("megatron").setLevel(logging.WARNING)
    try:
        report = evaluate_checkpoint(args.checkpoint, args.tasks, tokenizer_dir=args.tokenizer, shots=args.shots,
                                     split=args.split, choice_text=args.choice_text, seq_length=args.seq_length,
                                     batch_size=args.batch_size)
    except (FileNotFoundError, ValueError) as exc:
        print(f"refinery: {exc}", file=sys.stderr)
        return 2
    run_dir = os.path.dirname(os.path.dirname(report["checkpoint"]))
    os.makedirs(os.path.join(run_dir, "eval"), exist_ok=True)
    name = os.path.basename(os.path.normpath(args.tasks))
    suffix = ("" if args.split == "test" else f"-{args.split}") + ("-text" if args.choice_text else "")
    path = os.path.join(run_dir, "eval", f"mc-step-{report['step']:08d}-{name}-{args.shots}shot{suffix}.json")
    write_json_atomic(path, report)
    print(json.dumps(report, indent=2, ensure_ascii=False) if args.json else format_report(report))
    print(f"written: {path}", file=sys.stderr)
    return 0


def _mc_tasks(args) -> int:
    from corpus.samples import MANIFEST, SampleUnavailable, sample_path
    from training.eval.mc_tasks import build_mc_tasks

    sample = next(s for s in MANIFEST if s.name == "evals-mc")
    try:
        folder = sample_path(sample.name, args.dest)
        doc = build_mc_tasks(os.path.join(folder, "data"), args.out, provenance={
            "package": f"{sample.package}=={sample.version}", "kind": sample.kind, "sha256": sample.sha256,
            "license": sample.license}, license_file=os.path.join(folder, "license", "LICENSE.md"))
    except (SampleUnavailable, FileExistsError, FileNotFoundError, ValueError) as exc:
        print(f"refinery: {exc}", file=sys.stderr)
        return 2
    for name, f in doc["folders"].items():
        counts = {s: sum(v[s] for v in f["subjects"].values()) for s in ("dev", "test")}
        print(f"{os.path.join(args.out, name)}: {f['layout']} layout, {len(f['subjects'])} subjects, "
              f"{counts['dev']} dev + {counts['test']} test questions")
    print(f"provenance: {os.path.join(args.out, 'PROVENANCE.json')}")
    return 0
