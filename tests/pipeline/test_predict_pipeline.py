"""End-to-end predict/embed on the CPU with tiny random models: files, order, scores, dedup."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from conftest import GENOMES, READS

from virnucpro.cli.main import main
from virnucpro.frames import chunk_records
from virnucpro.io import read_records
from virnucpro.models.classifier import load_classifier
from virnucpro.models.dnabert_loader import load_dnabert
from virnucpro.models.esm2_loader import load_esm2
from virnucpro.tokenize.dnabert import DnabertTokenizer
from virnucpro.tokenize.esm_alphabet import encode_proteins
from virnucpro.tokenize.packing import pack


def _reads(tmp_path: Path, n: int = 60) -> Path:
    """Real reads plus an exact duplicate of the first few (different IDs), and a phage genome."""
    lines = (READS).read_text().splitlines()[: 4 * n]
    records = ["\n".join(lines[i : i + 4]) for i in range(0, len(lines), 4)]
    duplicates = [r.replace("@", "@dup_", 1) for r in records[:5]]
    path = tmp_path / "reads.fastq"
    path.write_text("\n".join(records + duplicates) + "\n")
    return path


def _table(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def test_predict_writes_every_file_in_input_order(tmp_path, model_args):
    reads = _reads(tmp_path)
    out = tmp_path / "out"
    assert main(["predict", str(reads), str(GENOMES / "phiX174_NC_001422.fa"), "-o", str(out), "--write-hits",
                 "--threshold", "0.4", *model_args]) == 0
    names = {p.name for p in out.iterdir()}
    assert {"prediction_results.txt", "prediction_results_highestscore.csv", "chunks.tsv", "sequences.tsv",
            "viral.fa", "run.json"} <= names
    assert not [n for n in names if n.endswith(".partial")] and ".virnucpro" not in names
    records = list(read_records([str(reads), str(GENOMES / "phiX174_NC_001422.fa")]))
    sequences = _table(out / "sequences.tsv")
    assert [row["sequence_id"] for row in sequences] == [r.id for r in records]
    expected_frames = [f.frame_id for per in chunk_records(records, 300) for c in per for f in c.frames]
    assert [row["Sequence_ID"] for row in _table(out / "prediction_results.txt")] == expected_frames
    run = json.loads((out / "run.json").read_text())
    assert run["counts"]["records"] == len(records)
    assert run["parameters"]["threshold"] == 0.4
    assert run["stream_peak_rss_mib"] > 10  # host memory sampled while the stream ran


def test_duplicate_reads_get_identical_scores(tmp_path, model_args):
    out = tmp_path / "out"
    assert main(["predict", str(_reads(tmp_path)), "-o", str(out), *model_args]) == 0
    rows = {row["Sequence_ID"]: row for row in _table(out / "prediction_results.txt")}
    duplicated = [fid for fid in rows if fid.startswith("dup_")]
    assert duplicated
    for frame_id in duplicated:
        original = rows[frame_id.removeprefix("dup_")]
        assert (rows[frame_id]["score1"], rows[frame_id]["score2"]) == (original["score1"], original["score2"])
    run = json.loads((out / "run.json").read_text())
    assert run["counts"]["unique_frames_this_session"] < run["counts"]["frames_this_session"]


def test_scores_equal_a_direct_computation(tmp_path, tiny_models, model_args):
    """Every frame's probabilities equal embedding it alone with each model and classifying it."""
    reads = _reads(tmp_path, n=12)
    out = tmp_path / "out"
    assert main(["predict", str(reads), "-o", str(out), "--batch-tokens", "256", *model_args]) == 0
    frames = [f for per in chunk_records(list(read_records([str(reads)])), 300) for c in per for f in c.frames]
    dnabert = load_dnabert(tiny_models / "dnabert-s")
    esm = load_esm2(tiny_models / "esm2")
    classifier, _ = load_classifier(tiny_models / "classifier.pth")
    tokenizer = DnabertTokenizer.from_dir(tiny_models / "dnabert-s")
    rows = _table(out / "prediction_results.txt")
    for frame, row in zip(frames, rows, strict=True):
        dna = dnabert.embed(pack(tokenizer.encode_batch([frame.nucleotide])))
        protein = esm.embed(encode_proteins([frame.protein]))
        probabilities = classifier.probabilities(torch.cat([dna, protein], dim=1))[0]
        assert row["Sequence_ID"] == frame.frame_id
        np.testing.assert_allclose([float(row["score1"]), float(row["score2"])], probabilities.numpy(), atol=2e-6)


def test_embed_matches_save_embeddings(tmp_path, model_args):
    reads = _reads(tmp_path, n=20)
    parquet = tmp_path / "emb.parquet"
    assert main(["embed", str(reads), "-o", str(parquet), "--block-records", "7", *model_args]) == 0
    out = tmp_path / "out"
    assert main(["predict", str(reads), "-o", str(out), "--save-embeddings", *model_args]) == 0
    embedded = pq.read_table(parquet)
    saved = pq.read_table(out / "embeddings.parquet")
    assert embedded.column_names == ["id", "dnabert", "esm"]
    ids = [row["Sequence_ID"] for row in _table(out / "prediction_results.txt")]
    assert embedded.column("id").to_pylist() == ids == saved.column("id").to_pylist()
    a = np.array(embedded.column("esm").to_pylist(), dtype=np.float32)
    b = np.array(saved.column("esm").to_pylist(), dtype=np.float32)
    np.testing.assert_allclose(a, b, atol=1e-5)
    assert not (tmp_path / "emb.parquet.parts").exists()


def test_block_size_does_not_change_results(tmp_path, model_args):
    reads = _reads(tmp_path, n=40)
    outputs = []
    for block_records in ("5", "1000"):
        out = tmp_path / f"out{block_records}"
        assert main(["predict", str(reads), "-o", str(out), "--block-records", block_records, *model_args]) == 0
        outputs.append((out / "prediction_results.txt").read_text())
    first = [line.split("\t")[:2] for line in outputs[0].splitlines()]
    second = [line.split("\t")[:2] for line in outputs[1].splitlines()]
    assert first == second


def test_existing_results_need_force(tmp_path, model_args, capsys):
    reads = _reads(tmp_path, n=5)
    out = tmp_path / "out"
    assert main(["predict", str(reads), "-o", str(out), *model_args]) == 0
    capsys.readouterr()
    assert main(["predict", str(reads), "-o", str(out), *model_args]) == 1
    error = capsys.readouterr().err
    assert "--force" in error and "Traceback" not in error and len(error.strip().splitlines()) == 1
    assert main(["predict", str(reads), "-o", str(out), "--force", *model_args]) == 0


def test_empty_input_gives_empty_results(tmp_path, model_args):
    empty = tmp_path / "empty.fa"
    empty.write_text("")
    out = tmp_path / "out"
    assert main(["predict", str(empty), "-o", str(out), *model_args]) == 0
    assert (out / "sequences.tsv").read_text().count("\n") == 1


def test_missing_model_is_one_line_error(tmp_path, model_args, capsys):
    reads = _reads(tmp_path, n=2)
    args = list(model_args)
    args[args.index("--esm") + 1] = str(tmp_path / "nowhere")
    assert main(["predict", str(reads), "-o", str(tmp_path / "out"), *args]) == 1
    error = capsys.readouterr().err.strip()
    assert "nowhere" in error and len(error.splitlines()) == 1


@pytest.mark.parametrize("option,value", [("--device", "cuda:7"), ("--precision", "bf16")])
def test_bad_device_options_are_refused(tmp_path, model_args, capsys, option, value):
    if torch.cuda.is_available():
        pytest.skip("checks CPU-only refusals")
    args = [a for a in model_args]
    if option in args:
        args[args.index(option) + 1] = value
    else:
        args += [option, value]
    assert main(["predict", str(_reads(tmp_path, n=2)), "-o", str(tmp_path / "out"), *args]) == 1
    assert "error" in capsys.readouterr().err


def test_bad_input_fails_before_models_and_leaves_nothing(tmp_path, model_args, capsys):
    bad = tmp_path / "page.fa"
    bad.write_text("<html><body>Not Found</body></html>\n")
    args = list(model_args)
    args[args.index("--esm") + 1] = str(tmp_path / "no-such-model")  # never reached
    out = tmp_path / "out"
    assert main(["predict", str(_reads(tmp_path, n=3)), str(bad), "-o", str(out), *args]) == 1
    error = capsys.readouterr().err
    assert "page.fa" in error and "no-such-model" not in error


def test_failure_before_the_first_checkpoint_needs_no_force(tmp_path, model_args, capsys):
    reads = _reads(tmp_path, n=3)
    dup = tmp_path / "dup.fq"
    dup.write_text(reads.read_text())  # same IDs again: fails mid-stream, after the models load
    out = tmp_path / "out"
    assert main(["predict", str(reads), str(dup), "-o", str(out), *model_args]) == 1
    assert "duplicate" in capsys.readouterr().err.lower()
    assert not [p for p in out.iterdir()] if out.exists() else True
    assert main(["predict", str(reads), "-o", str(out), *model_args]) == 0


def test_model_type_chunking_threads_log_file_and_verbosity(tmp_path, model_args):
    """--model-type 500 sets the chunk size, --chunking legacy keeps the original's boundaries."""
    record = tmp_path / "one.fa"
    sequence = ("ATGGCTAAAGCTTGGCGTAATCATGGTCATAGCTGTTTCCTG" * 30)[:1001]
    record.write_text(f">contig1 test\n{sequence}\n")
    out, log = tmp_path / "out", tmp_path / "run.log"
    args = [a for a in model_args if a != "-q"]
    threads_before = torch.get_num_threads()
    try:
        assert main(["predict", str(record), "-o", str(out), "--model-type", "500", "--chunking", "legacy",
                     "--threads", "1", "--log-file", str(log), "-v", *args]) == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads_before)
    bounds = [(row["start"], row["end"]) for row in _table(out / "chunks.tsv")]
    assert bounds == [("0", "500"), ("333", "833"), ("666", "1001")]  # the original's rule, defect included
    run = json.loads((out / "run.json").read_text())
    assert run["parameters"]["chunk_size"] == 500 and run["parameters"]["chunking"] == "legacy"
    assert run["threads"] == 1
    assert "models loaded" in log.read_text()


def test_run_json_records_model_checksums(tmp_path, tiny_models, model_args):
    import hashlib

    out = tmp_path / "out"
    assert main(["predict", str(_reads(tmp_path, n=3)), "-o", str(out), *model_args]) == 0
    models = json.loads((out / "run.json").read_text())["models"]
    classifier = models["classifier"]["files"]["classifier.pth"]
    assert classifier["sha256"] == hashlib.sha256((tiny_models / "classifier.pth").read_bytes()).hexdigest()
    assert set(models["esm2"]["files"]) >= {"config.json", "model.safetensors"}
