"""`embed` needs only the two encoders (issue #18 point 6): no classifier anywhere, and a failed start
leaves no OUT.parquet.parts/ behind."""

from __future__ import annotations

import pyarrow.parquet as pq
from conftest import GENOMES

from virnucpro.cli.main import main


def test_embed_runs_without_any_classifier(tmp_path, tiny_models, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("VIRNUCPRO_MODELS", str(tmp_path / "no-models"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no cached published classifier either
    (tmp_path / "no-models").mkdir()
    out = tmp_path / "frames.parquet"
    assert main(["embed", str(GENOMES / "phiX174_NC_001422.fa"), "-o", str(out), "--esm", str(tiny_models / "esm2"),
                 "--dnabert", str(tiny_models / "dnabert-s"), "--device", "cpu", "-q"]) == 0
    assert pq.read_table(out).num_rows > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames.parquet", "home", "no-models"]


def test_a_failed_embed_leaves_no_parts_directory(tmp_path, tiny_models, capsys):
    out = tmp_path / "frames.parquet"
    assert main(["embed", str(GENOMES / "phiX174_NC_001422.fa"), "-o", str(out), "--esm", str(tmp_path / "nowhere"),
                 "--dnabert", str(tiny_models / "dnabert-s"), "--device", "cpu", "-q"]) == 1
    assert "nowhere" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
