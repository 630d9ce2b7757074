"""A run folder is self-contained: copied elsewhere (the original deleted), every command reads the copy,
and nothing in it names the folder it was built in. A recorded path that is not there is refused."""

import json
import os
import shutil

import pytest

pytest.importorskip("megatron.core")
pytest.importorskip("tokenizers")

from jobs.cli import EXIT_INVALID, main  # noqa: E402

pytestmark = pytest.mark.slow  # a Ray build, a tokenizer and a Megatron export

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SMOKE = os.path.join(REPO, "jobs", "smoke.yaml")


def texts_in(folder):
    """path -> text of every JSON and YAML file under `folder`."""
    out = {}
    for dirpath, _, names in os.walk(folder):
        for name in names:
            if name.endswith((".json", ".yaml")):
                with open(os.path.join(dirpath, name), encoding="utf-8") as f:
                    out[os.path.join(dirpath, name)] = f.read()
    return out


def test_a_copied_run_reads_itself_and_refuses_what_is_missing(ray_local, tmp_path, monkeypatch, capsys):
    built = tmp_path / "built"
    built.mkdir()
    monkeypatch.chdir(built)  # relative paths, as `make demo` runs: the old stats.json named runs/smoke/...
    assert main(["build", SMOKE, "--output", "runs", "--no-progress", "--set", "runtime.workers=1"]) == 0
    assert main(["tokenizer", "train", "--run", "runs/smoke", "--vocab-size", "600",
                 "--out", "runs/smoke/tokenizer"]) == 0
    assert main(["export", "megatron", "runs/smoke", "--tokenizer", "runs/smoke/tokenizer", "--workers", "1",
                 "--no-progress"]) == 0
    copy = tmp_path / "elsewhere" / "copy"
    shutil.copytree(built / "runs" / "smoke", copy)
    shutil.rmtree(built)
    monkeypatch.chdir(tmp_path)
    original = str(built)
    assert not [p for p, text in texts_in(copy).items() if original in text or "runs/smoke" in text]
    capsys.readouterr()

    assert main(["stats", str(copy)]) == 0
    assert f"final corpus: {copy}/final/ (62 documents" in capsys.readouterr().out
    assert main(["report", str(copy)]) == 0 and (copy / "report.html").exists()
    assert main(["tokenizer", "train", "--run", str(copy), "--vocab-size", "600", "--out", str(copy / "tok2")]) == 0
    config = json.loads((copy / "tok2" / "refinery_tokenizer.json").read_text())
    sources = [os.path.normpath(os.path.join(copy / "tok2", s)) for s in config["sample"]["sources"]]
    assert sources and all(s.startswith(str(copy / "final")) and os.path.exists(s) for s in sources)
    assert config["sample"]["docs_seen"] == 62
    (export,) = [p for p in copy.iterdir() if p.name.startswith("export-megatron-")]
    ledger = {p.name: json.loads(p.read_text())["committed_at"] for p in (export / "ledger").iterdir()}
    assert main(["export", "megatron", str(copy), "--tokenizer", str(copy / "tokenizer"), "--no-progress"]) == 0
    assert {p.name: json.loads(p.read_text())["committed_at"] for p in (export / "ledger").iterdir()} == ledger
    assert main(["export", "megatron", str(copy), "--tokenizer", str(copy / "tok2"), "--out", str(copy / "exp2"),
                 "--workers", "1", "--no-progress"]) == 0
    manifest = json.loads((copy / "exp2" / "manifest.json").read_text())
    assert manifest["total_documents"] == 62
    assert all(os.path.exists(os.path.join(copy / "exp2", s["source"]))
               for d in manifest["domains"].values() for s in d["shards"])
    assert not [p for p, text in texts_in(copy).items() if str(tmp_path / "elsewhere") in text]

    shutil.rmtree(copy / "final")  # a recorded path that is not there: refused, never looked for elsewhere
    capsys.readouterr()
    assert main(["stats", str(copy)]) == EXIT_INVALID
    assert "final_data 'final' does not exist" in capsys.readouterr().err
    assert main(["tokenizer", "train", "--run", str(copy), "--out", str(tmp_path / "tok3")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["export", "megatron", str(copy), "--tokenizer", str(copy / "tok2"), "--out", str(tmp_path / "e3"),
                 "--no-progress"]) == 2
    assert "does not exist" in capsys.readouterr().err
