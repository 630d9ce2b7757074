"""Subcommands of `refinery` beyond build/validate/stats.

Each module here exposes `register(subparsers)`, which adds its parser and sets
`handler=<function(args) -> exit code>` through `parser.set_defaults`. Add a module to COMMANDS to
make it part of the CLI.
"""

import importlib

COMMANDS: tuple[str, ...] = ("clean", "samples", "tokenizer", "export", "plan", "lm", "report", "quality", "dedup",
                            "train", "eval", "scaling", "mix", "experiment", "align", "run")


def register_all(subparsers) -> None:
    for name in COMMANDS:
        importlib.import_module(f"jobs.commands.{name}").register(subparsers)
