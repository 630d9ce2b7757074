"""The export on Ray, end to end through the CLI: demo build -> tokenizer -> export -> check -> plan."""

import json
import os

import pytest

pytest.importorskip("megatron.core")
pytest.importorskip("tokenizers")

from jobs.cli import main  # noqa: E402

pytestmark = pytest.mark.slow  # a Ray cluster, a demo build and actors that import megatron-core

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO = os.path.join(REPO, "jobs", "smoke.yaml")  # the demo corpus only


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    import ray

    if not ray.is_initialized():  # like tests/conftest.py's ray_local, which is function-scoped
        ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    root = tmp_path_factory.mktemp("export")
    assert main(["build", DEMO, "--output", str(root / "runs"), "--no-progress", "--set", "runtime.workers=1"]) == 0
    run = str(root / "runs" / "smoke")
    tok = str(root / "tok")
    assert main(["tokenizer", "train", "--run", run, "--vocab-size", "800", "--out", tok]) == 0
    out = str(root / "megatron")
    assert main(["export", "megatron", run, "--tokenizer", tok, "--out", out, "--workers", "1", "--no-progress"]) == 0
    return run, tok, out


def _manifest(out):
    with open(os.path.join(out, "manifest.json")) as f:
        return json.load(f)


def test_manifest_equals_what_indexed_dataset_reads(exported):
    from megatron.core.datasets.indexed_dataset import IndexedDataset

    from corpus.io.parquet import count_rows, read_documents

    run, _, out = exported
    m = _manifest(out)
    assert set(m["domains"]) == {"books"} and m["dtype"] == "uint16"
    books = m["domains"]["books"]
    ds = IndexedDataset(os.path.join(out, books["prefix"]))
    assert books["documents"] == len(ds.document_indices) - 1 == len(ds) == 62  # the demo keeps 62 documents
    assert books["tokens"] == int(ds.sequence_lengths.sum()) == m["total_tokens"]
    for shard in books["shards"]:
        part = IndexedDataset(os.path.join(out, shard["prefix"]))
        assert shard["documents"] == len(part) == count_rows(os.path.join(out, shard["source"]))
        assert shard["tokens"] == int(part.sequence_lengths.sum())
    assert sum(s["documents"] for s in books["shards"]) == books["documents"]
    with open(os.path.join(run, "export_stats.json")) as f:
        stats = json.load(f)
    assert stats["tokens"] == {"books": books["tokens"]} and stats["documents"] == {"books": 62}
    # Round trip in merged order = sorted part files, file order within each.
    from training.tokenizer import load_tokenizer

    tok = load_tokenizer(exported[1])
    texts = []
    for shard in books["shards"]:
        import pyarrow.parquet as pq

        texts += pq.read_table(os.path.join(out, shard["source"]), columns=["text"]).column("text").to_pylist()
    assert len(texts) == read_documents(os.path.join(run, "final")).num_rows
    for i, text in enumerate(texts):
        assert tok.tokenizer.decode(ds[i][:-1].tolist(), skip_special_tokens=False) == text


def test_rerun_skips_done_shards_and_redoes_a_lost_one_identically(exported, capsys):
    run, tok, out = exported
    with open(os.path.join(out, "books_text_document.bin"), "rb") as f:
        before = f.read()
    ledger = os.path.join(out, "ledger")
    stamps = {n: json.load(open(os.path.join(ledger, n)))["committed_at"] for n in os.listdir(ledger)}
    assert main(["export", "megatron", run, "--tokenizer", tok, "--out", out, "--no-progress"]) == 0
    assert {n: json.load(open(os.path.join(ledger, n)))["committed_at"] for n in os.listdir(ledger)} == stamps
    lost = sorted(stamps)[1]
    os.remove(os.path.join(ledger, lost))
    for name in ("books_text_document.bin", "manifest.json"):
        os.remove(os.path.join(out, name))
    assert main(["export", "megatron", run, "--tokenizer", tok, "--out", out, "--no-progress"]) == 0
    after = {n: json.load(open(os.path.join(ledger, n)))["committed_at"] for n in os.listdir(ledger)}
    assert after[lost] != stamps[lost] and {k: v for k, v in after.items() if k != lost} == {
        k: v for k, v in stamps.items() if k != lost}
    with open(os.path.join(out, "books_text_document.bin"), "rb") as f:
        assert f.read() == before
    assert not [f for _, _, fs in os.walk(out) for f in fs if ".tmp-" in f]


def test_another_tokenizer_is_refused_for_the_same_out(exported, tmp_path, capsys):
    run, _, out = exported
    other = str(tmp_path / "tok2")
    assert main(["tokenizer", "train", "--run", run, "--vocab-size", "600", "--out", other]) == 0
    assert main(["export", "megatron", run, "--tokenizer", other, "--out", out, "--no-progress"]) == 2
    assert "Fix: use another --out" in capsys.readouterr().err


def test_check_and_plan_commands(exported, tmp_path, capsys):
    _, _, out = exported
    capsys.readouterr()

    def mixture(weights):
        path = tmp_path / f"{'-'.join(weights)}.json"
        path.write_text(json.dumps({"format": "refinery-mixture-weights-v1", "weights": weights,
                                    "provenance": {"method": "manual", "inputs": [], "date": "2026-11-30"}}))
        return str(path)

    assert main(["export", "check", out, "--weights", mixture({"books": 1.0}), "--samples", "2000",
                 "--seq-length", "64"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["realized"] == {"books": 1.0}
    # A mixture made for another export (this one holds books only): the check fails and says why.
    wrong = mixture({"books": 0.5, "wikipedia": 0.5})
    assert main(["export", "check", out, "--weights", wrong, "--samples", "2000", "--seq-length", "64"]) == 1
    printed = capsys.readouterr()
    assert not json.loads(printed.out)["ok"] and "no exported data: ['wikipedia']" in printed.err
    manifest = os.path.join(out, "manifest.json")
    assert main(["plan", "--params", "1e4", "--manifest", manifest, "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    tokens = _manifest(out)["domains"]["books"]["tokens"]
    (books,) = plan["domains"]
    assert plan["tokens_needed"] == 2e5 and books["available_tokens"] == tokens
    assert books["shortfall_tokens"] == pytest.approx(max(0.0, 2e5 - 2.23 * tokens))
    assert main(["plan", "--params", "7e9"]) == 0
    assert "1.4e+11 tokens needed" in capsys.readouterr().out
    bad = tmp_path / "w.json"
    bad.write_text(json.dumps({"format": "refinery-mixture-weights-v1", "weights": {"books": 0.9},
                               "provenance": {"method": "m", "inputs": [], "date": "2026-11-28"}}))
    assert main(["plan", "--params", "7e9", "--weights", str(bad)]) == 2
    assert "sum to" in capsys.readouterr().err
