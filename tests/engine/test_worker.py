"""The device worker on the CPU: stage order and what a block's output holds."""

from __future__ import annotations

import torch
from conftest import first_real_block, tiny_model_paths

from virnucpro.engine.worker import STAGES, DeviceWorker
from virnucpro.engine.encoders import load_encoders


def test_esm2_runs_before_dnabert_in_every_block(tiny_models, monkeypatch):
    """Measured on an H200 (README, design.md): with DNABERT-S first, its short kernels were issued
    while the writer held the GIL and the GPU ran dry (busy 94% vs 97.5%). Keep ESM-2 first."""
    encoders, _ = load_encoders(tiny_model_paths(tiny_models), torch.device("cpu"), torch.float32)
    block = first_real_block(tiny_models, 2048)
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
