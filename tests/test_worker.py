"""The device worker on the CPU: stage order and what a block's output holds."""

from __future__ import annotations

import torch
from conftest import REAL

from virnucpro.engine.worker import STAGES, DeviceWorker
from virnucpro.io import read_records
from virnucpro.pipeline.blocks import BlockSettings, iter_blocks
from virnucpro.pipeline.setup import load_encoders, tokenizer_for


def test_esm2_runs_before_dnabert_in_every_block(tiny_models, monkeypatch):
    """Measured on an H200 (README, design.md): with DNABERT-S first, its short kernels were issued
    while the writer held the GIL and the GPU ran dry (busy 94% vs 97.5%). Keep ESM-2 first."""
    paths = {"dnabert": tiny_models / "dnabert-s", "esm2": tiny_models / "esm2",
             "classifier": tiny_models / "classifier.pth"}  # fmt: skip
    encoders, _ = load_encoders(paths, torch.device("cpu"), torch.float32)
    settings = BlockSettings(chunk_size=300, chunking="even", esm_batch_tokens=2048, dnabert_batch_tokens=2048)
    records = read_records([str(REAL / "ERR266411_1.first1000.fastq")])
    block = next(iter_blocks(records, settings, tokenizer_for(tiny_models / "dnabert-s")))
    calls: list[str] = []
    for name, model in (("esm2", encoders.esm), ("dnabert", encoders.dnabert)):
        monkeypatch.setattr(model, "embed", _recording(model.embed, name, calls))

    output = DeviceWorker(encoders).run_block(block, want_features=True)

    assert len(block.esm_batches) > 1 and len(block.dnabert_batches) > 1
    first_dnabert = calls.index("dnabert")
    assert set(calls[:first_dnabert]) == {"esm2"} and set(calls[first_dnabert:]) == {"dnabert"}
    assert list(output.stage_seconds()) == list(STAGES) == ["esm2", "dnabert", "classifier"]
    assert output.probabilities.shape == (block.num_unique, 2)
    assert output.features.shape == (block.num_unique, encoders.dnabert_dim + encoders.esm_dim)


def _recording(embed, name: str, calls: list[str]):
    def wrapped(packed):
        calls.append(name)
        return embed(packed)

    return wrapped
