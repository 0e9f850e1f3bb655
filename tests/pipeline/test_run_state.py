"""The resume fingerprint (pipeline/run_state.py) over the one token budget of both encoders."""

from __future__ import annotations

import dataclasses

import torch

from virnucpro.engine.encoders import ModelChoice
from virnucpro.pipeline.blocks import BlockSettings
from virnucpro.pipeline.options import RunOptions
from virnucpro.pipeline.run_state import fingerprint


def test_one_token_budget_keeps_the_journal_keys_of_both_encoders(tmp_path):
    """Journals written when ESM-2 and DNABERT-S had separate (always equal) budgets still match."""
    assert [f.name for f in dataclasses.fields(BlockSettings) if "tokens" in f.name] == ["batch_tokens"]
    options = RunOptions(inputs=[], output=tmp_path, models=ModelChoice(None, None, None, 300, None))
    settings = options.block_settings(512)
    parameters = fingerprint(options, settings, {}, torch.float32, torch.device("cpu"))
    assert parameters["esm_batch_tokens"] == parameters["dnabert_batch_tokens"] == 512
    assert parameters["chunk_size"] == 300 and parameters["device_type"] == "cpu"
