"""Finding and running KenLM's `lmplz` and `build_binary`.

The PyPI `kenlm` package only scores; the two training tools are C++ programs that
corpus/lm/build_kenlm.sh builds from the same sdist and installs next to the Python interpreter of the
virtual environment (`make setup` runs it). They are looked up in an explicit folder first, then next to
`sys.executable`, then on PATH.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

TOOLS = ("lmplz", "build_binary")
BUILD_HINT = "build them with `sh corpus/lm/build_kenlm.sh .venv/bin` (part of `make setup`)"


class ToolMissing(RuntimeError):
    """lmplz or build_binary is not installed; the message says how to build it."""


def find_tool(name: str, bin_dir: str | None = None) -> str:
    """Absolute path of KenLM tool `name`, or ToolMissing."""
    places = [bin_dir] if bin_dir else []
    places.append(os.path.dirname(sys.executable))
    for place in places:
        path = os.path.join(os.path.expanduser(place), name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    found = shutil.which(name)
    if found:
        return found
    where = ", ".join(places + ["PATH"])
    raise ToolMissing(f"KenLM's `{name}` was not found in {where}: {BUILD_HINT}")


def run_tool(cmd: list[str], stdin_path: str | None = None, stdout_path: str | None = None) -> None:
    """Run one tool, raising RuntimeError with the tail of its stderr when it fails."""
    stdin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL
    stdout = open(stdout_path, "wb") if stdout_path else subprocess.DEVNULL
    try:
        proc = subprocess.run(cmd, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE)
    finally:
        for f in (stdin, stdout):
            if hasattr(f, "close"):
                f.close()
    if proc.returncode != 0:
        tail = proc.stderr.decode(errors="replace").strip().splitlines()[-5:]
        raise RuntimeError(f"`{' '.join(cmd)}` exited {proc.returncode}: " + " | ".join(tail))
