"""The names inside a run folder are spelled once, in corpus/runtime/layout.py: the executor, ledger,
`refinery clean`, `stats`, `report`, `lm cutoffs` and `export megatron` take them from there instead of
re-deriving the paths."""

import ast
import os

from corpus.runtime import layout
from tests.conftest import REPO

NAMES = {layout.STATS, layout.PHASE_STATS_TABLE, layout.RESOLVED_JOB, layout.DONE, layout.EXPORT_STATS,
         layout.LEDGER, layout.QUARANTINE, layout.FINAL, layout.PARQUET_GLOB}
# corpus/dedup cannot import the runtime (tests/corpus/dedup/test_kind_contract.py): its in-process
# stand-in for the runtime writes the same step ledger names, and test_dedup_job checks it agrees.
ALLOWED = {os.path.join("corpus", "runtime", "layout.py"), os.path.join("corpus", "dedup", "local.py")}


def test_run_folder_names_are_spelled_only_in_layout():
    found = []
    for top in ("corpus", "jobs", "training"):
        for folder, _, files in os.walk(os.path.join(REPO, top)):
            for name in files:
                rel = os.path.relpath(os.path.join(folder, name), REPO)
                if not name.endswith(".py") or rel in ALLOWED:
                    continue
                tree = ast.parse(open(os.path.join(REPO, rel), encoding="utf-8").read())
                for node in ast.walk(tree):
                    if isinstance(node, ast.Constant) and isinstance(node.value, str) and (
                            node.value in NAMES or node.value.startswith("export-megatron-")):
                        found.append(f"{rel}:{node.lineno}: {node.value!r}")
    assert found == []


def test_phase_folder_helpers():
    assert layout.ledger_entry("run/00-a", "00003") == "run/00-a/ledger/00003.json"
    assert layout.quarantine_entry("run/00-a", "00003") == "run/00-a/quarantine/00003.json"
    assert layout.export_dir("runs/demo", "0123456789abcdef") == "runs/demo/export-megatron-0123456789"
