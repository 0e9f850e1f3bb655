"""`virnucpro train`: labels, parquet reading, split, metrics, and small end-to-end runs."""

from __future__ import annotations

import json
from itertools import product
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from virnucpro.cli.main import main
from virnucpro.errors import InputFormatError, VirnucproError
from virnucpro.models.classifier import load_classifier
from virnucpro.pipeline.train import (
    TrainConfig,
    auroc,
    binary_metrics,
    fit,
    label_for,
    read_label_table,
    read_labelled_embeddings,
    split_indices,
)

DNABERT_DIM, ESM_DIM = 8, 24
EMBED_SCHEMA = pa.schema([
    ("id", pa.string()), ("dnabert", pa.list_(pa.float32())), ("esm", pa.list_(pa.float32())),
])


def _frame_ids(prefix: str, sequences: int, chunks: int = 2) -> list[str]:
    """Three kept frames per chunk, ids shaped like the pipeline's (`seq_chunk_1R2`)."""
    grid = product(range(sequences), range(1, chunks + 1), ("F1", "R2", "R3"))
    return [f"{prefix}{s}_chunk_{c}{f}" for s, c, f in grid]


def _embeddings(n: int, virus: bool, seed: int) -> np.ndarray:
    """Separable classes: unit-variance noise, class means 5 SD apart along a fixed direction."""
    rng = np.random.default_rng(seed)
    direction = np.random.default_rng(99).normal(size=DNABERT_DIM + ESM_DIM)
    shift = (2.5 if virus else -2.5) * direction / np.linalg.norm(direction)
    return (rng.normal(size=(n, DNABERT_DIM + ESM_DIM)) + shift).astype(np.float32)


def _write_embed_parquet(path: Path, ids: list[str], features: np.ndarray, row_group_size: int = 64) -> Path:
    """A file in `virnucpro embed`'s schema: id, dnabert list<float32>, esm list<float32>."""
    table = pa.table({
        "id": ids,
        "dnabert": [row[:DNABERT_DIM].tolist() for row in features],
        "esm": [row[DNABERT_DIM:].tolist() for row in features],
    }, schema=EMBED_SCHEMA)
    pq.write_table(table, path, row_group_size=row_group_size)
    return path


@pytest.fixture
def labelled_files(tmp_path):
    virus_ids, others_ids = _frame_ids("phage", 40), _frame_ids("bact", 40)
    virus = _write_embed_parquet(tmp_path / "virus.parquet", virus_ids, _embeddings(len(virus_ids), True, 1))
    others = _write_embed_parquet(tmp_path / "others.parquet", others_ids, _embeddings(len(others_ids), False, 2))
    return virus, others


# ---------------------------------------------------------------- metrics


def _auroc_by_pairs(scores, labels):
    pos, neg = scores[labels == 1], scores[labels == 0]
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return wins / (len(pos) * len(neg))


@pytest.mark.parametrize("seed", range(5))
def test_auroc_matches_pairwise_definition_with_ties(seed):
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 6, size=50) / 5.0  # many ties
    labels = rng.integers(0, 2, size=50)
    assert auroc(scores, labels) == pytest.approx(_auroc_by_pairs(scores, labels), abs=1e-12)


def test_auroc_edge_cases():
    assert auroc(np.array([0.1, 0.9]), np.array([0, 1])) == 1.0
    assert auroc(np.array([0.9, 0.1]), np.array([0, 1])) == 0.0
    assert auroc(np.array([0.5, 0.5]), np.array([0, 1])) == 0.5
    assert auroc(np.array([0.2, 0.3]), np.array([1, 1])) is None


def test_binary_metrics_counts_and_tie_rule():
    p_virus = np.array([0.9, 0.8, 0.5, 0.2, 0.1, 0.7])
    labels = np.array([1, 1, 1, 0, 0, 0])  # 0.5 is a tie: called others, as the original's argmax
    metrics = binary_metrics(p_virus, labels)
    assert metrics["confusion"] == {"tp": 2, "fp": 1, "fn": 1, "tn": 2}
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    assert metrics["precision"] == pytest.approx(2 / 3) and metrics["recall"] == pytest.approx(2 / 3)
    assert metrics["f1"] == pytest.approx(2 / 3)
    assert binary_metrics(np.array([0.1, 0.2]), np.array([0, 0]))["precision"] is None


# ---------------------------------------------------------------- labels


def test_label_table_parsing(tmp_path):
    path = tmp_path / "labels.tsv"
    path.write_text("id\tlabel\n# comment\n\nseqA\tvirus\nseqB\tOthers\nseqC_chunk_2\t1\nseqD_chunk_1F1\t0\n")
    assert read_label_table(path) == {"seqA": 1, "seqB": 0, "seqC_chunk_2": 1, "seqD_chunk_1F1": 0}


@pytest.mark.parametrize("text, message", [
    ("seqA\tvirus\nseqB\tmaybe\n", "line 2"),
    ("seqA\tvirus\nseqA\tothers\n", "two different labels"),
    ("", "no labels"),
])
def test_label_table_errors(tmp_path, text, message):
    path = tmp_path / "labels.tsv"
    path.write_text(text)
    with pytest.raises(InputFormatError, match=message):
        read_label_table(path)


def test_label_matching_order_frame_then_chunk_then_sequence():
    table = {"my_seq": 0, "my_seq_chunk_2": 1, "my_seq_chunk_2R3": 0}
    assert label_for("my_seq_chunk_2R3", table) == 0  # the frame id itself
    assert label_for("my_seq_chunk_2F1", table) == 1  # its chunk
    assert label_for("my_seq_chunk_10F1", table) == 0  # its sequence
    assert label_for("other_chunk_1F1", table) is None
    assert label_for("my_seq", table) == 0 and label_for("plainid", table) is None


# ---------------------------------------------------------------- reading and splitting


def test_reading_labelled_embeddings_by_file_and_by_table(tmp_path, labelled_files):
    virus, others = labelled_files
    by_file = read_labelled_embeddings([(virus, 1), (others, 0)], None)
    assert by_file.features.shape == (480, DNABERT_DIM + ESM_DIM) and by_file.features.dtype == np.float32
    assert (by_file.dnabert_dim, by_file.esm_dim) == (DNABERT_DIM, ESM_DIM)
    assert by_file.labels.sum() == 240
    table = {"phage0": 1, "phage1_chunk_2": 1, "bact3_chunk_1R2": 0}
    by_table = read_labelled_embeddings([(virus, None), (others, None)], table)
    assert by_table.ids == ["phage0_chunk_1F1", "phage0_chunk_1R2", "phage0_chunk_1R3", "phage0_chunk_2F1",
                            "phage0_chunk_2R2", "phage0_chunk_2R3", "phage1_chunk_2F1", "phage1_chunk_2R2",
                            "phage1_chunk_2R3", "bact3_chunk_1R2"]
    assert by_table.labels.tolist() == [1] * 9 + [0] and by_table.unlabelled == 470
    row = by_file.ids.index("bact3_chunk_1R2")
    np.testing.assert_array_equal(by_table.features[-1], by_file.features[row])


def test_parquet_problems_are_one_line_input_errors(tmp_path, labelled_files):
    virus, _ = labelled_files
    with pytest.raises(InputFormatError, match="repeated"):
        read_labelled_embeddings([(virus, 1), (virus, 1)], None)
    pq.write_table(pa.table({"id": ["a"], "esm": [[1.0]]}), tmp_path / "no_dnabert.parquet")
    with pytest.raises(InputFormatError, match="missing column"):
        read_labelled_embeddings([(tmp_path / "no_dnabert.parquet", 1)], None)
    ragged = pa.table({"id": ["a", "b"], "dnabert": [[1.0, 2.0], [1.0]], "esm": [[1.0], [2.0]]}, schema=EMBED_SCHEMA)
    pq.write_table(ragged, tmp_path / "ragged.parquet")
    with pytest.raises(InputFormatError, match="different or zero lengths"):
        read_labelled_embeddings([(tmp_path / "ragged.parquet", 1)], None)


def test_frame_split_is_seeded_and_ninety_ten():
    ids = _frame_ids("s", 50)
    train, val = split_indices(ids, TrainConfig(seed=3))
    assert len(val) == 30 and len(train) == 270 and not set(train) & set(val)
    again = split_indices(ids, TrainConfig(seed=3))
    assert np.array_equal(train, again[0]) and not np.array_equal(val, split_indices(ids, TrainConfig(seed=4))[1])


def test_sequence_split_keeps_each_sequence_on_one_side():
    ids = _frame_ids("s", 50)
    train, val = split_indices(ids, TrainConfig(split_by="sequence", seed=1))
    sequences = lambda rows: {ids[i].split("_chunk_")[0] for i in rows}
    assert not sequences(train) & sequences(val)
    assert 30 <= len(val) < 36 and len(train) + len(val) == len(ids)


# ---------------------------------------------------------------- training


def test_separable_embeddings_reach_auroc_099_with_the_original_recipe(labelled_files):
    virus, others = labelled_files
    data = read_labelled_embeddings([(virus, 1), (others, 0)], None)
    config = TrainConfig(epochs=8, seed=0)
    train, val = split_indices(data.ids, config)
    result = fit(data, train, val, config)
    assert result.metrics["auroc"] >= 0.99 and result.metrics["accuracy"] >= 0.95
    assert result.metrics["n"] == len(val) == 48
    assert 1 <= result.best_epoch <= len(result.history) <= 8
    assert not result.model.training


def test_early_stopping_stops_after_patience_epochs_without_improvement(labelled_files):
    virus, others = labelled_files
    data = read_labelled_embeddings([(virus, 1), (others, 0)], None)
    config = TrainConfig(epochs=100, learning_rate=0.5, patience=2, seed=0)  # lr so high it diverges
    train, val = split_indices(data.ids, config)
    result = fit(data, train, val, config)
    losses = [h["val_loss"] for h in result.history]
    assert len(losses) == result.best_epoch + 2 < 100
    assert losses[result.best_epoch - 1] == min(losses)


def test_train_command_end_to_end_with_per_file_labels(tmp_path, labelled_files, capsys):
    virus, others = labelled_files
    output = tmp_path / "model.safetensors"
    code = main(["train", "--virus", str(virus), "--others", str(others), "-o", str(output),
                 "--epochs", "2", "--seed", "2", "--chunk-size", "300"])
    assert code == 0
    _, info = load_classifier(output)
    assert (info.input_dim, info.dnabert_dim, info.esm_dim, info.chunk_size) == (32, DNABERT_DIM, ESM_DIM, 300)
    metrics = json.loads((tmp_path / "model.metrics.json").read_text())
    assert metrics["frames"] == {"labelled": 480, "unlabelled": 0, "train": 432, "validation": 48}
    assert set(metrics["validation"]) >= {"accuracy", "precision", "recall", "f1", "auroc"}
    assert metrics["config"]["learning_rate"] == 2e-4 and len(metrics["history"]) == 2
    assert "auroc" in capsys.readouterr().err


def test_train_command_with_label_table_and_sequence_split(tmp_path, labelled_files):
    virus, others = labelled_files
    labels = tmp_path / "labels.tsv"
    rows = [f"phage{i}\tvirus\n" for i in range(40)] + [f"bact{i}\tothers\n" for i in range(40)]
    labels.write_text("".join(rows))
    output, metrics_path = tmp_path / "m.safetensors", tmp_path / "metrics.json"
    code = main(["train", str(virus), str(others), "--labels", str(labels), "-o", str(output),
                 "--metrics", str(metrics_path), "--epochs", "2", "--split-by", "sequence",
                 "--batch-size", "16", "--lr", "0.001", "--patience", "1", "--val-fraction", "0.2"])
    assert code == 0 and output.is_file()
    metrics = json.loads(metrics_path.read_text())
    assert metrics["config"]["split_by"] == "sequence" and metrics["config"]["batch_size"] == 16
    assert metrics["frames"]["validation"] == 96


def test_train_command_usage_and_input_errors(tmp_path, labelled_files, capsys):
    virus, _ = labelled_files
    assert main(["train", str(virus), "-o", str(tmp_path / "m.safetensors")]) == 2  # no --labels
    assert main(["train", "--virus", str(virus), "-o", str(tmp_path / "m.safetensors"), "--epochs", "1"]) == 1
    assert "both virus and others" in capsys.readouterr().err
    assert main(["train", "--virus", str(tmp_path / "missing.parquet"), "-o", str(tmp_path / "m.safetensors")]) == 1
    assert "file not found" in capsys.readouterr().err


def test_divergence_from_the_first_epoch_is_a_clear_error(labelled_files):
    virus, others = labelled_files
    data = read_labelled_embeddings([(virus, 1), (others, 0)], None)
    data.features[:] = np.float32(np.inf)  # every loss is NaN
    config = TrainConfig(epochs=3, patience=1)
    train, val = split_indices(data.ids, config)
    with pytest.raises(VirnucproError, match="diverged"):
        fit(data, train, val, config)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_training_on_cuda(labelled_files):
    virus, others = labelled_files
    data = read_labelled_embeddings([(virus, 1), (others, 0)], None)
    config = TrainConfig(epochs=8, device="cuda")
    train, val = split_indices(data.ids, config)
    result = fit(data, train, val, config)
    assert result.metrics["auroc"] >= 0.99 and next(result.model.parameters()).device.type == "cuda"
