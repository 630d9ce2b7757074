"""Every command line of the README's Usage section is one the CLI accepts as written; the cheap ones run.

A line is parsed twice by the real argument parser: with only its required part, and with every
[optional] part; CAPITALISED placeholders get a value of the right kind. That catches a renamed flag, a
missing positional argument and a subcommand that does not exist, without running the long commands.
"""

import os
import re
import shlex

import pytest

from jobs.cli import build_parser, main

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def usage_lines() -> list[str]:
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
        text = f.read()
    section = text.split("\n## Usage\n", 1)[1].split("\n## ", 1)[0]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    return [" ".join(shlex.split(line, comments=True)) for line in block.splitlines() if line.startswith("refinery ")]


# Placeholder -> a value of its kind (paths need not exist: only the parser sees them).
VALUES = {"KEY=VALUE": "runtime.workers=1", "JOB.yaml": "jobs/smoke.yaml", "CONFIG.yaml": "jobs/pretrain_tiny.yaml",
          "N": "8", "X": "0.5", "NAME,NAME": "warc,pywb", "ADDR": "auto", "FILE.npz": "models/q.npz"}


def concrete(words: list[str]) -> list[str]:
    out = []
    for w in words:
        if w == "...":
            continue
        out.append(VALUES.get(w, w.lower().replace("_", "-") if re.fullmatch(r"[A-Z][A-Z_]*", w) else w))
    return out


def variants(line: str) -> tuple[list[str], list[str]]:
    """(the line without its [optional] parts, the line with all of them)."""
    required = re.sub(r"\[[^\]]*\]", " ", line)
    full = line.replace("[", " ").replace("]", " ")
    return concrete(shlex.split(required))[1:], concrete(shlex.split(full))[1:]


def test_the_usage_section_lists_every_command():
    lines = usage_lines()
    assert len(lines) >= 20
    listed = {" ".join(shlex.split(line)[1:3]) for line in lines}
    for needed in ("tokenizer train", "export megatron", "export check", "samples fetch", "samples list",
                   "quality train", "clean RUN_DIR"):
        assert needed in listed, needed


@pytest.mark.parametrize("line", usage_lines())
def test_each_usage_line_parses_as_written(line):
    parser = build_parser()
    for argv in variants(line):
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:
            pytest.fail(f"README line does not parse ({exc.code}): {line}\n  as {argv}")
        assert args.command == argv[0]


@pytest.mark.parametrize("argv, expect", [
    (["validate", "jobs/smoke.yaml"], "valid (1 inputs, 1 phases, 3 stages)"),
    (["validate", "jobs/smoke.yaml", "--set", "phases.0.stages.2.select.rules.0.value=100"], "valid"),
    (["validate", "jobs/demo.yaml", "--spec-only", "--set", "phases.3.stages.0.select.rules.0.value=30"], "valid"),
    (["samples", "list"], "NAME"),
    (["plan", "--params", "7e9"], "7"),
])
def test_the_cheap_commands_run(argv, expect, capsys, monkeypatch):
    monkeypatch.chdir(REPO)  # README commands run from the repository root
    assert main(argv) == 0, capsys.readouterr().err
    assert expect in capsys.readouterr().out


def test_the_set_examples_of_the_usage_notes_fit_their_jobs(capsys, monkeypatch):
    # `--set` examples in the notes under the block name the job they are for.
    monkeypatch.chdir(REPO)
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
        notes = f.read().split("\n## Usage\n", 1)[1].split("### A job file", 1)[0]
    examples = re.findall(r"For `(jobs/\w+\.yaml)`: ((?:`--set [^`]+`,?\s*)+)|for\s+`(jobs/\w+\.yaml)` [^`]*((?:`--set [^`]+`))",
                          notes)
    checked = 0
    for job_a, sets_a, job_b, sets_b in examples:
        job, sets = (job_a, sets_a) if job_a else (job_b, sets_b)
        for override in re.findall(r"`--set ([^`]+)`", sets):
            assert main(["validate", job, "--spec-only", "--set", override]) == 0, capsys.readouterr().err
            checked += 1
    assert checked >= 3
    capsys.readouterr()
