"""The cross-shard phase kinds see the runtime only through corpus.dedup.kind.PhaseContext: dedup never
imports corpus.runtime (not even lazily), and the runtime imports the kinds at module level."""

import ast
import os
import subprocess
import sys

from corpus.dedup.kind import PhaseContext
from corpus.dedup.local import LocalContext
from corpus.runtime.cross_shard import CrossShardContext
from tests.conftest import REPO


def imports(folder):
    """(module file, imported name, at module level?) for every import in the folder's modules."""
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".py"):
            continue
        tree = ast.parse(open(os.path.join(folder, name)).read())
        top = {id(n) for n in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                yield name, node.module, id(node) in top
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    yield name, alias.name, id(node) in top


def test_dedup_never_imports_the_runtime():
    bad = [(f, m) for f, m, _ in imports(os.path.join(REPO, "corpus", "dedup")) if m.startswith("corpus.runtime")]
    assert bad == []


def test_the_runtime_imports_the_kinds_at_module_level():
    lazy = [(f, m) for f, m, top in imports(os.path.join(REPO, "corpus", "runtime"))
            if m.startswith("corpus.dedup") and not top]
    assert lazy == []


def test_loading_the_kinds_loads_no_runtime_module():
    code = ("import sys, corpus.dedup.kinds; "
            "print(sorted(m for m in sys.modules if m.startswith('corpus.runtime')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                         env={**os.environ, "PYTHONPATH": REPO}, check=True).stdout
    assert out.strip() == "[]"


def test_both_contexts_offer_what_the_contract_names():
    names = [n for n in ("phase", "phase_dir", "upstream_dir", "upstream_parts", "run_on_actors", "committed")]
    assert set(names) <= set(PhaseContext.__annotations__) | {n for n in vars(PhaseContext) if not n.startswith("_")}
    for cls in (CrossShardContext, LocalContext):
        fields = {f for f in getattr(cls, "__dataclass_fields__", {})}
        missing = [n for n in names if n not in fields and not hasattr(cls, n)]
        assert missing == [], cls.__name__
