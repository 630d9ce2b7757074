"""Finding KenLM's tools and reporting their failures."""

import stat

import pytest

from corpus.lm.tools import ToolMissing, find_tool, run_tool


def test_missing_tool_names_the_build_command():
    with pytest.raises(ToolMissing, match="build_kenlm.sh"):
        find_tool("no-such-kenlm-tool-xyz")


def test_explicit_folder_wins(tmp_path):
    tool = tmp_path / "lmplz"
    tool.write_text("#!/bin/sh\necho fake\n")
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    assert find_tool("lmplz", str(tmp_path)) == str(tool)


def test_failed_tool_reports_its_stderr(tmp_path):
    out = tmp_path / "out.txt"
    run_tool(["sh", "-c", "echo hello"], stdout_path=str(out))
    assert out.read_text() == "hello\n"
    with pytest.raises(RuntimeError, match="exited 3: .*bad counts"):
        run_tool(["sh", "-c", "echo 'bad counts' >&2; exit 3"])
