"""End to end on real genomes: embed with tiny random encoders, train, then predict with the result."""

from __future__ import annotations

import json

from conftest import GENOMES

from virnucpro.cli.main import main
from virnucpro.models.classifier import load_classifier

VIRUS = ("phiX174_NC_001422.fa", "podovirus_KJ183192.fa")
OTHERS = ("human_mito_NC_012920.fa",)


def test_embed_train_predict_on_real_genomes(tmp_path, tiny_models):
    encoders = ["--esm", str(tiny_models / "esm2"), "--dnabert", str(tiny_models / "dnabert-s"),
                "--device", "cpu", "-q"]
    embeddings = tmp_path / "frames.parquet"
    inputs = [str(GENOMES / name) for name in (*VIRUS, *OTHERS)]
    assert main(["embed", *inputs, "-o", str(embeddings), "--classifier", str(tiny_models / "classifier.pth"),
                 *encoders]) == 0
    labels = tmp_path / "labels.tsv"  # sequence ids: every frame of a record takes its label
    labels.write_text("id\tlabel\n1\tvirus\nKJ183192.1\tvirus\nHS#NC_012920.1\tothers\n")
    model = tmp_path / "trained.safetensors"
    assert main(["train", str(embeddings), "--labels", str(labels), "-o", str(model),
                 "--epochs", "3", "--chunk-size", "300", "-q"]) == 0

    metrics = json.loads(model.with_suffix(".metrics.json").read_text())
    assert metrics["frames"]["unlabelled"] == 0 and metrics["frames"]["labelled"] > 100
    assert 0.0 <= metrics["validation"]["accuracy"] <= 1.0
    _, info = load_classifier(model)
    assert info.input_dim == info.dnabert_dim + info.esm_dim and info.chunk_size == 300

    outdir = tmp_path / "predicted"
    assert main(["predict", str(GENOMES / VIRUS[0]), "-o", str(outdir), "--classifier", str(model), *encoders]) == 0
    assert (outdir / "prediction_results.txt").read_text().startswith("Sequence_ID\tPrediction\tscore1\tscore2\n")
